package web

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/auth"
)

// browser keeps the cookies a browser would, for flows of several
// requests.
type browser struct {
	w       *world
	cookies map[string]string
}

func (w *world) browser() *browser { return &browser{w: w, cookies: map[string]string{}} }

func (b *browser) do(t *testing.T, method, path string, form url.Values) (*http.Response, string) {
	t.Helper()
	rq := request{method: method, path: path, form: form, header: http.Header{}}
	var parts []string
	for k, v := range b.cookies {
		parts = append(parts, k+"="+v)
	}
	if len(parts) > 0 {
		rq.header.Set("Cookie", strings.Join(parts, "; "))
	}
	resp := b.w.do(t, rq)
	for _, c := range resp.Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c.Value
		}
	}
	return resp, readBody(t, resp)
}

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// token finds a form's CSRF token in a page.
func token(t *testing.T, body string) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF token in page:\n%.500s", body)
	}
	return m[1]
}

func wantStatus(t *testing.T, resp *http.Response, body string, status int, location string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d (Location %q)\n%.800s", resp.StatusCode, status, resp.Header.Get("Location"), body)
	}
	if location != "" && resp.Header.Get("Location") != location {
		t.Fatalf("Location %q, want %q", resp.Header.Get("Location"), location)
	}
}

func TestLoginWithTOTP(t *testing.T) {
	w := newWorld(t)
	u := w.newUser(t, "anna@bygg.se", w.bygg, account.RoleOrgAdmin)
	// newUser forgets the secret: enrol a known one for this user.
	if err := w.srv.Accounts().DisableTOTP(context.Background(), account.System("test"), u.id); err != nil {
		t.Fatal(err)
	}
	secret := w.enableTOTP(t, u.id)
	w.clock.Advance(time.Minute) // a fresh TOTP step

	b := w.browser()
	resp, body := b.do(t, "GET", "/login?next=/sites/"+itoa(w.siteA), nil)
	wantStatus(t, resp, body, 200, "")
	resp, body = b.do(t, "POST", "/login", url.Values{"email": {"Anna@Bygg.se"}, "password": {testPassword},
		"next": {"/sites/" + itoa(w.siteA)}, "csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 303, "/login/totp?next=%2Fsites%2F"+itoa(w.siteA))
	checkCookie(t, resp, account.PendingCookieName)
	if _, ok := b.cookies[account.CookieName]; ok {
		t.Fatal("a session before the second factor")
	}
	resp, body = b.do(t, "GET", "/login/totp?next=/sites/"+itoa(w.siteA), nil)
	wantStatus(t, resp, body, 200, "")
	resp, body = b.do(t, "POST", "/login/totp", url.Values{"code": {"000000"}, "next": {"/sites/" + itoa(w.siteA)},
		"csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 422, "")
	resp, body = b.do(t, "POST", "/login/totp", url.Values{"code": {totpCode(t, secret, w.clock.Now())},
		"next": {"/sites/" + itoa(w.siteA)}, "csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 303, "/sites/"+itoa(w.siteA))
	checkCookie(t, resp, account.CookieName)
	resp, body = b.do(t, "GET", "/sites/"+itoa(w.siteA), nil)
	wantStatus(t, resp, body, 200, "")
	if !strings.Contains(body, nameAnna) {
		t.Error("site page after login lacks Anna")
	}

	// Logging out ends the session on the server.
	old := b.cookies[account.CookieName]
	resp, body = b.do(t, "POST", "/logout", url.Values{"csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 303, "/login?out=1")
	resp = w.do(t, request{method: "GET", path: "/sites", session: old})
	wantStatus(t, resp, "", 303, "/login?expired=1&next=%2Fsites")
}

// checkCookie checks a session cookie's attributes (account's doc: "What
// the web layer must do").
func checkCookie(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name != name {
			continue
		}
		if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
			t.Errorf("cookie %s = %+v, want HttpOnly, Secure, SameSite=Lax, Path=/, no Domain", name, c)
		}
		return
	}
	t.Errorf("no cookie %s set", name)
}

func TestForcedSetup(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	u, initial, err := w.srv.Accounts().BootstrapOrgAdmin(ctx, w.bygg, "ny@bygg.se", "Ny Admin")
	if err != nil {
		t.Fatal(err)
	}
	b := w.browser()
	_, body := b.do(t, "GET", "/login", nil)
	resp, body := b.do(t, "POST", "/login", url.Values{"email": {u.Email}, "password": {initial}, "csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 303, "/account/password")
	// Nothing else until the password is changed.
	resp, body = b.do(t, "GET", "/sites", nil)
	wantStatus(t, resp, body, 303, "/account/password")
	resp, body = b.do(t, "GET", "/account/password", nil)
	wantStatus(t, resp, body, 200, "")
	tok := token(t, body)
	resp, body = b.do(t, "POST", "/account/password", url.Values{"password": {"kort"}, "password2": {"kort"}, "csrf_token": {tok}})
	wantStatus(t, resp, body, 422, "")
	resp, body = b.do(t, "POST", "/account/password", url.Values{"password": {"en lång mening om betong"},
		"password2": {"en lång mening om betong"}, "csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 303, "/account/totp")
	// Then two-step login is due.
	resp, body = b.do(t, "GET", "/sites", nil)
	wantStatus(t, resp, body, 303, "/account/totp")
	resp, body = b.do(t, "GET", "/account/totp", nil)
	wantStatus(t, resp, body, 200, "")
	resp, body = b.do(t, "POST", "/account/totp/begin", url.Values{"csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 200, "")
	if !strings.Contains(body, "otpauth://totp/") {
		t.Fatalf("enrolment page lacks the otpauth URI:\n%s", body)
	}
	m := regexp.MustCompile(`id="secret">([A-Z2-7]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("enrolment page lacks the secret:\n%s", body)
	}
	resp, body = b.do(t, "POST", "/account/totp", url.Values{"code": {totpCode(t, m[1], w.clock.Now())},
		"secret": {m[1]}, "csrf_token": {token(t, body)}})
	wantStatus(t, resp, body, 200, "")
	if n := strings.Count(body, "<li>"); n < account.RecoveryCodes {
		t.Errorf("recovery codes page shows %d items, want %d codes", n, account.RecoveryCodes)
	}
	resp, body = b.do(t, "GET", "/sites", nil)
	wantStatus(t, resp, body, 200, "")
}

func TestLoginThrottled(t *testing.T) {
	w := newWorld(t, func(c *Config) {
		c.Accounts.AccountLimit = account.Limit{Name: "account", Free: 2, Window: time.Hour, Delay: 90 * time.Second, MaxDelay: time.Hour}
	})
	w.newUser(t, "anna@bygg.se", w.bygg, account.RoleOrgAdmin)
	b := w.browser()
	_, body := b.do(t, "GET", "/login", nil)
	tok := token(t, body)
	var resp *http.Response
	for i := 0; i < 4; i++ {
		resp, body = b.do(t, "POST", "/login", url.Values{"email": {"anna@bygg.se"}, "password": {"fel lösenord"}, "csrf_token": {tok}})
		if resp.StatusCode == http.StatusTooManyRequests {
			break
		}
		wantStatus(t, resp, body, 422, "")
	}
	wantStatus(t, resp, body, 429, "")
	if ra := resp.Header.Get("Retry-After"); ra != "90" {
		t.Errorf("Retry-After = %q, want 90", ra)
	}
	// The right password waits too.
	resp, body = b.do(t, "POST", "/login", url.Values{"email": {"anna@bygg.se"}, "password": {testPassword}, "csrf_token": {tok}})
	wantStatus(t, resp, body, 429, "")
}

func TestCSRF(t *testing.T) {
	w := newWorld(t)
	u := w.newUser(t, "anna@bygg.se", w.bygg, account.RoleOrgAdmin)
	tok := w.session(t, u)
	post := func(form url.Values, h http.Header) int {
		return w.do(t, request{method: "POST", path: "/sites/" + itoa(w.siteA) + "/grants", session: tok, form: form, header: h}).StatusCode
	}
	good := url.Values{"hours": {"1"}, "csrf_token": {w.csrf(t, tok)}}
	for _, c := range []struct {
		name   string
		form   url.Values
		header http.Header
		want   int
	}{
		{"no token", url.Values{"hours": {"1"}}, nil, 403},
		{"wrong token", url.Values{"hours": {"1"}, "csrf_token": {"AAAA"}}, nil, 403},
		{"cross-site fetch", good, http.Header{"Sec-Fetch-Site": {"cross-site"}}, 403},
		{"foreign origin", good, http.Header{"Origin": {"https://evil.example"}}, 403},
		{"null origin", good, http.Header{"Origin": {"null"}}, 403},
		{"token of another session", url.Values{"hours": {"1"}, "csrf_token": {w.csrf(t, w.session(t, u))}}, nil, 403},
		{"header token", url.Values{"hours": {"1"}}, http.Header{"X-Csrf-Token": {w.csrf(t, tok)}}, 200},
		{"good", good, http.Header{"Origin": {"http://example.com"}, "Sec-Fetch-Site": {"same-origin"}}, 200},
	} {
		if got := post(c.form, c.header); got != c.want {
			t.Errorf("%s: status %d, want %d", c.name, got, c.want)
		}
	}
	// Public forms check their own token.
	resp := w.do(t, request{method: "POST", path: "/login", form: url.Values{"email": {"a@b.se"}, "password": {"x"}}})
	if resp.StatusCode != 403 {
		t.Errorf("login without form token: %d, want 403", resp.StatusCode)
	}
}

func TestSessionExpiry(t *testing.T) {
	w := newWorld(t)
	u := w.newUser(t, "anna@bygg.se", w.bygg, account.RoleOrgAdmin)
	tok := w.session(t, u)
	if resp := w.do(t, request{method: "GET", path: "/sites", session: tok}); resp.StatusCode != 200 {
		t.Fatalf("fresh session: %d", resp.StatusCode)
	}
	w.clock.Advance(31 * time.Minute) // idle timeout
	resp := w.do(t, request{method: "GET", path: "/sites", session: tok})
	wantStatus(t, resp, "", 303, "/login?expired=1&next=%2Fsites")
	var cleared bool
	for _, c := range resp.Cookies() {
		cleared = cleared || (c.Name == account.CookieName && c.MaxAge < 0)
	}
	if !cleared {
		t.Error("the dead session's cookie was not cleared")
	}
	resp = w.do(t, request{method: "GET", path: "/login?expired=1"})
	if body := readBody(t, resp); !strings.Contains(body, translate(langSV, "login.expired")) {
		t.Error("login page does not say the session ended")
	}
	// The absolute timeout holds however busy the session is.
	tok = w.session(t, u)
	for range 26 {
		w.clock.Advance(29 * time.Minute)
		if resp := w.do(t, request{method: "GET", path: "/sites", session: tok}); resp.StatusCode != 200 {
			if w.clock.Now().Sub(time.Date(2026, 3, 2, 7, 0, 0, 0, stockholm)) < 12*time.Hour {
				t.Fatalf("session ended early at %v", w.clock.Now())
			}
			return
		}
	}
	t.Error("a session used every 29 minutes outlived the absolute timeout")
}

func TestSecurityHeaders(t *testing.T) {
	w := newWorld(t)
	for _, path := range []string{"/login", "/static/app.js", "/nowhere"} {
		resp := w.do(t, request{method: "GET", path: path})
		h := resp.Header
		for k, want := range map[string]string{
			"Content-Security-Policy": contentSecurityPolicy,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: %s = %q, want %q", path, k, got, want)
			}
		}
		if !strings.Contains(h.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			strings.Contains(h.Get("Content-Security-Policy"), "unsafe-inline") {
			t.Errorf("%s: weak CSP %q", path, h.Get("Content-Security-Policy"))
		}
	}
	if resp := w.do(t, request{method: "GET", path: "/nowhere"}); resp.StatusCode != 404 {
		t.Errorf("unknown path: %d, want 404", resp.StatusCode)
	}
	if cc := w.do(t, request{method: "GET", path: "/login"}).Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("page Cache-Control = %q, want no-store", cc)
	}
}

// TestNoInlineScript keeps the templates within the CSP: no inline
// scripts, styles or event handlers.
func TestNoInlineScript(t *testing.T) {
	files, err := filepath.Glob("templates/*/*.html")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "templates/layout.html")
	bad := regexp.MustCompile(`<script>|<script [^>]*>[^<]|<style|\son[a-z]+=|style=|javascript:`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := bad.Find(b); m != nil {
			t.Errorf("%s: inline script or style %q", f, m)
		}
	}
}

func TestLanguage(t *testing.T) {
	w := newWorld(t)
	for _, c := range []struct {
		path, accept, cookie string
		want                 string
	}{
		{"/login", "", "", "Logga in"},
		{"/login", "en-GB,en;q=0.9", "", "Log in"},
		{"/login", "de-DE,de;q=0.9,en;q=0.5,sv;q=0.8", "", "Logga in"},
		{"/login", "nb-NO", "", "Logga in"},
		{"/login?lang=en", "sv", "", "Log in"},
		{"/login", "sv", "en", "Log in"},
		{"/login?lang=sv", "en", "en", "Logga in"},
	} {
		h := http.Header{}
		if c.accept != "" {
			h.Set("Accept-Language", c.accept)
		}
		if c.cookie != "" {
			h.Set("Cookie", langCookie+"="+c.cookie)
		}
		resp := w.do(t, request{method: "GET", path: c.path, header: h})
		body := readBody(t, resp)
		if !strings.Contains(body, "<h1>"+c.want+"</h1>") {
			t.Errorf("GET %s (Accept-Language %q, cookie %q): no heading %q", c.path, c.accept, c.cookie, c.want)
		}
		wantLang := "sv"
		if c.want == "Log in" {
			wantLang = "en"
		}
		if !strings.Contains(body, `<html lang="`+wantLang+`">`) {
			t.Errorf("GET %s: page not marked lang=%s", c.path, wantLang)
		}
	}
	resp := w.do(t, request{method: "GET", path: "/login?lang=en"})
	var set bool
	for _, c := range resp.Cookies() {
		set = set || (c.Name == langCookie && c.Value == "en")
	}
	if !set {
		t.Error("?lang=en is not remembered")
	}
}

// TestCatalogue checks every string is in both languages, with the same
// arguments, and every key the templates and handlers use exists.
func TestCatalogue(t *testing.T) {
	verbs := regexp.MustCompile(`%[a-z]`)
	for k, m := range catalogue {
		if strings.TrimSpace(m.sv) == "" || strings.TrimSpace(m.en) == "" {
			t.Errorf("%s: missing a language: %+v", k, m)
		}
		if a, b := verbs.FindAllString(m.sv, -1), verbs.FindAllString(m.en, -1); strings.Join(a, "") != strings.Join(b, "") {
			t.Errorf("%s: arguments differ: sv %v, en %v", k, a, b)
		}
	}
	used := map[string]bool{}
	keyRe := regexp.MustCompile(`(?:T |T\(|formError\{|fail\(|errStatus\([^,]+, |httpError\{[^,]+, )"([a-z_]+\.[a-z_.]+)"`)
	var files []string
	for _, g := range []string{"*.go", "templates/*.html", "templates/*/*.html"} {
		m, _ := filepath.Glob(g)
		files = append(files, m...)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range keyRe.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	for _, k := range allKinds {
		used["kind."+string(k)], used["kind_help."+string(k)] = true, true
	}
	for _, m := range []string{"counted", "double", "void", "unknown_card", "unassigned", "pending"} {
		used["mark."+m] = true
	}
	for _, r := range orgRoles {
		used["role."+string(r)] = true
	}
	for _, d := range []string{"in", "out", "toggle"} {
		used["dir."+d] = true
	}
	for _, a := range namedActions {
		used["audit.action."+a] = true
	}
	for _, by := range []string{auth.IssuedByCLI, auth.IssuedByEnrollment, auth.IssuedByRotation} {
		used["term.issued_by."+by] = true
	}
	for _, k := range fieldKeys {
		used[k] = true
	}
	for _, k := range lineProblemKeys {
		used[k] = true
	}
	for _, k := range refusalKeys {
		used[k] = true
	}
	if len(used) < 100 {
		t.Fatalf("found only %d keys in use: is the pattern right?", len(used))
	}
	for k := range used {
		if _, ok := catalogue[k]; !ok {
			t.Errorf("key %q is used but not in the catalogue", k)
		}
	}
	for k := range catalogue {
		if !used[k] {
			t.Errorf("key %q is in the catalogue but not used", k)
		}
	}
}

func TestSwedishFormats(t *testing.T) {
	w := newWorld(t)
	rc := &reqCtx{s: w.srv, Lang: langSV, Now: w.clock.Now()}
	v := view{rc: rc}
	at := time.Date(2026, 3, 1, 16, 5, 0, 0, time.UTC) // 17:05 in Stockholm (CET)
	for _, c := range []struct{ got, want string }{
		{v.Clock(at), "17:05"},
		{v.DateTime(at), "2026-03-01 17:05"},
		{v.DateTime(w.clock.Now()), "i dag 07:00"},
		{v.Day(at), "söndag 1 mars 2026"},
		{view{rc: &reqCtx{s: w.srv, Lang: langEN}}.Day(at), "Sunday 1 March 2026"},
		{v.Clock(time.Date(2026, 7, 1, 16, 5, 0, 0, time.UTC)), "18:05"}, // CEST
		{v.Offset(ptr(int64(-1_250_000))), "-1,2 s"},
		{v.Duration(at, at.Add(7*time.Hour+30*time.Minute)), "7 h 30 min"},
		{v.Clock((*time.Time)(nil)), "–"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestClientIP(t *testing.T) {
	w := newWorld(t, func(c *Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
	for _, c := range []struct{ remote, xff, want string }{
		{"192.0.2.1:1234", "", "192.0.2.1"},
		{"192.0.2.1:1234", "203.0.113.9", "192.0.2.1"}, // not a trusted proxy: ignored
		{"10.0.0.5:1234", "203.0.113.9", "203.0.113.9"},
		{"10.0.0.5:1234", "198.51.100.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"},
		{"10.0.0.5:1234", "garbage", "10.0.0.5"},
		{"[::ffff:192.0.2.3]:1", "", "192.0.2.3"},
	} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = c.remote
		if c.xff != "" {
			r.Header.Set("X-Forwarded-For", c.xff)
		}
		if got := w.srv.clientIP(r); got != c.want {
			t.Errorf("clientIP(%s, XFF %q) = %s, want %s", c.remote, c.xff, got, c.want)
		}
	}
}

func TestCorrections(t *testing.T) {
	w := newWorld(t)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	tok := w.session(t, mgr)
	base := "/sites/" + itoa(w.siteA)
	post := func(tok string, form url.Values) (*http.Response, string) {
		form.Set("csrf_token", w.csrf(t, tok))
		resp := w.do(t, request{method: "POST", path: base + "/corrections", session: tok, form: form})
		return resp, readBody(t, resp)
	}
	day := w.clock.Now().In(stockholm).Format("2006-01-02")

	// A reason is required.
	resp, body := post(tok, url.Values{"kind": {"set_checkout"}, "person": {itoa(w.anna)}, "end": {day + "T06:55"}})
	wantStatus(t, resp, body, 422, "")
	if !strings.Contains(body, translate(langSV, "corr.err.reason")) {
		t.Error("no message about the missing reason")
	}
	resp, body = post(tok, url.Values{"kind": {"set_checkout"}, "person": {itoa(w.anna)}, "end": {day + "T06:55"},
		"reason": {"lämnade bygget utan utstämpling"}})
	wantStatus(t, resp, body, 303, "")
	loc := resp.Header.Get("Location")
	resp = w.do(t, request{method: "GET", path: loc, session: tok})
	body = readBody(t, resp)
	for _, want := range []string{"lämnade bygget utan utstämpling", "Namn chef", translate(langSV, "kind.set_checkout"), nameAnna} {
		if !strings.Contains(body, want) {
			t.Errorf("corrections page lacks %q", want)
		}
	}
	// Anna is no longer on site; Erik still is.
	body = readBody(t, w.do(t, request{method: "GET", path: base + "/onsite", session: tok}))
	onsite, _, _ := strings.Cut(body, `id="h-attention"`)
	if strings.Contains(onsite, nameAnna) || !strings.Contains(onsite, nameErik) {
		t.Errorf("on-site list after the check-out:\n%s", onsite)
	}
	if strings.Contains(body, "<html") {
		t.Error("the fragment carries the layout")
	}
	// A second check-out would close nothing: the ledger refuses it, and
	// the page says why in Swedish, with the times in the site's zone.
	resp, body = post(tok, url.Values{"kind": {"set_checkout"}, "person": {itoa(w.anna)}, "end": {day + "T06:56"},
		"reason": {"igen"}})
	wantStatus(t, resp, body, 422, "")
	if want := "Ingen öppen incheckning före " + day + " 06:56:00: den senaste perioden slutade " + day + " 06:55:00."; !strings.Contains(body, want) {
		t.Errorf("the refusal lacks %q:\n%.3000s", want, body)
	}
	// The correction is in the audit log of the site's owner, and (Anna
	// being the owner's) once.
	es, err := audit.List(context.Background(), w.pool, w.bygg, audit.Filter{Action: ActionCorrection})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].SiteID != w.siteA || es[0].PersonID != w.anna || es[0].Actor != "user:"+itoa(mgr.id) {
		t.Errorf("audit entries = %+v, want one of the check-out", es)
	}

	// Withdrawing keeps both on record.
	m := regexp.MustCompile(`name="withdraws" value="(\d+)"`).FindStringSubmatch(readBody(t, w.do(t, request{method: "GET", path: base + "/corrections", session: tok})))
	if m == nil {
		t.Fatal("no withdraw form")
	}
	resp, body = post(tok, url.Values{"kind": {"withdraw"}, "withdraws": {m[1]}, "reason": {"fel person"}})
	wantStatus(t, resp, body, 303, "")
	body = readBody(t, w.do(t, request{method: "GET", path: base + "/corrections", session: tok}))
	if !strings.Contains(body, "lämnade bygget utan utstämpling") || !strings.Contains(body, "fel person") ||
		!strings.Contains(body, translate(langSV, "corr.withdrawn_by", 2)) {
		t.Errorf("after the withdrawal the page lacks the original, the withdrawal or its state:\n%s", body)
	}

	// A contractor admin corrects its own people only, and only check-outs
	// and manual periods.
	el := w.newUser(t, "admin@el.se", w.el, account.RoleContractorAdmin)
	etok := w.session(t, el)
	resp, body = post(etok, url.Values{"kind": {"set_checkout"}, "person": {itoa(w.anna)}, "end": {day + "T06:55"}, "reason": {"x"}})
	wantStatus(t, resp, body, 422, "")
	resp, body = post(etok, url.Values{"kind": {"assign_card"}, "person": {itoa(w.erik)}, "card": {"FFFF00001111"}, "reason": {"x"}})
	wantStatus(t, resp, body, 422, "")
	resp, body = post(etok, url.Values{"kind": {"set_checkout"}, "person": {itoa(w.erik)}, "end": {day + "T06:58"}, "reason": {"glömde"}})
	wantStatus(t, resp, body, 303, "")
	body = readBody(t, w.do(t, request{method: "GET", path: base + "/corrections", session: etok}))
	if strings.Contains(body, nameAnna) || strings.Contains(body, "lämnade bygget") || !strings.Contains(body, "glömde") {
		t.Errorf("the contractor's corrections page shows the owner's corrections or lacks its own:\n%s", body)
	}

	// The manager assigns the unknown card to Erik.
	resp, body = post(tok, url.Values{"kind": {"assign_card"}, "person": {itoa(w.erik)}, "card": {"FFFF00001111"}, "reason": {"lånekort"}})
	wantStatus(t, resp, body, 303, "")
	body = readBody(t, w.do(t, request{method: "GET", path: base, session: tok}))
	if strings.Contains(body, "FFFF00001111") {
		t.Error("the assigned card is still listed as unknown")
	}
}

func TestImport(t *testing.T) {
	w := newWorld(t)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	tok := w.session(t, mgr)
	upload := func(csv string) (*http.Response, string) {
		rq := request{method: "POST", path: "/sites/" + itoa(w.siteA) + "/import", session: tok}
		body, ct := multipartCSV(t, map[string]string{"csrf_token": w.csrf(t, tok)}, csv)
		rq.body, rq.contentType = body, ct
		resp := w.do(t, rq)
		return resp, readBody(t, resp)
	}
	resp, body := upload("namn;personnummer;kortnummer\nNy Person;" + personnummer(1990, 1, 1, 5) + ";AB1234567890\nTrasig;12345;\n" +
		"Igen;" + personnummer(1990, 1, 1, 5) + ";AB12\n")
	wantStatus(t, resp, body, 422, "")
	if !strings.Contains(body, "<td>3</td>") || strings.Contains(body, "Ny Person") && !strings.Contains(body, "Importera") {
		t.Errorf("the refusal does not name line 3:\n%s", body)
	}
	// Each problem is said in Swedish, by field: the registry's English
	// messages are for logs.
	for _, want := range []string{
		"Person- eller samordningsnumret har fel format.",
		"Finns redan på rad 2.",
		"Kortnumret har fel format.",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the refusal lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "wrong format") || strings.Contains(body, "also on line") {
		t.Errorf("the refusal shows the registry's English:\n%s", body)
	}
	resp, body = upload("name;kort\nEn Person;AB1234567890\n")
	wantStatus(t, resp, body, 422, "")
	if want := "Kolumnen ”personnummer” saknas i rubrikraden."; !strings.Contains(body, want) {
		t.Errorf("the refusal lacks %q:\n%s", want, body)
	}
	resp, body = upload("\ufeffnamn;personnummer;kortnummer\nNy Person;" + personnummer(1990, 1, 1, 5) + ";AB1234567890\n")
	wantStatus(t, resp, body, 200, "")
	if !strings.Contains(body, translate(langSV, "import.done", 1, 1)) {
		t.Errorf("no result:\n%s", body)
	}
	es, err := audit.List(context.Background(), w.pool, w.bygg, audit.Filter{Action: ActionImport})
	if err != nil || len(es) != 1 {
		t.Errorf("audit entries of the import = %v, %v", es, err)
	}
}

func TestInspectorRedeem(t *testing.T) {
	w := newWorld(t)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	tok := w.session(t, mgr)
	resp := w.do(t, request{method: "POST", path: "/sites/" + itoa(w.siteA) + "/grants", session: tok,
		form: url.Values{"hours": {"2"}, "csrf_token": {w.csrf(t, tok)}}})
	body := readBody(t, resp)
	wantStatus(t, resp, body, 200, "")
	m := regexp.MustCompile(`id="grant-link">[^<]*/inspector#([A-Za-z0-9_-]+)<`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no link on the grants page:\n%s", body)
	}
	b := w.browser()
	_, page := b.do(t, "GET", "/inspector", nil)
	resp, body = b.do(t, "POST", "/inspector", url.Values{"secret": {m[1]}, "csrf_token": {token(t, page)}})
	wantStatus(t, resp, body, 303, "/sites/"+itoa(w.siteA))
	checkCookie(t, resp, account.CookieName)
	resp, body = b.do(t, "GET", "/sites/"+itoa(w.siteA), nil)
	wantStatus(t, resp, body, 200, "")
	if !strings.Contains(body, nameAnna) || strings.Contains(body, "/grants") {
		t.Error("inspector's site page lacks Anna or offers grants")
	}
	// Revoking the grant ends the inspector's session.
	gid := regexp.MustCompile(`/grants/(\d+)/revoke`).FindStringSubmatch(readBody(t, w.do(t, request{method: "GET", path: "/sites/" + itoa(w.siteA) + "/grants", session: tok})))
	if gid == nil {
		t.Fatal("no revoke form")
	}
	resp = w.do(t, request{method: "POST", path: "/sites/" + itoa(w.siteA) + "/grants/" + gid[1] + "/revoke", session: tok,
		form: url.Values{"csrf_token": {w.csrf(t, tok)}}})
	wantStatus(t, resp, "", 303, "")
	resp, body = b.do(t, "GET", "/sites/"+itoa(w.siteA), nil)
	wantStatus(t, resp, body, 303, "")
}

func TestAttentionAndTerminals(t *testing.T) {
	w := newWorld(t)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	// A check-in two days ago was never closed; the terminal went silent.
	w.tap(t, "TA", "AB0000000001", w.clock.Now().Add(-48*time.Hour))
	w.drain(t)
	if _, err := w.pool.Exec(context.Background(), `UPDATE terminals SET last_seen_at = $1, outbox_depth = 12 WHERE terminal_id = 'TA'`,
		w.clock.Now().Add(-20*time.Minute)); err != nil {
		t.Fatal(err)
	}
	tok := w.session(t, mgr)
	body := readBody(t, w.do(t, request{method: "GET", path: "/sites/" + itoa(w.siteA), session: tok}))
	_, attention, _ := strings.Cut(body, `id="h-attention"`)
	attention, _, _ = strings.Cut(attention, "</section>")
	if !strings.Contains(attention, nameAnna) || !strings.Contains(attention, translate(langSV, "flag.overdue")) ||
		!strings.Contains(attention, translate(langSV, "site.set_checkout")) {
		t.Errorf("attention section lacks Anna's forgotten check-out with a text label:\n%s", attention)
	}
	if !strings.Contains(body, translate(langSV, "term.alert_count", 1)) || !strings.Contains(body, translate(langSV, "term.offline")) {
		t.Error("no alert for a terminal silent for 20 minutes on a Monday morning")
	}
	// On a Saturday the silence is no alert.
	w.clock.Set(time.Date(2026, 3, 7, 9, 0, 0, 0, stockholm))
	body = readBody(t, w.do(t, request{method: "GET", path: "/sites/" + itoa(w.siteA), session: w.session(t, mgr)}))
	if strings.Contains(body, translate(langSV, "term.alert_count", 1)) {
		t.Error("an alert on a Saturday")
	}
}
