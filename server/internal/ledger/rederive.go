package ledger

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/liggare/liggare/server/internal/pgarray"
)

// TapID identifies a tap: (terminal, store epoch, sequence).
type TapID struct {
	Terminal string
	Epoch    int64
	Seq      int64
}

// Ref returns the tap's event reference, as stored in work_periods.
func (t TapID) Ref() string {
	return "tap:" + t.Terminal + "/" + strconv.FormatInt(t.Epoch, 10) + "/" + strconv.FormatInt(t.Seq, 10)
}

// ParseTapRef parses a Ref made by TapID.Ref.
func ParseTapRef(ref string) (TapID, bool) {
	rest, ok := strings.CutPrefix(ref, "tap:")
	if !ok {
		return TapID{}, false
	}
	// Exactly three parts, cut without a slice of them: every period's two
	// ends are parsed at each derivation of its person.
	term, rest, ok1 := strings.Cut(rest, "/")
	epoch, seq, ok2 := strings.Cut(rest, "/")
	if !ok1 || !ok2 || strings.Contains(seq, "/") {
		return TapID{}, false
	}
	e, err1 := strconv.ParseInt(epoch, 10, 64)
	s, err2 := strconv.ParseInt(seq, 10, 64)
	if err1 != nil || err2 != nil {
		return TapID{}, false
	}
	return TapID{term, e, s}, true
}

// correctionRef is the event reference of a manual event of a correction.
func correctionRef(id int64, dir string) string {
	return "correction:" + strconv.FormatInt(id, 10) + "/" + dir
}

// storedPeriod is a current row of work_periods.
type storedPeriod struct {
	id int64
	p  Period
}

// lookBack is how far before the touched span, in gaps (MaxOpen plus the
// double-tap window), rederive first loads a person's events. Taps mostly
// arrive in order, so the segment a new tap joins reaches back, through
// each working day of the week, to the last day off; and the loaded window
// must hold a further gap before the segment's first event. Two gaps, as
// before, covered only the day before and made a second round trip and
// index scan for nearly every person. Eight (about five and a half days)
// cover a Friday tap whose segment began on Monday morning, for up to a
// dozen more rows per person, which cost less than another scan.
const lookBack = 8

