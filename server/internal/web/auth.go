package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/account"
)

// home sends each principal where it works.
func (s *Server) home(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	switch {
	case !rc.HasSession:
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case rc.P.Inspector != nil:
		http.Redirect(w, r, "/sites/"+strconv.FormatInt(rc.P.Inspector.SiteID, 10), http.StatusSeeOther)
	case account.IsOperator(rc.P) && len(rc.P.ActingOrgs()) == 0:
		http.Redirect(w, r, "/fleet", http.StatusSeeOther)
	default:
		http.Redirect(w, r, "/sites", http.StatusSeeOther)
	}
	return nil
}

// static serves an embedded CSS or JavaScript file. URLs carry the file's
// hash, so a year of caching is safe.
func (s *Server) static(w http.ResponseWriter, r *http.Request, _ *reqCtx) error {
	name := r.PathValue("file")
	b, err := files.ReadFile("static/" + name)
	if err != nil {
		return errNotFound
	}
	switch {
	case strings.HasSuffix(name, ".css"):
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
	case strings.HasSuffix(name, ".js"):
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
	case strings.HasSuffix(name, ".svg"):
		w.Header().Set("Content-Type", "image/svg+xml")
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Write(b)
	return nil
}

// loginData is the login page's data.
type loginData struct {
	Email string
	Next  string
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.HasSession {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	v := view{Title: rc.T("login.title"), D: loginData{Next: safeNext(r.URL.Query().Get("next"))}}
	switch {
	case r.URL.Query().Get("expired") == "1" || rc.Expired:
		v.Flash = rc.T("login.expired")
	case r.URL.Query().Get("out") == "1":
		v.Flash = rc.T("login.logged_out")
	case r.URL.Query().Get("again") == "1":
		v.Error = rc.T("login.start_again")
	}
	s.render(w, rc, http.StatusOK, "login", v)
	return nil
}

// safeNext keeps a redirect target only if it is a local path.
func safeNext(next string) string {
	if localPath(next) {
		return next
	}
	return ""
}

// throttled answers a refused login attempt with 429 and Retry-After.
func (s *Server) throttled(w http.ResponseWriter, rc *reqCtx, page string, te *account.ThrottledError, d any) {
	secs := int(math.Ceil(te.RetryAfter.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	mins := max(1, int(math.Ceil(te.RetryAfter.Minutes())))
	s.render(w, rc, http.StatusTooManyRequests, page, view{Title: rc.T("login.title"), Error: rc.T("login.throttled", mins), D: d})
}

func (s *Server) loginPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	email := strings.TrimSpace(r.PostFormValue("email"))
	d := loginData{Email: email, Next: safeNext(r.PostFormValue("next"))}
	login, err := s.accounts.Authenticate(r.Context(), email, r.PostFormValue("password"), s.clientIP(r))
	var te *account.ThrottledError
	switch {
	case errors.As(err, &te):
		s.throttled(w, rc, "login", te, d)
		return nil
	case errors.Is(err, account.ErrBadCredentials), errors.Is(err, account.ErrDisabled):
		// A disabled user learns no more than a wrong password tells.
		s.render(w, rc, http.StatusUnprocessableEntity, "login", view{Title: rc.T("login.title"), Error: rc.T("login.bad"), D: d})
		return nil
	case err != nil:
		return err
	}
	if login.Pending != "" {
		setSessionCookie(w, account.PendingCookieName, login.Pending, s.pendingTimeout())
		target := "/login/totp"
		if d.Next != "" {
			target += "?next=" + url.QueryEscape(d.Next)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil
	}
	return s.startSession(w, r, login, d.Next)
}

func (s *Server) pendingTimeout() time.Duration {
	if s.cfg.Accounts.PendingTimeout > 0 {
		return s.cfg.Accounts.PendingTimeout
	}
	return 5 * time.Minute
}

// startSession opens a session for a complete login and sends the user on:
// to the set-up steps when due, else where it was going.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, login account.Login, next string) error {
	if !login.Complete() {
		return errors.New("web: session for an incomplete login")
	}
	tok, _, err := s.accounts.NewSession(r.Context(), login.UserID)
	if err != nil {
		return err
	}
	setSessionCookie(w, account.CookieName, tok, 0)
	clearCookie(w, account.PendingCookieName)
	switch {
	case login.MustChangePassword:
		next = "/account/password"
	case login.TOTPEnrolmentDue:
		next = "/account/totp"
	case next == "":
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

type totpData struct {
	Next string
}

func (s *Server) totpPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if c, err := r.Cookie(account.PendingCookieName); err != nil || c.Value == "" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	s.render(w, rc, http.StatusOK, "totp", view{Title: rc.T("totp.title"), D: totpData{Next: safeNext(r.URL.Query().Get("next"))}})
	return nil
}

func (s *Server) totpPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	c, err := r.Cookie(account.PendingCookieName)
	if err != nil || c.Value == "" {
		http.Redirect(w, r, "/login?again=1", http.StatusSeeOther)
		return nil
	}
	d := totpData{Next: safeNext(r.PostFormValue("next"))}
	code := strings.TrimSpace(r.PostFormValue("code"))
	var login account.Login
	if digits := strings.Join(strings.Fields(code), ""); len(digits) == account.TOTPDigits && strings.Trim(digits, "0123456789") == "" {
		login, err = s.accounts.VerifyTOTP(r.Context(), c.Value, digits, s.clientIP(r))
	} else {
		login, err = s.accounts.UseRecoveryCode(r.Context(), c.Value, code, s.clientIP(r))
	}
	var te *account.ThrottledError
	switch {
	case errors.As(err, &te):
		s.throttled(w, rc, "totp", te, d)
		return nil
	case errors.Is(err, account.ErrNoPendingLogin):
		clearCookie(w, account.PendingCookieName)
		http.Redirect(w, r, "/login?again=1", http.StatusSeeOther)
		return nil
	case errors.Is(err, account.ErrBadCode):
		s.render(w, rc, http.StatusUnprocessableEntity, "totp", view{Title: rc.T("totp.title"), Error: rc.T("totp.bad"), D: d})
		return nil
	case err != nil:
		return err
	}
	return s.startSession(w, r, login, d.Next)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if err := s.accounts.Revoke(r.Context(), rc.Token); err != nil {
		return err
	}
	clearCookie(w, account.CookieName)
	http.Redirect(w, r, "/login?out=1", http.StatusSeeOther)
	return nil
}

// passwordPage asks a user with a handed-out password for a new one.
func (s *Server) passwordPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.P.UserID == 0 {
		return errForbidden
	}
	if !rc.User.MustChangePassword {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.render(w, rc, http.StatusOK, "password", view{Title: rc.T("password.title")})
	return nil
}

func (s *Server) passwordPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.P.UserID == 0 {
		return errForbidden
	}
	if !rc.User.MustChangePassword {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	pw, again := r.PostFormValue("password"), r.PostFormValue("password2")
	fail := func(key string) error {
		s.render(w, rc, http.StatusUnprocessableEntity, "password", view{Title: rc.T("password.title"), Error: rc.T(key)})
		return nil
	}
	if pw != again {
		return fail("password.mismatch")
	}
	if err := account.CheckPassword(pw, rc.User.Email); err != nil {
		return fail("password.weak")
	}
	if err := s.accounts.SetPassword(r.Context(), rc.P, rc.P.UserID, pw); err != nil {
		if errors.Is(err, account.ErrInvalid) {
			return fail("password.weak")
		}
		return err
	}
	// SetPassword ended every session, this one too: open a new one.
	login := account.Login{UserID: rc.P.UserID, TOTPEnrolmentDue: !rc.User.TOTPEnabled}
	return s.startSession(w, r, login, "/")
}

// enrolData is the TOTP enrolment page's data.
type enrolData struct {
	Secret, URI string
	// Codes are the recovery codes, once enrolment is confirmed.
	Codes []string
}

// enrolPage offers to set up two-step login; the secret is made only on
// POST, so that no GET changes anything.
func (s *Server) enrolPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.P.UserID == 0 {
		return errForbidden
	}
	if rc.User.MustChangePassword {
		http.Redirect(w, r, "/account/password", http.StatusSeeOther)
		return nil
	}
	if rc.User.TOTPEnabled {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.render(w, rc, http.StatusOK, "enrol", view{Title: rc.T("enrol.title")})
	return nil
}

func (s *Server) enrolBegin(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.P.UserID == 0 {
		return errForbidden
	}
	if rc.User.MustChangePassword {
		http.Redirect(w, r, "/account/password", http.StatusSeeOther)
		return nil
	}
	e, err := s.accounts.BeginTOTP(r.Context(), rc.P)
	if errors.Is(err, account.ErrTOTPEnabled) {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	s.render(w, rc, http.StatusOK, "enrol", view{Title: rc.T("enrol.title"), D: enrolData{Secret: e.Secret, URI: e.URI}})
	return nil
}

func (s *Server) enrolConfirm(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	if rc.P.UserID == 0 {
		return errForbidden
	}
	// The secret and URI come back from the form only to show them again
	// after a wrong code; what is checked is the secret stored sealed.
	d := enrolData{Secret: r.PostFormValue("secret"), URI: r.PostFormValue("uri")}
	if !strings.HasPrefix(d.URI, "otpauth://") {
		d.URI = ""
	}
	codes, err := s.accounts.ConfirmTOTP(r.Context(), rc.P, strings.Join(strings.Fields(r.PostFormValue("code")), ""))
	switch {
	case errors.Is(err, account.ErrBadCode):
		s.render(w, rc, http.StatusUnprocessableEntity, "enrol", view{Title: rc.T("enrol.title"), Error: rc.T("totp.bad"), D: d})
		return nil
	case errors.Is(err, account.ErrTOTPNotEnrolled):
		s.render(w, rc, http.StatusUnprocessableEntity, "enrol", view{Title: rc.T("enrol.title"), Error: rc.T("enrol.not_begun")})
		return nil
	case errors.Is(err, account.ErrTOTPEnabled):
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	case err != nil:
		return err
	}
	s.render(w, rc, http.StatusOK, "enrol", view{Title: rc.T("enrol.title"), Flash: rc.T("enrol.done"), D: enrolData{Codes: codes}})
	return nil
}

// redeemPage is where an inspector's link or code leads. A link carries
// its token after "#", which browsers never send: live.js puts it into the
// form, and the inspector presses the button (a POST, as account asks), so
// the token reaches neither logs nor a Referer.
func (s *Server) redeemPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	s.render(w, rc, http.StatusOK, "redeem", view{Title: rc.T("redeem.title")})
	return nil
}

func (s *Server) redeemPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	secret := strings.TrimSpace(r.PostFormValue("secret"))
	if secret == "" {
		secret = strings.TrimSpace(r.PostFormValue("code"))
	}
	if secret == "" || len(secret) > 200 {
		s.render(w, rc, http.StatusUnprocessableEntity, "redeem", view{Title: rc.T("redeem.title"), Error: rc.T("redeem.invalid")})
		return nil
	}
	tok, sess, err := s.accounts.RedeemGrant(r.Context(), secret, s.clientIP(r))
	var te *account.ThrottledError
	switch {
	case errors.As(err, &te):
		s.throttled(w, rc, "redeem", te, nil)
		return nil
	case errors.Is(err, account.ErrGrantInvalid):
		s.render(w, rc, http.StatusUnprocessableEntity, "redeem", view{Title: rc.T("redeem.title"), Error: rc.T("redeem.invalid")})
		return nil
	case err != nil:
		return err
	}
	p, err := s.accounts.Principal(r.Context(), sess)
	if err != nil {
		return err
	}
	setSessionCookie(w, account.CookieName, tok, 0)
	http.Redirect(w, r, fmt.Sprintf("/sites/%d", p.Inspector.SiteID), http.StatusSeeOther)
	return nil
}
