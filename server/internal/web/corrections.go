package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/ledger"
)

// ActionCorrection is the audit action of a correction made in a page.
const ActionCorrection = "ledger.correction.add"

func (s *Server) correctionRoutes() []route {
	return []route{
		{pattern: "GET /sites/{site}/corrections", access: site, action: account.ActViewSite, h: s.correctionsPage},
		{pattern: "POST /sites/{site}/corrections", access: site, action: account.ActCorrect, h: s.correctionPost},
	}
}

// correctionForm is what a correction form holds, kept to show it again
// after an error.
type correctionForm struct {
	Kind      string
	Person    int64
	Start     string // datetime-local, site time
	End       string
	Tap       string // tap ref "tap:T/E/S"
	Card      string
	Withdraws int64
	Reason    string
}

// correctionRow is a correction as the list shows it.
type correctionRow struct {
	ledger.CorrectionRow
	PersonName string
	AuthorName string
	TapRef     string
}

type correctionsData struct {
	Form         correctionForm
	Kinds        []string
	People       []person
	Taps         []ledger.TapRow
	UnknownCards []ledger.UnknownCard
	Rows         []correctionRow
	CanCorrect   bool
	WholeSite    bool
	// Saved is the id of a correction just added.
	Saved int64
}

// recentTaps bounds the taps offered to void or reassign.
const (
	recentTapDays = 3
	maxTapChoices = 300
)

// allKinds in the order the page offers them.
var allKinds = []ledger.CorrectionKind{ledger.SetCheckout, ledger.ManualPeriod, ledger.VoidTap, ledger.ReassignTap,
	ledger.AssignCard, ledger.Withdraw}

// kindsFor lists the correction kinds the request may add: all of them for
// the owner's whole view, check-outs and manual periods of one's own
// people otherwise (as the ledger allows an employer).
func kindsFor(rc *reqCtx) []ledger.CorrectionKind {
	if !rc.Access.Allowed[account.ActCorrect] {
		return nil
	}
	if wholeSite(rc) {
		return allKinds
	}
	return []ledger.CorrectionKind{ledger.SetCheckout, ledger.ManualPeriod}
}

func (s *Server) correctionsPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	q := r.URL.Query()
	f := correctionForm{Kind: q.Get("kind"), Start: q.Get("start"), End: q.Get("end"), Tap: q.Get("tap"), Card: q.Get("card")}
	f.Person, _ = strconv.ParseInt(q.Get("person"), 10, 64)
	saved, _ := strconv.ParseInt(q.Get("saved"), 10, 64)
	v := view{Title: rc.T("corr.title")}
	if saved > 0 {
		v.Flash = rc.T("corr.saved", saved)
	}
	return s.renderCorrections(w, r, rc, http.StatusOK, v, f, saved)
}

func (s *Server) renderCorrections(w http.ResponseWriter, r *http.Request, rc *reqCtx, status int, v view, f correctionForm, saved int64) error {
	ctx := r.Context()
	d := correctionsData{Form: f, CanCorrect: rc.Access.Allowed[account.ActCorrect], WholeSite: wholeSite(rc), Saved: saved}
	for _, k := range kindsFor(rc) {
		d.Kinds = append(d.Kinds, string(k))
	}
	people, err := s.sitePeople(ctx, rc)
	if err != nil {
		return err
	}
	d.People = people
	names := make(map[int64]string, len(people))
	for _, p := range people {
		names[p.ID] = p.Name
	}
	rows, err := s.ledger.Corrections(ctx, rc.Access.Viewer, rc.Site.ID)
	if err != nil {
		return err
	}
	var authors []string
	for _, c := range rows {
		if !d.WholeSite && (c.PersonID == nil || names[*c.PersonID] == "") {
			continue // another employer's person, or no person at all
		}
		row := correctionRow{CorrectionRow: c}
		if c.PersonID != nil {
			row.PersonName = names[*c.PersonID]
			if row.PersonName == "" {
				row.PersonName = "#" + strconv.FormatInt(*c.PersonID, 10)
			}
		}
		if c.Tap != nil {
			row.TapRef = c.Tap.Ref()
		}
		authors = append(authors, c.Author)
		d.Rows = append(d.Rows, row)
	}
	an, err := s.actorNames(ctx, rc, authors)
	if err != nil {
		return err
	}
	for i := range d.Rows {
		d.Rows[i].AuthorName = an[d.Rows[i].Author]
	}
	if d.CanCorrect && d.WholeSite {
		if d.Taps, err = s.ledger.Taps(ctx, rc.Access.Viewer, ledger.TapQuery{SiteID: rc.Site.ID,
			From: rc.Now.AddDate(0, 0, -recentTapDays), Limit: maxTapChoices}); err != nil {
			return err
		}
		if d.UnknownCards, err = s.ledger.UnknownCards(ctx, rc.Access.Viewer, rc.Site.ID); err != nil {
			return err
		}
	}
	v.D = d
	s.render(w, rc, status, "corrections", v)
	return nil
}

