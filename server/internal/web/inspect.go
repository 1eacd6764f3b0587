package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/export"
)

// inspectRoutes are the inspector's view of the combined ledger
// (kontrollbesök) and its export. Both need ActExport: an inspector, the
// site owner's org admin and site managers see the whole site; a
// contractor admin only its own company (Access.StaffOf).
func (s *Server) inspectRoutes() []route {
	return []route{
		{pattern: "GET /sites/{site}/inspect", access: site, action: account.ActExport, h: s.inspectPage},
		{pattern: "POST /sites/{site}/inspect", access: site, action: account.ActExport, h: s.inspectPage},
		{pattern: "GET /sites/{site}/export", access: site, action: account.ActExport, h: s.exportFile},
		{pattern: "GET /sites/{site}/inspect/persons/{person}", access: site, action: account.ActExport, h: s.inspectPersonPage},
	}
}

// inspectPerson is one person of the view with their periods.
type inspectPerson struct {
	export.Person
	// ID is the identity number as shown: in full with ActViewIdentity,
	// masked otherwise.
	ID      string
	Periods []export.Period
}

// inspectCompany is one company's section of the view.
type inspectCompany struct {
	export.Contractor
	Persons []inspectPerson
}

type inspectData struct {
	L           *export.Ledger
	AsOf        string // datetime-local value, "" for now
	Org         int64
	Q           string
	Contractors []export.Contractor
	Companies   []inspectCompany
	Persons     int
	Periods     int
	// Formats are the export links, with the request's selection.
	Formats []exportLink
	// StaffOnly: the principal sees only its own company.
	StaffOnly bool
}

type exportLink struct {
	Format string
	Href   string
}

// exportRequest reads the selection shared by the view and the export:
// asof (datetime-local, site time) and org, narrowed to the principal's
// own staff where the access says so.
func (s *Server) exportRequest(r *http.Request, rc *reqCtx) (export.Request, string, error) {
	if err := r.ParseForm(); err != nil {
		return export.Request{}, "", errStatus(http.StatusBadRequest, "error.bad_request")
	}
	q := r.Form
	req := export.Request{SiteID: rc.Site.ID, Actor: rc.P.Actor()}
	if rc.P.Inspector == nil {
		req.ActorOrgID = rc.Access.Viewer
	}
	asof := strings.TrimSpace(q.Get("asof"))
	if asof != "" {
		t, err := s.parseLocal(asof)
		if err != nil {
			return req, asof, errStatus(http.StatusBadRequest, "inspect.err.asof")
		}
		if t.After(rc.Now) {
			t = time.Time{} // the future is now
		}
		req.AsOf = t
	}
	if v := strings.TrimSpace(q.Get("org")); v != "" {
		org, err := strconv.ParseInt(v, 10, 64)
		if err != nil || org < 0 {
			return req, asof, errStatus(http.StatusBadRequest, "inspect.err.invalid")
		}
		req.OrgID = org
	}
	if v := strings.TrimSpace(q.Get("person")); v != "" {
		person, err := strconv.ParseInt(v, 10, 64)
		if err != nil || person <= 0 {
			return req, asof, errStatus(http.StatusBadRequest, "inspect.err.invalid")
		}
		req.PersonID = person
	}
	if staff := rc.Access.StaffOf; staff != 0 {
		req.OrgID = staff
	}
	return req, asof, nil
}

// exportError maps the export package's errors to pages.
func exportError(err error) error {
	switch {
	case errors.Is(err, export.ErrNotFound):
		return errNotFound
	case errors.Is(err, export.ErrInvalid):
		return errStatus(http.StatusBadRequest, "inspect.err.invalid")
	case errors.Is(err, export.ErrTooLarge):
		return errStatus(http.StatusUnprocessableEntity, "inspect.err.too_large")
	}
	return err
}

func (s *Server) exportDeps() export.Deps {
	return export.Deps{Pool: s.cfg.Pool, Ledger: s.ledger, Registry: s.registry, Rules: s.cfg.Rules, Now: s.cfg.Now}
}

func (s *Server) inspectPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	req, asof, err := s.exportRequest(r, rc)
	if err != nil {
		return err
	}
	l, err := export.View(r.Context(), s.exportDeps(), rc.Access.Viewer, req)
	if err != nil {
		return exportError(err)
	}
	d := inspectData{L: l, AsOf: asof, Org: req.OrgID, Q: strings.TrimSpace(r.PostFormValue("q")),
		Contractors: l.Contractors, StaffOnly: rc.Access.StaffOf != 0}
	d.Companies, d.Persons, d.Periods = inspectCompanies(l, d.Q, rc.Access.Allowed[account.ActViewIdentity])
	d.Formats = exportLinks(rc, req, asof)
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, rc, http.StatusOK, "inspect", view{Title: rc.T("inspect.title"), D: d})
	return nil
}

// exportLinks are the download links of a view, with its selection: the
// moment, the company (unless the principal sees only its own) and the
// person.
func exportLinks(rc *reqCtx, req export.Request, asof string) []exportLink {
	sel := url.Values{}
	if asof != "" {
		sel.Set("asof", asof)
	}
	if req.OrgID != 0 && rc.Access.StaffOf == 0 {
		sel.Set("org", strconv.FormatInt(req.OrgID, 10))
	}
	if req.PersonID != 0 {
		sel.Set("person", strconv.FormatInt(req.PersonID, 10))
	}
	var out []exportLink
	for _, f := range export.Formats {
		sel.Set("format", string(f))
		out = append(out, exportLink{Format: strings.ToUpper(string(f)),
			Href: "/sites/" + strconv.FormatInt(rc.Site.ID, 10) + "/export?" + sel.Encode()})
	}
	return out
}

