package ledger

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// resolutionRow is a row of the tap_resolutions view, as the readers see it.
type resolutionRow struct {
	Terminal         string
	Seq              int64
	Site, Person     *int64
	Card, Mode, Mark string
	Direction        *string
	Voided           bool
}

func resolutions(t testing.TB, pool *pgxpool.Pool) []resolutionRow {
	t.Helper()
	rows, err := pool.Query(context.Background(), `
		SELECT terminal_id, seq, site_id, person_id, card_ident, mode, mark, direction, voided
		FROM tap_resolutions ORDER BY terminal_id, seq`)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[resolutionRow])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A batch sent again after its taps were taken in, when the registry has
// since given the card to someone else (a terminal that never saw the
// acknowledgement): nothing is queued again, and the taps stay where they
// were first taken in.
func TestReconcileResentBatchAfterCardChangedHands(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	subs := f.submissions(tapSpec{"TOG", "AA0000000001", "2026-11-20 07:00:00"}, tapSpec{"TOG", "AA0000000001", "2026-11-20 16:00:00"})
	if _, err := f.ingest.Apply(context.Background(), subs); err != nil {
		t.Fatal(err)
	}
	drain(t, r)
	exec(t, pool, `UPDATE cards SET org_id = $1, person_id = $2 WHERE card_number = 'AA0000000001'`, f.sub, f.bertil)
	exec(t, pool, `DELETE FROM card_chips WHERE chip_uid = '04A1B2C3D4E5F6'`)
	if _, err := f.ingest.Apply(context.Background(), subs); err != nil {
		t.Fatal(err)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox`); n != 0 {
		t.Errorf("%d inbox rows after a resent batch, want 0", n)
	}
	drain(t, r)
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 16:00"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna (-want +got):\n%s", diff)
	}
	if got := f.periods(t, f.site, f.bertil); len(got) != 0 {
		t.Errorf("Bertil has periods %v, want none", got)
	}
	if n, taps := scalar(t, pool, `SELECT count(*) FROM tap_resolutions`), scalar(t, pool, `SELECT count(*) FROM taps`); n != taps {
		t.Errorf("%d resolutions of %d taps", n, taps)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM tap_marks`); n != 0 {
		t.Errorf("%d tap_marks rows, want 0 (both taps count)", n)
	}
}

