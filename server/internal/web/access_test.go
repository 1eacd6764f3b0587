package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/enroll"
)

// The roles of the access table, in the order of its columns.
const (
	roleOwnerAdmin       = iota // org admin of the owner of site A
	roleManagerA                // site manager of site A
	roleManagerB                // site manager of site B (same owner)
	roleContractorAdmin         // contractor admin of el, a contractor on site A
	roleOtherAdmin              // contractor admin of other, unrelated to site A
	roleOperator                // operator
	roleInspectorA              // inspector with a grant for site A
	roleInspectorB              // inspector with a grant for site B
	roleInspectorExpired        // inspector whose grant for site A has expired
	roleAnonymous               // no session
	numRoles
)

var roleNames = [numRoles]string{"owner admin", "manager A", "manager B", "contractor admin el",
	"contractor admin other", "operator", "inspector A", "inspector B", "inspector expired", "anonymous"}

// expect lists a route's status per role, in the order above.
type expect [numRoles]int

func all(status int) expect {
	var e expect
	for i := range e {
		e[i] = status
	}
	return e
}

// accessTable is every route's expected status for every role, with the
// requests below: the site is A; POSTs carry a valid form and CSRF token,
// so that only authorization decides. 404 means the principal has no
// relation to the site, 403 that its relation does not allow the action,
// 303 a redirect (to the login page without a session).
var accessTable = map[string]expect{
	"GET /static/{file}":                                 all(200),
	"GET /{$}":                                           all(303),
	"GET /login":                                         {303, 303, 303, 303, 303, 303, 303, 303, 200, 200},
	"POST /login":                                        all(422),
	"GET /login/totp":                                    all(303),
	"POST /login/totp":                                   all(303),
	"POST /logout":                                       all(303),
	"GET /account/password":                              {303, 303, 303, 303, 303, 303, 403, 403, 303, 303},
	"POST /account/password":                             {303, 303, 303, 303, 303, 303, 403, 403, 303, 303},
	"GET /account/totp":                                  {303, 303, 303, 303, 303, 303, 403, 403, 303, 303},
	"POST /account/totp/begin":                           {303, 303, 303, 303, 303, 303, 403, 403, 303, 303},
	"POST /account/totp":                                 {303, 303, 303, 303, 303, 303, 403, 403, 303, 303},
	"GET /inspector":                                     all(200),
	"POST /inspector":                                    all(422),
	"GET /sites":                                         {200, 200, 200, 200, 200, 200, 303, 303, 303, 303},
	"GET /fleet":                                         {403, 403, 403, 403, 403, 200, 403, 403, 303, 303},
	"GET /sites/{site}":                                  {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"GET /sites/{site}/onsite":                           {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"GET /sites/{site}/events":                           {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"GET /sites/{site}/terminals":                        {200, 200, 404, 403, 404, 200, 403, 404, 303, 303},
	"GET /sites/{site}/corrections":                      {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"POST /sites/{site}/corrections":                     {303, 303, 404, 303, 404, 403, 403, 404, 303, 303},
	"GET /sites/{site}/import":                           {200, 200, 404, 200, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/import":                          {200, 200, 404, 200, 404, 403, 403, 404, 303, 303},
	"GET /sites/{site}/grants":                           {200, 200, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/grants":                          {200, 200, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/grants/{grant}/revoke":           {303, 303, 404, 403, 404, 403, 403, 404, 303, 303},
	"GET /sites/{site}/inspect":                          {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"POST /sites/{site}/inspect":                         {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"GET /sites/{site}/export":                           {200, 200, 404, 200, 404, 403, 200, 404, 303, 303},
	"GET /sites/{site}/inspect/persons/{person}":         {200, 200, 404, 404, 404, 403, 200, 404, 303, 303},
	"POST /sites/{site}/enrollment-codes":                {200, 200, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/enrollment-codes/{code}/cancel":  {303, 303, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/terminals/{terminal}/revoke":     {303, 303, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/terminals/{terminal}/rotate":     {200, 200, 404, 403, 404, 403, 403, 404, 303, 303},
	"GET /audit":                                         {200, 200, 200, 403, 403, 403, 403, 403, 303, 303},
	"POST /orgs/{org}/sites":                             {303, 403, 403, 404, 404, 404, 404, 404, 303, 303},
	"GET /sites/{site}/contractors":                      {200, 403, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/contractors":                     {303, 403, 404, 403, 404, 403, 403, 404, 303, 303},
	"POST /sites/{site}/contractors/{contractor}/remove": {303, 403, 404, 403, 404, 403, 403, 404, 303, 303},
	"GET /orgs/{org}/users":                              {200, 403, 403, 404, 404, 404, 404, 404, 303, 303},
	"POST /orgs/{org}/users":                             {200, 403, 403, 404, 404, 404, 404, 404, 303, 303},
	"POST /orgs/{org}/users/{user}/roles":                {303, 403, 403, 404, 404, 404, 404, 404, 303, 303},
	"POST /orgs/{org}/users/{user}/sites":                {303, 403, 403, 404, 404, 404, 404, 404, 303, 303},
	"POST /orgs/{org}/users/{user}/disable":              {303, 403, 403, 404, 404, 404, 404, 404, 303, 303},
	"POST /orgs/{org}/users/{user}/password":             {200, 403, 403, 404, 404, 404, 404, 404, 303, 303},
}

// adminRoutes are the administration routes: an org admin of another
// tenant gets 404 from each (TestAdminOtherTenant).
func adminPatterns(table []route) []string {
	var out []string
	for _, rt := range table {
		if rt.access == orgAdmin || rt.access == siteAdmin {
			out = append(out, rt.pattern)
		}
	}
	return out
}

// formToken is the pre-session form token the access test sends with
// public POSTs, in its cookie and its field.
const testFormToken = "dGVzdC1mb3JtLXRva2VuLXRoYXQtaXMtbG9uZy1lbm91Z2g"

// accessWorld is a world with a principal of every role.
type accessWorld struct {
	*world
	users        [numRoles]user
	grantCodes   [numRoles]string
	expiredToken string
	spareGrant   int64
	spareCode    int64
	// spareUser is a site manager of bygg without sites, for the users
	// page's actions.
	spareUser user
}

func newAccessWorld(t *testing.T) *accessWorld {
	w := &accessWorld{world: newWorld(t)}
	ctx := context.Background()
	st := w.srv.Accounts()
	w.users[roleOwnerAdmin] = w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin)
	w.users[roleManagerA] = w.newUser(t, "chef.a@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	w.users[roleManagerB] = w.newUser(t, "chef.b@bygg.se", w.bygg, account.RoleSiteManager, w.siteB)
	w.users[roleContractorAdmin] = w.newUser(t, "admin@el.se", w.el, account.RoleContractorAdmin)
	w.users[roleOtherAdmin] = w.newUser(t, "admin@annat.se", w.other, account.RoleContractorAdmin)
	w.users[roleOperator] = w.newUser(t, "drift@liggare.se", 0, account.RoleOperator)
	w.spareUser = w.newUser(t, "reserv@bygg.se", w.bygg, account.RoleSiteManager)
	principal := func(u user) account.Principal {
		p, err := st.Principal(ctx, account.Session{UserID: u.id})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	grant := func(by user, site int64, ttl time.Duration) account.IssuedGrant {
		g, err := st.CreateGrant(ctx, principal(by), account.NewGrant{SiteID: site, TTL: ttl})
		if err != nil {
			t.Fatalf("CreateGrant = %v", err)
		}
		return g
	}
	// The expired grant: redeemed, then its minute passes.
	g := grant(w.users[roleManagerA], w.siteA, time.Minute)
	tok, _, err := st.RedeemGrant(ctx, g.Code, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	w.expiredToken = tok
	w.grantCodes[roleInspectorExpired] = g.Code
	w.clock.Advance(2 * time.Minute)
	w.grantCodes[roleInspectorA] = grant(w.users[roleManagerA], w.siteA, time.Hour).Code
	w.grantCodes[roleInspectorB] = grant(w.users[roleManagerB], w.siteB, time.Hour).Code
	w.spareGrant = grant(w.users[roleManagerA], w.siteA, time.Hour).ID
	code, err := w.srv.enroll.CreateCode(ctx, enroll.CodeRequest{SiteIdent: "AAAAAAAAAAAA1", CreatedBy: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	w.spareCode = code.ID
	return w
}

// sessionOf opens a fresh session for a role ("" for anonymous).
func (w *accessWorld) sessionOf(t *testing.T, role int) string {
	t.Helper()
	switch role {
	case roleAnonymous:
		return ""
	case roleInspectorExpired:
		return w.expiredToken
	case roleInspectorA, roleInspectorB:
		tok, _, err := w.srv.Accounts().RedeemGrant(context.Background(), w.grantCodes[role], "192.0.2.1")
		if err != nil {
			t.Fatalf("RedeemGrant(%s) = %v", roleNames[role], err)
		}
		return tok
	}
	return w.session(t, w.users[role])
}

// requestFor builds the request of a route for a role.
func (w *accessWorld) requestFor(t *testing.T, pattern string, role int, tok string) request {
	t.Helper()
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{site}", itoa(w.siteA), "{grant}", itoa(w.spareGrant), "{file}", "style.css",
		"{person}", itoa(w.anna), "{code}", itoa(w.spareCode), "{terminal}", "TA", "{$}", "",
		"{org}", itoa(w.bygg), "{user}", itoa(w.spareUser.id), "{contractor}", itoa(w.el)).Replace(path)
	if pattern == "GET /sites/{site}/export" {
		path += "?format=csv"
	}
	rq := request{method: method, path: path, session: tok,
		header: http.Header{"Sec-Fetch-Site": {"same-origin"}, "Origin": {"http://example.com"}}}
	if method != http.MethodPost {
		return rq
	}
	form := url.Values{}
	public := false
	switch pattern {
	case "POST /login":
		public = true
		form.Set("email", fmt.Sprintf("nobody%d@example.com", role))
		form.Set("password", "wrong password")
	case "POST /login/totp":
		public = true
		form.Set("code", "123456")
	case "POST /inspector":
		public = true
		form.Set("code", "ZZZZ-ZZZZ")
	case "POST /account/password":
		form.Set("password", "ett helt nytt lösenord")
		form.Set("password2", "ett helt nytt lösenord")
	case "POST /account/totp":
		form.Set("code", "000000")
	case "POST /sites/{site}/corrections":
		person := w.anna
		if role == roleContractorAdmin {
			person = w.erik
		}
		day := w.clock.Now().In(stockholm).Format("2006-01-02")
		form.Set("kind", "manual_period")
		form.Set("person", itoa(person))
		form.Set("start", day+"T05:00")
		form.Set("end", day+"T05:20")
		form.Set("reason", "glömt kort")
	case "POST /sites/{site}/grants":
		form.Set("hours", "1")
	case "POST /sites/{site}/inspect":
		form.Set("q", personnummer(1980, 1, 1, 1))
	case "POST /orgs/{org}/sites":
		form.Set("ident", fmt.Sprintf("NYPLATS%06d", role))
		form.Set("name", "Ny plats")
		form.Set("byggherre", "Fastighets AB")
		form.Set("byggherre_nr", "556036-0793")
	case "POST /sites/{site}/contractors":
		form.Set("orgnr", "556677-8899") // el, on the site already
		form.Set("name", "El AB")
	case "POST /orgs/{org}/users":
		form.Set("email", fmt.Sprintf("ny%d@bygg.se", role))
		form.Set("name", "Ny Användare")
		form.Set("role", "site_manager")
	case "POST /orgs/{org}/users/{user}/roles":
		form.Set("op", "grant")
		form.Set("role", "site_manager")
	case "POST /orgs/{org}/users/{user}/sites":
		form.Set("op", "assign")
		form.Set("site", itoa(w.siteB))
	case "POST /sites/{site}/enrollment-codes":
		form.Set("hours", "24")
		form.Set("direction", "in")
	}
	if public {
		form.Set(account.CSRFField, testFormToken)
		rq.header.Set("Cookie", formCookie+"="+testFormToken)
	} else if tok != "" && role != roleInspectorExpired {
		form.Set(account.CSRFField, w.csrf(t, tok))
	}
	rq.form = form
	if pattern == "POST /sites/{site}/import" {
		fields := map[string]string{}
		for k, vs := range form {
			fields[k] = vs[0]
		}
		rq.body, rq.contentType = multipartCSV(t, fields, fmt.Sprintf("namn;personnummer;kortnummer\nImporterad %d;%s;AC%010d\n",
			role, personnummer(1990, 5, 5, 100+role), 100+role))
	}
	return rq
}

// forbiddenNames lists, per role, what must never appear in a page it is
// shown: other tenants' people and sites.
func (w *accessWorld) forbiddenNames(role int) []string {
	switch role {
	case roleOwnerAdmin, roleManagerA, roleManagerB, roleInspectorA, roleInspectorB:
		out := []string{nameOlle, nameSiteC}
		if role == roleInspectorB || role == roleManagerB {
			out = append(out, nameErik) // works on site A only
		}
		return out
	case roleContractorAdmin:
		return []string{nameAnna, nameOlle, nameSiteC}
	case roleOtherAdmin:
		return []string{nameAnna, nameErik}
	}
	return []string{nameAnna, nameErik, nameOlle}
}

func TestAccessTable(t *testing.T) {
	w := newAccessWorld(t)
	for _, rt := range w.srv.table {
		if _, ok := accessTable[rt.pattern]; !ok {
			t.Errorf("route %q has no row in accessTable: add its expected status per role", rt.pattern)
		}
	}
	for _, rt := range w.srv.table {
		want, ok := accessTable[rt.pattern]
		if !ok {
			continue
		}
		for role := range numRoles {
			t.Run(rt.pattern+"/"+roleNames[role], func(t *testing.T) {
				tok := w.sessionOf(t, role)
				resp := w.do(t, w.requestFor(t, rt.pattern, role, tok))
				body := readBody(t, resp)
				if resp.StatusCode != want[role] {
					t.Fatalf("%s as %s = %d, want %d (Location %q)\n%.600s", rt.pattern, roleNames[role],
						resp.StatusCode, want[role], resp.Header.Get("Location"), body)
				}
				if resp.StatusCode == http.StatusSeeOther && role == roleAnonymous && rt.access != public {
					if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, "/login") {
						t.Errorf("anonymous %s redirected to %q, want the login page", rt.pattern, loc)
					}
				}
				if resp.StatusCode == http.StatusOK {
					for _, name := range w.forbiddenNames(role) {
						if strings.Contains(body, name) {
							t.Errorf("%s as %s shows %q, another tenant's", rt.pattern, roleNames[role], name)
						}
					}
				}
			})
		}
	}
}

// TestAccessShowsOwnPeople checks the other side of the table: each role
// sees the people it should.
func TestAccessShowsOwnPeople(t *testing.T) {
	w := newAccessWorld(t)
	for _, c := range []struct {
		role int
		want []string
	}{
		{roleOwnerAdmin, []string{nameAnna, nameErik}},
		{roleManagerA, []string{nameAnna, nameErik}},
		{roleContractorAdmin, []string{nameErik}},
		{roleInspectorA, []string{nameAnna, nameErik}},
	} {
		resp := w.do(t, request{method: "GET", path: "/sites/" + itoa(w.siteA), session: w.sessionOf(t, c.role)})
		body := readBody(t, resp)
		for _, name := range c.want {
			if !strings.Contains(body, name) {
				t.Errorf("site page as %s lacks %q", roleNames[c.role], name)
			}
		}
	}
	// The operator's terminal page names terminals, not people.
	resp := w.do(t, request{method: "GET", path: "/fleet", session: w.sessionOf(t, roleOperator)})
	if body := readBody(t, resp); !strings.Contains(body, "TA") || !strings.Contains(body, "TC") {
		t.Errorf("fleet page lacks terminals:\n%s", body)
	}
}

// TestAdminOtherTenant checks that an org admin of another tenant gets 404
// from every administration route of bygg and its site: tenants never
// learn of each other.
func TestAdminOtherTenant(t *testing.T) {
	w := newAccessWorld(t)
	other := w.newUser(t, "admin@annat.se.example", w.other, account.RoleOrgAdmin)
	tok := w.session(t, other)
	for _, pattern := range adminPatterns(w.srv.table) {
		rq := w.requestFor(t, pattern, roleOwnerAdmin, tok)
		if rq.form != nil {
			rq.form.Set(account.CSRFField, w.csrf(t, tok))
		}
		resp := w.do(t, rq)
		if body := readBody(t, resp); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s as another tenant's admin = %d, want 404\n%.400s", pattern, resp.StatusCode, body)
		}
	}
}
