package export

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // a server without zoneinfo still prints Stockholm time

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/registry"
	"golang.org/x/sync/errgroup"
)

// Limits of one export.
const (
	// MaxPeriods bounds the work periods of one export or view. A site's
	// whole history can be larger: narrow by company, person or time
	// (Request.From, To).
	MaxPeriods = 200_000
	// MaxPDFPeriods bounds a PDF, which is for reading on paper (about 50
	// periods a page, so some 1 000 pages); CSV and JSON take MaxPeriods.
	MaxPDFPeriods = 50_000
	// identityWorkers is how many identity numbers are decrypted at once;
	// each is a query, and the pool serves other requests too.
	identityWorkers = 4
)

// ActionLedgerView is the audit action of an inspector's on-screen view of
// the combined ledger (View). Exports are audit.ActionLedgerExport.
const ActionLedgerView = "ledger.view"

// Errors.
var (
	// ErrNotFound: no such site for this viewer (another tenant's site is
	// reported the same way).
	ErrNotFound = errors.New("export: not found")
	// ErrTooLarge: more periods than the format's limit; the message says
	// how to narrow the request.
	ErrTooLarge = errors.New("export: too many periods")
	// ErrInvalid: the request is incomplete or contradicts itself.
	ErrInvalid = errors.New("export: invalid request")
)

// Format is a file format of an export.
type Format string

// The formats.
const (
	// FormatPDF is printable, in Swedish, for reading on paper or screen.
	FormatPDF Format = "pdf"
	// FormatCSV is semicolon-separated UTF-8 with a BOM, one row per
	// period, for Excel.
	FormatCSV Format = "csv"
	// FormatJSON is the machine-readable file, schema SchemaV1.
	FormatJSON Format = "json"
)

// Formats lists every format, for forms.
var Formats = []Format{FormatPDF, FormatCSV, FormatJSON}

// ParseFormat parses a format name as a form or URL carries it.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if !slices.Contains(Formats, f) {
		return "", fmt.Errorf("%w: format %q (want pdf, csv or json)", ErrInvalid, s)
	}
	return f, nil
}

// ContentType returns the media type of the format.
func (f Format) ContentType() string {
	switch f {
	case FormatPDF:
		return "application/pdf"
	case FormatCSV:
		return "text/csv; charset=utf-8; header=present"
	case FormatJSON:
		return "application/json; charset=utf-8"
	}
	return "application/octet-stream"
}

