package web

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/liggare/liggare/server/internal/account"
)

// orgRoles are the roles an org admin gives: the operator role belongs to
// no organisation and only the admin CLI gives it (account.GrantRole).
var orgRoles = []account.Role{account.RoleOrgAdmin, account.RoleSiteManager, account.RoleContractorAdmin}

// errSelf is an admin disabling or resetting its own account: refused, so
// that nobody locks themselves (and perhaps the last admin seat) out.
var errSelf = errors.New("web: not on one's own account")

// issuedPassword is a one-time password just made: shown once, on the page
// that answers the invitation or the reset, never in a URL or a log.
type issuedPassword struct {
	Email, Name, Password string
}

type usersData struct {
	Org     orgInfo
	Members []account.Member
	// Sites are the organisation's own sites, which its site managers may
	// be given.
	Sites []siteInfo
	Roles []account.Role
	// Others are the other organisations the admin administers, each
	// with a users page of its own.
	Others []orgInfo
	Issued *issuedPassword
	// Self is the admin's own user id: it is not offered to disable itself.
	Self int64
	Form struct {
		Email, Name string
		Role        account.Role
	}
}

// SiteName names one of the organisation's sites.
func (d usersData) SiteName(id int64) string {
	for _, si := range d.Sites {
		if si.ID == id {
			return si.Name
		}
	}
	return "#" + strconv.FormatInt(id, 10)
}

// Has reports whether m holds role.
func (d usersData) Has(m account.Member, role account.Role) bool {
	return slices.Contains(m.Roles, role)
}

// IsManager reports whether m is a site manager.
func (d usersData) IsManager(m account.Member) bool { return d.Has(m, account.RoleSiteManager) }

// Manages reports whether m manages the site.
func (d usersData) Manages(m account.Member, site int64) bool {
	return slices.Contains(m.ManagedSites, site)
}

func (s *Server) usersPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return s.renderUsers(w, r, rc, http.StatusOK, view{Title: rc.T("users.title")}, usersData{})
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v view, d usersData) error {
	ms, err := s.accounts.Members(r.Context(), rc.P, rc.Org.ID)
	if err != nil {
		return err
	}
	sites, err := s.visibleSites(r.Context(), rc.P)
	if err != nil {
		return err
	}
	for _, id := range adminOrgs(rc.P) {
		if id == rc.Org.ID {
			continue
		}
		o, err := s.org(r.Context(), id)
		if err != nil {
			return err
		}
		d.Others = append(d.Others, o)
	}
	d.Org, d.Members, d.Roles, d.Self = rc.Org, ms, orgRoles, rc.P.UserID
	d.Sites = slices.DeleteFunc(sites, func(si siteInfo) bool { return si.Owner != rc.Org.ID })
	if d.Form.Role == "" {
		d.Form.Role = account.RoleSiteManager
	}
	v.D = d
	s.render(w, rc, status, "users", v)
	return nil
}

// refuseUser answers a refused user action on the users page: the store's
// error as a message, or the error itself when it is none of the refusals.
func (s *Server) refuseUser(w http.ResponseWriter, r *http.Request, rc *reqCtx, d usersData, err error) error {
	var status int
	var msg string
	switch {
	case errors.Is(err, account.ErrEmailTaken):
		status, msg = http.StatusConflict, rc.T("users.err.taken")
	case errors.Is(err, errSelf):
		status, msg = http.StatusConflict, rc.T("users.err.self")
	case errors.Is(err, account.ErrLastAdmin):
		status, msg = http.StatusConflict, rc.T("users.err.last_admin")
	case errors.Is(err, account.ErrInvalid):
		status, msg = http.StatusUnprocessableEntity, rc.T("users.err.invalid")
	case errors.Is(err, account.ErrForbidden):
		status, msg = http.StatusForbidden, rc.T("users.err.forbidden")
	case errors.Is(err, account.ErrNotFound):
		return errNotFound
	default:
		return err
	}
	return s.renderUsers(w, r, rc, status, view{Title: rc.T("users.title"), Error: msg}, d)
}

// member finds the {user} of the path among the organisation's members;
// another tenant's user is not found.
func (s *Server) member(r *http.Request, rc *reqCtx) (account.Member, error) {
	id, err := strconv.ParseInt(r.PathValue("user"), 10, 64)
	if err != nil {
		return account.Member{}, errNotFound
	}
	ms, err := s.accounts.Members(r.Context(), rc.P, rc.Org.ID)
	if err != nil {
		return account.Member{}, err
	}
	for _, m := range ms {
		if m.ID == id {
			return m, nil
		}
	}
	return account.Member{}, errNotFound
}

