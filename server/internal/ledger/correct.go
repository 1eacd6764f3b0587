package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// CorrectionKind says what a correction does. Every kind only adds: the
// taps and earlier corrections it concerns stay as they were, visible.
type CorrectionKind string

// Correction kinds.
const (
	// ManualPeriod adds a work period nobody tapped for (e.g. "glömt kort").
	ManualPeriod CorrectionKind = "manual_period"
	// SetCheckout adds the check-out a person forgot.
	SetCheckout CorrectionKind = "set_checkout"
	// VoidTap marks a tap as erroneous: kept, shown, not paired.
	VoidTap CorrectionKind = "void_tap"
	// ReassignTap says a tap was made by another person (a borrowed card).
	ReassignTap CorrectionKind = "reassign_tap"
	// AssignCard says who an unknown card id at the site belongs to: its
	// taps, earlier and later, count for that person.
	AssignCard CorrectionKind = "assign_card"
	// Withdraw takes back an earlier correction, which stays on record.
	Withdraw CorrectionKind = "withdraw"
)

// Limits on corrections.
const (
	// MaxManualPeriod bounds a manual period: longer is a typing error.
	MaxManualPeriod = 24 * time.Hour
	// MaxReasonBytes bounds a correction's reason.
	MaxReasonBytes = 500
)

// Errors returned by Correct.
var (
	// ErrInvalidCorrection: the correction is incomplete or contradicts
	// itself; the message says what to fix.
	ErrInvalidCorrection = errors.New("ledger: invalid correction")
	// ErrNotFound: the site, person, tap or correction does not exist for
	// this tenant (the two cases are deliberately not told apart).
	ErrNotFound = errors.New("ledger: not found")
)

// Correction is a request to add a correction.
type Correction struct {
	Kind      CorrectionKind
	SiteID    int64
	PersonID  int64  // ManualPeriod, SetCheckout, ReassignTap, AssignCard
	Tap       TapID  // VoidTap, ReassignTap
	CardIdent string // AssignCard
	Start     time.Time
	End       time.Time
	Withdraws int64 // Withdraw
	Reason    string
	Author    string
}

// Store reads and corrects the ledger. Every method is scoped by the
// organisation on whose behalf it runs (the viewer): it sees the combined
// ledger of the sites it owns, and its own staff's periods on other sites.
type Store struct {
	pool  *pgxpool.Pool
	rules Rules
}

// NewStore returns a Store. Zero rules mean DefaultRules.
func NewStore(pool *pgxpool.Pool, rules Rules) *Store {
	if rules == (Rules{}) {
		rules = DefaultRules
	}
	return &Store{pool: pool, rules: rules}
}

// Refusal names why a correction was refused, so that a user interface
// can say it in its own language.
type Refusal string

// The refusals of Correct.
const (
	RefusedReason      Refusal = "reason"       // no reason given
	RefusedReasonLong  Refusal = "reason_long"  // over MaxReasonBytes
	RefusedAuthor      Refusal = "author"       // no author
	RefusedManualOrder Refusal = "manual_order" // a manual period's end not after its start
	RefusedManualLong  Refusal = "manual_long"  // longer than MaxManualPeriod
	RefusedCheckout    Refusal = "checkout"     // a check-out without its time, or with a start
	RefusedCard        Refusal = "card"         // no card id to assign
	RefusedAnonymised  Refusal = "anonymised"   // assigning anonymised taps
	RefusedWithdrawal  Refusal = "withdrawal"   // withdrawing a withdrawal
	RefusedKind        Refusal = "kind"         // no such kind
	// A set check-out that would not close an open period; Times say what
	// is there.
	RefusedCheckoutEnded  Refusal = "checkout_ended"  // Times: the period's start and its end
	RefusedCheckoutEarly  Refusal = "checkout_early"  // Times: the check-out, the check-in after it
	RefusedCheckoutClosed Refusal = "checkout_closed" // Times: the check-out, the last period's end
	RefusedNoCheckin      Refusal = "no_checkin"      // Times: the check-out
)

