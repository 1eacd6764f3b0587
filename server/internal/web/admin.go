package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/idnum"
	"github.com/liggare/liggare/server/internal/registry"
)

// Audit actions of the administration pages. The account store writes its
// own (users, roles, sites managed, passwords); the registry writes none,
// so the pages record what they did with it.
const (
	ActionSiteCreate       = "registry.site.create"
	ActionContractorAdd    = "registry.contractor.add"
	ActionContractorRemove = "registry.contractor.remove"
)

// adminRoutes are an org admin's pages: creating sites, putting
// contractors on them, and the organisation's users.
func (s *Server) adminRoutes() []route {
	return []route{
		{pattern: "POST /orgs/{org}/sites", access: orgAdmin, h: s.siteCreate},
		{pattern: "GET /sites/{site}/contractors", access: siteAdmin, h: s.contractorsPage},
		{pattern: "POST /sites/{site}/contractors", access: siteAdmin, h: s.contractorAdd},
		{pattern: "POST /sites/{site}/contractors/{contractor}/remove", access: siteAdmin, h: s.contractorRemove},
		{pattern: "GET /orgs/{org}/users", access: orgAdmin, h: s.usersPage},
		{pattern: "POST /orgs/{org}/users", access: orgAdmin, h: s.userInvite},
		{pattern: "POST /orgs/{org}/users/{user}/roles", access: orgAdmin, h: s.userRole},
		{pattern: "POST /orgs/{org}/users/{user}/sites", access: orgAdmin, h: s.userSite},
		{pattern: "POST /orgs/{org}/users/{user}/disable", access: orgAdmin, h: s.userDisable},
		{pattern: "POST /orgs/{org}/users/{user}/password", access: orgAdmin, h: s.userPassword},
	}
}

// orgInfo is an organisation as the admin pages name it.
type orgInfo struct {
	ID              int64
	Name, OrgNumber string
}

// org loads an organisation; errNotFound when there is none.
func (s *Server) org(ctx context.Context, id int64) (orgInfo, error) {
	o := orgInfo{ID: id}
	err := s.cfg.Pool.QueryRow(ctx, `SELECT name, org_number FROM organisations WHERE org_id = $1`, id).Scan(&o.Name, &o.OrgNumber)
	if errors.Is(err, pgx.ErrNoRows) {
		return orgInfo{}, errNotFound
	}
	if err != nil {
		return orgInfo{}, fmt.Errorf("web: organisation: %w", err)
	}
	return o, nil
}

// adminOrgs lists the organisations p administers, lowest id first.
func adminOrgs(p account.Principal) []int64 {
	return slices.DeleteFunc(p.ActingOrgs(), func(org int64) bool { return !p.Has(org, account.RoleOrgAdmin) })
}

// UsersLink is the users page of the first organisation the principal
// administers, for the menu; "" when it administers none. That page links
// the users pages of the others.
func (v view) UsersLink() string {
	if orgs := adminOrgs(v.rc.P); len(orgs) > 0 {
		return fmt.Sprintf("/orgs/%d/users", orgs[0])
	}
	return ""
}

// auditAdmin records an administration act done through the registry. The
// act is done already and the registry keeps no transaction open for the
// log: a failure here is logged, not shown.
func (s *Server) auditAdmin(ctx context.Context, rc *reqCtx, action string, orgs []int64, site int64, detail map[string]any) {
	for _, org := range orgs {
		err := audit.Record(ctx, s.cfg.Pool, audit.Entry{Actor: rc.P.Actor(), ActorOrgID: orgs[0], Action: action,
			OrgID: org, SiteID: site, Detail: detail})
		if err != nil {
			s.log.Error("web_audit_failed", logErr, err)
		}
	}
}

// Sites.

// siteForm is the create-site form, kept to show again after a refusal.
type siteForm struct {
	Org                                          int64
	Ident, Name, Address, Byggherre, ByggherreNr string
	TimeZone                                     string
}

// sitesData is the site list with, for an org admin, the create form.
type sitesData struct {
	Sites []siteInfo
	// Orgs are the organisations the principal administers: a site may be
	// created for each, and their sites' contractors managed.
	Orgs []orgInfo
	Form siteForm
}

// Admin reports whether the principal administers the site's owner.
func (d sitesData) Admin(si siteInfo) bool {
	return slices.ContainsFunc(d.Orgs, func(o orgInfo) bool { return o.ID == si.Owner })
}

func (s *Server) renderSites(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v view, f siteForm) error {
	sites, err := s.visibleSites(r.Context(), rc.P)
	if err != nil {
		return err
	}
	d := sitesData{Sites: sites, Form: f}
	for _, id := range adminOrgs(rc.P) {
		o, err := s.org(r.Context(), id)
		if err != nil {
			return err
		}
		d.Orgs = append(d.Orgs, o)
	}
	if d.Form.TimeZone == "" {
		d.Form.TimeZone = "Europe/Stockholm"
	}
	v.D = d
	s.render(w, rc, status, "sites", v)
	return nil
}