// Deps are what Build and View read and write.
type Deps struct {
	// Pool holds the site, its contractors and the audit log.
	Pool     *pgxpool.Pool
	Ledger   *ledger.Store
	Registry *registry.Store
	// Rules must be the ledger's rules (zero: ledger.DefaultRules): the
	// on-site list leaves out periods open longer than Rules.MaxOpen.
	Rules ledger.Rules
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Request says which part of which site's ledger to show, as of when.
type Request struct {
	SiteID int64
	// AsOf, when set, gives the ledger as the server knew it at that
	// moment (corrections made later are not in it); zero means now.
	AsOf time.Time
	// OrgID and PersonID narrow the ledger to one contractor's or one
	// person's periods; zero means everyone.
	OrgID    int64
	PersonID int64
	// From and To, when set, bound the periods by their start: From <= start
	// < To. The on-site list is not bounded by them.
	From, To time.Time
	Format   Format
	// Actor is who asks, as the audit log names them
	// (account.Principal.Actor: "inspector:grant:7", "user:3").
	Actor string
	// ActorOrgID is the organisation the actor acts for; 0 for an
	// inspector, who acts for Skatteverket.
	ActorOrgID int64
}

// Build produces the export file of req for viewer, and records it in the
// audit log before returning it. viewer is the organisation whose view of
// the ledger is exported, as the web layer decided (account.ViewerOrg): the
// site's owner for the combined ledger (an inspector's grant reads on the
// owner's behalf), a contractor for its own staff. The file holds full
// identity numbers; the audit entry holds counts, never a number.
func Build(ctx context.Context, d Deps, viewer int64, req Request) (filename, contentType string, body []byte, err error) {
	if _, err := ParseFormat(string(req.Format)); err != nil {
		return "", "", nil, err
	}
	l, err := load(ctx, d, viewer, req)
	if err != nil {
		return "", "", nil, err
	}
	if req.Format == FormatPDF && len(l.Periods) > MaxPDFPeriods {
		return "", "", nil, fmt.Errorf("%w: %d periods, a PDF takes at most %d: choose CSV or JSON, or narrow by company, person or time",
			ErrTooLarge, len(l.Periods), MaxPDFPeriods)
	}
	body, err = Render(l, req.Format)
	if err != nil {
		return "", "", nil, err
	}
	detail := l.auditDetail()
	detail["format"] = string(req.Format)
	detail["bytes"] = len(body)
	if err := record(ctx, d, viewer, req, audit.ActionLedgerExport, detail); err != nil {
		return "", "", nil, err
	}
	return l.Filename(req.Format), req.Format.ContentType(), body, nil
}

// View returns the ledger of req for viewer to show on screen, full
// identity numbers included, and records the view in the audit log
// (ActionLedgerView) before returning it. req.Format is ignored.
func View(ctx context.Context, d Deps, viewer int64, req Request) (*Ledger, error) {
	l, err := load(ctx, d, viewer, req)
	if err != nil {
		return nil, err
	}
	if err := record(ctx, d, viewer, req, ActionLedgerView, l.auditDetail()); err != nil {
		return nil, err
	}
	return l, nil
}

// WriteResponse sends an export file as a download that no cache keeps.
func WriteResponse(w http.ResponseWriter, filename, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Disposition", `attachment; filename="`+filename+`"`)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.Write(body)
}

func record(ctx context.Context, d Deps, viewer int64, req Request, action string, detail map[string]any) error {
	err := audit.Record(ctx, d.Pool, audit.Entry{
		Actor: req.Actor, ActorOrgID: req.ActorOrgID, Action: action,
		OrgID: viewer, SiteID: req.SiteID, PersonID: req.PersonID, Detail: detail,
	})
	if err != nil {
		// Nothing leaves the server unless its read is on record.
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// auditDetail describes the ledger by counts and ids: never a name or an
// identity number.
func (l *Ledger) auditDetail() map[string]any {
	d := map[string]any{
		"periods":     len(l.Periods),
		"persons":     len(l.Persons),
		"contractors": len(l.Contractors),
		"on_site":     len(l.OnSite),
		"corrections": len(l.Corrections),
		"identities":  l.identities(),
	}
	if l.Current {
		d["as_of"] = "now"
	} else {
		d["as_of"] = l.Moment.UTC().Format(time.RFC3339)
	}
	if l.Filter.OrgID != 0 {
		d["org_id"] = l.Filter.OrgID
	}
	if l.Filter.PersonID != 0 {
		d["person_id"] = l.Filter.PersonID
	}
	if !l.Filter.From.IsZero() {
		d["from"] = l.Filter.From.UTC().Format(time.RFC3339)
	}
	if !l.Filter.To.IsZero() {
		d["to"] = l.Filter.To.UTC().Format(time.RFC3339)
	}
	return d
}

func (l *Ledger) identities() int {
	n := 0
	for _, p := range l.Persons {
		if p.IDNumber != "" {
			n++
		}
	}
	return n
}

// load reads the ledger of req as viewer sees it, with identity numbers
// decrypted.
func load(ctx context.Context, d Deps, viewer int64, req Request) (*Ledger, error) {
	if req.SiteID <= 0 || viewer <= 0 {
		return nil, fmt.Errorf("%w: no site or viewer", ErrInvalid)
	}
	if strings.TrimSpace(req.Actor) == "" {
		return nil, fmt.Errorf("%w: no actor: every export is audit-logged", ErrInvalid)
	}
	if !req.From.IsZero() && !req.To.IsZero() && !req.From.Before(req.To) {
		return nil, fmt.Errorf("%w: from must be before to", ErrInvalid)
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	rules := d.Rules
	if rules == (ledger.Rules{}) {
		rules = ledger.DefaultRules
	}
	l := &Ledger{GeneratedAt: now(), Current: req.AsOf.IsZero(),
		Filter: Filter{OrgID: req.OrgID, PersonID: req.PersonID, From: req.From, To: req.To}, MaxOpen: rules.MaxOpen}
	l.Moment = req.AsOf
	if l.Current {
		l.Moment = l.GeneratedAt
	}
	if !l.Current && req.AsOf.After(l.GeneratedAt) {
		return nil, fmt.Errorf("%w: as-of moment is in the future", ErrInvalid)
	}
	if err := l.loadSite(ctx, d.Pool, viewer, req.SiteID); err != nil {
		return nil, err
	}
	q := ledger.PeriodQuery{SiteID: req.SiteID, PersonID: req.PersonID, OrgID: req.OrgID,
		From: req.From, To: req.To, AsOf: req.AsOf, Now: l.Moment}
	rows, err := d.Ledger.Periods(ctx, viewer, q)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if len(rows) > MaxPeriods {
		return nil, fmt.Errorf("%w: %d periods, at most %d: narrow by company, person or time", ErrTooLarge, len(rows), MaxPeriods)
	}
	q.From, q.To = time.Time{}, time.Time{}
	onSite, err := d.Ledger.OnSite(ctx, viewer, q)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	corr, err := d.Ledger.Corrections(ctx, viewer, req.SiteID)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	l.addRows(rows, onSite, corr)
	if err := l.loadPersons(ctx, d, viewer); err != nil {
		return nil, err
	}
	l.sort()
	return l, nil
}

// loadSite reads the site and its contractors. A viewer owning the site sees
// every contractor; a contractor sees the owner and itself.
func (l *Ledger) loadSite(ctx context.Context, pool *pgxpool.Pool, viewer, siteID int64) error {
	s := &l.Site
	var ownerName, ownerNumber string
	err := pool.QueryRow(ctx, `
		SELECT s.site_id, s.site_ident, s.name, s.address, s.time_zone, s.byggherre_name, s.byggherre_org_number,
		       s.org_id, o.name, o.org_number
		FROM sites s JOIN organisations o ON o.org_id = s.org_id
		WHERE s.site_id = $1 AND (s.org_id = $2 OR EXISTS (
			SELECT 1 FROM site_contractors sc WHERE sc.site_id = s.site_id AND sc.org_id = $2))`, siteID, viewer).
		Scan(&s.ID, &s.Ident, &s.Name, &s.Address, &s.TimeZone, &s.ByggherreName, &s.ByggherreOrgNumber,
			&s.OwnerOrgID, &ownerName, &ownerNumber)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("export: site: %w", err)
	}
	if l.Location, err = time.LoadLocation(s.TimeZone); err != nil {
		return fmt.Errorf("export: site time zone %q: %w", s.TimeZone, err)
	}
	l.Contractors = append(l.Contractors, Contractor{OrgID: s.OwnerOrgID, Name: ownerName, OrgNumber: ownerNumber, SiteOwner: true})
	rows, err := pool.Query(ctx, `
		SELECT sc.org_id, o.name, o.org_number, coalesce(sc.hired_by_org_id, 0), sc.added_at, sc.removed_at
		FROM site_contractors sc JOIN organisations o ON o.org_id = sc.org_id
		WHERE sc.site_id = $1 AND sc.org_id <> $3 AND ($2 = $3 OR sc.org_id = $2)
		ORDER BY o.name, sc.org_id`, siteID, viewer, s.OwnerOrgID)
	if err != nil {
		return fmt.Errorf("export: contractors: %w", err)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Contractor, error) {
		var c Contractor
		err := row.Scan(&c.OrgID, &c.Name, &c.OrgNumber, &c.HiredBy, &c.AddedAt, &c.RemovedAt)
		return c, err
	})
	if err != nil {
		return fmt.Errorf("export: contractors: %w", err)
	}
	for i := range cs {
		if cs[i].HiredBy == 0 {
			cs[i].HiredBy = s.OwnerOrgID
		}
	}
	l.Contractors = append(l.Contractors, cs...)
	return nil
}

// addRows takes in the ledger's rows: periods, the on-site list and the
// corrections known at the moment.
func (l *Ledger) addRows(rows, onSite []ledger.PeriodRow, corr []ledger.CorrectionRow) {
	persons := make(map[int64]bool)
	orgs := make(map[int64]bool, len(l.Contractors))
	for _, c := range l.Contractors {
		orgs[c.OrgID] = true
	}
	addPerson := func(r ledger.PeriodRow) {
		if persons[r.PersonID] {
			return
		}
		persons[r.PersonID] = true
		l.Persons = append(l.Persons, Person{PersonID: r.PersonID, OrgID: r.OrgID, Name: r.PersonName, IDMasked: r.PersonIDMasked})
		if !orgs[r.OrgID] {
			// An employer whose contract on the site was never recorded:
			// its staff's periods are shown all the same.
			orgs[r.OrgID] = true
			l.Contractors = append(l.Contractors, Contractor{OrgID: r.OrgID, Name: r.OrgName, OrgNumber: r.OrgNumber})
		}
	}
	l.Periods = make([]Period, 0, len(rows))
	for _, r := range rows {
		addPerson(r)
		l.Periods = append(l.Periods, Period{PeriodID: r.PeriodID, PersonID: r.PersonID, OrgID: r.OrgID,
			Start: deref(r.Start), End: deref(r.End), StartRef: r.StartRef, EndRef: r.EndRef,
			StartManual: r.StartManual, EndManual: r.EndManual, MissingCheckout: r.MissingCheckout,
			MissingCheckin: r.MissingCheckin, Overdue: r.Overdue, RecordedFrom: r.RecordedFrom})
	}
	for _, r := range onSite {
		addPerson(r)
		l.OnSite = append(l.OnSite, Presence{PersonID: r.PersonID, OrgID: r.OrgID, Since: deref(r.Start)})
	}
	// As of a past moment, later corrections were not yet made. Narrowed
	// to a company or a person, the corrections of their people are shown,
	// with the withdrawals of those.
	narrowed := l.Filter.PersonID != 0 || l.Filter.OrgID != 0
	keep := make(map[int64]bool, len(corr))
	for _, c := range slices.Backward(corr) { // oldest first: a withdrawal follows what it withdraws
		switch {
		case !l.Current && c.CreatedAt.After(l.Moment):
		case !narrowed:
			keep[c.CorrectionID] = true
		case c.PersonID != nil && persons[*c.PersonID]:
			keep[c.CorrectionID] = true
		case c.Withdraws != nil && keep[*c.Withdraws]:
			keep[c.CorrectionID] = true
		}
	}
	for _, c := range slices.Backward(corr) {
		if !keep[c.CorrectionID] {
			continue
		}
		if c.PersonID != nil && !persons[*c.PersonID] {
			persons[*c.PersonID] = true
			l.Persons = append(l.Persons, Person{PersonID: *c.PersonID}) // loadPersons fills it in
		}
		withdrawnBy := deref(c.WithdrawnBy)
		if !keep[withdrawnBy] {
			withdrawnBy = 0 // withdrawn after the moment: not known then
		}
		l.Corrections = append(l.Corrections, Correction{ID: c.CorrectionID, Kind: string(c.Kind), PersonID: deref(c.PersonID),
			Tap: tapRef(c.Tap), CardIdent: deref(c.CardIdent), Start: deref(c.Start), End: deref(c.End),
			Withdraws: deref(c.Withdraws), WithdrawnBy: withdrawnBy, Reason: c.Reason, Author: c.Author,
			CreatedAt: c.CreatedAt})
	}
}

// loadPersons adds each person's identity (kind and country from the
// registry's row, the full number decrypted for viewer), and the name and
// employer of persons only corrections name.
func (l *Ledger) loadPersons(ctx context.Context, d Deps, viewer int64) error {
	if len(l.Persons) == 0 {
		return nil
	}
	ids := make([]int64, len(l.Persons))
	index := make(map[int64]int, len(l.Persons))
	for i, p := range l.Persons {
		ids[i] = p.PersonID
		index[p.PersonID] = i
	}
	rows, err := d.Pool.Query(ctx, `
		SELECT p.person_id, p.org_id, p.name, p.id_masked, p.id_kind, coalesce(p.id_country, ''),
		       p.anonymised_at IS NOT NULL, o.name, o.org_number
		FROM persons p JOIN organisations o ON o.org_id = p.org_id
		WHERE p.person_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("export: persons: %w", err)
	}
	var r Person
	var orgName, orgNumber string
	if _, err := pgx.ForEachRow(rows, []any{&r.PersonID, &r.OrgID, &r.Name, &r.IDMasked, &r.IDKind, &r.IDCountry,
		&r.Anonymised, &orgName, &orgNumber}, func() error {
		p := &l.Persons[index[r.PersonID]]
		p.IDKind, p.IDCountry, p.Anonymised = r.IDKind, r.IDCountry, r.Anonymised
		if p.OrgID == 0 { // named only by a correction
			p.OrgID, p.Name, p.IDMasked = r.OrgID, r.Name, r.IDMasked
			if _, ok := l.Contractor(r.OrgID); !ok {
				l.Contractors = append(l.Contractors, Contractor{OrgID: r.OrgID, Name: orgName, OrgNumber: orgNumber})
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("export: persons: %w", err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(identityWorkers)
	for i := range l.Persons {
		p := &l.Persons[i]
		if p.Anonymised {
			continue
		}
		g.Go(func() error {
			num, err := d.Registry.IdentityNumber(gctx, viewer, p.PersonID)
			if errors.Is(err, registry.ErrNotFound) {
				return nil // anonymised meanwhile, or not the viewer's to read: shown masked
			}
			if err != nil {
				return fmt.Errorf("export: %w", err)
			}
			p.IDNumber = num
			return nil
		})
	}
	return g.Wait()
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func tapRef(t *ledger.TapID) string {
	if t == nil {
		return ""
	}
	return t.Ref()
}