// RefusalError is a refused correction. It matches ErrInvalidCorrection.
// Its message is English, for logs; Times are in the site's time zone.
type RefusalError struct {
	Refusal Refusal
	Times   []time.Time
	msg     string
}

func (e *RefusalError) Error() string { return ErrInvalidCorrection.Error() + ": " + e.msg }

// Unwrap makes errors.Is see ErrInvalidCorrection.
func (e *RefusalError) Unwrap() error { return ErrInvalidCorrection }

func invalid(r Refusal, times []time.Time, format string, args ...any) error {
	return &RefusalError{Refusal: r, Times: times, msg: fmt.Sprintf(format, args...)}
}

// Correct adds a correction on behalf of viewer and re-derives what it
// touches, in one transaction. Only the organisation owning the site may
// correct its ledger, except that an employer may add manual periods and
// check-outs for its own staff.
func (s *Store) Correct(ctx context.Context, viewer int64, c Correction) (int64, error) {
	c.Reason = strings.TrimSpace(c.Reason)
	switch {
	case c.Reason == "":
		return 0, invalid(RefusedReason, nil, "a reason is required")
	case len(c.Reason) > MaxReasonBytes:
		return 0, invalid(RefusedReasonLong, nil, "reason longer than %d bytes", MaxReasonBytes)
	case strings.TrimSpace(c.Author) == "":
		return 0, invalid(RefusedAuthor, nil, "an author is required")
	}
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		id, err = s.correct(ctx, tx, viewer, c)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: correct: %w", err)
	}
	return id, nil
}