// rederive re-derives, for each (site, person), the segments that touch the
// given span, and replaces the periods those segments contribute with new
// versions where they changed. It returns the sites whose ledger changed.
//
// A person's events are the taps of tap_marks, the taps that current
// periods name (counted), and the manual events of corrections. fresh holds
// taps being taken in by this transaction, not yet stored: their events
// join the derivation from memory, and the mark of fresh tap ft is written
// to freshMarks[ft.idx] for the caller to store with it. The marks of
// stored taps are updated where the derivation changed them: a tap that
// comes to count leaves tap_marks, one that stops counting gets a row.
// orgs holds the employers of persons already known; the others are looked
// up. gone holds taps whose tap_marks row (written by the caller) now
// decides their person: the periods that name them are not read as their
// events.
//
// Each pair is locked for the transaction (pairLocks) by the statement
// that first loads it, in the same round trip. With waitForPairs it waits
// for a pair another transaction holds; with skipBusyPairs it leaves such
// a pair alone, and returns it in busy, underived: the caller takes its
// fresh taps in later.
func rederive(ctx context.Context, tx pgx.Tx, touched map[pair]span, rules Rules, fresh map[pair][]freshTap,
	freshMarks []derivedMark, orgs map[int64]int64, gone map[TapID]bool, locking pairLocking) (sites []int64, busy map[pair]bool, err error) {
	if len(touched) == 0 {
		return nil, nil, nil
	}
	locks := pairLocks(touched)
	w := rules.MaxOpen + rules.DoubleTapWindow
	works := make([]work, 0, len(touched))
	for p, s := range touched {
		works = append(works, work{pair: p, touched: s, window: span{s.lo.Add(-lookBack * w), s.hi.Add(2 * w)}})
	}
	pending := make([]*work, len(works))
	for i := range works {
		pending[i] = &works[i]
	}
	var done []*work
	var now time.Time
	var sc deriveScratch
	for round := 0; len(pending) > 0; round++ {
		var err error
		for _, wk := range pending {
			// Room for most people's events: yesterday's period and
			// today's tap.
			wk.items = carve(&sc.items, itemsPerWork)[:0]
		}
		var busyKeys []int64
		if now, busyKeys, err = loadWork(ctx, tx, pending, w, gone, locks, locking); err != nil {
			return nil, nil, err
		}
		locks = nil // held
		if len(busyKeys) > 0 {
			busy = make(map[pair]bool)
			pending = slices.DeleteFunc(pending, func(wk *work) bool {
				if _, found := slices.BinarySearch(busyKeys, pairKey(wk.pair)); found {
					busy[wk.pair] = true
					return true
				}
				return false
			})
		}
		var again []*work
		for _, wk := range pending {
			for _, ft := range fresh[wk.pair] {
				if !ft.ev.At.Before(wk.window.lo) && !ft.ev.At.After(wk.window.hi) {
					wk.items = append(wk.items, workEvent{ev: ft.ev, tap: ft.id, fresh: true, idx: ft.idx})
				}
			}
			if !wk.derive(rules, w, &sc) {
				wk.window = span{wk.replace.lo.Add(-4 * w * time.Duration(round+1)), wk.replace.hi.Add(4 * w * time.Duration(round+1))}
				wk.items, wk.stored = nil, nil
				again = append(again, wk)
				continue
			}
			done = append(done, wk)
		}
		pending = again
	}

	var missing []int64
	for _, wk := range done {
		if _, ok := orgs[wk.pair.person]; !ok {
			missing = append(missing, wk.pair.person)
		}
	}
	if len(missing) > 0 {
		more, err := personOrgs(ctx, tx, missing)
		if err != nil {
			return nil, nil, err
		}
		if orgs == nil {
			orgs = make(map[int64]int64, len(more))
		}
		maps.Copy(orgs, more)
	}

	var closeIDs []int64
	inserts := newPeriodCopy(now)
	changed := make(map[int64]bool)
	var mTerm []string // tap_marks rows whose mark changed
	var mEpoch, mSeq []int64
	var mMark []string
	var mDir []*string
	var dTerm []string // tap_marks rows of taps that now count
	var dEpoch, dSeq []int64
	var iTerm []string // taps that stopped counting
	var iEpoch, iSeq, iSite, iPerson []int64
	var iMode, iMark []string
	var iDir []*string
	var kept []bool // per derived period of a work item: equal to a stored one
	for _, wk := range done {
		// Stored periods equal to a derived one stay; the others are
		// closed, and the derived periods left over are added.
		kept = slices.Grow(kept[:0], len(wk.derived))[:len(wk.derived)]
		clear(kept)
		for _, sp := range wk.stored {
			at := sp.p.Start
			if at.IsZero() {
				at = sp.p.End
			}
			if at.Before(wk.replace.lo) || at.After(wk.replace.hi) {
				continue // anchored outside the re-derived segments
			}
			k, match := sp.p.normal(), -1
			for j, p := range wk.derived {
				if !kept[j] && p.normal() == k {
					match = j
					break
				}
			}
			if match >= 0 {
				kept[match] = true
				continue
			}
			closeIDs = append(closeIDs, sp.id)
			changed[wk.pair.site] = true
		}
		for j, p := range wk.derived {
			if kept[j] {
				continue
			}
			inserts.add(periodRow{wk.pair.site, wk.pair.person, orgs[wk.pair.person], p,
				wk.tapMode(p.StartRef, p.StartManual), wk.tapMode(p.EndRef, p.EndManual)})
			changed[wk.pair.site] = true
		}
		for i, it := range wk.items {
			mark := wk.marks[i]
			if mark == 0 || it.tap.Terminal == "" {
				continue // not re-derived, or a manual event
			}
			var dir *string
			if d := wk.dirs[i]; d != 0 {
				dir = d.name()
			}
			switch {
			case it.fresh:
				freshMarks[it.idx] = derivedMark{mark.String(), dir}
			case it.fromPeriod && mark != MarkCounted:
				iTerm, iEpoch, iSeq = append(iTerm, it.tap.Terminal), append(iEpoch, it.tap.Epoch), append(iSeq, it.tap.Seq)
				iSite, iPerson = append(iSite, wk.pair.site), append(iPerson, wk.pair.person)
				iMode, iMark, iDir = append(iMode, it.ev.Mode.String()), append(iMark, mark.String()), append(iDir, dir)
			case it.fromPeriod:
			case mark == MarkCounted:
				dTerm, dEpoch, dSeq = append(dTerm, it.tap.Terminal), append(dEpoch, it.tap.Epoch), append(dSeq, it.tap.Seq)
			case it.old.mark != mark.String() || !equalPtr(it.old.direction, dir):
				mTerm, mEpoch, mSeq = append(mTerm, it.tap.Terminal), append(mEpoch, it.tap.Epoch), append(mSeq, it.tap.Seq)
				mMark, mDir = append(mMark, mark.String()), append(mDir, dir)
			}
		}
	}
	if len(closeIDs) > 0 {
		if _, err := tx.Exec(ctx, `UPDATE work_periods SET recorded_to = $2 WHERE period_id = ANY($1)`, pgarray.Int8(closeIDs), now); err != nil {
			return nil, nil, fmt.Errorf("close periods: %w", err)
		}
	}
	if err := inserts.send(ctx, tx); err != nil {
		return nil, nil, fmt.Errorf("insert periods: %w", err)
	}
	if len(dTerm) > 0 {
		if _, err := tx.Exec(ctx, `
			DELETE FROM tap_marks tm USING unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(terminal_id, store_epoch, seq)
			WHERE tm.terminal_id = u.terminal_id AND tm.store_epoch = u.store_epoch AND tm.seq = u.seq`,
			dTerm, dEpoch, dSeq); err != nil {
			return nil, nil, fmt.Errorf("unmark counted taps: %w", err)
		}
	}
	if len(iTerm) > 0 {
		if _, err := tx.Exec(ctx, `
			INSERT INTO tap_marks (terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, voided, direction, mark)
			SELECT t.terminal_id, t.store_epoch, t.seq, u.site_id, u.person_id, t.event_time, t.card_id, u.mode, false, u.direction, u.mark
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::text[], $7::text[], $8::text[])
			     AS u(terminal_id, store_epoch, seq, site_id, person_id, mode, direction, mark)
			JOIN taps t ON t.terminal_id = u.terminal_id AND t.store_epoch = u.store_epoch AND t.seq = u.seq`,
			iTerm, iEpoch, iSeq, iSite, iPerson, iMode, iDir, iMark); err != nil {
			return nil, nil, fmt.Errorf("mark uncounted taps: %w", err)
		}
	}
	if len(mTerm) > 0 {
		if _, err := tx.Exec(ctx, `
			UPDATE tap_marks tr SET mark = u.mark, direction = u.direction
			FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[])
			     AS u(terminal_id, store_epoch, seq, mark, direction)
			WHERE tr.terminal_id = u.terminal_id AND tr.store_epoch = u.store_epoch AND tr.seq = u.seq`,
			mTerm, mEpoch, mSeq, mMark, mDir); err != nil {
			return nil, nil, fmt.Errorf("mark taps: %w", err)
		}
	}
	sites = make([]int64, 0, len(changed))
	for s := range changed {
		sites = append(sites, s)
	}
	return sites, busy, nil
}

