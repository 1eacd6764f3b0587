package web

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/syncproto"
)

// terminalRoutes are a site's terminals: their health and credentials for
// whoever may see terminals (the operator too), and for the site's org
// admin and managers (ActManageTerminals) the ways in and out: enrollment
// codes, revocation, re-enrollment.
//
// Rotation from the web is re-enrollment: the terminal's own `rotate`
// needs its key and is the terminal's to start, so what a manager can
// give is a code bound to that terminal id. Running `liggare-terminal
// enroll` with it on the kiosk makes a new key and credential and revokes
// every earlier one (enroll.Store.Redeem), while the terminal id, its
// outbox and its place at the site stay. Until the code is used the old
// credential keeps working, so nothing stops at the gate meanwhile. The
// same button brings back a revoked (lost and found) terminal.
func (s *Server) terminalRoutes() []route {
	return []route{
		{pattern: "GET /sites/{site}/terminals", access: site, action: account.ActViewTerminals, h: s.terminalsPage},
		{pattern: "POST /sites/{site}/enrollment-codes", access: site, action: account.ActManageTerminals, h: s.codeCreate},
		{pattern: "POST /sites/{site}/enrollment-codes/{code}/cancel", access: site, action: account.ActManageTerminals, h: s.codeCancel},
		{pattern: "POST /sites/{site}/terminals/{terminal}/revoke", access: site, action: account.ActManageTerminals, h: s.terminalRevoke},
		{pattern: "POST /sites/{site}/terminals/{terminal}/rotate", access: site, action: account.ActManageTerminals, h: s.terminalRotate},
	}
}

// codeTTLHours are the lifetimes a new enrollment code may be given;
// defaultCodeTTLHours is preselected (enroll.DefaultTTL).
var codeTTLHours = []int{1, 8, 24, 72, 168}

const defaultCodeTTLHours = int(enroll.DefaultTTL / time.Hour)

type terminalsPageData struct {
	Info terminalsInfo
	// Codes are the site's outstanding enrollment codes (managers only).
	Codes []codeRow
	// Issued is a code just made, shown once.
	Issued     *issuedCode
	TTLs       []int
	DefaultTTL int
	Directions []string
	// Form is what the create form is filled with after a refusal.
	Form codeForm
}

type codeRow struct {
	enroll.CodeInfo
	CreatedByName string
}

type codeForm struct {
	Terminal, Direction string
	Hours               int
}

// issuedCode is an enrollment code as shown once, with the command that
// uses it.
type issuedCode struct {
	Code       string
	Command    string
	TerminalID string
	Direction  string
	ExpiresAt  time.Time
	// Reenroll: the code re-enrolls a terminal standing at the site.
	Reenroll bool
}

func (s *Server) terminalsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	v := view{Title: rc.T("terminals.title")}
	q := r.URL.Query()
	switch {
	case q.Get("revoked") != "":
		v.Flash = rc.T("term.revoked", q.Get("revoked"))
	case q.Get("cancelled") != "":
		v.Flash = rc.T("term.code_cancelled")
	}
	return s.renderTerminals(w, r, rc, http.StatusOK, v, nil, codeForm{Hours: defaultCodeTTLHours, Direction: "toggle"})
}

func (s *Server) renderTerminals(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v view, iss *issuedCode, f codeForm) error {
	ctx := r.Context()
	ts, err := s.siteTerminals(ctx, rc.Site.ID, rc.Now)
	if err != nil {
		return err
	}
	ids := make([]string, len(ts))
	for i, t := range ts {
		ids[i] = t.ID
	}
	creds, err := s.enroll.Credentials(ctx, ids)
	if err != nil {
		return err
	}
	for i := range ts {
		if c, ok := creds[ts[i].ID]; ok {
			ts[i].Cred = &c
		}
	}
	d := terminalsPageData{Info: terminalsData(ts), Issued: iss, TTLs: codeTTLHours, DefaultTTL: defaultCodeTTLHours,
		Directions: []string{"toggle", "in", "out"}, Form: f}
	d.Info.ShowCreds = true
	if rc.Access.Allowed[account.ActManageTerminals] {
		d.Info.Manage = true
		codes, err := s.enroll.OutstandingCodes(ctx, rc.Site.ID, rc.Now)
		if err != nil {
			return err
		}
		actors := make([]string, len(codes))
		for i, c := range codes {
			actors[i] = c.CreatedBy
		}
		names, err := s.actorNames(ctx, rc, actors)
		if err != nil {
			return err
		}
		for _, c := range codes {
			d.Codes = append(d.Codes, codeRow{CodeInfo: c, CreatedByName: names[c.CreatedBy]})
		}
	}
	v.D = d
	s.render(w, rc, status, "terminals", v)
	return nil
}

// syncURL is the URL terminals sync with, for the enroll command.
func (s *Server) syncURL(r *http.Request) string {
	if s.cfg.SyncURL != "" {
		return s.cfg.SyncURL
	}
	base := s.baseURL(r) // http(s)://host
	return "ws" + strings.TrimPrefix(base, "http") + syncproto.SyncPath
}