func (s *Server) siteCreate(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	f := siteForm{Org: rc.Org.ID, Ident: strings.ToUpper(strings.TrimSpace(r.PostFormValue("ident"))),
		Name: r.PostFormValue("name"), Address: r.PostFormValue("address"), Byggherre: r.PostFormValue("byggherre"),
		ByggherreNr: r.PostFormValue("byggherre_nr"), TimeZone: strings.TrimSpace(r.PostFormValue("tz"))}
	id, err := s.registry.CreateSite(r.Context(), rc.Org.ID, registry.NewSite{Ident: f.Ident, Name: f.Name,
		Address: f.Address, ByggherreName: f.Byggherre, ByggherreOrgNumber: f.ByggherreNr, TimeZone: f.TimeZone})
	if err != nil {
		status, msg := http.StatusUnprocessableEntity, rc.T("admin.err.invalid", inputProblem(rc, err))
		if errors.Is(err, registry.ErrExists) {
			status, msg = http.StatusConflict, rc.T("sites.err.exists", f.Ident)
		} else if !errors.Is(err, registry.ErrInvalid) {
			return err
		}
		return s.renderSites(w, r, rc, status, view{Title: rc.T("sites.title"), Error: msg}, f)
	}
	s.auditAdmin(r.Context(), rc, ActionSiteCreate, []int64{rc.Org.ID}, id, nil)
	http.Redirect(w, r, "/sites", http.StatusSeeOther)
	return nil
}

// fieldKeys name each registry field in the catalogue.
var fieldKeys = map[registry.Field]string{
	registry.FieldOrgName:         "field.org_name",
	registry.FieldOrgNumber:       "field.org_number",
	registry.FieldSiteIdent:       "field.site_ident",
	registry.FieldSiteName:        "field.site_name",
	registry.FieldByggherreNumber: "field.byggherre_org_number",
	registry.FieldTimeZone:        "field.time_zone",
	registry.FieldHirer:           "field.hired_by",
	registry.FieldPersonName:      "field.person_name",
	registry.FieldIdentity:        "field.identity",
	registry.FieldCardNumber:      "field.card_number",
	registry.FieldChipUID:         "field.chip_uid",
	registry.FieldCardStatus:      "field.card_status",
	registry.FieldDirection:       "field.direction",
	registry.FieldValidUntil:      "field.valid_until",
}

// inputProblem says in the request's language which field a registry
// refusal is about and what is wrong with it: the registry's own messages
// are English, for logs and the CLI.
func inputProblem(rc *reqCtx, err error) string {
	var ie *registry.InputError
	if !errors.As(err, &ie) {
		return rc.T("input.invalid")
	}
	return fieldProblem(rc, ie.Field, ie.Err)
}

// fieldProblem says what is wrong with a field, from the error of the
// parser that refused it (nil when a rule other than a parser's did).
func fieldProblem(rc *reqCtx, f registry.Field, parserErr error) string {
	key, ok := fieldKeys[f]
	if !ok {
		return rc.T("input.invalid")
	}
	field := rc.T(key)
	switch {
	case errors.Is(parserErr, idnum.ErrCheckDigit):
		return rc.T("input.check_digit", field)
	case errors.Is(parserErr, idnum.ErrDate):
		return rc.T("input.date", field)
	case errors.Is(parserErr, idnum.ErrFormat):
		return rc.T("input.format", field)
	case f == registry.FieldValidUntil:
		return rc.T("input.want_date", field)
	case parserErr == nil && (f == registry.FieldOrgName || f == registry.FieldSiteName || f == registry.FieldPersonName):
		return rc.T("input.empty", field)
	}
	return rc.T("input.field", field)
}

// Contractors.

// contractor is one organisation on a site, and who hired it.
type contractor struct {
	OrgID           int64
	Name, OrgNumber string
	HiredBy         int64
	Removed         bool
	// Depth is its place in the chain: 1 for one hired by the owner.
	Depth int
}

type contractorsData struct {
	Owner orgInfo
	// Chain lists the contractors in the order of the chain of who hired
	// whom, each after its hirer.
	Chain []contractor
	Form  struct {
		Name, OrgNumber string
		HiredBy         int64
	}
}

