package retention

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
)

// ErrNotFound is returned by Extract for a person the viewer does not
// employ; another tenant's person is reported the same way as a missing
// one, so that its existence does not leak.
var ErrNotFound = errors.New("retention: not found")

// The register extract's JSON format. Fields are only ever added, within a
// version; a field's meaning or type never changes and no field is removed
// without a new ExtractFormatVersion.
const (
	// ExtractFormat is the value of the "format" field.
	ExtractFormat = "liggare.register_extract"
	// ExtractFormatVersion is the value of the "format_version" field.
	ExtractFormatVersion = 1
)

// RegisterExtract is everything held about one person
// (registerutdrag, GDPR articles 15 and 20), as WriteJSON writes it.
//
// The JSON is one object; every key below is always present, lists are
// never null (possibly empty), absent values are null, times are RFC 3339 in
// UTC, dates YYYY-MM-DD:
//
//	format          "liggare.register_extract"
//	format_version  1
//	generated_at    when the extract was made
//	controller      {org_id, name, org_number}: the employer, who controls the data
//	person          {person_id, name, id_kind, id_number (full; null once
//	                anonymised), id_masked, id_country, created_at, anonymised_at}
//	cards           [{card_id, org_id, card_number, status, valid_from,
//	                valid_until, chip_uids [..], created_at, updated_at}]
//	work_periods    [{period_id, site {site_id, ident, name}, org_id, start,
//	                end, start_ref, end_ref, start_manual, end_manual,
//	                missing_checkout, missing_checkin, recorded_from,
//	                recorded_to (null: the current version)}], every version
//	taps            [{terminal_id, store_epoch, seq, card_id, reader, answer,
//	                device_wall_time, event_time, time_source, received_at,
//	                clock_offset_us, site (null: terminal placed nowhere),
//	                mode, direction, mark, voided}]
//	corrections     [{correction_id, kind, site, person_id, tap
//	                {terminal_id, store_epoch, seq} or null, card_ident,
//	                start, end, withdraws, reason, author, author_org_id,
//	                created_at}]
//	audit_log       [{audit_id, at, actor, actor_org_id, action, site_id, detail {..}}]
//	                oldest first, this extract's own entry last
type RegisterExtract struct {
	Format        string              `json:"format"`
	FormatVersion int                 `json:"format_version"`
	GeneratedAt   time.Time           `json:"generated_at"`
	Controller    ExtractOrganisation `json:"controller"`
	Person        ExtractPerson       `json:"person"`
	Cards         []ExtractCard       `json:"cards"`
	WorkPeriods   []ExtractPeriod     `json:"work_periods"`
	Taps          []ExtractTap        `json:"taps"`
	Corrections   []ExtractCorrection `json:"corrections"`
	AuditLog      []ExtractAuditEntry `json:"audit_log"`
}

// ExtractOrganisation is an organisation in a register extract.
type ExtractOrganisation struct {
	OrgID     int64  `json:"org_id"`
	Name      string `json:"name"`
	OrgNumber string `json:"org_number"` // masked for a sole trader
}

// ExtractPerson is the person a register extract is about.
type ExtractPerson struct {
	PersonID     int64      `json:"person_id"`
	Name         string     `json:"name"`
	IDKind       string     `json:"id_kind"`
	IDNumber     *string    `json:"id_number"` // the full number; nil once anonymised
	IDMasked     string     `json:"id_masked"`
	IDCountry    *string    `json:"id_country"`
	CreatedAt    time.Time  `json:"created_at"`
	AnonymisedAt *time.Time `json:"anonymised_at"`
}

// ExtractSite names a site in a register extract.
type ExtractSite struct {
	SiteID int64  `json:"site_id"`
	Ident  string `json:"ident"` // Skatteverket's identifikationsnummer
	Name   string `json:"name"`
}