// issue shows a new code once, with its command.
func (s *Server) issue(w http.ResponseWriter, r *http.Request, rc *reqCtx, c enroll.Code, reenroll bool) error {
	code := enroll.FormatCode(c.Code)
	iss := &issuedCode{Code: code, TerminalID: c.TerminalID, Direction: c.Direction, ExpiresAt: c.ExpiresAt, Reenroll: reenroll,
		Command: "liggare-terminal enroll --server " + s.syncURL(r) + " --code " + code}
	v := view{Title: rc.T("terminals.title"), Flash: rc.T("term.code_created")}
	return s.renderTerminals(w, r, rc, http.StatusOK, v, iss, codeForm{Hours: defaultCodeTTLHours, Direction: "toggle"})
}

// codeError maps enroll's refusals of a code request to the form.
func (s *Server) codeError(w http.ResponseWriter, r *http.Request, rc *reqCtx, f codeForm, err error) error {
	var msg string
	switch {
	case errors.Is(err, enroll.ErrTerminalTaken):
		msg = rc.T("term.err.taken")
	case errors.Is(err, enroll.ErrInvalid):
		msg = rc.T("term.err.invalid")
	case errors.Is(err, enroll.ErrSiteNotFound):
		return errNotFound
	default:
		return err
	}
	return s.renderTerminals(w, r, rc, http.StatusUnprocessableEntity, view{Title: rc.T("terminals.title"), Error: msg}, nil, f)
}

func (s *Server) codeCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	f := codeForm{Terminal: strings.TrimSpace(r.PostFormValue("terminal")), Direction: r.PostFormValue("direction")}
	f.Hours, _ = strconv.Atoi(r.PostFormValue("hours"))
	if f.Terminal != "" && !auth.ValidTerminalID(f.Terminal) {
		return s.codeError(w, r, rc, f, enroll.ErrInvalid)
	}
	if f.Terminal != "" {
		// Enrolling moves a terminal to this site and revokes its
		// credentials: a terminal standing at another site may be named
		// only by someone who manages that site too.
		other, err := s.terminalSite(r.Context(), f.Terminal, rc.Now)
		if err != nil {
			return err
		}
		if other != 0 && other != rc.Site.ID {
			si, err := s.site(r.Context(), other)
			if err != nil {
				return err
			}
			if !account.Allowed(rc.P, si.Site, account.ActManageTerminals) {
				return s.renderTerminals(w, r, rc, http.StatusUnprocessableEntity,
					view{Title: rc.T("terminals.title"), Error: rc.T("term.err.elsewhere")}, nil, f)
			}
		}
	}
	c, err := s.enroll.CreateCode(r.Context(), enroll.CodeRequest{SiteIdent: rc.Site.Ident, OrgID: rc.Access.Viewer,
		TerminalID: f.Terminal, Direction: f.Direction, TTL: time.Duration(f.Hours) * time.Hour, CreatedBy: rc.P.Actor()})
	if err != nil {
		return s.codeError(w, r, rc, f, err)
	}
	return s.issue(w, r, rc, c, false)
}

func (s *Server) codeCancel(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, err := strconv.ParseInt(r.PathValue("code"), 10, 64)
	if err != nil {
		return errNotFound
	}
	if err := s.enroll.CancelCode(r.Context(), rc.Site.ID, id, rc.P.Actor(), rc.Access.Viewer); err != nil {
		if errors.Is(err, enroll.ErrCodeNotFound) {
			return errNotFound
		}
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/sites/%d/terminals?cancelled=1", rc.Site.ID), http.StatusSeeOther)
	return nil
}

// siteTerminal finds a terminal standing at the request's site now;
// errNotFound for any other.
func (s *Server) siteTerminal(r *http.Request, rc *reqCtx) (terminal, error) {
	id := r.PathValue("terminal")
	ts, err := s.siteTerminals(r.Context(), rc.Site.ID, rc.Now)
	if err != nil {
		return terminal{}, err
	}
	for _, t := range ts {
		if t.ID == id {
			return t, nil
		}
	}
	return terminal{}, errNotFound
}

// terminalRevoke revokes every credential of a terminal, as `liggare-server
// terminal revoke` does: refused at its next connection, and a live
// connection ends at its next credential check.
func (s *Server) terminalRevoke(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	t, err := s.siteTerminal(r, rc)
	if err != nil {
		return err
	}
	if _, err := s.enroll.Revoke(r.Context(), t.ID, rc.P.Actor()); err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/sites/%d/terminals?revoked=%s", rc.Site.ID, url.QueryEscape(t.ID)), http.StatusSeeOther)
	return nil
}

// terminalRotate issues a re-enrollment code bound to the terminal (see
// terminalRoutes).
func (s *Server) terminalRotate(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	t, err := s.siteTerminal(r, rc)
	if err != nil {
		return err
	}
	c, err := s.enroll.CreateCode(r.Context(), enroll.CodeRequest{SiteIdent: rc.Site.Ident, OrgID: rc.Access.Viewer,
		TerminalID: t.ID, Direction: t.Direction, CreatedBy: rc.P.Actor()})
	if err != nil {
		return s.codeError(w, r, rc, codeForm{Hours: defaultCodeTTLHours, Direction: "toggle"}, err)
	}
	return s.issue(w, r, rc, c, true)
}