// work is the re-derivation of one (site, person).
type work struct {
	pair    pair
	touched span
	window  span           // events and periods loaded from this window
	items   []workEvent    // the events, in derivation order once derived
	stored  []storedPeriod // current periods anchored in the window
	replace span           // periods anchored here are replaced
	derived []Period       // the new periods for replace
	marks   []Mark         // per item; 0 outside the re-derived segments
	dirs    []Mode
}

// workEvent is an event with what the reconciler knows of it.
type workEvent struct {
	ev    Event
	tap   TapID      // zero for a manual event
	old   storedMark // a stored tap's mark
	fresh bool       // a tap being taken in (freshTap)
	idx   int        // freshTap.idx
	// fromPeriod: a counted tap, read from the current period that names
	// it (it has no tap_marks row).
	fromPeriod bool
}

// tapMode returns the reader's mode of the tap ref names, as stored with a
// period's end (nil for a manual event).
func (wk *work) tapMode(ref string, manual bool) *string {
	if manual || ref == "" {
		return nil
	}
	for _, it := range wk.items {
		if it.ev.Ref == ref {
			if m := it.ev.Mode.name(); m != nil {
				return m
			}
			m := it.ev.Mode.String()
			return &m
		}
	}
	return nil
}

// derive sorts the events and derives every segment within w of the
// touched span, setting replace, derived, marks and dirs. It reports false
// when the loaded window does not hold a full gap on each side of those
// segments (a segment may go on beyond it); replace is then the range to
// widen the window around.
func (wk *work) derive(rules Rules, w time.Duration, sc *deriveScratch) bool {
	slices.SortFunc(wk.items, func(a, b workEvent) int {
		if c := a.ev.At.Compare(b.ev.At); c != 0 {
			return c
		}
		if c := strings.Compare(a.ev.Ref, b.ev.Ref); c != 0 {
			return c
		}
		// A tap_marks row (a correction's pending row) before the period
		// that still names the tap: the row decides.
		return cmp.Compare(b2i(a.fromPeriod), b2i(b.fromPeriod))
	})
	wk.items = slices.CompactFunc(wk.items, func(a, b workEvent) bool { return a.ev.Ref == b.ev.Ref })
	evs := sc.evs[:0]
	for i := range wk.items {
		evs = append(evs, wk.items[i].ev)
	}
	sc.evs = evs
	// Select every segment that comes within w of the touched span:
	// removing an event (a withdrawal, a tap reassigned away) splits its
	// old segment into parts that no longer contain it, but each part has
	// an event within w of it, so together they cover the whole old segment
	// and every period derived from it.
	rng := wk.touched
	segs := sc.segs[:0]
	sc.bounds = segmentBounds(evs, rules, sc.bounds[:0])
	for _, b := range sc.bounds {
		first, last := evs[b[0]].At, evs[b[1]-1].At
		if !last.Before(wk.touched.lo.Add(-w)) && !first.After(wk.touched.hi.Add(w)) {
			segs = append(segs, b)
			rng = rng.add(first).add(last)
		}
	}
	sc.segs = segs
	wk.replace = rng
	if rng.lo.Add(-w).Before(wk.window.lo) || rng.hi.Add(w).After(wk.window.hi) {
		return false
	}
	// A segment of n events derives at most n periods.
	wk.marks, wk.dirs, wk.derived = carve(&sc.marks, len(evs)), carve(&sc.dirs, len(evs)), carve(&sc.periods, len(evs))[:0]
	for _, b := range segs {
		wk.derived = derive(evs[b[0]:b[1]], rules, wk.marks[b[0]:b[1]], wk.dirs[b[0]:b[1]], wk.derived)
	}
	return true
}