// ExtractCard is one of the person's ID06 cards.
type ExtractCard struct {
	CardID     int64     `json:"card_id"`
	OrgID      int64     `json:"org_id"`
	CardNumber string    `json:"card_number"`
	Status     string    `json:"status"`
	ValidFrom  *string   `json:"valid_from"`
	ValidUntil *string   `json:"valid_until"`
	ChipUIDs   []string  `json:"chip_uids"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// ExtractPeriod is one version of one of the person's work periods.
type ExtractPeriod struct {
	PeriodID        int64       `json:"period_id"`
	Site            ExtractSite `json:"site"`
	OrgID           int64       `json:"org_id"` // the contractor
	Start           *time.Time  `json:"start"`
	End             *time.Time  `json:"end"`
	StartRef        *string     `json:"start_ref"`
	EndRef          *string     `json:"end_ref"`
	StartManual     bool        `json:"start_manual"`
	EndManual       bool        `json:"end_manual"`
	MissingCheckout bool        `json:"missing_checkout"`
	MissingCheckin  bool        `json:"missing_checkin"`
	RecordedFrom    time.Time   `json:"recorded_from"`
	RecordedTo      *time.Time  `json:"recorded_to"` // nil: the current version
}

// ExtractTap is one tap the ledger counts as the person's, raw and as
// reconciled.
type ExtractTap struct {
	TerminalID     string       `json:"terminal_id"`
	StoreEpoch     int64        `json:"store_epoch"`
	Seq            int64        `json:"seq"`
	CardID         string       `json:"card_id"`
	Reader         string       `json:"reader"`
	Answer         string       `json:"answer"`
	DeviceWallTime time.Time    `json:"device_wall_time"`
	EventTime      time.Time    `json:"event_time"`
	TimeSource     string       `json:"time_source"`
	ReceivedAt     time.Time    `json:"received_at"`
	ClockOffsetUS  *int64       `json:"clock_offset_us"`
	Site           *ExtractSite `json:"site"`
	Mode           string       `json:"mode"`
	Direction      *string      `json:"direction"`
	Mark           string       `json:"mark"`
	Voided         bool         `json:"voided"`
}

// ExtractTapRef names a tap by its identity.
type ExtractTapRef struct {
	TerminalID string `json:"terminal_id"`
	StoreEpoch int64  `json:"store_epoch"`
	Seq        int64  `json:"seq"`
}

// ExtractCorrection is a correction concerning the person, their taps, or
// a correction concerning them.
type ExtractCorrection struct {
	CorrectionID int64          `json:"correction_id"`
	Kind         string         `json:"kind"`
	Site         ExtractSite    `json:"site"`
	PersonID     *int64         `json:"person_id"`
	Tap          *ExtractTapRef `json:"tap"`
	CardIdent    *string        `json:"card_ident"`
	Start        *time.Time     `json:"start"`
	End          *time.Time     `json:"end"`
	Withdraws    *int64         `json:"withdraws"`
	Reason       string         `json:"reason"`
	Author       string         `json:"author"`
	AuthorOrgID  int64          `json:"author_org_id"`
	CreatedAt    time.Time      `json:"created_at"`
}

// ExtractAuditEntry is an audit log entry about the person: who read,
// exported or changed their data.
type ExtractAuditEntry struct {
	AuditID    int64          `json:"audit_id"`
	At         time.Time      `json:"at"`
	Actor      string         `json:"actor"`
	ActorOrgID *int64         `json:"actor_org_id"`
	Action     string         `json:"action"`
	SiteID     *int64         `json:"site_id"`
	Detail     map[string]any `json:"detail"`
}

// Extract collects everything held about person personID for viewerOrg,
// which must be the person's employer (the controller of their data);
// otherwise the error is ErrNotFound. It decrypts the full identity number
// (with registry's scheme), reads the rest in one snapshot, and records an
// audit entry (ActionRegisterExtract, by actor for viewerOrg) in the same
// transaction: nothing is returned unless the entry is committed. The
// entry itself is the last one in the extract's audit log.
func Extract(ctx context.Context, pool *pgxpool.Pool, keys *pii.Keys, viewerOrg, personID int64, actor string) (*RegisterExtract, error) {
	if actor == "" {
		return nil, fmt.Errorf("retention: extract: %w: no actor", audit.ErrInvalid)
	}
	x := &RegisterExtract{Format: ExtractFormat, FormatVersion: ExtractFormatVersion}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return nil, fmt.Errorf("retention: extract: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))

	p := &x.Person
	c := &x.Controller
	err = tx.QueryRow(ctx, `
		SELECT p.person_id, p.name, p.id_kind, p.id_masked, p.id_country, p.created_at, p.anonymised_at,
		       o.org_id, o.name, o.org_number, now()
		FROM persons p JOIN organisations o ON o.org_id = p.org_id
		WHERE p.person_id = $1 AND p.org_id = $2`, personID, viewerOrg).
		Scan(&p.PersonID, &p.Name, &p.IDKind, &p.IDMasked, &p.IDCountry, &p.CreatedAt, &p.AnonymisedAt,
			&c.OrgID, &c.Name, &c.OrgNumber, &x.GeneratedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("retention: extract: person: %w", err)
	}
	if p.AnonymisedAt == nil {
		number, err := registry.NewStore(pool, keys).IdentityNumber(ctx, viewerOrg, personID)
		if err != nil {
			return nil, fmt.Errorf("retention: extract: %w", err)
		}
		p.IDNumber = &number
	}
	for _, step := range []struct {
		name string
		read func(context.Context, pgx.Tx, int64, *RegisterExtract) error
	}{
		{"cards", readCards}, {"work periods", readPeriods}, {"taps", readTaps}, {"corrections", readCorrections},
	} {
		if err := step.read(ctx, tx, personID, x); err != nil {
			return nil, fmt.Errorf("retention: extract: %s: %w", step.name, err)
		}
	}
	err = audit.Record(ctx, tx, audit.Entry{
		Actor: actor, ActorOrgID: viewerOrg, Action: audit.ActionRegisterExtract, OrgID: viewerOrg, PersonID: personID,
		Detail: map[string]any{
			"cards": len(x.Cards), "work_periods": len(x.WorkPeriods), "taps": len(x.Taps),
			"corrections": len(x.Corrections), "identity_number": p.IDNumber != nil,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("retention: extract: %w", err)
	}
	entries, err := audit.List(ctx, tx, viewerOrg, audit.Filter{PersonID: personID})
	if err != nil {
		return nil, fmt.Errorf("retention: extract: %w", err)
	}
	slices.Reverse(entries)
	x.AuditLog = make([]ExtractAuditEntry, 0, len(entries))
	for _, e := range entries {
		x.AuditLog = append(x.AuditLog, ExtractAuditEntry{AuditID: e.ID, At: e.At, Actor: e.Actor,
			ActorOrgID: nonZero(e.ActorOrgID), Action: e.Action, SiteID: nonZero(e.SiteID), Detail: e.Detail})
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("retention: extract: %w", err)
	}
	x.normalise()
	return x, nil
}

func readCards(ctx context.Context, tx pgx.Tx, personID int64, x *RegisterExtract) error {
	rows, err := tx.Query(ctx, `
		SELECT c.card_id, c.org_id, c.card_number, c.status, to_char(c.valid_from, 'YYYY-MM-DD'),
		       to_char(c.valid_until, 'YYYY-MM-DD'),
		       ARRAY(SELECT ch.chip_uid FROM card_chips ch WHERE ch.card_id = c.card_id ORDER BY ch.chip_uid),
		       c.created_at, c.updated_at
		FROM cards c WHERE c.person_id = $1 ORDER BY c.card_id`, personID)
	if err != nil {
		return err
	}
	x.Cards, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExtractCard, error) {
		var c ExtractCard
		err := row.Scan(&c.CardID, &c.OrgID, &c.CardNumber, &c.Status, &c.ValidFrom, &c.ValidUntil, &c.ChipUIDs,
			&c.CreatedAt, &c.UpdatedAt)
		return c, err
	})
	return err
}

func readPeriods(ctx context.Context, tx pgx.Tx, personID int64, x *RegisterExtract) error {
	rows, err := tx.Query(ctx, `
		SELECT wp.period_id, s.site_id, s.site_ident, s.name, wp.org_id, wp.start_at, wp.end_at, wp.start_ref,
		       wp.end_ref, wp.start_manual, wp.end_manual, wp.missing_checkout, wp.missing_checkin,
		       wp.recorded_from, CASE WHEN wp.recorded_to = 'infinity' THEN NULL ELSE wp.recorded_to END
		FROM work_periods wp JOIN sites s ON s.site_id = wp.site_id
		WHERE wp.person_id = $1
		ORDER BY coalesce(wp.start_at, wp.end_at), wp.recorded_from, wp.period_id`, personID)
	if err != nil {
		return err
	}
	x.WorkPeriods, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExtractPeriod, error) {
		var p ExtractPeriod
		err := row.Scan(&p.PeriodID, &p.Site.SiteID, &p.Site.Ident, &p.Site.Name, &p.OrgID, &p.Start, &p.End,
			&p.StartRef, &p.EndRef, &p.StartManual, &p.EndManual, &p.MissingCheckout, &p.MissingCheckin,
			&p.RecordedFrom, &p.RecordedTo)
		return p, err
	})
	return err
}

func readTaps(ctx context.Context, tx pgx.Tx, personID int64, x *RegisterExtract) error {
	rows, err := tx.Query(ctx, `
		SELECT t.terminal_id, t.store_epoch, t.seq, t.card_id, t.reader, t.answer, t.device_wall_us,
		       t.event_time, t.time_source, t.received_at, t.clock_offset_us,
		       s.site_id, s.site_ident, s.name, tr.mode, tr.direction, tr.mark, tr.voided
		FROM tap_resolutions tr
		JOIN taps t ON t.terminal_id = tr.terminal_id AND t.store_epoch = tr.store_epoch AND t.seq = tr.seq
		LEFT JOIN sites s ON s.site_id = tr.site_id
		WHERE tr.person_id = $1
		ORDER BY tr.event_time, tr.terminal_id, tr.store_epoch, tr.seq`, personID)
	if err != nil {
		return err
	}
	x.Taps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExtractTap, error) {
		var t ExtractTap
		var wallUS int64
		var siteID *int64
		var ident, name *string
		err := row.Scan(&t.TerminalID, &t.StoreEpoch, &t.Seq, &t.CardID, &t.Reader, &t.Answer, &wallUS,
			&t.EventTime, &t.TimeSource, &t.ReceivedAt, &t.ClockOffsetUS, &siteID, &ident, &name,
			&t.Mode, &t.Direction, &t.Mark, &t.Voided)
		t.DeviceWallTime = time.UnixMicro(wallUS)
		if siteID != nil && ident != nil && name != nil {
			t.Site = &ExtractSite{SiteID: *siteID, Ident: *ident, Name: *name}
		}
		return t, err
	})
	return err
}

func readCorrections(ctx context.Context, tx pgx.Tx, personID int64, x *RegisterExtract) error {
	rows, err := tx.Query(ctx, `
		WITH mine AS (
			SELECT c.correction_id FROM corrections c WHERE c.person_id = $1
			UNION
			SELECT c.correction_id FROM corrections c JOIN tap_resolutions tr
			    ON tr.terminal_id = c.tap_terminal_id AND tr.store_epoch = c.tap_store_epoch AND tr.seq = c.tap_seq
			WHERE tr.person_id = $1),
		related AS (
			SELECT correction_id FROM mine
			UNION
			SELECT w.correction_id FROM corrections w JOIN mine ON w.withdraws = mine.correction_id)
		SELECT c.correction_id, c.kind, s.site_id, s.site_ident, s.name, c.person_id, c.tap_terminal_id,
		       c.tap_store_epoch, c.tap_seq, c.card_ident, c.start_at, c.end_at, c.withdraws, c.reason, c.author,
		       c.org_id, c.created_at
		FROM corrections c JOIN related USING (correction_id) JOIN sites s ON s.site_id = c.site_id
		ORDER BY c.correction_id`, personID)
	if err != nil {
		return err
	}
	x.Corrections, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ExtractCorrection, error) {
		var c ExtractCorrection
		var term *string
		var epoch, seq *int64
		err := row.Scan(&c.CorrectionID, &c.Kind, &c.Site.SiteID, &c.Site.Ident, &c.Site.Name, &c.PersonID, &term,
			&epoch, &seq, &c.CardIdent, &c.Start, &c.End, &c.Withdraws, &c.Reason, &c.Author, &c.AuthorOrgID,
			&c.CreatedAt)
		if term != nil && epoch != nil && seq != nil {
			c.Tap = &ExtractTapRef{TerminalID: *term, StoreEpoch: *epoch, Seq: *seq}
		}
		return c, err
	})
	return err
}

// normalise puts every time in UTC and every nil list as an empty one, so
// that the JSON has one form.
func (x *RegisterExtract) normalise() {
	utc := func(t *time.Time) {
		if t != nil {
			*t = t.UTC()
		}
	}
	utc(&x.GeneratedAt)
	utc(&x.Person.CreatedAt)
	utc(x.Person.AnonymisedAt)
	x.Cards = nonNil(x.Cards)
	for i := range x.Cards {
		c := &x.Cards[i]
		c.ChipUIDs = nonNil(c.ChipUIDs)
		utc(&c.CreatedAt)
		utc(&c.UpdatedAt)
	}
	x.WorkPeriods = nonNil(x.WorkPeriods)
	for i := range x.WorkPeriods {
		p := &x.WorkPeriods[i]
		utc(p.Start)
		utc(p.End)
		utc(&p.RecordedFrom)
		utc(p.RecordedTo)
	}
	x.Taps = nonNil(x.Taps)
	for i := range x.Taps {
		t := &x.Taps[i]
		utc(&t.DeviceWallTime)
		utc(&t.EventTime)
		utc(&t.ReceivedAt)
	}
	x.Corrections = nonNil(x.Corrections)
	for i := range x.Corrections {
		c := &x.Corrections[i]
		utc(c.Start)
		utc(c.End)
		utc(&c.CreatedAt)
	}
	x.AuditLog = nonNil(x.AuditLog)
	for i := range x.AuditLog {
		a := &x.AuditLog[i]
		utc(&a.At)
		if a.Detail == nil {
			a.Detail = map[string]any{}
		}
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func nonZero(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

// WriteJSON writes the extract as one indented JSON object, in the format
// documented on RegisterExtract.
func (x *RegisterExtract) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(x); err != nil {
		return fmt.Errorf("retention: write extract: %w", err)
	}
	return nil
}
