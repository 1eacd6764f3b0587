package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/account"
)

// Log keys.
const (
	logErr      = "err"
	logMethod   = "method"
	logRoute    = "route"
	logStatus   = "status"
	logDuration = "duration"
)

// maxFormMemory is how much of a multipart form is kept in memory; the
// rest goes to temporary files (the body is bounded per route anyway).
const maxFormMemory = 8 << 20

// formCookie holds the token of forms shown before there is a session (log
// in, second factor, inspector code): a double-submit token, safe here
// because the __Host- prefix keeps other hosts from setting it.
const formCookie = "__Host-liggare_form"

// langCookie remembers the language chosen with ?lang=.
const langCookie = "liggare_lang"

// reqCtx is what the wrapper knows about a request when its handler runs.
type reqCtx struct {
	s    *Server
	Lang lang
	Now  time.Time
	// Token, Sess: the session, when HasSession.
	Token      string
	Sess       account.Session
	HasSession bool
	// Expired: the request carried a session cookie that is no longer
	// valid.
	Expired bool
	P       account.Principal
	// User is the logged-in user (zero for an inspector or no session).
	User account.User
	// Site and Access, for site routes.
	Site   siteInfo
	Access account.Access
	// Org is the organisation of an orgAdmin route.
	Org orgInfo
	// public: the route takes pre-session form tokens.
	public    bool
	formToken string
}

// T translates key into the request's language.
func (rc *reqCtx) T(key string, args ...any) string { return translate(rc.Lang, key, args...) }

// CSRF returns a token for a form of this request: the session's on
// logged-in routes, the pre-session token on public ones.
func (rc *reqCtx) CSRF() string {
	if rc.public || !rc.HasSession {
		return rc.formToken
	}
	return account.CSRFToken(rc.Sess)
}

// httpError is an error that becomes a page with its status.
type httpError struct {
	status int
	key    string // catalogue key of the message
}

func (e *httpError) Error() string { return http.StatusText(e.status) + ": " + e.key }

func errStatus(status int, key string) error { return &httpError{status: status, key: key} }

var (
	errNotFound  = &httpError{http.StatusNotFound, "error.not_found"}
	errForbidden = &httpError{http.StatusForbidden, "error.forbidden"}
	errCSRF      = &httpError{http.StatusForbidden, "error.csrf"}
	errTooLarge  = &httpError{http.StatusRequestEntityTooLarge, "error.too_large"}
)

func unsafeMethod(m string) bool {
	return m != http.MethodGet && m != http.MethodHead && m != http.MethodOptions
}

// wrap applies to a route what every route needs (see the package doc).
func (s *Server) wrap(rt route) http.Handler {
	maxBody := rt.maxBody
	if maxBody <= 0 {
		maxBody = defaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.secureHeaders(w, r, rt.access == public && strings.HasPrefix(rt.pattern, "GET /static/"))
		rc := &reqCtx{s: s, Now: s.cfg.Now(), public: rt.access == public}
		rc.Lang = s.chooseLang(w, r)
		if err := s.serve(w, r, rt, rc, maxBody); err != nil {
			s.renderError(w, r, rc, err)
		}
	})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, rt route, rc *reqCtx, maxBody int64) error {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if c, err := r.Cookie(account.CookieName); err == nil && c.Value != "" {
		sess, err := s.accounts.Session(ctx, c.Value)
		switch {
		case err == nil:
			rc.Token, rc.Sess, rc.HasSession = c.Value, sess, true
		case errors.Is(err, account.ErrNoSession):
			rc.Expired = true
			clearCookie(w, account.CookieName)
		default:
			return err
		}
	}
	if rc.HasSession {
		p, err := s.accounts.Principal(ctx, rc.Sess)
		if err != nil {
			return err
		}
		rc.P = p
		if p.UserID != 0 {
			if rc.User, err = s.accounts.User(ctx, p.UserID); err != nil {
				return err
			}
		}
	}
	if rt.access == public {
		rc.formToken = s.formToken(w, r)
	} else {
		if !rc.HasSession {
			s.toLogin(w, r, rc)
			return nil
		}
		if rt.access != setup && rc.P.UserID != 0 {
			// The set-up steps come before anything else.
			switch {
			case rc.User.MustChangePassword:
				http.Redirect(w, r, "/account/password", http.StatusSeeOther)
				return nil
			case !rc.User.TOTPEnabled:
				http.Redirect(w, r, "/account/totp", http.StatusSeeOther)
				return nil
			}
		}
	}
	if unsafeMethod(r.Method) {
		if err := s.checkUnsafe(r, rc); err != nil {
			return err
		}
	}
	switch rt.access {
	case operator:
		if !account.IsOperator(rc.P) {
			return errForbidden
		}
	case orgAdmin:
		id, err := strconv.ParseInt(r.PathValue("org"), 10, 64)
		if err != nil || id <= 0 || len(rc.P.Roles[id]) == 0 {
			return errNotFound
		}
		if !account.CanManageOrg(rc.P, id) {
			return errForbidden
		}
		if rc.Org, err = s.org(ctx, id); err != nil {
			return err
		}
	case site, siteAdmin:
		id, err := strconv.ParseInt(r.PathValue("site"), 10, 64)
		if err != nil || id <= 0 {
			return errNotFound
		}
		si, err := s.site(ctx, id)
		if err != nil {
			return err
		}
		acc, ok := account.SiteAccess(rc.P, si.Site)
		if !ok {
			return errNotFound
		}
		if rt.access == siteAdmin && !account.CanManageOrg(rc.P, si.Owner) || rt.access == site && !acc.Allowed[rt.action] {
			return errForbidden
		}
		rc.Site, rc.Access = si, acc
	}
	return rt.h(w, r, rc)
}