// deriveScratch holds the buffers of one rederive call's derivations: a
// step derives thousands of people, most from a handful of events, and a
// few allocations each made a fifth of a step's at the morning peak. evs,
// bounds and segs are reused by each derivation; marks, dirs and periods
// are carved from shared chunks, as the work items keep them.
type deriveScratch struct {
	items        []workEvent
	evs          []Event
	bounds, segs [][2]int
	marks        []Mark
	dirs         []Mode
	periods      []Period
}

// itemsPerWork is the room for events each work item starts with.
const itemsPerWork = 4

// carve returns the next n zero elements of buf's chunk, with a new chunk
// when it has fewer left.
func carve[T any](buf *[]T, n int) []T {
	if cap(*buf)-len(*buf) < n {
		*buf = make([]T, 0, max(n, 1024))
	}
	at := len(*buf)
	*buf = (*buf)[:at+n]
	return (*buf)[at : at+n : at+n]
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// storedMark is a stored tap's derived mark and direction.
type storedMark struct {
	mark      string
	direction *string
}

func equalPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// loadWork loads, in one round trip, the events and the current periods of
// each work item's window, and returns the transaction's time. Periods are
// read from w (MaxOpen and more) before the window, for the counted taps
// they name in it; those anchored in the window are the stored ones.
//
// locks, when not nil, are taken first, in the same round trip, as locking
// says; busy returns those that skipBusyPairs found held by another
// transaction, sorted.
func loadWork(ctx context.Context, tx pgx.Tx, items []*work, w time.Duration, gone map[TapID]bool, locks []int64,
	locking pairLocking) (now time.Time, busy []int64, err error) {
	sites := make([]int64, len(items))
	persons := make([]int64, len(items))
	los := make([]time.Time, len(items))
	his := make([]time.Time, len(items))
	for i, wk := range items {
		sites[i], persons[i], los[i], his[i] = wk.pair.site, wk.pair.person, wk.window.lo, wk.window.hi
	}
	plos := make([]time.Time, len(items))
	for i, lo := range los {
		plos[i] = lo.Add(-w)
	}
	var b pgx.Batch
	switch {
	case locks == nil:
	case locking == skipBusyPairs:
		b.Queue(tryLockPairsSQL, pgarray.Int8(locks)).Query(func(rows pgx.Rows) error {
			var k int64
			for rows.Next() {
				if err := rows.Scan(&k); err != nil {
					return err
				}
				busy = append(busy, k)
			}
			slices.Sort(busy)
			return rows.Err()
		})
	default:
		b.Queue(lockPairsSQL, pgarray.Int8(locks))
	}
	b.Queue(`
		WITH p AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[])
		           WITH ORDINALITY AS p(site_id, person_id, lo, hi, i))
		SELECT p.i, tr.terminal_id, tr.store_epoch, tr.seq, 0::bigint, tr.event_time, tr.mode, tr.voided, tr.mark, tr.direction
		FROM p JOIN tap_marks tr ON tr.site_id = p.site_id AND tr.person_id = p.person_id
		     AND tr.event_time BETWEEN p.lo AND p.hi
		UNION ALL
		SELECT p.i, '', 0, 0, co.correction_id, e.at, e.mode, false, '', NULL
		FROM p JOIN corrections co ON co.site_id = p.site_id AND co.person_id = p.person_id
		     AND co.kind IN ('manual_period', 'set_checkout')
		CROSS JOIN LATERAL (VALUES (co.start_at, 'in'), (co.end_at, 'out')) AS e(at, mode)
		WHERE e.at BETWEEN p.lo AND p.hi
		  AND NOT EXISTS (SELECT 1 FROM corrections w WHERE w.withdraws = co.correction_id)`,
		pgarray.Int8(sites), pgarray.Int8(persons), pgarray.Timestamptz(los), pgarray.Timestamptz(his)).Query(func(rows pgx.Rows) error {
		// The targets are declared once, not per row: Scan takes their
		// addresses, which moves them to the heap, and every row sets all
		// of them.
		var i int
		var it workEvent
		var corr int64
		var mode string
		dest := []any{&i, &it.tap.Terminal, &it.tap.Epoch, &it.tap.Seq, &corr, &it.ev.At, &mode, &it.ev.Void,
			&it.old.mark, &it.old.direction}
		for rows.Next() {
			it = workEvent{}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			it.ev.Mode, _ = ParseMode(mode)
			if corr != 0 {
				it.ev.Ref, it.ev.Manual = correctionRef(corr, mode), true
			} else {
				it.ev.Ref = it.tap.Ref()
			}
			wk := items[i-1]
			wk.items = append(wk.items, it)
		}
		return rows.Err()
	})
	b.Queue(`
		SELECT p.i, wp.period_id, wp.start_at, wp.end_at, coalesce(wp.start_ref, ''), coalesce(wp.end_ref, ''),
		       wp.start_manual, wp.end_manual, wp.missing_checkout, wp.missing_checkin,
		       coalesce(wp.start_mode, ''), coalesce(wp.end_mode, '')
		FROM unnest($1::bigint[], $2::bigint[], $3::timestamptz[], $4::timestamptz[]) WITH ORDINALITY AS p(site_id, person_id, lo, hi, i)
		JOIN work_periods wp ON wp.site_id = p.site_id AND wp.person_id = p.person_id
		     AND wp.recorded_to = 'infinity' AND coalesce(wp.start_at, wp.end_at) BETWEEN p.lo AND p.hi`,
		pgarray.Int8(sites), pgarray.Int8(persons), pgarray.Timestamptz(plos), pgarray.Timestamptz(his)).Query(func(rows pgx.Rows) error {
		// Targets declared once, as above; times by value, not
		// *time.Time, and the modes as the Mode they parse to: no
		// allocation per row for either.
		var i int
		var sp storedPeriod
		var start, end pgtype.Timestamptz
		var startMode, endMode modeScan
		dest := []any{&i, &sp.id, &start, &end, &sp.p.StartRef, &sp.p.EndRef,
			&sp.p.StartManual, &sp.p.EndManual, &sp.p.MissingCheckout, &sp.p.MissingCheckin,
			&startMode, &endMode}
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			sp.p.Start, sp.p.End = time.Time{}, time.Time{}
			if start.Valid {
				sp.p.Start = start.Time
			}
			if end.Valid {
				sp.p.End = end.Time
			}
			wk := items[i-1]
			if at := cmp.Or(sp.p.Start, sp.p.End); !at.Before(wk.window.lo) {
				wk.stored = append(wk.stored, sp)
			}
			wk.addCounted(sp.p.StartRef, sp.p.Start, Mode(startMode), ModeIn, gone)
			wk.addCounted(sp.p.EndRef, sp.p.End, Mode(endMode), ModeOut, gone)
		}
		return rows.Err()
	})
	b.Queue(`SELECT now()`).QueryRow(func(row pgx.Row) error { return row.Scan(&now) })
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return time.Time{}, nil, fmt.Errorf("load events and periods: %w", err)
	}
	return now, busy, nil
}