// userOf reads the user id of an actor "user:ID".
func userOf(actor string) (int64, bool) {
	rest, ok := strings.CutPrefix(actor, "user:")
	if !ok {
		return 0, false
	}
	id, err := strconv.ParseInt(rest, 10, 64)
	return id, err == nil
}

// formError is a correction refused with a message for the form.
type formError struct{ key string }

func (e formError) Error() string { return e.key }

func (s *Server) correctionPost(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	f := correctionForm{
		Kind:   r.PostFormValue("kind"),
		Start:  r.PostFormValue("start"),
		End:    r.PostFormValue("end"),
		Tap:    r.PostFormValue("tap"),
		Card:   strings.TrimSpace(r.PostFormValue("card")),
		Reason: strings.TrimSpace(r.PostFormValue("reason")),
	}
	f.Person, _ = strconv.ParseInt(r.PostFormValue("person"), 10, 64)
	f.Withdraws, _ = strconv.ParseInt(r.PostFormValue("withdraws"), 10, 64)
	id, employer, err := s.correct(r.Context(), rc, f)
	var fe formError
	switch {
	case errors.As(err, &fe):
		v := view{Title: rc.T("corr.title"), Error: rc.T(fe.key)}
		return s.renderCorrections(w, r, rc, http.StatusUnprocessableEntity, v, f, 0)
	case errors.Is(err, ledger.ErrInvalidCorrection):
		v := view{Title: rc.T("corr.title"), Error: refusal(rc, err)}
		return s.renderCorrections(w, r, rc, http.StatusUnprocessableEntity, v, f, 0)
	case errors.Is(err, ledger.ErrNotFound):
		v := view{Title: rc.T("corr.title"), Error: rc.T("corr.err.not_found")}
		return s.renderCorrections(w, r, rc, http.StatusUnprocessableEntity, v, f, 0)
	case err != nil:
		return err
	}
	s.auditCorrection(r.Context(), rc, f, id, employer)
	s.hub.Publish([]int64{rc.Site.ID})
	target := fmt.Sprintf("/sites/%d/corrections?saved=%d", rc.Site.ID, id)
	if back := r.PostFormValue("back"); back == "site" {
		target = fmt.Sprintf("/sites/%d?saved=%d", rc.Site.ID, id)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// correct checks a correction form against what the request may do and
// adds the correction. It returns the correction's id and the employer of
// the person it names (0 for none).
func (s *Server) correct(ctx context.Context, rc *reqCtx, f correctionForm) (int64, int64, error) {
	kind := ledger.CorrectionKind(f.Kind)
	if !slices.Contains(kindsFor(rc), kind) {
		return 0, 0, formError{"corr.err.kind"}
	}
	if f.Reason == "" {
		return 0, 0, formError{"corr.err.reason"}
	}
	if len(f.Reason) > ledger.MaxReasonBytes || !utf8.ValidString(f.Reason) {
		return 0, 0, formError{"corr.err.reason_long"}
	}
	c := ledger.Correction{Kind: kind, SiteID: rc.Site.ID, Reason: f.Reason, Author: rc.P.Actor()}
	needPerson := kind == ledger.SetCheckout || kind == ledger.ManualPeriod || kind == ledger.ReassignTap || kind == ledger.AssignCard
	var employer int64
	if needPerson {
		if f.Person <= 0 {
			return 0, 0, formError{"corr.err.person"}
		}
		org, err := s.personEmployer(ctx, rc, f.Person)
		if err != nil {
			return 0, 0, err
		}
		c.PersonID, employer = f.Person, org
	}
	var err error
	switch kind {
	case ledger.SetCheckout:
		if c.End, err = s.parseLocal(f.End); err != nil {
			return 0, 0, err
		}
	case ledger.ManualPeriod:
		if c.Start, err = s.parseLocal(f.Start); err != nil {
			return 0, 0, err
		}
		if c.End, err = s.parseLocal(f.End); err != nil {
			return 0, 0, err
		}
		if !c.End.After(c.Start) {
			return 0, 0, formError{"corr.err.order"}
		}
	case ledger.VoidTap, ledger.ReassignTap:
		tap, ok := ledger.ParseTapRef(f.Tap)
		if !ok {
			return 0, 0, formError{"corr.err.tap"}
		}
		c.Tap = tap
	case ledger.AssignCard:
		if f.Card == "" || len(f.Card) > 64 {
			return 0, 0, formError{"corr.err.card"}
		}
		c.CardIdent = f.Card
	case ledger.Withdraw:
		if f.Withdraws <= 0 {
			return 0, 0, formError{"corr.err.withdraw"}
		}
		c.Withdraws = f.Withdraws
	}
	for _, t := range []time.Time{c.Start, c.End} {
		if !t.IsZero() && t.After(rc.Now.Add(5*time.Minute)) {
			return 0, 0, formError{"corr.err.future"}
		}
	}
	id, err := s.ledger.Correct(ctx, rc.Access.Viewer, c)
	return id, employer, err
}

// personEmployer checks that the request may name person in a correction
// and returns its employer.
func (s *Server) personEmployer(ctx context.Context, rc *reqCtx, personID int64) (int64, error) {
	var org int64
	err := s.cfg.Pool.QueryRow(ctx, `
		SELECT p.org_id FROM persons p
		WHERE p.person_id = $1 AND p.anonymised_at IS NULL
		  AND (p.org_id = $3 OR p.org_id IN (SELECT org_id FROM site_contractors WHERE site_id = $2))`,
		personID, rc.Site.ID, rc.Site.Owner).Scan(&org)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, formError{"corr.err.not_found"}
	}
	if err != nil {
		return 0, fmt.Errorf("web: person: %w", err)
	}
	if scope := staffScope(rc); scope != 0 && org != scope {
		return 0, formError{"corr.err.not_found"}
	}
	return org, nil
}

// parseLocal reads a datetime-local value as the pages' time zone.
func (s *Server) parseLocal(v string) (time.Time, error) {
	v = strings.TrimSpace(v)
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02T15:04:05", "2006-01-02 15:04"} {
		if t, err := time.ParseInLocation(layout, v, s.cfg.Location); err == nil {
			return t, nil
		}
	}
	return time.Time{}, formError{"corr.err.time"}
}