func (s *Store) correct(ctx context.Context, tx pgx.Tx, viewer int64, c Correction) (int64, error) {
	var siteOwner int64
	err := tx.QueryRow(ctx, `SELECT org_id FROM sites WHERE site_id = $1`, c.SiteID).Scan(&siteOwner)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, ErrNotFound
	}
	if err != nil {
		return 0, err
	}
	ownsSite := siteOwner == viewer
	// personOnSite checks the person is staff of the site's owner or of a
	// contractor on it, and that viewer may correct their periods.
	personOnSite := func(person int64, employerMayCorrect bool) error {
		var employer int64
		err := tx.QueryRow(ctx, `
			SELECT p.org_id FROM persons p
			WHERE p.person_id = $1 AND p.anonymised_at IS NULL AND (p.org_id = $2 OR EXISTS (
				SELECT 1 FROM site_contractors sc WHERE sc.site_id = $3 AND sc.org_id = p.org_id))`,
			person, siteOwner, c.SiteID).Scan(&employer)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !ownsSite && !(employerMayCorrect && employer == viewer) {
			return ErrNotFound
		}
		return nil
	}
	// tapAtSite checks the tap was made at the site and returns its span.
	// It reads the site's taps at the tap's event time: tap_resolutions by
	// tap id would read every current period of the site (migration 0014).
	tapAtSite := func(id TapID) (span, *int64, error) {
		var at time.Time
		var person *int64
		err := tx.QueryRow(ctx, `
			SELECT tr.event_time, tr.person_id
			FROM taps t, tap_resolutions_between($4, t.event_time, t.event_time + interval '1 microsecond') tr
			WHERE t.terminal_id = $1 AND t.store_epoch = $2 AND t.seq = $3
			  AND tr.terminal_id = t.terminal_id AND tr.store_epoch = t.store_epoch AND tr.seq = t.seq`,
			id.Terminal, id.Epoch, id.Seq, c.SiteID).Scan(&at, &person)
		if errors.Is(err, pgx.ErrNoRows) {
			return span{}, nil, ErrNotFound
		}
		return span{}.add(at), person, err
	}

	touched := make(map[pair]span)
	touch := func(person int64, sp span) {
		k := pair{c.SiteID, person}
		touched[k] = touched[k].union(sp)
	}
	var tapID *TapID
	switch c.Kind {
	case ManualPeriod:
		if c.Start.IsZero() || c.End.IsZero() || !c.End.After(c.Start) {
			return 0, invalid(RefusedManualOrder, nil, "a manual period needs a start before its end")
		}
		if c.End.Sub(c.Start) > MaxManualPeriod {
			return 0, invalid(RefusedManualLong, nil, "a manual period may last at most %v", MaxManualPeriod)
		}
		if err := personOnSite(c.PersonID, true); err != nil {
			return 0, err
		}
		touch(c.PersonID, span{}.add(c.Start).add(c.End))
	case SetCheckout:
		if c.End.IsZero() || !c.Start.IsZero() {
			return 0, invalid(RefusedCheckout, nil, "a check-out needs its time, and only that")
		}
		if err := personOnSite(c.PersonID, true); err != nil {
			return 0, err
		}
		if err := checkoutFits(ctx, tx, c.SiteID, c.PersonID, c.End); err != nil {
			return 0, err
		}
		touch(c.PersonID, span{}.add(c.End))
	case VoidTap, ReassignTap:
		if !ownsSite {
			return 0, ErrNotFound
		}
		sp, person, err := tapAtSite(c.Tap)
		if err != nil {
			return 0, err
		}
		if person != nil {
			touch(*person, sp)
		}
		if c.Kind == ReassignTap {
			if err := personOnSite(c.PersonID, false); err != nil {
				return 0, err
			}
			touch(c.PersonID, sp)
		}
		tapID = &c.Tap
	case AssignCard:
		if !ownsSite {
			return 0, ErrNotFound
		}
		if c.CardIdent == "" {
			return 0, invalid(RefusedCard, nil, "which card id to assign")
		}
		if c.CardIdent == AnonymisedCardID {
			return 0, invalid(RefusedAnonymised, nil, "anonymised taps cannot be assigned to anyone")
		}
		if err := personOnSite(c.PersonID, false); err != nil {
			return 0, err
		}
	case Withdraw:
		if !ownsSite {
			return 0, ErrNotFound
		}
		var kind string
		err := tx.QueryRow(ctx, `
			SELECT kind FROM corrections WHERE correction_id = $1 AND site_id = $2
			  AND NOT EXISTS (SELECT 1 FROM corrections w WHERE w.withdraws = $1)`,
			c.Withdraws, c.SiteID).Scan(&kind)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, ErrNotFound
		}
		if err != nil {
			return 0, err
		}
		if kind == string(Withdraw) {
			return 0, invalid(RefusedWithdrawal, nil, "a withdrawal cannot be withdrawn; add the correction again")
		}
	default:
		return 0, invalid(RefusedKind, nil, "unknown kind %q", c.Kind)
	}

	var id int64
	var tTerm *string
	var tEpoch, tSeq *int64
	if tapID != nil {
		tTerm, tEpoch, tSeq = &tapID.Terminal, &tapID.Epoch, &tapID.Seq
	}
	err = tx.QueryRow(ctx, `
		INSERT INTO corrections (site_id, org_id, kind, person_id, tap_terminal_id, tap_store_epoch, tap_seq,
			card_ident, start_at, end_at, withdraws, reason, author)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		RETURNING correction_id`,
		c.SiteID, viewer, string(c.Kind), nonZero(c.PersonID), tTerm, tEpoch, tSeq, nullString(c.CardIdent),
		nullTime(c.Start), nullTime(c.End), nonZero(c.Withdraws), c.Reason, c.Author).Scan(&id)
	if err != nil {
		return 0, err
	}

	// Re-resolve the taps whose inputs this correction (or the one it
	// withdraws) may change, and re-derive every (site, person) touched.
	corrID := id
	if c.Kind == Withdraw {
		corrID = c.Withdraws
		// A withdrawn manual event: its person and times.
		var person *int64
		var start, end *time.Time
		if err := tx.QueryRow(ctx, `SELECT person_id, start_at, end_at FROM corrections WHERE correction_id = $1`,
			corrID).Scan(&person, &start, &end); err != nil {
			return 0, err
		}
		if person != nil && (start != nil || end != nil) {
			sp := span{}
			if start != nil {
				sp = sp.add(*start)
			}
			if end != nil {
				sp = sp.add(*end)
			}
			touch(*person, sp)
		}
	}
	gone, err := reresolve(ctx, tx, corrID, touch)
	if err != nil {
		return 0, err
	}
	if _, _, err := rederive(ctx, tx, touched, s.rules, nil, nil, nil, gone, waitForPairs); err != nil {
		return 0, err
	}
	return id, nil
}

