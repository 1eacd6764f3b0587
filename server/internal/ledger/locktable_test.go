package ledger

import (
	"context"
	"fmt"
	"testing"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pglocal"
)

// TestReconcileFitsTheLockTable: a step takes an advisory lock per (site,
// person), and PostgreSQL keeps them in a shared table of
// max_locks_per_transaction × (max_connections + max_prepared_transactions)
// entries. On a server with a small table, a full-size step would fail
// with "out of shared memory" at every attempt and the ledger would stop;
// the reconciler sizes its steps to the table instead.
func TestReconcileFitsTheLockTable(t *testing.T) {
	ctx := context.Background()
	// 10 × (20 + 0) = 200 lock entries, for every backend together.
	c, err := pglocal.Start(ctx, pglocal.Options{ExtraConf: map[string]string{
		"max_connections": "20", "max_locks_per_transaction": "10"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	pool, err := db.Connect(ctx, c.URL("postgres"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := db.Migrate(ctx, pool, nil); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, pool)
	// 300 people, each with a card, each tapping in and out on two days:
	// a full-size step would hold 300 locks, more than the whole table.
	const people = 300
	exec(t, pool, `INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
		SELECT $1, 'Person ' || g, 'personnummer', '\x00', decode(lpad(to_hex(g), 16, '0'), 'hex'), '19800101-****'
		FROM generate_series(1, $2) g`, f.owner, people)
	exec(t, pool, `INSERT INTO cards (org_id, card_number, person_id)
		SELECT $1, 'CC' || lpad(g::text, 10, '0'), person_id FROM persons, generate_series(1, $2) g
		WHERE name = 'Person ' || g`, f.owner, people)
	var taps []tapSpec
	for _, day := range []string{"2026-11-19", "2026-11-20"} {
		for p := 1; p <= people; p++ {
			card := fmt.Sprintf("CC%010d", p)
			taps = append(taps, tapSpec{"IN", card, day + " 07:00:00"}, tapSpec{"OUT", card, day + " 16:00:00"})
		}
	}
	f.upload(t, taps...)
	r := NewReconciler(pool, ReconcilerOptions{})
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain on a server with 200 lock entries: %v", err)
	}
	if got := r.stepTaps(); got >= DefaultStepTaps || got < minStepTaps {
		t.Errorf("step of %d taps on a 200-entry lock table, want fewer than %d", got, DefaultStepTaps)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity'`); n != 2*people {
		t.Errorf("%d periods, want %d", n, 2*people)
	}
}

func TestStepTapsFor(t *testing.T) {
	for _, c := range []struct {
		capacity        int64
		workers, config int
		want            int
	}{
		{64 * 100, 2, DefaultStepTaps, 1600},             // PostgreSQL's defaults
		{128 * 300, 2, DefaultStepTaps, DefaultStepTaps}, // pglocal's
		{200, 2, DefaultStepTaps, 50},
		{10, 2, DefaultStepTaps, minStepTaps},
		{1 << 30, 2, 100, 100},
		{10, 2, 3, 3},
	} {
		if got := StepTapsFor(c.capacity, c.workers, c.config); got != c.want {
			t.Errorf("StepTapsFor(%d, %d, %d) = %d, want %d", c.capacity, c.workers, c.config, got, c.want)
		}
	}
}