// addCounted adds the counted tap ref names, at at, if it is in the
// window: the end of a current period. A period stored before migration
// 0010 kept no modes for taps it no longer names; one it names always has
// its mode (the migration filled them), but if not, its direction serves.
// mode is 0 where the period stored none.
func (wk *work) addCounted(ref string, at time.Time, mode, direction Mode, gone map[TapID]bool) {
	id, ok := ParseTapRef(ref)
	if !ok || gone[id] || at.Before(wk.window.lo) || at.After(wk.window.hi) {
		return
	}
	m := mode
	if m == 0 {
		m = direction
	}
	wk.items = append(wk.items, workEvent{ev: Event{Ref: ref, At: at, Mode: m}, tap: id,
		old: storedMark{mark: MarkCounted.String(), direction: direction.name()}, fromPeriod: true})
}

// modeScan scans a stored mode (in, out, toggle; an empty or another
// value gives 0) without allocating a string for it.
type modeScan Mode

// ScanBytes implements pgtype.BytesScanner.
func (m *modeScan) ScanBytes(b []byte) error {
	switch {
	case string(b) == "in":
		*m = modeScan(ModeIn)
	case string(b) == "out":
		*m = modeScan(ModeOut)
	case string(b) == "toggle":
		*m = modeScan(ModeToggle)
	default:
		*m = 0
	}
	return nil
}