// formSites reads the site checkboxes of a form: the organisation's own
// sites only.
func (s *Server) formSites(r *http.Request, rc *reqCtx) ([]int64, error) {
	var out []int64
	for _, v := range r.PostForm["site"] {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: site %q", account.ErrInvalid, v)
		}
		si, err := s.site(r.Context(), id)
		if errors.Is(err, errNotFound) || err == nil && si.Owner != rc.Org.ID {
			return nil, fmt.Errorf("%w: site %d", account.ErrInvalid, id)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

func (s *Server) userInvite(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	var d usersData
	d.Form.Email, d.Form.Name, d.Form.Role = r.PostFormValue("email"), r.PostFormValue("name"), account.Role(r.PostFormValue("role"))
	sites, err := s.formSites(r, rc)
	if err != nil {
		return s.refuseUser(w, r, rc, d, err)
	}
	if !slices.Contains(orgRoles, d.Form.Role) {
		return s.refuseUser(w, r, rc, d, account.ErrInvalid)
	}
	u, pw, err := s.accounts.InviteUser(ctx, rc.P, rc.Org.ID, d.Form.Role, d.Form.Email, d.Form.Name)
	if err != nil {
		return s.refuseUser(w, r, rc, d, err)
	}
	if d.Form.Role == account.RoleSiteManager {
		for _, site := range sites {
			if err := s.accounts.AssignSite(ctx, rc.P, u.ID, site); err != nil {
				return err
			}
		}
	}
	d.Form.Email, d.Form.Name, d.Form.Role = "", "", ""
	d.Issued = &issuedPassword{Email: u.Email, Name: u.Name, Password: pw}
	return s.renderUsers(w, r, rc, http.StatusOK, view{Title: rc.T("users.title"), Flash: rc.T("users.invited", u.Name)}, d)
}

// userRole grants (op=grant) or revokes (op=revoke) a member's role.
func (s *Server) userRole(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := s.member(r, rc)
	if err != nil {
		return err
	}
	role := account.Role(r.PostFormValue("role"))
	if !slices.Contains(orgRoles, role) {
		return s.refuseUser(w, r, rc, usersData{}, account.ErrInvalid)
	}
	ctx := r.Context()
	return s.applyOp(w, r, rc, map[string]func() error{
		"grant":  func() error { return s.accounts.GrantRole(ctx, rc.P, m.ID, rc.Org.ID, role) },
		"revoke": func() error { return s.accounts.RevokeRole(ctx, rc.P, m.ID, rc.Org.ID, role) },
	})
}

// applyOp runs the form's op, one of ops, and answers: back to the users
// page, or the refusal on it.
func (s *Server) applyOp(w http.ResponseWriter, r *http.Request, rc *reqCtx, ops map[string]func() error) error {
	err := account.ErrInvalid
	if op, ok := ops[r.PostFormValue("op")]; ok {
		err = op()
	}
	if err != nil {
		return s.refuseUser(w, r, rc, usersData{}, err)
	}
	return s.backToUsers(w, r, rc)
}

// userSite assigns (op=assign) or unassigns (op=unassign) a site to a
// member who is a site manager.
func (s *Server) userSite(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := s.member(r, rc)
	if err != nil {
		return err
	}
	sites, err := s.formSites(r, rc)
	if err == nil && len(sites) != 1 {
		err = fmt.Errorf("%w: one site", account.ErrInvalid)
	}
	if err != nil {
		return s.refuseUser(w, r, rc, usersData{}, err)
	}
	ctx := r.Context()
	return s.applyOp(w, r, rc, map[string]func() error{
		"assign":   func() error { return s.accounts.AssignSite(ctx, rc.P, m.ID, sites[0]) },
		"unassign": func() error { return s.accounts.UnassignSite(ctx, rc.P, m.ID, sites[0]) },
	})
}

func (s *Server) userDisable(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := s.member(r, rc)
	if err != nil {
		return err
	}
	return s.applyOp(w, r, rc, map[string]func() error{"": func() error {
		if m.ID == rc.P.UserID {
			return errSelf
		}
		return s.accounts.DisableUser(r.Context(), rc.P, m.ID)
	}})
}

func (s *Server) userPassword(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	m, err := s.member(r, rc)
	if err != nil {
		return err
	}
	if m.ID == rc.P.UserID {
		// One's own password is changed with the current one, not reset.
		return s.refuseUser(w, r, rc, usersData{}, errSelf)
	}
	pw, err := s.accounts.ResetPassword(r.Context(), rc.P, m.ID)
	if err != nil {
		return s.refuseUser(w, r, rc, usersData{}, err)
	}
	d := usersData{Issued: &issuedPassword{Email: m.Email, Name: m.Name, Password: pw}}
	return s.renderUsers(w, r, rc, http.StatusOK, view{Title: rc.T("users.title"), Flash: rc.T("users.reset", m.Name)}, d)
}

func (s *Server) backToUsers(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	http.Redirect(w, r, fmt.Sprintf("/orgs/%d/users", rc.Org.ID), http.StatusSeeOther)
	return nil
}
