package ledger

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// PeriodRow is one work period as the ledger shows it.
type PeriodRow struct {
	PeriodID        int64
	SiteID          int64
	PersonID        int64
	PersonName      string
	PersonIDMasked  string
	OrgID           int64 // the contractor (employer)
	OrgName         string
	OrgNumber       string
	Start, End      *time.Time
	StartRef        string
	EndRef          string
	StartManual     bool
	EndManual       bool
	MissingCheckout bool
	MissingCheckin  bool
	RecordedFrom    time.Time
	// Overdue: open longer than the rules allow at the time of the query.
	Overdue bool
}

// PeriodQuery selects periods of one site.
type PeriodQuery struct {
	SiteID   int64
	PersonID int64 // 0: everyone
	OrgID    int64 // 0: every contractor
	// From and To bound the periods by their start (or end, if they have no
	// start). Zero means unbounded.
	From, To time.Time
	// AsOf, when set, gives the ledger as the server knew it at that moment.
	AsOf time.Time
	// Now is the moment Overdue is judged at; zero means the current time.
	Now time.Time
}

// Periods returns the periods matching q that viewer may see: all of them
// on a site it owns, otherwise only its own staff's.
func (s *Store) Periods(ctx context.Context, viewer int64, q PeriodQuery) ([]PeriodRow, error) {
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	asOf := q.AsOf
	current := asOf.IsZero()
	rows, err := s.pool.Query(ctx, `
		SELECT wp.period_id, wp.site_id, wp.person_id, p.name, p.id_masked, wp.org_id, o.name, o.org_number,
		       wp.start_at, wp.end_at, coalesce(wp.start_ref, ''), coalesce(wp.end_ref, ''),
		       wp.start_manual, wp.end_manual, wp.missing_checkout, wp.missing_checkin, wp.recorded_from
		FROM work_periods wp
		JOIN sites s ON s.site_id = wp.site_id
		JOIN persons p ON p.person_id = wp.person_id
		JOIN organisations o ON o.org_id = wp.org_id
		WHERE wp.site_id = $1 AND (s.org_id = $2 OR wp.org_id = $2)
		  AND ($3::bigint = 0 OR wp.person_id = $3) AND ($4::bigint = 0 OR wp.org_id = $4)
		  AND ($5::timestamptz IS NULL OR coalesce(wp.start_at, wp.end_at) >= $5)
		  AND ($6::timestamptz IS NULL OR coalesce(wp.start_at, wp.end_at) < $6)
		  AND CASE WHEN $7 THEN wp.recorded_to = 'infinity'
		           ELSE wp.recorded_from <= $8 AND wp.recorded_to > $8 END
		ORDER BY coalesce(wp.start_at, wp.end_at), p.name, wp.period_id`,
		q.SiteID, viewer, q.PersonID, q.OrgID, nullTime(q.From), nullTime(q.To), current, nullTime(asOf))
	if err != nil {
		return nil, fmt.Errorf("ledger: periods: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (PeriodRow, error) {
		var r PeriodRow
		err := row.Scan(&r.PeriodID, &r.SiteID, &r.PersonID, &r.PersonName, &r.PersonIDMasked, &r.OrgID,
			&r.OrgName, &r.OrgNumber, &r.Start, &r.End, &r.StartRef, &r.EndRef, &r.StartManual, &r.EndManual,
			&r.MissingCheckout, &r.MissingCheckin, &r.RecordedFrom)
		r.Overdue = r.Start != nil && r.End == nil && (r.MissingCheckout || now.Sub(*r.Start) > s.rules.MaxOpen)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: periods: %w", err)
	}
	return out, nil
}

// OnSite returns who is registered as present at the site at now: the open
// periods that are neither flagged nor overdue. AsOf in q gives the list as
// the server knew it then.
func (s *Store) OnSite(ctx context.Context, viewer int64, q PeriodQuery) ([]PeriodRow, error) {
	now := q.Now
	if now.IsZero() {
		now = time.Now()
	}
	q.Now = now
	q.From = now.Add(-s.rules.MaxOpen)
	q.To = now.Add(time.Nanosecond)
	all, err := s.Periods(ctx, viewer, q)
	if err != nil {
		return nil, err
	}
	var out []PeriodRow
	for _, r := range all {
		if r.Start != nil && r.End == nil && !r.Overdue {
			out = append(out, r)
		}
	}
	return out, nil
}

// UnknownCard is a card id tapped at a site that no registered card
// matches, for a site manager to assign.
type UnknownCard struct {
	CardIdent string
	Taps      int
	First     time.Time
	Last      time.Time
}

// AnonymisedCardID is the card id retention leaves on taps once their
// retention ended (retention.AnonymousCardIdent): not a card anyone can hold.
const AnonymisedCardID = "ANONYMISED"

// UnknownCards lists the unknown card ids tapped at a site the viewer owns,
// leaving out taps whose card id was anonymised.
func (s *Store) UnknownCards(ctx context.Context, viewer, siteID int64) ([]UnknownCard, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT tr.card_ident, count(*)::int, min(tr.event_time), max(tr.event_time)
		FROM tap_marks tr JOIN sites s ON s.site_id = tr.site_id
		WHERE tr.site_id = $1 AND s.org_id = $2 AND tr.person_id IS NULL AND tr.card_ident <> $3
		GROUP BY tr.card_ident ORDER BY max(tr.event_time) DESC`, siteID, viewer, AnonymisedCardID)
	if err != nil {
		return nil, fmt.Errorf("ledger: unknown cards: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[UnknownCard])
	if err != nil {
		return nil, fmt.Errorf("ledger: unknown cards: %w", err)
	}
	return out, nil
}

// CorrectionRow is a correction as the ledger shows it.
type CorrectionRow struct {
	CorrectionID int64
	Kind         CorrectionKind
	PersonID     *int64
	Tap          *TapID
	CardIdent    *string
	Start, End   *time.Time
	Withdraws    *int64
	WithdrawnBy  *int64
	Reason       string
	Author       string
	AuthorOrgID  int64
	CreatedAt    time.Time
}

// Corrections lists the corrections of a site the viewer owns, or those
// concerning the viewer's own staff, newest first.
func (s *Store) Corrections(ctx context.Context, viewer, siteID int64) ([]CorrectionRow, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT c.correction_id, c.kind, c.person_id, c.tap_terminal_id, c.tap_store_epoch, c.tap_seq, c.card_ident,
		       c.start_at, c.end_at, c.withdraws, (SELECT w.correction_id FROM corrections w WHERE w.withdraws = c.correction_id),
		       c.reason, c.author, c.org_id, c.created_at
		FROM corrections c JOIN sites s ON s.site_id = c.site_id
		LEFT JOIN persons p ON p.person_id = c.person_id
		WHERE c.site_id = $1 AND (s.org_id = $2 OR p.org_id = $2 OR c.org_id = $2)
		ORDER BY c.correction_id DESC`, siteID, viewer)
	if err != nil {
		return nil, fmt.Errorf("ledger: corrections: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (CorrectionRow, error) {
		var r CorrectionRow
		var term *string
		var epoch, seq *int64
		var kind string
		err := row.Scan(&r.CorrectionID, &kind, &r.PersonID, &term, &epoch, &seq, &r.CardIdent, &r.Start, &r.End,
			&r.Withdraws, &r.WithdrawnBy, &r.Reason, &r.Author, &r.AuthorOrgID, &r.CreatedAt)
		r.Kind = CorrectionKind(kind)
		if term != nil && epoch != nil && seq != nil {
			r.Tap = &TapID{*term, *epoch, *seq}
		}
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: corrections: %w", err)
	}
	return out, nil
}

// TapRow is one tap as the ledger shows it: what the kiosk recorded, when
// it happened and how that time was established, and what reconciliation
// made of it.
type TapRow struct {
	Tap        TapID
	CardIdent  string
	PersonID   *int64 // nil: unknown card
	PersonName *string
	EventTime  time.Time
	// TimeSource is how EventTime was derived: "device" (the kiosk's
	// clock), "offset" (corrected through the monotonic clock) or
	// "received" (the server's receive time).
	TimeSource string
	// ClockOff: the kiosk's clock was off by more than the trusted skew
	// when the tap was uploaded (the time was not taken from it).
	ClockOff bool
	// DeviceTime is the kiosk's own clock reading, kept as sent.
	DeviceTime time.Time
	ReceivedAt time.Time
	Mode       string  // the reader's mode: in, out, toggle
	Direction  *string // in or out, as derived; nil when not counted
	Mark       string  // counted, double, void, unknown_card, unassigned
	Voided     bool
	Answer     string // what the kiosk showed
}

// TapQuery selects taps of one site.
type TapQuery struct {
	SiteID   int64
	PersonID int64 // 0: everyone
	From, To time.Time
	Limit    int // default and maximum MaxTapRows
}

// MaxTapRows bounds one Taps query.
const MaxTapRows = 5000

// Taps lists taps at a site the viewer may see, newest first: all of them
// on a site it owns, otherwise only its own staff's. It reads them with
// tap_resolutions_between (migration 0014), which finds the counted ones
// from the periods near the time range: a short range costs about the same
// on a site with years of history as on a new one (BenchmarkTapsPicker).
func (s *Store) Taps(ctx context.Context, viewer int64, q TapQuery) ([]TapRow, error) {
	limit := q.Limit
	if limit <= 0 || limit > MaxTapRows {
		limit = MaxTapRows
	}
	rows, err := s.pool.Query(ctx, `
		SELECT tr.terminal_id, tr.store_epoch, tr.seq, tr.card_ident, tr.person_id, p.name, tr.event_time,
		       t.time_source, t.time_source <> 'device', to_timestamp(t.device_wall_us / 1e6), t.received_at,
		       tr.mode, tr.direction, tr.mark, tr.voided, t.answer
		FROM tap_resolutions_between($1, $4, $5) tr
		JOIN taps t USING (terminal_id, store_epoch, seq)
		JOIN sites s ON s.site_id = $1
		LEFT JOIN persons p ON p.person_id = tr.person_id
		WHERE (s.org_id = $2 OR p.org_id = $2)
		  AND ($3::bigint = 0 OR tr.person_id = $3)
		ORDER BY tr.event_time DESC, tr.terminal_id, tr.seq DESC
		LIMIT $6`, q.SiteID, viewer, q.PersonID, lowerBound(q.From), upperBound(q.To), limit)
	if err != nil {
		return nil, fmt.Errorf("ledger: taps: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanTapRow)
	if err != nil {
		return nil, fmt.Errorf("ledger: taps: %w", err)
	}
	return out, nil
}

// scanTapRow scans a row of Taps' columns.
func scanTapRow(row pgx.CollectableRow) (TapRow, error) {
	var r TapRow
	err := row.Scan(&r.Tap.Terminal, &r.Tap.Epoch, &r.Tap.Seq, &r.CardIdent, &r.PersonID, &r.PersonName,
		&r.EventTime, &r.TimeSource, &r.ClockOff, &r.DeviceTime, &r.ReceivedAt, &r.Mode, &r.Direction,
		&r.Mark, &r.Voided, &r.Answer)
	return r, err
}

// lowerBound is t as a timestamptz bound from below: -infinity when zero.
func lowerBound(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}

// upperBound is t as a timestamptz bound from above: infinity when zero.
func upperBound(t time.Time) pgtype.Timestamptz {
	if t.IsZero() {
		return pgtype.Timestamptz{InfinityModifier: pgtype.Infinity, Valid: true}
	}
	return pgtype.Timestamptz{Time: t, Valid: true}
}