func personOrgs(ctx context.Context, tx pgx.Tx, persons []int64) (map[int64]int64, error) {
	rows, err := tx.Query(ctx, `SELECT person_id, org_id FROM persons WHERE person_id = ANY($1)`, pgarray.Int8(persons))
	if err != nil {
		return nil, fmt.Errorf("load employers: %w", err)
	}
	out := make(map[int64]int64)
	for rows.Next() {
		var p, o int64
		if err := rows.Scan(&p, &o); err != nil {
			rows.Close()
			return nil, err
		}
		out[p] = o
	}
	rows.Close()
	return out, rows.Err()
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// normal returns p with its times in UTC and without monotonic readings, so
// that equal periods compare equal however their times were obtained.
func (p Period) normal() Period {
	if !p.Start.IsZero() {
		p.Start = p.Start.UTC().Round(0)
	}
	if !p.End.IsZero() {
		p.End = p.End.UTC().Round(0)
	}
	return p
}

// pairLocks returns the keys of the transaction-scoped advisory locks
// that serialise derivation per (site, person) across transactions and
// server replicas, sorted, so that two transactions taking them in one
// statement never deadlock. Two pairs sharing a key only wait for each
// other needlessly.
func pairLocks(pairs map[pair]span) []int64 {
	keys := make([]int64, 0, len(pairs))
	for p := range pairs {
		keys = append(keys, pairKey(p))
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// pairKey is the advisory lock key of a pair.
func pairKey(p pair) int64 { return p.site<<32 ^ p.person&0xffffffff }

// pairLocking says what rederive does with a pair another transaction
// holds.
type pairLocking int

const (
	// waitForPairs waits for it: a correction must derive the pairs it
	// touches, and waits for the reconciler steps that hold them.
	waitForPairs pairLocking = iota
	// skipBusyPairs leaves it underived, for later: a reconciler step
	// that waited would hold every other pair of its step meanwhile.
	skipBusyPairs
)

// lockPairsSQL takes the locks of pairLocks, in their order.
const lockPairsSQL = `SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest($1::bigint[]) AS k ORDER BY 1) s`

// tryLockPairsSQL takes the locks of pairLocks that are free, without
// waiting (so in any order), and returns the others.
const tryLockPairsSQL = `SELECT k FROM unnest($1::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)`