// siteContractors lists a site's contractors, in the chain's order.
func (s *Server) siteContractors(ctx context.Context, si siteInfo) ([]contractor, error) {
	rows, err := s.cfg.Pool.Query(ctx, `
		SELECT sc.org_id, o.name, o.org_number, coalesce(sc.hired_by_org_id, $2), sc.removed_at IS NOT NULL
		FROM site_contractors sc JOIN organisations o ON o.org_id = sc.org_id
		WHERE sc.site_id = $1 AND sc.org_id <> $2 ORDER BY o.name, sc.org_id`, si.ID, si.Owner)
	if err != nil {
		return nil, fmt.Errorf("web: contractors: %w", err)
	}
	all, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (contractor, error) {
		var c contractor
		err := row.Scan(&c.OrgID, &c.Name, &c.OrgNumber, &c.HiredBy, &c.Removed)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("web: contractors: %w", err)
	}
	// Walk the chain from the owner, depth first; a contractor whose hirer
	// is not on the site (it cannot happen through the registry) comes
	// last, under the owner.
	var out []contractor
	seen := map[int64]bool{}
	var walk func(hirer int64, depth int)
	walk = func(hirer int64, depth int) {
		for _, c := range all {
			if c.HiredBy == hirer && !seen[c.OrgID] {
				seen[c.OrgID] = true
				c.Depth = depth
				out = append(out, c)
				walk(c.OrgID, depth+1)
			}
		}
	}
	walk(si.Owner, 1)
	for _, c := range all {
		if !seen[c.OrgID] {
			c.Depth = 1
			out = append(out, c)
		}
	}
	return out, nil
}

func (s *Server) contractorsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	return s.renderContractors(w, r, rc, http.StatusOK, view{Title: rc.T("contractors.title")}, contractorsData{})
}

func (s *Server) renderContractors(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v view, d contractorsData) error {
	var err error
	if d.Owner, err = s.org(r.Context(), rc.Site.Owner); err != nil {
		return err
	}
	if d.Chain, err = s.siteContractors(r.Context(), rc.Site); err != nil {
		return err
	}
	v.D = d
	s.render(w, rc, status, "contractors", v)
	return nil
}

func (s *Server) contractorAdd(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	var d contractorsData
	d.Form.Name, d.Form.OrgNumber = strings.TrimSpace(r.PostFormValue("name")), strings.TrimSpace(r.PostFormValue("orgnr"))
	d.Form.HiredBy, _ = strconv.ParseInt(r.PostFormValue("hired_by"), 10, 64)
	fail := func(key string, status int, args ...any) error {
		return s.renderContractors(w, r, rc, status, view{Title: rc.T("contractors.title"), Error: rc.T(key, args...)}, d)
	}
	org, _, err := s.registry.OrganisationByNumber(ctx, d.Form.OrgNumber)
	created := false
	if errors.Is(err, registry.ErrNotFound) {
		org, err = s.registry.CreateOrganisation(ctx, registry.NewOrganisation{Name: d.Form.Name, OrgNumber: d.Form.OrgNumber})
		if errors.Is(err, registry.ErrExists) { // created meanwhile by another request
			org, _, err = s.registry.OrganisationByNumber(ctx, d.Form.OrgNumber)
		} else {
			created = err == nil
		}
	}
	switch {
	case errors.Is(err, registry.ErrInvalid):
		return fail("admin.err.invalid", http.StatusUnprocessableEntity, inputProblem(rc, err))
	case err != nil:
		return err
	case org == rc.Site.Owner:
		return fail("contractors.err.owner", http.StatusUnprocessableEntity)
	}
	err = s.registry.AddContractor(ctx, rc.Site.Owner, rc.Site.ID, org, d.Form.HiredBy)
	if errors.Is(err, registry.ErrInvalid) {
		return fail("contractors.err.hired_by", http.StatusUnprocessableEntity)
	}
	if err != nil {
		return err
	}
	detail := map[string]any{"contractor_org_id": org, "hired_by_org_id": d.Form.HiredBy, "organisation_created": created}
	s.auditAdmin(ctx, rc, ActionContractorAdd, []int64{rc.Site.Owner, org}, rc.Site.ID, detail)
	http.Redirect(w, r, fmt.Sprintf("/sites/%d/contractors", rc.Site.ID), http.StatusSeeOther)
	return nil
}

// contractorRemove takes a contractor off the site from now on. Its
// history stays: the chain shows it removed, and the ledger keeps its
// people's periods.
func (s *Server) contractorRemove(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	org, err := strconv.ParseInt(r.PathValue("contractor"), 10, 64)
	if err != nil {
		return errNotFound
	}
	err = s.registry.RemoveContractor(r.Context(), rc.Site.Owner, rc.Site.ID, org)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return errNotFound
	case errors.Is(err, registry.ErrHiredOthers):
		v := view{Title: rc.T("contractors.title"), Error: rc.T("contractors.err.hired_others")}
		return s.renderContractors(w, r, rc, http.StatusConflict, v, contractorsData{})
	case err != nil:
		return err
	}
	s.auditAdmin(r.Context(), rc, ActionContractorRemove, []int64{rc.Site.Owner, org}, rc.Site.ID,
		map[string]any{"contractor_org_id": org})
	http.Redirect(w, r, fmt.Sprintf("/sites/%d/contractors", rc.Site.ID), http.StatusSeeOther)
	return nil
}