// reresolve recomputes the person and void flag of the taps a correction
// concerns (by tap, or by card id at the site) from the registry and every
// correction not withdrawn, and touches the people they move between. Each
// such tap gets a tap_marks row (pending, or unknown_card), which decides
// its person from now on: it returns them, for rederive to ignore the
// periods that still name them.
func reresolve(ctx context.Context, tx pgx.Tx, corrID int64, touch func(int64, span)) (map[TapID]bool, error) {
	rows, err := tx.Query(ctx, `
		WITH c AS (SELECT * FROM corrections WHERE correction_id = $1),
		affected AS (
			-- A corrected tap is at the correction's site (Correct checks
			-- it, and a tap never changes site): read by its event time,
			-- as in tapAtSite.
			SELECT tr.* FROM c, taps t,
			     tap_resolutions_between(c.site_id, t.event_time, t.event_time + interval '1 microsecond') tr
			WHERE c.kind IN ('void_tap', 'reassign_tap') AND t.terminal_id = c.tap_terminal_id
			  AND t.store_epoch = c.tap_store_epoch AND t.seq = c.tap_seq
			  AND tr.terminal_id = t.terminal_id AND tr.store_epoch = t.store_epoch AND tr.seq = t.seq
			UNION ALL
			-- An assigned card id's taps at the site: the taps with that
			-- card id of each terminal while it stood at the site (a tap's
			-- site is its terminal's assignment at its event time), each
			-- read at its own time. This reads the site's terminals' taps,
			-- not the site's whole ledger as the view would.
			SELECT tr.* FROM c
			JOIN terminal_assignments ta ON ta.site_id = c.site_id
			CROSS JOIN LATERAL (
				SELECT min(n.valid_from) AS until FROM terminal_assignments n
				WHERE n.terminal_id = ta.terminal_id AND n.valid_from > ta.valid_from) nx
			JOIN taps t ON t.terminal_id = ta.terminal_id AND t.card_id = c.card_ident
			     AND t.event_time >= ta.valid_from AND (nx.until IS NULL OR t.event_time < nx.until)
			CROSS JOIN LATERAL tap_resolutions_between(c.site_id, t.event_time, t.event_time + interval '1 microsecond') tr
			WHERE c.kind = 'assign_card'
			  AND tr.terminal_id = t.terminal_id AND tr.store_epoch = t.store_epoch AND tr.seq = t.seq),
		live AS (SELECT * FROM corrections co WHERE NOT EXISTS (SELECT 1 FROM corrections w WHERE w.withdraws = co.correction_id)),
		resolved AS (
			SELECT a.terminal_id, a.store_epoch, a.seq, a.event_time, a.site_id, a.card_ident, a.mode, a.direction,
			  a.person_id AS old_person, a.voided AS old_voided,
			  coalesce(
			    (SELECT l.person_id FROM live l WHERE l.kind = 'reassign_tap' AND l.tap_terminal_id = a.terminal_id
			       AND l.tap_store_epoch = a.store_epoch AND l.tap_seq = a.seq ORDER BY l.correction_id DESC LIMIT 1),
			    (SELECT l.person_id FROM live l WHERE l.kind = 'assign_card' AND l.site_id = a.site_id
			       AND l.card_ident = a.card_ident ORDER BY l.correction_id DESC LIMIT 1),
			    (SELECT min(c.person_id) FROM cards c
			       LEFT JOIN card_chips ch ON ch.card_id = c.card_id AND ch.chip_uid = a.card_ident
			       WHERE (c.card_number = a.card_ident OR ch.chip_uid IS NOT NULL)
			         AND (c.org_id = (SELECT org_id FROM sites WHERE site_id = a.site_id)
			              OR c.org_id IN (SELECT org_id FROM site_contractors WHERE site_id = a.site_id))
			       HAVING count(DISTINCT c.person_id) = 1)) AS new_person,
			  EXISTS (SELECT 1 FROM live l WHERE l.kind = 'void_tap' AND l.tap_terminal_id = a.terminal_id
			       AND l.tap_store_epoch = a.store_epoch AND l.tap_seq = a.seq) AS new_voided
			FROM affected a),
		marked AS (
			INSERT INTO tap_marks AS tm (terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode,
				voided, direction, mark)
			SELECT r.terminal_id, r.store_epoch, r.seq, r.site_id, r.new_person, r.event_time, r.card_ident, r.mode,
				r.new_voided, r.direction, CASE WHEN r.new_person IS NULL THEN 'unknown_card' ELSE 'pending' END
			FROM resolved r
			ON CONFLICT (terminal_id, store_epoch, seq) DO UPDATE
			SET person_id = excluded.person_id, voided = excluded.voided, mark = excluded.mark)
		SELECT r.terminal_id, r.store_epoch, r.seq, r.old_person, r.new_person, r.event_time FROM resolved r`, corrID)
	if err != nil {
		return nil, fmt.Errorf("re-resolve taps: %w", err)
	}
	defer rows.Close()
	gone := make(map[TapID]bool)
	for rows.Next() {
		var id TapID
		var oldP, newP *int64
		var at time.Time
		if err := rows.Scan(&id.Terminal, &id.Epoch, &id.Seq, &oldP, &newP, &at); err != nil {
			return nil, fmt.Errorf("re-resolve taps: %w", err)
		}
		gone[id] = true
		for _, p := range []*int64{oldP, newP} {
			if p != nil {
				touch(*p, span{}.add(at))
			}
		}
	}
	return gone, rows.Err()
}

func nonZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// checkoutFits checks that a check-out set at end closes a period: the
// person's last check-in at the site before end is still open. A check-out
// before the check-in it was meant for (a minute typed for a tap made later
// in that minute), after a check-out already made, or with no check-in at
// all would stand in the ledger as a check-out without check-in, which is
// not what the person correcting meant; the refusal says what is there.
func checkoutFits(ctx context.Context, tx pgx.Tx, siteID, personID int64, end time.Time) error {
	var tz string
	var lastStart, lastEnd, nextStart *time.Time
	err := tx.QueryRow(ctx, `
		SELECT s.time_zone, last.start_at, last.end_at,
		       (SELECT min(start_at) FROM work_periods
		        WHERE site_id = $1 AND person_id = $2 AND recorded_to = 'infinity' AND start_at > $3)
		FROM sites s
		LEFT JOIN LATERAL (
		    SELECT start_at, end_at FROM work_periods
		    WHERE site_id = $1 AND person_id = $2 AND recorded_to = 'infinity' AND start_at <= $3
		    ORDER BY start_at DESC LIMIT 1) last ON true
		WHERE s.site_id = $1`, siteID, personID, end).Scan(&tz, &lastStart, &lastEnd, &nextStart)
	if err != nil {
		return err
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		loc = time.UTC
	}
	at := func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04:05") }
	in := func(ts ...time.Time) []time.Time {
		for i := range ts {
			ts[i] = ts[i].In(loc)
		}
		return ts
	}
	switch {
	case lastStart != nil && lastEnd == nil:
		return nil // the open period it closes
	case lastStart != nil && lastEnd.After(end):
		return invalid(RefusedCheckoutEnded, in(*lastStart, *lastEnd), "the period from %s already ends at %s; void that check-out to set another", at(*lastStart), at(*lastEnd))
	case nextStart != nil && (lastStart == nil || nextStart.Sub(end) < time.Minute):
		return invalid(RefusedCheckoutEarly, in(end, *nextStart), "the check-out at %s comes before the check-in at %s", at(end), at(*nextStart))
	case lastStart != nil:
		return invalid(RefusedCheckoutClosed, in(end, *lastEnd), "no open check-in before %s: the last period ended at %s", at(end), at(*lastEnd))
	default:
		return invalid(RefusedNoCheckin, in(end), "no check-in before %s to check out", at(end))
	}
}
