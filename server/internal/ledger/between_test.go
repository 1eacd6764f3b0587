package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// betweenRow is a row of tap_resolutions or tap_resolutions_between.
type betweenRow struct {
	Terminal     string
	Epoch, Seq   int64
	Site, Person *int64
	EventTime    time.Time
	Card, Mode   string
	Voided       bool
	Direction    *string
	Mark         string
}

const betweenCols = `terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, voided, direction, mark`

func betweenRows(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) []betweenRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[betweenRow])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// betweenLedger fills f's sites with every kind of tap resolution: periods
// in and out, by toggle, open, with only an end, across midnight, manual,
// corrected and withdrawn; double taps, a void tap, an unknown card, and
// taps on the second site at the same moments. Without corrections, only
// the taps: what the reconciler alone makes of them.
func betweenLedger(t testing.TB, f *fixture, corrections bool) {
	t.Helper()
	r := NewReconciler(f.pool, ReconcilerOptions{})
	s := NewStore(f.pool, Rules{})
	f.upload(t,
		tapSpec{"IN", "AA0000000001", "2026-11-16 07:00:00"},
		tapSpec{"IN", "AA0000000001", "2026-11-16 07:00:10"}, // double
		tapSpec{"OUT", "AA0000000001", "2026-11-16 16:00:00"},
		tapSpec{"TOG2", "AA0000000001", "2026-11-16 07:00:00"}, // the other site, same moment
		tapSpec{"TOG2", "AA0000000001", "2026-11-16 16:00:00"},
		tapSpec{"OUT", "BB0000000002", "2026-11-16 15:30:00"}, // an end without a start
		tapSpec{"TOG", "BB0000000002", "2026-11-16 22:00:00"}, // across midnight, 15 h 59 min
		tapSpec{"TOG", "BB0000000002", "2026-11-17 13:59:00"},
		tapSpec{"TOG", "XX9999999999", "2026-11-18 08:00:00"}, // unknown card
		tapSpec{"IN", "AA0000000001", "2026-11-17 07:00:00"},
		tapSpec{"TOG", "AA0000000001", "2026-11-17 09:00:00"}, // voided below
		tapSpec{"OUT", "AA0000000001", "2026-11-17 16:00:00"},
		tapSpec{"IN", "AA0000000001", "2026-11-18 07:00:00"}, // open: check-out forgotten
		tapSpec{"IN", "BB0000000002", "2026-11-18 06:00:00"}, // reassigned to Anna below
		tapSpec{"OUT", "BB0000000002", "2026-11-18 14:00:00"},
		tapSpec{"IN", "AA0000000001", "2026-11-19 07:00:00"},
	)
	drain(t, r)
	if !corrections {
		return
	}
	for _, c := range []Correction{
		{Kind: VoidTap, SiteID: f.site, Tap: TapID{"TOG", 1, 4}},
		{Kind: ReassignTap, SiteID: f.site, Tap: TapID{"IN", 1, 5}, PersonID: f.anna},
		{Kind: ManualPeriod, SiteID: f.site, PersonID: f.bertil, Start: at("2026-11-15 07:00:00"), End: at("2026-11-15 12:00:00")},
		{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: at("2026-11-19 15:00:00")},
		{Kind: AssignCard, SiteID: f.site, PersonID: f.bertil, CardIdent: "XX9999999999"},
	} {
		c.Reason, c.Author = "skäl", "x"
		if _, err := s.Correct(context.Background(), f.owner, c); err != nil {
			t.Fatalf("Correct(%+v): %v", c, err)
		}
	}
	// Withdraw the check-out: the 11-19 period is open again, with a
	// closed version before it.
	var last int64
	if err := f.pool.QueryRow(context.Background(), `SELECT correction_id FROM corrections WHERE kind = 'set_checkout'`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Correct(context.Background(), f.owner, Correction{Kind: Withdraw, SiteID: f.site, Withdraws: last, Reason: "fel", Author: "x"}); err != nil {
		t.Fatal(err)
	}
}

// checkBetween compares tap_resolutions_between with tap_resolutions
// filtered by site and time, for windows bounded at every tap's time, a
// microsecond either side, and unbounded.
func checkBetween(t *testing.T, pool *pgxpool.Pool, sites ...int64) {
	t.Helper()
	var times []time.Time
	rows, err := pool.Query(context.Background(), `SELECT DISTINCT event_time FROM taps ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	times, err = pgx.CollectRows(rows, pgx.RowTo[time.Time])
	if err != nil {
		t.Fatal(err)
	}
	bounds := []any{"-infinity", "infinity"}
	for _, tm := range times {
		bounds = append(bounds, tm, tm.Add(-time.Microsecond), tm.Add(time.Microsecond), tm.Add(-16*time.Hour), tm.Add(8*time.Hour))
	}
	n := 0
	for _, site := range sites {
		for _, lo := range bounds {
			for _, hi := range bounds {
				want := betweenRows(t, pool, `SELECT `+betweenCols+` FROM tap_resolutions
					WHERE site_id = $1 AND event_time >= $2::timestamptz AND event_time < $3::timestamptz
					ORDER BY terminal_id, store_epoch, seq`, site, lo, hi)
				got := betweenRows(t, pool, `SELECT `+betweenCols+` FROM tap_resolutions_between($1, $2, $3)
					ORDER BY terminal_id, store_epoch, seq`, site, lo, hi)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("tap_resolutions_between(%d, %v, %v) (-view +between):\n%s", site, lo, hi, diff)
				}
				n += len(got)
			}
		}
	}
	if n == 0 {
		t.Fatal("no window held a tap")
	}
}

// checkPeriodTimes checks what tap_resolutions_between relies on: the end
// of a current period that names a tap is at the tap's event time.
func checkPeriodTimes(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	bad := betweenRows(t, pool, `
		SELECT `+betweenCols+` FROM tap_resolutions tr
		WHERE mark = 'counted' AND NOT EXISTS (
			SELECT 1 FROM work_periods wp WHERE wp.site_id = tr.site_id AND wp.person_id = tr.person_id
			  AND wp.recorded_to = 'infinity'
			  AND ((wp.start_ref = 'tap:' || tr.terminal_id || '/' || tr.store_epoch || '/' || tr.seq AND wp.start_at = tr.event_time)
			    OR (wp.end_ref = 'tap:' || tr.terminal_id || '/' || tr.store_epoch || '/' || tr.seq AND wp.end_at = tr.event_time)))`)
	if len(bad) > 0 {
		t.Errorf("counted taps whose period end is not at their time: %+v", bad)
	}
}

func TestTapResolutionsBetween(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	betweenLedger(t, f, true)
	if n := scalar(t, pool, `SELECT count(*) FROM work_periods WHERE recorded_to <> 'infinity'`); n == 0 {
		t.Fatal("no closed period versions: the ledger misses the corrected cases")
	}
	if n := scalar(t, pool, `SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity' AND start_at IS NULL`); n == 0 {
		t.Fatal("no period with only an end")
	}
	if n := scalar(t, pool, `SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity' AND start_manual`); n == 0 {
		t.Fatal("no manual period")
	}
	checkPeriodTimes(t, pool)
	checkBetween(t, pool, f.site, f.site2)
}

// Migration 0014 on a ledger written before it: nothing changes, and
// tap_resolutions_between answers as the view does.
func TestMigrationAddsTapsBySiteAndTime(t *testing.T) {
	old := migratedTo(t, 13)
	f := newFixture(t, old)
	betweenLedger(t, f, false) // Correct needs 0014
	before := betweenRows(t, old, `SELECT `+betweenCols+` FROM tap_resolutions ORDER BY terminal_id, store_epoch, seq`)
	periods := scalar(t, old, `SELECT count(*) FROM work_periods`)
	if err := db.Migrate(t.Context(), old, nil); err != nil {
		t.Fatal(err)
	}
	old.Reset() // statements prepared before the migration (a server restarts to migrate)
	if diff := cmp.Diff(before, betweenRows(t, old, `SELECT `+betweenCols+` FROM tap_resolutions ORDER BY terminal_id, store_epoch, seq`)); diff != "" {
		t.Errorf("tap_resolutions after the migration (-before +after):\n%s", diff)
	}
	if n := scalar(t, old, `SELECT count(*) FROM work_periods`); n != periods {
		t.Errorf("%d work_periods rows after the migration, %d before", n, periods)
	}
	checkBetween(t, old, f.site, f.site2)
}

// Migration 0014 refuses a ledger with a period longer than 24 hours, which
// tap_resolutions_between would not find by its end; the database is left
// as it was.
func TestMigrationRefusesLongPeriod(t *testing.T) {
	old := migratedTo(t, 13)
	f := newFixture(t, old)
	exec(t, old, `INSERT INTO work_periods (site_id, person_id, org_id, start_at, end_at, start_ref, end_ref)
		VALUES ($1, $2, $3, '2026-11-16 07:00+01', '2026-11-17 07:00:01+01', 'tap:IN/1/1', 'tap:OUT/1/1')`, f.site, f.anna, f.owner)
	err := db.Migrate(t.Context(), old, nil)
	if err == nil {
		t.Fatal("Migrate succeeded with a period of 24 h 1 s")
	}
	if n := scalar(t, old, `SELECT count(*) FROM schema_migrations WHERE version = 14`); n != 0 {
		t.Errorf("migration 11 recorded after failing")
	}
}
