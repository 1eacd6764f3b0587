// Package account keeps the people who use Liggare's web pages: users and
// their roles, logging in (password, TOTP, recovery codes, throttling),
// server-side sessions with CSRF tokens, and inspectors' grants for a
// kontrollbesök. It has no HTTP in it: the web layer calls it.
//
// # Who may do what
//
// A user has memberships (user, organisation, role). An org admin runs an
// organisation: its users, and the combined ledger of the sites it owns
// (sites.org_id); on a site where it is a contractor it sees its own staff.
// A site manager runs the sites listed for it (site_managers), all owned by
// its organisation. A contractor admin sees and corrects its company's own
// people, on any site. An operator sees terminal health and no personal
// data. An inspector is not a user: a site manager creates a Grant, and the
// inspector redeems its link or code into a session that reads that one
// site, everything on it, with full identity numbers, until the grant ends.
//
// The model is one table, accessTable in authz.go: the ways a principal can
// stand to a site (owner's admin, site manager, contractor admin, ...) and
// what each allows. SiteAccess, Allowed, CanViewSite, CanCorrect and
// ViewerOrg read it; they are pure functions of a Principal and a Site, so
// they are tested exhaustively without a database. The web layer asks
// ViewerOrg for the organisation to pass as "viewer" to the ledger and
// registry, which scope every query by it; Access.StaffOf narrows that to
// one employer's people where the viewer would see more.
//
// # Passwords
//
// argon2id with DefaultParams (OWASP: m=19 MiB, t=2, p=1), stored as a PHC
// string carrying its parameters, compared in constant time; a login on an
// older hash re-hashes it. At most Options.MaxConcurrentHashes hashes run at
// once, which bounds the memory a login storm takes. Passwords are NFKC
// normalised; CheckPassword asks for 12 characters and refuses common ones.
// An unknown e-mail address costs the same hash as a known one.
//
// # Two-step login
//
// Authenticate checks the password and, for a user with TOTP, returns a
// pending login (a token valid five minutes, for five tries) that
// VerifyTOTP or UseRecoveryCode completes. TOTP is RFC 6238 (SHA-1, 30 s,
// 6 digits, one step of skew); the last accepted step is stored, so a code
// is never accepted twice. The secret is sealed with pii.Keys, bound to the
// user row. Enrolment is BeginTOTP (secret, otpauth:// URI for a QR code)
// then ConfirmTOTP with a code, which returns ten single-use recovery codes
// (80 bits each, stored as SHA-256).
//
// # Throttling
//
// Named limits (DefaultAccountLimit, DefaultIPLimit, DefaultRedeemLimit)
// count failures in PostgreSQL, so they hold across replicas. Each attempt
// is counted before it is checked, under the counter's row lock, so that
// parallel guesses cannot slip through; success gives it back. After a
// limit's free attempts each further one waits, doubling up to a maximum:
// delays, not a hard lockout, so that a stranger cannot lock an account for
// good. A refusal is a *ThrottledError with RetryAfter.
//
// # Sessions and CSRF
//
// A session is a row in PostgreSQL named by a 256-bit random token, of
// which only the SHA-256 is stored. It ends after IdleTimeout unused (30
// min, sliding) or AbsoluteTimeout after login (12 h), when revoked
// (logout, password change, role revoked, user disabled), or with its
// grant. Each session has its own 256-bit CSRF secret on the server: the
// synchronizer token pattern, not double-submit cookies, so that nothing a
// sibling subdomain could set in a cookie helps an attacker. CSRFToken
// masks the secret with a one-time pad on each call (BREACH); CheckCSRF
// compares in constant time.
//
// # What the web layer must do
//
//   - Set the session cookie as CookieName with HttpOnly, Secure,
//     SameSite=Lax, Path=/ and no Domain (the __Host- prefix makes browsers
//     enforce the last three). Lax, not Strict: a link to a page from an
//     e-mail or a QR code then arrives logged in, while cross-site POSTs
//     carry no cookie. Keep the pending login in PendingCookieName, the
//     same way, with MaxAge of Options.PendingTimeout.
//   - Check CheckCSRF on every unsafe method (form field CSRFField or
//     header CSRFHeader); also refuse cross-site requests by
//     Sec-Fetch-Site/Origin where present.
//   - Call Session on every request, then Principal; answer ErrNoSession by
//     sending the browser to the login page.
//   - Give Authenticate, VerifyTOTP and RedeemGrant the client address it
//     trusts (not a client-supplied X-Forwarded-For), and answer
//     *ThrottledError with 429 and Retry-After.
//   - Open a session with NewSession only for a complete Login; send a user
//     with MustChangePassword to SetPassword, one with TOTPEnrolmentDue to
//     BeginTOTP. After SetPassword (which revokes every session) open a new
//     one.
//   - Redeem an inspector link with a POST from a page the link shows, then
//     redirect: the token in the URL must not reach logs or a Referer
//     (Referrer-Policy: no-referrer).
//   - Call Cleanup periodically.
package account

// Cookie and form names the web layer uses.
const (
	// CookieName is the session cookie. The __Host- prefix makes browsers
	// require Secure and Path=/ and refuse a Domain attribute, so no other
	// host can set or overwrite it.
	CookieName = "__Host-liggare_session"
	// PendingCookieName holds a pending login's token between the password
	// and the second factor.
	PendingCookieName = "__Host-liggare_login"
	// CSRFField is the form field carrying CSRFToken.
	CSRFField = "csrf_token"
	// CSRFHeader carries CSRFToken for script requests.
	CSRFHeader = "X-CSRF-Token"
)
