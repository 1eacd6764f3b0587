package web

import (
	"net/http"

	"github.com/liggare/liggare/server/internal/account"
)

// access says who may call a route.
type access int

const (
	// public routes need no session (login, static files, redemption).
	public access = iota
	// setup routes need a user's session, also while the user still has to
	// change the password or enrol TOTP.
	setup
	// loggedIn routes need a complete session: a user past set-up, or an
	// inspector.
	loggedIn
	// operator routes need the operator role.
	operator
	// site routes have a {site} path value and need route.action there.
	site
	// siteAdmin routes have a {site} path value and need an org admin of
	// the site's owner: who may set the site up (its contractors).
	siteAdmin
	// orgAdmin routes have an {org} path value and need an org admin of
	// it; a principal with no role there gets 404, so that tenants never
	// learn of each other.
	orgAdmin
)

// handler serves one request of a route; an error it returns becomes the
// response (see httpError).
type handler func(w http.ResponseWriter, r *http.Request, rc *reqCtx) error

// route is one entry of the route table.
type route struct {
	// pattern is a net/http ServeMux pattern with its method.
	pattern string
	access  access
	// action is what a site route needs at the site.
	action account.Action
	// maxBody bounds the request body [defaultMaxBody].
	maxBody int64
	h       handler
}

// defaultMaxBody bounds a form.
const defaultMaxBody = 64 << 10

// routes is the route table: every page and action of the UI. Add a group
// of routes by appending its method's result here.
func (s *Server) routes() []route {
	var all []route
	for _, group := range [][]route{
		s.authRoutes(),
		s.siteRoutes(),
		s.correctionRoutes(),
		s.importRoutes(),
		s.grantRoutes(),
		s.inspectRoutes(),
		s.terminalRoutes(),
		s.auditRoutes(),
		s.adminRoutes(),
	} {
		all = append(all, group...)
	}
	return all
}

// authRoutes are the public pages and the account's own: static files,
// logging in and out, set-up steps, inspector redemption.
func (s *Server) authRoutes() []route {
	return []route{
		{pattern: "GET /static/{file}", access: public, h: s.static},
		{pattern: "GET /{$}", access: public, h: s.home},
		{pattern: "GET /login", access: public, h: s.loginPage},
		{pattern: "POST /login", access: public, h: s.loginPost},
		{pattern: "GET /login/totp", access: public, h: s.totpPage},
		{pattern: "POST /login/totp", access: public, h: s.totpPost},
		{pattern: "POST /logout", access: setup, h: s.logout},
		{pattern: "GET /account/password", access: setup, h: s.passwordPage},
		{pattern: "POST /account/password", access: setup, h: s.passwordPost},
		{pattern: "GET /account/totp", access: setup, h: s.enrolPage},
		{pattern: "POST /account/totp/begin", access: setup, h: s.enrolBegin},
		{pattern: "POST /account/totp", access: setup, h: s.enrolConfirm},
		{pattern: "GET /inspector", access: public, h: s.redeemPage},
		{pattern: "POST /inspector", access: public, h: s.redeemPost},
	}
}
