package account

import (
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/liggare/liggare/internal/totp"
)

func TestAuthenticatePassword(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, _ := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)

	l, err := w.store.Authenticate(ctx, "  Anna@Bygg.SE ", testPassword, "192.0.2.1:5555")
	if err != nil || !l.Complete() || l.UserID != id || !l.TOTPEnrolmentDue || l.Pending != "" {
		t.Fatalf("Authenticate(right password) = %+v, %v; want complete login of %d", l, err, id)
	}
	for _, tc := range []struct{ email, pw string }{
		{"anna@bygg.se", "fel lösenord helt och hållet"},
		{"anna@bygg.se", ""},
		{"nobody@bygg.se", testPassword},
		{"not an address", testPassword},
	} {
		if l, err := w.store.Authenticate(ctx, tc.email, tc.pw, "192.0.2.1"); !errors.Is(err, ErrBadCredentials) || l.Complete() {
			t.Errorf("Authenticate(%q, %q) = %+v, %v; want ErrBadCredentials", tc.email, tc.pw, l, err)
		}
	}

	// An address that is not one (a misconfigured proxy) neither breaks
	// the login nor reaches the audit log.
	if l, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "19800101123456"); err != nil || !l.Complete() {
		t.Errorf("Authenticate(odd address) = %+v, %v", l, err)
	}

	// A disabled user is told so only with the right password.
	admin, _ := w.user(t, "bo@bygg.se", w.bygg, RoleOrgAdmin)
	if err := w.store.DisableUser(ctx, w.principal(t, admin), id); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "192.0.2.1"); !errors.Is(err, ErrDisabled) {
		t.Errorf("Authenticate(disabled) = %v, want ErrDisabled", err)
	}
	if _, err := w.store.Authenticate(ctx, "anna@bygg.se", "fel lösenord helt och hållet", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate(disabled, wrong password) = %v, want ErrBadCredentials", err)
	}

	// The successful login is in the audit log of the user's organisation,
	// written by the user, with no password or e-mail in it.
	logins := w.actions(t, w.bygg, ActionLogin)
	if len(logins) != 2 || logins[1].Detail["ip"] != "unknown" || logins[0].Actor != fmt.Sprintf("user:%d", id) || logins[0].ActorOrgID != w.bygg ||
		logins[0].Detail["method"] != "password" || logins[0].Detail["ip"] != "192.0.2.1" {
		t.Errorf("login audit entries = %+v", logins)
	}
}