// checkUnsafe refuses a cross-site or token-less unsafe request.
func (s *Server) checkUnsafe(r *http.Request, rc *reqCtx) error {
	if crossOrigin.Check(r) != nil {
		return errCSRF
	}
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(maxFormMemory)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) || errors.Is(err, multipart.ErrMessageTooLarge) {
			return errTooLarge
		}
		return errStatus(http.StatusBadRequest, "error.bad_request")
	}
	token := r.Header.Get(account.CSRFHeader)
	if token == "" {
		token = r.PostFormValue(account.CSRFField)
	}
	if rc.public {
		c, err := r.Cookie(formCookie)
		if err != nil || c.Value == "" || subtle.ConstantTimeCompare([]byte(c.Value), []byte(token)) != 1 {
			return errCSRF
		}
		return nil
	}
	if !account.CheckCSRF(rc.Sess, token) {
		return errCSRF
	}
	return nil
}

// crossOrigin refuses requests a browser marks as cross-site
// (Sec-Fetch-Site), or, from browsers that do not send that, whose Origin
// names another host. A same-origin form sends "Origin: null" under
// Referrer-Policy: no-referrer, so Sec-Fetch-Site decides first. Requests
// with neither header (old browsers, tools) are left to the CSRF token.
var crossOrigin = http.NewCrossOriginProtection()

// formToken returns the pre-session form token, setting its cookie when
// missing.
func (s *Server) formToken(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(formCookie); err == nil && len(c.Value) >= 32 {
		return c.Value
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: formCookie, Value: tok, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteLaxMode})
	return tok
}

// toLogin sends a request without a session to the login page, keeping
// where it was going when that was a page.
func (s *Server) toLogin(w http.ResponseWriter, r *http.Request, rc *reqCtx) {
	target := "/login"
	q := url.Values{}
	if r.Method == http.MethodGet && localPath(r.URL.RequestURI()) {
		q.Set("next", r.URL.RequestURI())
	}
	if rc.Expired {
		q.Set("expired", "1")
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// localPath reports whether p is a path on this server (no scheme, no
// host, no protocol-relative //), safe to redirect to.
func localPath(p string) bool {
	return strings.HasPrefix(p, "/") && !strings.HasPrefix(p, "//") && !strings.HasPrefix(p, "/\\") &&
		!strings.ContainsAny(p, "\r\n")
}

func setSessionCookie(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c := &http.Cookie{Name: name, Value: value, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode}
	if maxAge > 0 {
		c.MaxAge = int(maxAge / time.Second)
	}
	http.SetCookie(w, c)
}

func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true,
		SameSite: http.SameSiteLaxMode})
}

// contentSecurityPolicy allows nothing inline: scripts and styles come
// from /static/ only.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

func (s *Server) secureHeaders(w http.ResponseWriter, r *http.Request, static bool) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if r.TLS != nil {
		h.Set("Strict-Transport-Security", "max-age=31536000")
	}
	if !static {
		// Pages hold personal data: no copies in caches.
		h.Set("Cache-Control", "no-store")
	}
}

// clientIP is the client's address: the connection's, or when that is a
// trusted proxy the last address in X-Forwarded-For that is not one.
func (s *Server) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if !s.trusted(addr) {
		return addr.String()
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		a = a.Unmap()
		if !s.trusted(a) {
			return a.String()
		}
		addr = a
	}
	return addr.String()
}

func (s *Server) trusted(a netip.Addr) bool {
	for _, p := range s.cfg.TrustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// statusWriter remembers the status of a response, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController flush event streams.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs each request by method, route pattern, status and
// duration: never its path, query, client address or who made it, which
// may be personal data or secrets. Server errors are logged at Warn, the
// rest at Debug (the daemon's access log records every request already).
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		began := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		level := slog.LevelDebug
		if sw.status >= 500 {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "web_request", logMethod, r.Method, logRoute, r.Pattern,
			logStatus, sw.status, logDuration, time.Since(began))
	})
}
