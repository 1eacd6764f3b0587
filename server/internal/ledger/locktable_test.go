package ledger

import (
	"context"
	"fmt"
	"testing"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pglocal"
)

// TestReconcileFitsTheLockTable: a step takes an advisory lock per tap and
// per (site, person), and PostgreSQL keeps them in a shared table of
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
	const days = 300
	var taps []tapSpec
	for d := range days {
		day := fmt.Sprintf("2026-%02d-%02d", 1+d/28, 1+d%28)
		taps = append(taps, tapSpec{"IN", "04A1B2C3D4E5F6", day + " 07:00:00"}, tapSpec{"OUT", "04A1B2C3D4E5F6", day + " 16:00:00"},
			tapSpec{"IN", "04FFEEDDCCBBAA", day + " 07:01:00"}, tapSpec{"OUT", "04FFEEDDCCBBAA", day + " 16:01:00"})
	}
	f.upload(t, taps...)
	r := NewReconciler(pool, ReconcilerOptions{})
	if err := r.Drain(ctx); err != nil {
		t.Fatalf("Drain on a server with 200 lock entries: %v", err)
	}
	if got := r.stepTaps(); got >= DefaultStepTaps || got < minStepTaps {
		t.Errorf("step of %d taps on a 200-entry lock table, want fewer than %d", got, DefaultStepTaps)
	}
	for _, p := range []int64{f.anna, f.bertil} {
		if got := len(f.periods(t, f.site, p)); got != days {
			t.Errorf("person %d has %d periods, want %d", p, got, days)
		}
	}
}

func TestStepTapsFor(t *testing.T) {
	for _, c := range []struct {
		capacity        int64
		workers, config int
		want            int
	}{
		{64 * 100, 2, DefaultStepTaps, 800},              // PostgreSQL's defaults
		{128 * 300, 2, DefaultStepTaps, DefaultStepTaps}, // pglocal's
		{200, 2, DefaultStepTaps, 25},
		{10, 2, DefaultStepTaps, minStepTaps},
		{1 << 30, 2, 100, 100},
		{10, 2, 3, 3},
	} {
		if got := StepTapsFor(c.capacity, c.workers, c.config); got != c.want {
			t.Errorf("StepTapsFor(%d, %d, %d) = %d, want %d", c.capacity, c.workers, c.config, got, c.want)
		}
	}
}