// enrol gives the user TOTP and returns its secret and recovery codes. The
// clock moves on a step, so that the enrolment code is not the next one.
func enrol(t *testing.T, w *world, p Principal) ([]byte, []string) {
	t.Helper()
	ctx := t.Context()
	e, err := w.store.BeginTOTP(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := b32.DecodeString(e.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := url.Parse(e.URI); err != nil || u.Query().Get("secret") != e.Secret {
		t.Fatalf("BeginTOTP URI %q does not carry the secret", e.URI)
	}
	if _, err := w.store.ConfirmTOTP(ctx, p, "000000x"); !errors.Is(err, ErrBadCode) {
		t.Fatalf("ConfirmTOTP(wrong) = %v, want ErrBadCode", err)
	}
	codes, err := w.store.ConfirmTOTP(ctx, p, totp.HOTP(secret, uint64(totp.Counter(w.clock.Now())), TOTPDigits))
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodes {
		t.Fatalf("ConfirmTOTP gave %d recovery codes, want %d", len(codes), RecoveryCodes)
	}
	w.clock.Advance(TOTPStep)
	return secret, codes
}

func TestTOTPLogin(t *testing.T) {
	// Many wrong codes below: a looser account limit keeps them apart from
	// throttling, which has its own tests.
	w := newWorld(t, func(o *Options) {
		o.AccountLimit = Limit{Name: "account", Free: 50, Window: time.Hour, Delay: time.Minute, MaxDelay: time.Hour}
	})
	ctx := t.Context()
	id, p := w.user(t, "anna@bygg.se", w.bygg, RoleSiteManager)
	secret, _ := enrol(t, w, p)
	if _, err := w.store.BeginTOTP(ctx, p); !errors.Is(err, ErrTOTPEnabled) {
		t.Errorf("BeginTOTP(enabled) = %v, want ErrTOTPEnabled", err)
	}
	// The secret is sealed at rest, bound to the row.
	var enc []byte
	if err := w.pool.QueryRow(ctx, `SELECT totp_secret_enc FROM users WHERE user_id = $1`, id).Scan(&enc); err != nil {
		t.Fatal(err)
	}
	if got, err := w.keys.Open(enc, totpAAD(id)); err != nil || string(got) != string(secret) {
		t.Errorf("stored secret does not open to the enrolled one: %v", err)
	}
	if _, err := w.keys.Open(enc, totpAAD(id+1)); err == nil {
		t.Error("stored secret opens for another user row")
	}

	login := func() string {
		t.Helper()
		l, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "192.0.2.1")
		if err != nil || l.Complete() || l.Pending == "" || l.UserID != 0 {
			t.Fatalf("Authenticate(TOTP user) = %+v, %v; want a pending login", l, err)
		}
		return l.Pending
	}
	code := func(d time.Duration) string {
		return totp.HOTP(secret, uint64(totp.Counter(w.clock.Now().Add(d))), TOTPDigits)
	}

	pending := login()
	if l, err := w.store.VerifyTOTP(ctx, pending, "123", "192.0.2.1"); !errors.Is(err, ErrBadCode) || l.Complete() {
		t.Fatalf("VerifyTOTP(wrong) = %+v, %v", l, err)
	}
	now := code(0)
	l, err := w.store.VerifyTOTP(ctx, pending, now, "192.0.2.1")
	if err != nil || !l.Complete() || l.UserID != id || l.TOTPEnrolmentDue {
		t.Fatalf("VerifyTOTP(right) = %+v, %v", l, err)
	}
	// The pending login is used up.
	if _, err := w.store.VerifyTOTP(ctx, pending, code(TOTPStep), "192.0.2.1"); !errors.Is(err, ErrNoPendingLogin) {
		t.Errorf("VerifyTOTP(used pending) = %v, want ErrNoPendingLogin", err)
	}
	// The same code is refused in a new login within its window, and so
	// is the one before it; the next step's code works.
	pending = login()
	if _, err := w.store.VerifyTOTP(ctx, pending, now, "192.0.2.1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("VerifyTOTP(replayed code) = %v, want ErrBadCode", err)
	}
	if _, err := w.store.VerifyTOTP(ctx, pending, code(-TOTPStep), "192.0.2.1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("VerifyTOTP(older code) = %v, want ErrBadCode", err)
	}
	if l, err := w.store.VerifyTOTP(ctx, pending, code(TOTPStep), "192.0.2.1"); err != nil || !l.Complete() {
		t.Errorf("VerifyTOTP(next step's code) = %+v, %v", l, err)
	}

	// A pending login expires.
	pending = login()
	w.clock.Advance(6 * time.Minute)
	if _, err := w.store.VerifyTOTP(ctx, pending, code(0), "192.0.2.1"); !errors.Is(err, ErrNoPendingLogin) {
		t.Errorf("VerifyTOTP(expired pending) = %v, want ErrNoPendingLogin", err)
	}
	// ... and runs out of attempts.
	pending = login()
	for range 5 {
		if _, err := w.store.VerifyTOTP(ctx, pending, "999999x", "192.0.2.1"); !errors.Is(err, ErrBadCode) {
			t.Fatalf("VerifyTOTP(wrong) = %v", err)
		}
	}
	if _, err := w.store.VerifyTOTP(ctx, pending, code(0), "192.0.2.1"); !errors.Is(err, ErrNoPendingLogin) {
		t.Errorf("VerifyTOTP(after 5 wrong) = %v, want ErrNoPendingLogin", err)
	}

	methods := map[string]int{}
	for _, e := range w.actions(t, w.bygg, ActionLogin) {
		methods[e.Detail["method"].(string)]++
	}
	if methods["totp"] != 2 || methods["password"] != 0 {
		t.Errorf("login audit methods = %v, want 2 totp", methods)
	}
	if n := len(w.actions(t, w.bygg, ActionTOTPEnable)); n != 1 {
		t.Errorf("%d totp enable entries, want 1", n)
	}
}

func TestRecoveryCodes(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	id, p := w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	_, codes := enrol(t, w, p)
	var stored int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND code_sha256 = $2`,
		id, hashToken(canonicalCode(codes[0]))).Scan(&stored); err != nil || stored != 1 {
		t.Fatalf("recovery code not stored as its SHA-256: %d, %v", stored, err)
	}
	pendingLogin := func() string {
		l, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "192.0.2.1")
		if err != nil || l.Pending == "" {
			t.Fatalf("Authenticate = %+v, %v", l, err)
		}
		return l.Pending
	}
	pending := pendingLogin()
	// Lower case, without hyphens: still the code.
	l, err := w.store.UseRecoveryCode(ctx, pending, "  "+lowerNoHyphen(codes[3]), "192.0.2.1")
	if err != nil || !l.Complete() || l.RecoveryCodesLeft != RecoveryCodes-1 {
		t.Fatalf("UseRecoveryCode = %+v, %v", l, err)
	}
	pending = pendingLogin()
	if _, err := w.store.UseRecoveryCode(ctx, pending, codes[3], "192.0.2.1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("UseRecoveryCode(used) = %v, want ErrBadCode", err)
	}
	// New codes replace the old ones.
	fresh, err := w.store.NewRecoveryCodes(ctx, p)
	if err != nil || len(fresh) != RecoveryCodes {
		t.Fatalf("NewRecoveryCodes = %d codes, %v", len(fresh), err)
	}
	if _, err := w.store.UseRecoveryCode(ctx, pending, codes[4], "192.0.2.1"); !errors.Is(err, ErrBadCode) {
		t.Errorf("UseRecoveryCode(replaced) = %v, want ErrBadCode", err)
	}
	if l, err := w.store.UseRecoveryCode(ctx, pending, fresh[0], "192.0.2.1"); err != nil || !l.Complete() {
		t.Errorf("UseRecoveryCode(new) = %+v, %v", l, err)
	}

	// An admin turns the second factor off for a lost phone; a password
	// login is then complete again, with enrolment due.
	admin, _ := w.user(t, "bo@bygg.se", w.bygg, RoleOrgAdmin)
	if err := w.store.DisableTOTP(ctx, w.principal(t, admin), id); err != nil {
		t.Fatal(err)
	}
	if l, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "192.0.2.1"); err != nil || !l.Complete() || !l.TOTPEnrolmentDue {
		t.Errorf("Authenticate after DisableTOTP = %+v, %v", l, err)
	}
}

func lowerNoHyphen(s string) string {
	out := []byte{}
	for _, c := range []byte(s) {
		if c == '-' {
			continue
		}
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

func TestThrottleAccount(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	lim := DefaultAccountLimit
	fail := func(ip string) error {
		_, err := w.store.Authenticate(ctx, "anna@bygg.se", "fel lösenord helt och hållet", ip)
		return err
	}
	// Free failures, each from another address: only the account counts.
	for i := range lim.Free {
		if err := fail(fmt.Sprintf("192.0.2.%d", i+1)); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d = %v, want ErrBadCredentials", i+1, err)
		}
	}
	// Now even the right password waits, with the delay said.
	_, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "198.51.100.1")
	var te *ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, ErrThrottled) || te.Limit != "account" || te.RetryAfter != lim.Delay {
		t.Fatalf("Authenticate after %d failures = %v, want ThrottledError{account, %s}", lim.Free, err, lim.Delay)
	}
	// Other accounts are not affected.
	w.user(t, "bo@bygg.se", w.bygg, RoleOrgAdmin)
	if _, err := w.store.Authenticate(ctx, "bo@bygg.se", testPassword, "198.51.100.1"); err != nil {
		t.Errorf("Authenticate(other account) = %v", err)
	}
	// The delays double after each further failure, up to the maximum.
	want := lim.Delay
	for range 6 {
		w.clock.Advance(want)
		if err := fail("192.0.2.99"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure after waiting %s = %v", want, err)
		}
		want = min(2*want, lim.MaxDelay)
		_, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "198.51.100.1")
		if !errors.As(err, &te) || te.RetryAfter != want {
			t.Fatalf("after another failure: %v, want retry after %s", err, want)
		}
	}
	// Waiting out the lock lets the owner in, which clears the counter.
	w.clock.Advance(want)
	if l, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "198.51.100.1"); err != nil || !l.Complete() {
		t.Fatalf("Authenticate after the lock = %+v, %v", l, err)
	}
	for i := range lim.Free {
		if err := fail("192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d after success = %v, want ErrBadCredentials (counter cleared)", i+1, err)
		}
	}
	// A quiet window forgets the failures.
	w.clock.Advance(lim.Window + lim.MaxDelay)
	for i := range lim.Free {
		if err := fail("192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d after a quiet window = %v, want ErrBadCredentials", i+1, err)
		}
	}
	// Unknown accounts are throttled alike: nothing tells them apart.
	for range lim.Free {
		_, _ = w.store.Authenticate(ctx, "ghost@bygg.se", "fel lösenord helt och hållet", "203.0.113.5")
	}
	if _, err := w.store.Authenticate(ctx, "ghost@bygg.se", "x", "203.0.113.5"); !errors.Is(err, ErrThrottled) {
		t.Errorf("unknown account after %d failures = %v, want ErrThrottled", lim.Free, err)
	}
	// No e-mail address is stored in the throttle table.
	var n int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM login_throttle WHERE position('anna' in encode(key, 'escape')) > 0`).Scan(&n); err != nil || n != 0 {
		t.Errorf("throttle keys hold addresses: %d, %v", n, err)
	}
}