// Migration 0010 on a ledger written before it (tap_resolutions a table
// with a row per tap): readers see the same rows, and the ledger goes on as
// if every tap had been taken in after it.
func TestMigrationMovesCountedTapsToPeriods(t *testing.T) {
	old := migratedTo(t, 8)
	f := newFixture(t, old)
	taps := []tapSpec{
		{"TOG", "AA0000000001", "2026-11-20 07:00:00"},
		{"TOG", "AA0000000001", "2026-11-20 07:00:10"}, // a double tap
		{"IN", "XX9999999999", "2026-11-20 07:05:00"},  // an unknown card
		{"TOG", "AA0000000001", "2026-11-20 16:00:00"},
		{"IN", "BB0000000002", "2026-11-20 07:30:00"},
		{"OUT", "BB0000000002", "2026-11-20 15:30:00"},
	}
	withoutInboxTaps(t, old, func() { f.upload(t, taps...) })
	// What the reconciler before 0010 wrote: a row per tap, periods
	// derived per person.
	exec(t, old, `DELETE FROM reconcile_inbox`)
	rows, err := old.Query(t.Context(), `
		SELECT t.terminal_id, t.store_epoch, t.seq, t.card_id, t.event_time, a.direction
		FROM taps t JOIN terminal_assignments a USING (terminal_id) ORDER BY t.event_time`)
	if err != nil {
		t.Fatal(err)
	}
	type tp struct {
		id   TapID
		card string
		ev   Event
		mode string
	}
	var all []tp
	for rows.Next() {
		var x tp
		if err := rows.Scan(&x.id.Terminal, &x.id.Epoch, &x.id.Seq, &x.card, &x.ev.At, &x.mode); err != nil {
			t.Fatal(err)
		}
		x.ev.Ref = x.id.Ref()
		x.ev.Mode, _ = ParseMode(x.mode)
		all = append(all, x)
	}
	rows.Close()
	people := map[string]int64{"AA0000000001": f.anna, "BB0000000002": f.bertil}
	for _, person := range []int64{f.anna, f.bertil} {
		var evs []Event
		for _, x := range all {
			if people[x.card] == person {
				evs = append(evs, x.ev)
			}
		}
		d := Derive(evs, DefaultRules)
		for _, p := range d.Periods {
			exec(t, old, `INSERT INTO work_periods (site_id, person_id, org_id, start_at, end_at, start_ref, end_ref, missing_checkout, missing_checkin)
				SELECT $1, $2, org_id, $3, $4, $5, $6, $7, $8 FROM persons WHERE person_id = $2`,
				f.site, person, nullTime(p.Start), nullTime(p.End), nullString(p.StartRef), nullString(p.EndRef), p.MissingCheckout, p.MissingCheckin)
		}
		for _, x := range all {
			if people[x.card] != person {
				continue
			}
			var dir *string
			if m, ok := d.Directions[x.ev.Ref]; ok {
				s := m.String()
				dir = &s
			}
			exec(t, old, `INSERT INTO tap_resolutions (terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, direction, mark)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				x.id.Terminal, x.id.Epoch, x.id.Seq, f.site, person, x.ev.At, x.card, x.mode, dir, d.Marks[x.ev.Ref].String())
		}
	}
	for _, x := range all {
		if _, ok := people[x.card]; !ok {
			exec(t, old, `INSERT INTO tap_resolutions (terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, mark)
				VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, 'unknown_card')`, x.id.Terminal, x.id.Epoch, x.id.Seq, f.site, x.ev.At, x.card, x.mode)
		}
	}
	before := resolutions(t, old)

	if err := db.Migrate(t.Context(), old, nil); err != nil {
		t.Fatal(err)
	}
	old.Reset() // statements prepared before the migration (a server restarts to migrate)
	if diff := cmp.Diff(before, resolutions(t, old)); diff != "" {
		t.Errorf("tap_resolutions after the migration (-before +after):\n%s", diff)
	}
	if n := scalar(t, old, `SELECT count(*) FROM tap_marks`); n != 2 {
		t.Errorf("%d tap_marks rows, want 2 (the double tap, the unknown card)", n)
	}

	// A late tap re-derives the migrated periods as it would periods
	// written after the migration.
	late := tapSpec{"TOG", "AA0000000001", "2026-11-20 12:00:00"}
	f.upload(t, late)
	drain(t, NewReconciler(old, ReconcilerOptions{}))
	sameAsFresh(t, f, taps, []tapSpec{late})
}

// sameAsFresh checks that the migrated fixture f holds the ledger a fresh
// database makes of the same taps, uploaded in the same groups.
func sameAsFresh(t *testing.T, f *fixture, uploads ...[]tapSpec) {
	t.Helper()
	fresh := pgtest.New(t)
	g := newFixture(t, fresh)
	for _, taps := range uploads {
		g.upload(t, taps...)
	}
	drain(t, NewReconciler(fresh, ReconcilerOptions{}))
	for _, p := range []int64{f.anna, f.bertil} {
		if diff := cmp.Diff(g.periods(t, g.site, p), f.periods(t, f.site, p)); diff != "" {
			t.Errorf("periods of person %d, migrated (-fresh +migrated):\n%s", p, diff)
		}
	}
	if diff := cmp.Diff(resolutions(t, fresh), resolutions(t, f.pool)); diff != "" {
		t.Errorf("tap_resolutions, migrated (-fresh +migrated):\n%s", diff)
	}
}

// migratedTo returns a database migrated up to version last.
func migratedTo(t *testing.T, last int) *pgxpool.Pool {
	t.Helper()
	pool := pgtest.NewEmpty(t)
	upTo := fstest.MapFS{}
	dir := filepath.Join("..", "db", "migrations")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() <= fmt.Sprintf("%04d_~", last) {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			upTo[e.Name()] = &fstest.MapFile{Data: data}
		}
	}
	if err := db.MigrateFS(t.Context(), pool, upTo, nil); err != nil {
		t.Fatal(err)
	}
	return pool
}

// Migrations 0011 and 0013 on an inbox queued before them: ranges that
// overlap each other and taps already taken in (reconciled_ranges), with no
// tap data. Afterwards each tap not yet taken in is queued once, with its
// card id and event time, and the ledger comes out as if every tap had been
// queued once from the start.
func TestMigrationQueuesEachTapOnce(t *testing.T) {
	old := migratedTo(t, 10)
	f := newFixture(t, old)
	first := []tapSpec{
		{"TOG", "AA0000000001", "2026-11-19 07:00:00"},
		{"TOG", "AA0000000001", "2026-11-19 16:00:00"},
		{"TOG", "AA0000000001", "2026-11-20 07:00:00"},
		{"IN", "BB0000000002", "2026-11-20 07:30:00"},
	}
	later := []tapSpec{
		{"TOG", "AA0000000001", "2026-11-20 16:00:00"},
		{"TOG", "AA0000000001", "2026-11-21 07:00:00"},
		{"OUT", "BB0000000002", "2026-11-20 15:30:00"},
		{"TOG", "AA0000000001", "2026-11-21 16:00:00"},
	}
	withoutInboxTaps(t, old, func() {
		f.upload(t, first...)
		drain(t, NewReconciler(old, ReconcilerOptions{}))
		f.upload(t, later...)
	})
	// What the reconciler before 0011 recorded of them, and what the
	// ingest before it queued for the later taps: overlapping ranges,
	// reaching back over taps taken in.
	exec(t, old, `INSERT INTO reconciled_ranges (terminal_id, store_epoch, seq_from, seq_to) VALUES ('TOG', 1, 1, 3), ('IN', 1, 1, 1)`)
	exec(t, old, `DELETE FROM reconcile_inbox`)
	exec(t, old, `INSERT INTO reconcile_inbox (terminal_id, store_epoch, seq_from, seq_to)
		VALUES ('TOG', 1, 2, 5), ('OUT', 1, 1, 1), ('TOG', 1, 4, 4), ('TOG', 1, 3, 6), ('TOG', 1, 6, 6), ('IN', 1, 1, 1)`)

	if err := db.Migrate(t.Context(), old, nil); err != nil {
		t.Fatal(err)
	}
	old.Reset() // statements prepared before the migration (a server restarts to migrate)
	type inboxRow struct {
		Terminal string
		From, To int64
	}
	rows, err := old.Query(t.Context(), `SELECT terminal_id, seq_from, seq_to FROM reconcile_inbox ORDER BY inbox_id`)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[inboxRow])
	if err != nil {
		t.Fatal(err)
	}
	// In the order first queued: TOG's 4 and 5 by the first row, OUT's 1
	// by the second, TOG's 6 by the fourth; IN's tap was taken in.
	want := []inboxRow{{"TOG", 4, 6}, {"OUT", 1, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("inbox after 0011 (-want +got):\n%s", diff)
	}
	if n := scalar(t, old, `SELECT count(*) FROM pg_tables WHERE tablename = 'reconciled_ranges'`); n != 0 {
		t.Errorf("reconciled_ranges is still there")
	}
	assertQueuedOnce(t, old)
	// 0013 gave each row its taps' card ids and event times.
	if n := scalar(t, old, `
		SELECT count(*) FROM reconcile_inbox i
		CROSS JOIN LATERAL (
			SELECT array_agg(t.card_id ORDER BY t.seq) AS cards, array_agg(t.event_time ORDER BY t.seq) AS times FROM taps t
			WHERE t.terminal_id = i.terminal_id AND t.store_epoch = i.store_epoch AND t.seq BETWEEN i.seq_from AND i.seq_to) t
		WHERE i.card_ids IS DISTINCT FROM t.cards OR i.event_times IS DISTINCT FROM t.times`); n != 0 {
		t.Errorf("%d inbox rows without their taps' card ids and times", n)
	}
	drain(t, NewReconciler(old, ReconcilerOptions{}))

	sameAsFresh(t, f, first, later)
}

// withoutInboxTaps runs f, which stores taps with this package's ingest (and
// may reconcile them), on a database migrated to before 0013: it adds the
// inbox's tap columns for f, and then drops them again with what f queued,
// as the ingest of the time queued nothing of the kind.
func withoutInboxTaps(t *testing.T, pool *pgxpool.Pool, f func()) {
	t.Helper()
	exec(t, pool, `ALTER TABLE reconcile_inbox ADD COLUMN card_ids text[], ADD COLUMN event_times timestamptz[]`)
	f()
	exec(t, pool, `ALTER TABLE reconcile_inbox DROP COLUMN card_ids, DROP COLUMN event_times`)
}