// auditCorrection records a correction in the audit log of the site's
// owner, and of the person's employer when that is another tenant. The
// correction itself is on record already (it is append-only, with author
// and reason): a failure here is logged, not shown.
func (s *Server) auditCorrection(ctx context.Context, rc *reqCtx, f correctionForm, id, employer int64) {
	orgs := []int64{rc.Site.Owner}
	if employer != 0 && employer != rc.Site.Owner {
		orgs = append(orgs, employer)
	}
	for _, org := range orgs {
		err := audit.Record(ctx, s.cfg.Pool, audit.Entry{
			Actor: rc.P.Actor(), ActorOrgID: rc.Access.Viewer, Action: ActionCorrection,
			OrgID: org, SiteID: rc.Site.ID, PersonID: f.Person,
			Detail: map[string]any{"correction_id": id, "kind": f.Kind},
		})
		if err != nil {
			s.log.Error("web_audit_failed", logErr, err)
		}
	}
}

// correctionLink is the URL of the corrections page with a form filled in.
func correctionLink(siteID int64, kind string, personID int64, start string) string {
	q := url.Values{"kind": {kind}}
	if personID != 0 {
		q.Set("person", strconv.FormatInt(personID, 10))
	}
	if start != "" {
		q.Set("start", start)
	}
	return fmt.Sprintf("/sites/%d/corrections?%s#form-%s", siteID, q.Encode(), kind)
}

// refusalKeys are the catalogue keys of the ledger's refusals, each taking
// the refusal's times (formatted by refusal) as its arguments.
var refusalKeys = map[ledger.Refusal]string{
	ledger.RefusedReason:         "corr.err.reason",
	ledger.RefusedReasonLong:     "corr.err.reason_long",
	ledger.RefusedManualOrder:    "corr.err.order",
	ledger.RefusedManualLong:     "corr.refused.manual_long",
	ledger.RefusedCheckout:       "corr.err.time",
	ledger.RefusedCard:           "corr.err.card",
	ledger.RefusedAnonymised:     "corr.refused.anonymised",
	ledger.RefusedWithdrawal:     "corr.refused.withdrawal",
	ledger.RefusedCheckoutEnded:  "corr.refused.checkout_ended",
	ledger.RefusedCheckoutEarly:  "corr.refused.checkout_early",
	ledger.RefusedCheckoutClosed: "corr.refused.checkout_closed",
	ledger.RefusedNoCheckin:      "corr.refused.no_checkin",
}

// refusal says in the request's language why the ledger refused a
// correction, with the times it names (in the site's zone); the ledger's
// own messages are English, for logs.
func refusal(rc *reqCtx, err error) string {
	var re *ledger.RefusalError
	if !errors.As(err, &re) {
		return rc.T("corr.err.refused")
	}
	key, ok := refusalKeys[re.Refusal]
	if !ok {
		return rc.T("corr.err.refused")
	}
	if re.Refusal == ledger.RefusedManualLong {
		return rc.T(key, int(ledger.MaxManualPeriod.Hours()))
	}
	args := make([]any, len(re.Times))
	for i, t := range re.Times {
		args[i] = t.Format("2006-01-02 15:04:05")
	}
	return rc.T(key, args...)
}