// inspectPersonData is one person's combined ledger at the site: every
// period, and the corrections of them with who made them.
type inspectPersonData struct {
	L       *export.Ledger
	AsOf    string
	Person  inspectPerson
	Company export.Contractor
	// Corrections are the person's, oldest first, with their authors'
	// names.
	Corrections []inspectCorrection
	Formats     []exportLink
	// Back is the link to the site's view at the same moment.
	Back string
	// NotThen: the person was not in the ledger at the moment asked for.
	NotThen bool
}

type inspectCorrection struct {
	export.Correction
	AuthorName string
}

// inspectPersonPage shows one person's whole history at the site, now or
// as of a past moment. The person is named by the opaque id in the path,
// never by an identity number; the read is audit-logged as a view of the
// ledger narrowed to the person (export.View).
func (s *Server) inspectPersonPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	id, err := strconv.ParseInt(r.PathValue("person"), 10, 64)
	if err != nil || id <= 0 {
		return errNotFound
	}
	req, asof, err := s.exportRequest(r, rc)
	if err != nil {
		return err
	}
	req.PersonID = id
	l, err := export.View(r.Context(), s.exportDeps(), rc.Access.Viewer, req)
	if err != nil {
		return exportError(err)
	}
	d := inspectPersonData{L: l, AsOf: asof, Formats: exportLinks(rc, req, asof)}
	p, ok := l.Person(id)
	if ok {
		d.Person = inspectPerson{Person: p, ID: p.IDMasked, Periods: l.Periods}
		if rc.Access.Allowed[account.ActViewIdentity] {
			d.Person.ID = p.DisplayID()
		}
	} else {
		// Not in the ledger at that moment: someone of the site's staff
		// (as the principal sees them) has no history then; anyone else is
		// not found.
		people, err := s.sitePeople(r.Context(), rc)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(people, func(p person) bool { return p.ID == id })
		if i < 0 || req.AsOf.IsZero() {
			return errNotFound
		}
		pp := people[i]
		p = export.Person{PersonID: pp.ID, OrgID: pp.OrgID, Name: pp.Name, IDMasked: pp.IDMasked}
		d.Person = inspectPerson{Person: p, ID: pp.IDMasked}
		d.Company = export.Contractor{OrgID: pp.OrgID, Name: pp.OrgName}
		d.NotThen = true
	}
	if c, ok := l.Contractor(p.OrgID); ok {
		d.Company = c
	}
	authors := make([]string, len(l.Corrections))
	for i, c := range l.Corrections {
		authors[i] = c.Author
	}
	names, err := s.actorNames(r.Context(), rc, authors)
	if err != nil {
		return err
	}
	for _, c := range l.Corrections {
		d.Corrections = append(d.Corrections, inspectCorrection{Correction: c, AuthorName: names[c.Author]})
	}
	back := url.Values{}
	if asof != "" {
		back.Set("asof", asof)
	}
	d.Back = "/sites/" + strconv.FormatInt(rc.Site.ID, 10) + "/inspect"
	if len(back) > 0 {
		d.Back += "?" + back.Encode()
	}
	w.Header().Set("Cache-Control", "no-store")
	s.render(w, rc, http.StatusOK, "inspect_person", view{Title: p.Name, D: d})
	return nil
}

// inspectCompanies groups the ledger by company and person, keeping those
// that match q (name, identity number, company name or organisation
// number; a company's match keeps all its people).
func inspectCompanies(l *export.Ledger, q string, fullID bool) (out []inspectCompany, persons, periods int) {
	byPerson := make(map[int64][]export.Period, len(l.Persons))
	for _, p := range l.Periods {
		byPerson[p.PersonID] = append(byPerson[p.PersonID], p)
	}
	needle := strings.ToLower(q)
	digits := onlyDigits(q)
	matches := func(fields ...string) bool {
		if needle == "" {
			return true
		}
		for _, f := range fields {
			if f == "" {
				continue
			}
			if strings.Contains(strings.ToLower(f), needle) {
				return true
			}
			if len(digits) >= 4 && strings.Contains(onlyDigits(f), digits) {
				return true
			}
		}
		return false
	}
	idx := make(map[int64]int, len(l.Contractors))
	for _, c := range l.Contractors {
		idx[c.OrgID] = len(out)
		out = append(out, inspectCompany{Contractor: c})
	}
	for _, p := range l.Persons {
		i, ok := idx[p.OrgID]
		if !ok {
			continue
		}
		c := out[i].Contractor
		if !matches(c.Name, c.OrgNumber) && !matches(p.Name, p.IDNumber, p.DisplayID()) {
			continue
		}
		id := p.IDMasked
		if fullID {
			id = p.DisplayID()
		}
		ps := byPerson[p.PersonID]
		out[i].Persons = append(out[i].Persons, inspectPerson{Person: p, ID: id, Periods: ps})
		persons++
		periods += len(ps)
	}
	kept := out[:0]
	for _, c := range out {
		if len(c.Persons) > 0 {
			kept = append(kept, c)
		}
	}
	return kept, persons, periods
}

func onlyDigits(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// exportFile sends the ledger as a PDF, CSV or JSON file.
func (s *Server) exportFile(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	f, err := export.ParseFormat(r.URL.Query().Get("format"))
	if err != nil {
		return exportError(err)
	}
	req, _, err := s.exportRequest(r, rc)
	if err != nil {
		return err
	}
	req.Format = f
	name, ct, body, err := export.Build(r.Context(), s.exportDeps(), rc.Access.Viewer, req)
	if err != nil {
		return exportError(err)
	}
	export.WriteResponse(w, name, ct, body)
	return nil
}