func TestThrottleIP(t *testing.T) {
	lim := Limit{Name: "ip", Free: 3, Window: time.Hour, Delay: time.Minute, MaxDelay: 10 * time.Minute}
	w := newWorld(t, func(o *Options) { o.IPLimit = lim })
	ctx := t.Context()
	w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	// One address tries several accounts; IPv6 counts per /64.
	addrs := []string{"[2001:db8:1:2::1]:443", "2001:db8:1:2::ffff", "2001:db8:1:2:aaaa::7"}
	for i, a := range addrs {
		if _, err := w.store.Authenticate(ctx, fmt.Sprintf("u%d@bygg.se", i), "fel lösenord helt och hållet", a); !errors.Is(err, ErrBadCredentials) {
			t.Fatalf("failure %d = %v", i, err)
		}
	}
	_, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "2001:db8:1:2::99")
	var te *ThrottledError
	if !errors.As(err, &te) || te.Limit != "ip" || te.RetryAfter != time.Minute {
		t.Fatalf("Authenticate from a throttled /64 = %v, want ThrottledError{ip, 1m}", err)
	}
	// Another /64 is free.
	if _, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "2001:db8:1:3::1"); err != nil {
		t.Errorf("Authenticate(other /64) = %v", err)
	}
	// A success gives back only its own attempt.
	w.clock.Advance(time.Minute)
	if _, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "2001:db8:1:2::99"); err != nil {
		t.Fatalf("Authenticate after the delay = %v", err)
	}
	if _, err := w.store.Authenticate(ctx, "x@bygg.se", "fel lösenord helt och hållet", "2001:db8:1:2::99"); !errors.Is(err, ErrBadCredentials) {
		t.Fatalf("failure after success = %v", err)
	}
	if _, err := w.store.Authenticate(ctx, "anna@bygg.se", testPassword, "2001:db8:1:2::99"); !errors.Is(err, ErrThrottled) {
		t.Errorf("after success and another failure = %v, want ErrThrottled", err)
	}
}

// TestThrottleParallel checks that parallel guesses cannot slip past a
// limit: each attempt is counted before it is checked.
func TestThrottleParallel(t *testing.T) {
	lim := Limit{Name: "account", Free: 4, Window: time.Hour, Delay: time.Minute, MaxDelay: time.Hour}
	w := newWorld(t, func(o *Options) { o.AccountLimit = lim })
	w.user(t, "anna@bygg.se", w.bygg, RoleOrgAdmin)
	errs := make(chan error, 20)
	for i := range 20 {
		go func() {
			_, err := w.store.Authenticate(t.Context(), "anna@bygg.se", "fel lösenord helt och hållet", fmt.Sprintf("192.0.2.%d", i))
			errs <- err
		}()
	}
	checked := 0
	for range 20 {
		err := <-errs
		switch {
		case errors.Is(err, ErrBadCredentials):
			checked++
		case errors.Is(err, ErrThrottled):
		default:
			t.Errorf("Authenticate = %v", err)
		}
	}
	if checked != lim.Free {
		t.Errorf("%d of 20 parallel guesses were checked, want %d", checked, lim.Free)
	}
}

func TestUsersAndRoles(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	admin, pa := w.user(t, "admin@bygg.se", w.bygg, RoleOrgAdmin)
	u, err := w.store.CreateUser(ctx, pa, "Sara@Bygg.se", " Sara Sten ")
	if err != nil || u.Email != "sara@bygg.se" || u.Name != "Sara Sten" || u.HasPassword {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	if es := w.actions(t, w.bygg, ActionUserCreate); len(es) == 0 || es[len(es)-1].Actor != fmt.Sprintf("user:%d", admin) ||
		es[len(es)-1].Detail["user_id"] != float64(u.ID) {
		t.Errorf("user.create audit = %+v", es)
	}
	if _, err := w.store.CreateUser(ctx, pa, "SARA@bygg.se", "Sara"); !errors.Is(err, ErrEmailTaken) {
		t.Errorf("CreateUser(same address) = %v, want ErrEmailTaken", err)
	}
	for _, bad := range []string{"", "sara", "@bygg.se", "sara@", "sa ra@bygg.se", "a@b@c"} {
		if _, err := w.store.CreateUser(ctx, pa, bad, "X"); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateUser(%q) = %v, want ErrInvalid", bad, err)
		}
	}
	// No password yet: nobody logs in as her.
	if _, err := w.store.Authenticate(ctx, "sara@bygg.se", "", "192.0.2.1"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("Authenticate(no password) = %v", err)
	}
	if err := w.store.GrantRole(ctx, pa, u.ID, w.bygg, RoleSiteManager); err != nil {
		t.Fatal(err)
	}
	if err := w.store.AssignSite(ctx, pa, u.ID, w.siteA); err != nil {
		t.Fatal(err)
	}
	// Bygg's admin cannot act for El, nor grant operator.
	for _, tc := range []struct {
		org  int64
		role Role
	}{{w.el, RoleContractorAdmin}, {0, RoleOperator}} {
		if err := w.store.GrantRole(ctx, pa, u.ID, tc.org, tc.role); !errors.Is(err, ErrForbidden) {
			t.Errorf("GrantRole(%d, %s) by Bygg's admin = %v, want ErrForbidden", tc.org, tc.role, err)
		}
	}
	if err := w.store.AssignSite(ctx, pa, u.ID, w.siteC); !errors.Is(err, ErrForbidden) {
		t.Errorf("AssignSite(another org's site) = %v, want ErrForbidden", err)
	}
	// A site goes only to a site manager of its owner.
	plain, err := w.store.CreateUser(ctx, pa, "per@bygg.se", "Per")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.AssignSite(ctx, pa, plain.ID, w.siteA); !errors.Is(err, ErrInvalid) {
		t.Errorf("AssignSite(not a site manager) = %v, want ErrInvalid", err)
	}

	ps := w.principal(t, u.ID)
	if !CanCorrect(ps, Site{ID: w.siteA, Owner: w.bygg}) || CanViewSite(ps, Site{ID: w.siteB, Owner: w.bygg}) {
		t.Errorf("site manager principal %+v: wrong access", ps)
	}
	site, err := w.store.Site(ctx, w.siteA)
	if err != nil || site.Owner != w.bygg || len(site.Contractors) != 1 || site.Contractors[0] != w.el {
		t.Errorf("Site(A) = %+v, %v", site, err)
	}
	members, err := w.store.Members(ctx, pa, w.bygg)
	if err != nil || len(members) != 2 {
		t.Fatalf("Members = %+v, %v", members, err)
	}
	if _, err := w.store.Members(ctx, ps, w.bygg); !errors.Is(err, ErrForbidden) {
		t.Errorf("Members(by site manager) = %v, want ErrForbidden", err)
	}

	// Revoking the role takes the sites and the sessions with it.
	if err := w.store.SetPassword(ctx, ps, u.ID, "en vettig fras till sara"); err != nil {
		t.Fatal(err)
	}
	tok, _, err := w.store.NewSession(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.RevokeRole(ctx, pa, u.ID, w.bygg, RoleSiteManager); err != nil {
		t.Fatal(err)
	}
	if p := w.principal(t, u.ID); len(p.ManagedSites) != 0 || len(p.Roles) != 0 {
		t.Errorf("principal after revoke = %+v", p)
	}
	if _, err := w.store.Session(ctx, tok); !errors.Is(err, ErrNoSession) {
		t.Errorf("Session after role revoked = %v, want ErrNoSession", err)
	}

	// Every change is in the audit log, by the admin, for Bygg.
	for _, action := range []string{ActionRoleGrant, ActionSiteAssign, ActionRoleRevoke} {
		es := w.actions(t, w.bygg, action)
		if len(es) == 0 {
			t.Errorf("no %s entry", action)
			continue
		}
		last := es[len(es)-1]
		if last.Actor != fmt.Sprintf("user:%d", admin) || last.ActorOrgID != w.bygg || last.Detail["user_id"] != float64(u.ID) {
			t.Errorf("%s entry = %+v", action, last)
		}
	}
}

func TestResetPasswordAcrossTenants(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	_, byggAdmin := w.user(t, "admin@bygg.se", w.bygg, RoleOrgAdmin)
	_, elAdmin := w.user(t, "admin@el.se", w.el, RoleOrgAdmin)
	// A consultant working for both.
	id, _ := w.user(t, "konsult@example.se", w.bygg, RoleContractorAdmin)
	if err := w.store.GrantRole(ctx, elAdmin, id, w.el, RoleContractorAdmin); err != nil {
		t.Fatal(err)
	}
	if _, err := w.store.ResetPassword(ctx, byggAdmin, id); !errors.Is(err, ErrForbidden) {
		t.Errorf("ResetPassword by one tenant's admin = %v, want ErrForbidden", err)
	}
	if err := w.store.DisableTOTP(ctx, byggAdmin, id); !errors.Is(err, ErrForbidden) {
		t.Errorf("DisableTOTP by one tenant's admin = %v, want ErrForbidden", err)
	}
	// Bygg's admin takes its role away; then El's admin alone administers.
	if err := w.store.RevokeRole(ctx, byggAdmin, id, w.bygg, RoleContractorAdmin); err != nil {
		t.Fatal(err)
	}
	pw, err := w.store.ResetPassword(ctx, elAdmin, id)
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.store.Authenticate(ctx, "konsult@example.se", pw, "192.0.2.1")
	if err != nil || !l.Complete() || !l.MustChangePassword {
		t.Errorf("Authenticate(reset password) = %+v, %v; want MustChangePassword", l, err)
	}
}

func TestBootstrap(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	u, pw, err := w.store.BootstrapOrgAdmin(ctx, w.el, "Chef@El.se", "Eva Chef")
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) != 24 || CheckPassword(pw, u.Email) != nil {
		t.Errorf("initial password %q: want 20 characters in groups, acceptable", pw)
	}
	l, err := w.store.Authenticate(ctx, "chef@el.se", pw, "192.0.2.1")
	if err != nil || !l.Complete() || !l.MustChangePassword {
		t.Fatalf("Authenticate(initial password) = %+v, %v", l, err)
	}
	if !CanManageOrg(w.principal(t, u.ID), w.el) {
		t.Error("bootstrapped admin cannot manage its organisation")
	}
	if _, _, err := w.store.BootstrapOrgAdmin(ctx, w.el, "chef@el.se", "Eva"); !errors.Is(err, ErrEmailTaken) {
		t.Errorf("BootstrapOrgAdmin(again) = %v, want ErrEmailTaken", err)
	}
	if _, _, err := w.store.BootstrapOrgAdmin(ctx, 999999, "x@el.se", "X"); !errors.Is(err, ErrNotFound) {
		t.Errorf("BootstrapOrgAdmin(no such org) = %v, want ErrNotFound", err)
	}
	op, _, err := w.store.BootstrapOperator(ctx, "drift@liggare.se", "Drift")
	if err != nil {
		t.Fatal(err)
	}
	if p := w.principal(t, op.ID); !IsOperator(p) || len(p.Roles) != 0 {
		t.Errorf("operator principal = %+v", p)
	}
	es := w.actions(t, w.el, ActionRoleGrant)
	if len(es) != 1 || es[0].Actor != "system:cli" || es[0].Detail["role"] != "org_admin" {
		t.Errorf("bootstrap audit = %+v", es)
	}
	// The audit log refuses identity numbers; nothing here wrote one, and
	// the operator membership has no organisation.
	var opRows int
	if err := w.pool.QueryRow(ctx, `SELECT count(*) FROM memberships WHERE role = 'operator' AND org_id IS NULL`).Scan(&opRows); err != nil || opRows != 1 {
		t.Errorf("operator memberships = %d, %v", opRows, err)
	}
	_, err = w.pool.Exec(ctx, `INSERT INTO memberships (user_id, org_id, role, granted_by) VALUES ($1, $2, 'operator', 'x')`, op.ID, w.el)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23514" {
		t.Errorf("operator membership with an org = %v, want check violation", err)
	}
}
