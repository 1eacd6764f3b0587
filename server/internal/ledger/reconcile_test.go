package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/syncproto"
)

func drain(t testing.TB, r *Reconciler) {
	t.Helper()
	if err := r.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestReconcileInAtAOutAtB(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	f.upload(t,
		tapSpec{"IN", "AA0000000001", "2026-11-20 07:00:00"},
		tapSpec{"OUT", "04A1B2C3D4E5F6", "2026-11-20 16:00:00"}, // by chip UID
		tapSpec{"TOG", "BB0000000002", "2026-11-20 07:05:00"},
	)
	drain(t, r)
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 16:00"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"11-20 07:05 - ?"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("Bertil, on site now (-want +got):\n%s", diff)
	}
	// Bertil's period belongs to his employer, the subcontractor.
	if org := scalar(t, pool, `SELECT org_id FROM work_periods WHERE person_id = $1`, f.bertil); org != f.sub {
		t.Errorf("Bertil's period org = %d, want the subcontractor %d", org, f.sub)
	}
}

func TestReconcileUnknownCardAndUnassignedTerminal(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	exec(t, pool, `INSERT INTO terminals (terminal_id) VALUES ('LOOSE')`)
	r := NewReconciler(pool, ReconcilerOptions{})
	f.upload(t,
		tapSpec{"IN", "XX9999999999", "2026-11-20 07:00:00"},
		tapSpec{"LOOSE", "AA0000000001", "2026-11-20 07:00:00"},
	)
	drain(t, r)
	for card, want := range map[string]string{"XX9999999999": "unknown_card", "AA0000000001": "unassigned"} {
		var mark string
		if err := pool.QueryRow(context.Background(), `SELECT mark FROM tap_resolutions WHERE card_ident = $1`, card).Scan(&mark); err != nil || mark != want {
			t.Errorf("mark of %s = %q, %v; want %q", card, mark, err, want)
		}
	}
	if n := scalar(t, pool, `SELECT count(*) FROM work_periods`); n != 0 {
		t.Errorf("periods = %d, want none", n)
	}
}

func TestReconcileCardOfAnotherTenantIsNotResolved(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	// A third tenant, not on the site, has a card with Anna's number.
	other := scalar(t, pool, `INSERT INTO organisations (name, org_number) VALUES ('Annat AB', '556000-0003') RETURNING org_id`)
	p := scalar(t, pool, `INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
		VALUES ($1, 'Cecilia', 'personnummer', '\x00', '\x01', '19800101-****') RETURNING person_id`, other)
	exec(t, pool, `INSERT INTO cards (org_id, card_number, person_id) VALUES ($1, 'CC0000000003', $2)`, other, p)
	r := NewReconciler(pool, ReconcilerOptions{})
	f.upload(t, tapSpec{"IN", "CC0000000003", "2026-11-20 07:00:00"})
	drain(t, r)
	if n := scalar(t, pool, `SELECT count(*) FROM tap_resolutions WHERE person_id IS NOT NULL`); n != 0 {
		t.Errorf("a card of a tenant not on the site was resolved")
	}
}

func TestReconcileLateTapRederivesOnlyItsSegment(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	// Monday and Tuesday on the toggle reader, more than MaxOpen apart;
	// a Monday tap arrives late, from a terminal that was offline. In toggle
	// mode it shifts Monday's later taps; Tuesday must stay as it was.
	f.upload(t,
		tapSpec{"TOG", "AA0000000001", "2026-11-16 07:00:00"},
		tapSpec{"TOG", "AA0000000001", "2026-11-16 14:00:00"},
		tapSpec{"TOG", "AA0000000001", "2026-11-17 07:30:00"},
		tapSpec{"TOG", "AA0000000001", "2026-11-17 16:00:00"},
	)
	drain(t, r)
	tuesday := scalar(t, pool, `SELECT period_id FROM work_periods WHERE start_at::date = '2026-11-17'`)
	f.upload(t, tapSpec{"TOG", "AA0000000001", "2026-11-16 11:30:00"})
	drain(t, r)
	want := []string{"11-16 07:00 - 11-16 11:30", "11-16 14:00 - ?", "11-17 07:30 - 11-17 16:00"}
	if diff := cmp.Diff(want, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after the late tap (-want +got):\n%s", diff)
	}
	if still := scalar(t, pool, `SELECT count(*) FROM work_periods WHERE period_id = $1 AND recorded_to = 'infinity'`, tuesday); still != 1 {
		t.Errorf("Tuesday's period was re-versioned; a late Monday tap must touch only Monday")
	}
	// The old Monday version is kept, closed, not deleted.
	if n := scalar(t, pool, `SELECT count(*) FROM work_periods WHERE recorded_to <> 'infinity'`); n != 1 {
		t.Errorf("superseded versions = %d, want 1 (Monday's old period)", n)
	}
}

func TestReconcileTwoSitesOneDay(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	f.upload(t,
		tapSpec{"TOG", "BB0000000002", "2026-11-20 07:00:00"},
		tapSpec{"TOG", "BB0000000002", "2026-11-20 11:00:00"},
		tapSpec{"TOG2", "BB0000000002", "2026-11-20 12:00:00"},
		tapSpec{"TOG2", "BB0000000002", "2026-11-20 16:00:00"},
	)
	drain(t, r)
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 11:00"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("site 1 (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"11-20 12:00 - 11-20 16:00"}, f.periods(t, f.site2, f.bertil)); diff != "" {
		t.Errorf("site 2 (-want +got):\n%s", diff)
	}
}

// TestReconcileOrderFreeProperty: a fortnight of messy taps on three
// readers, uploaded in random batches and order with repeats, reconciled at
// random moments, always leaves the same current ledger, and that ledger is
// the pure derivation of all the taps from scratch.
func TestReconcileOrderFreeProperty(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	var specs []tapSpec
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, stockholm)
	terms := []string{"IN", "OUT", "TOG"}
	for d := 0; d < 14; d++ {
		at := day.AddDate(0, 0, d).Add(6*time.Hour + time.Duration(rng.IntN(120))*time.Minute)
		for k := rng.IntN(5); k >= 0; k-- {
			specs = append(specs, tapSpec{terms[rng.IntN(3)], "AA0000000001", at.Format("2006-01-02 15:04:05")})
			// Mostly hours apart, sometimes seconds (double taps).
			if rng.IntN(4) == 0 {
				at = at.Add(time.Duration(rng.IntN(60)) * time.Second)
			} else {
				at = at.Add(time.Duration(rng.IntN(10*3600)) * time.Second)
			}
		}
	}
	var want []string
	for round := 0; round < 4; round++ {
		pool := pgtest.New(t)
		f := newFixture(t, pool)
		r := NewReconciler(pool, ReconcilerOptions{})
		groups := f.deliveries(specs, rng)
		for i, g := range groups {
			if _, err := f.ingest.Apply(context.Background(), g); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(3) == 0 || i == len(groups)-1 {
				drain(t, r)
			}
		}
		got := f.periods(t, f.site, f.anna)
		if round == 0 {
			want = got
			if diff := cmp.Diff(pureLedger(specs), got); diff != "" {
				t.Fatalf("reconciled ledger differs from a pure derivation of all taps (-pure +db):\n%s", diff)
			}
			t.Logf("%d taps give %d periods", len(specs), len(got))
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("round %d: different ledger (-round 0 +this):\n%s", round, diff)
		}
	}
}

// pureLedger derives the fixture's periods for specs without a database,
// formatted like fixture.periods.
func pureLedger(specs []tapSpec) []string {
	modes := map[string]Mode{"IN": ModeIn, "OUT": ModeOut, "TOG": ModeToggle}
	seqs := map[string]int64{}
	var evs []Event
	for _, sp := range specs {
		seqs[sp.terminal]++
		at, _ := time.ParseInLocation("2006-01-02 15:04:05", sp.when, stockholm)
		evs = append(evs, Event{Ref: TapID{sp.terminal, 1, seqs[sp.terminal]}.Ref(), At: at, Mode: modes[sp.terminal]})
	}
	var out []string
	for _, p := range Derive(evs, DefaultRules).Periods {
		s := func(t time.Time) string {
			if t.IsZero() {
				return "?"
			}
			return t.In(stockholm).Format("01-02 15:04")
		}
		line := s(p.Start) + " - " + s(p.End)
		if p.MissingCheckout {
			line += " missing-checkout"
		}
		if p.MissingCheckin {
			line += " missing-checkin"
		}
		out = append(out, line)
	}
	return out
}

// TestReconcileWrongDeviceClock: a kiosk that booted with its clock at
// 1970 still places taps at the right time, through the monotonic clock
// and the offset measured at Hello, and says so.
func TestReconcileWrongDeviceClock(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	helloAt := sthlm("2026-11-20 16:00:00")
	sess := &ingest.Session{TerminalID: "TOG", StoreEpoch: 1, HelloReceived: helloAt,
		HelloClock: syncproto.Clock{WallMicros: 3600e6, BootID: "boot-x", MonoNanos: 40000e9}}
	taps := []syncproto.Tap{
		// 9 h and 5 min before the Hello by the monotonic clock.
		{Seq: 1, CardID: "AA0000000001", Clock: syncproto.Clock{WallMicros: 3600e6 - 9*3600e6, BootID: "boot-x", MonoNanos: 40000e9 - 9*3600e9}},
		{Seq: 2, CardID: "AA0000000001", Clock: syncproto.Clock{WallMicros: 3600e6 - 300e6, BootID: "boot-x", MonoNanos: 40000e9 - 300e9}},
	}
	if _, err := f.ingest.Apply(context.Background(), []*ingest.Submission{{Session: sess, Batch: &syncproto.Batch{Taps: taps}, Received: helloAt}}); err != nil {
		t.Fatal(err)
	}
	drain(t, r)
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 15:55"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM taps WHERE time_source = 'offset' AND device_wall_us < 0`); n != 1 {
		t.Errorf("the raw device clock is not kept with the derived time (%d rows)", n)
	}
	// The taps are shown flagged, with how their time was established.
	rows, err := NewStore(pool, Rules{}).Taps(context.Background(), f.owner, TapQuery{SiteID: f.site})
	if err != nil || len(rows) != 2 {
		t.Fatalf("Taps = %d rows, %v", len(rows), err)
	}
	for _, r := range rows {
		if !r.ClockOff || r.TimeSource != "offset" || r.DeviceTime.Year() != 1969 && r.DeviceTime.Year() != 1970 {
			t.Errorf("tap %s: ClockOff %v, TimeSource %q, DeviceTime %v; want flagged, offset, the 1970 clock",
				r.Tap.Ref(), r.ClockOff, r.TimeSource, r.DeviceTime)
		}
	}
}

// TestReconcileTerminalOfflineForAWeek: a week of taps from a kiosk that
// was offline arrives at once, after the rest of the site's taps.
func TestReconcileTerminalOfflineForAWeek(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	// The IN reader synced all week; the OUT reader was offline.
	var ins, outs []tapSpec
	for d := 16; d <= 20; d++ {
		ins = append(ins, tapSpec{"IN", "AA0000000001", fmt.Sprintf("2026-11-%d 07:00:00", d)})
		outs = append(outs, tapSpec{"OUT", "AA0000000001", fmt.Sprintf("2026-11-%d 16:00:00", d)})
	}
	f.upload(t, ins...)
	drain(t, r)
	if got := f.periods(t, f.site, f.anna); len(got) != 5 {
		t.Fatalf("before the offline week arrives: %q", got)
	}
	f.upload(t, outs...)
	drain(t, r)
	var want []string
	for d := 16; d <= 20; d++ {
		want = append(want, fmt.Sprintf("11-%d 07:00 - 11-%d 16:00", d, d))
	}
	if diff := cmp.Diff(want, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after the offline week (-want +got):\n%s", diff)
	}
}

// TestReconcileOutOfOrderBatches: batches that arrive out of order and
// again (a retried upload, a reconnect) queue each new tap once, in inbox
// rows that never share a tap, and the ledger is what the taps say.
func TestReconcileOutOfOrderBatches(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	subs := f.submissions(
		tapSpec{"IN", "AA0000000001", "2026-11-19 07:00:00"},
		tapSpec{"IN", "XX9999999999", "2026-11-19 07:10:00"}, // an unknown card
		tapSpec{"IN", "AA0000000001", "2026-11-20 07:00:00"},
		tapSpec{"IN", "AA0000000001", "2026-11-21 07:00:00"},
		tapSpec{"OUT", "AA0000000001", "2026-11-19 16:00:00"},
		tapSpec{"OUT", "AA0000000001", "2026-11-20 16:00:00"},
		tapSpec{"OUT", "AA0000000001", "2026-11-21 16:00:00"},
	)
	in := func(from, to int) *ingest.Submission { // IN's taps from..to as one batch
		b := *subs[from-1]
		b.Batch = &syncproto.Batch{BatchID: uint64(from), Taps: nil}
		for _, s := range subs[from-1 : to] {
			b.Batch.Taps = append(b.Batch.Taps, s.Batch.Taps...)
		}
		return &b
	}
	for _, group := range [][]*ingest.Submission{
		{in(3, 3), subs[5]}, // IN's third tap before the first two; OUT's second
		{in(1, 4), subs[4]}, // IN's all four again, one of them held
		{in(2, 3), subs[4]}, // held, all of them
		{subs[6], subs[6]},  // one tap twice in one transaction
	} {
		if _, err := f.ingest.Apply(context.Background(), group); err != nil {
			t.Fatal(err)
		}
	}
	assertQueuedOnce(t, pool)
	drain(t, r)
	want := []string{"11-19 07:00 - 11-19 16:00", "11-20 07:00 - 11-20 16:00", "11-21 07:00 - 11-21 16:00"}
	if diff := cmp.Diff(want, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna (-want +got):\n%s", diff)
	}
	if n, taps := scalar(t, pool, `SELECT count(*) FROM tap_resolutions`), scalar(t, pool, `SELECT count(*) FROM taps`); n != taps || taps != 7 {
		t.Errorf("%d resolutions of %d taps, want 7 of 7", n, taps)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox`); n != 0 {
		t.Errorf("%d inbox rows left", n)
	}
}

// assertQueuedOnce checks that the inbox queues every stored tap not yet
// taken in exactly once, and nothing else: no two inbox rows share a tap,
// and every range holds only stored taps at its ends.
func assertQueuedOnce(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if n := scalar(t, pool, `
		SELECT count(*) FROM (
			SELECT t.terminal_id, t.store_epoch, t.seq FROM taps t
			JOIN reconcile_inbox i ON i.terminal_id = t.terminal_id AND i.store_epoch = t.store_epoch
			                      AND t.seq BETWEEN i.seq_from AND i.seq_to
			GROUP BY 1, 2, 3 HAVING count(*) > 1) d`); n != 0 {
		t.Errorf("%d taps queued more than once", n)
	}
	if n := scalar(t, pool, `
		SELECT count(*) FROM reconcile_inbox i
		WHERE NOT EXISTS (SELECT 1 FROM taps t WHERE t.terminal_id = i.terminal_id AND t.store_epoch = i.store_epoch AND t.seq = i.seq_from)
		   OR NOT EXISTS (SELECT 1 FROM taps t WHERE t.terminal_id = i.terminal_id AND t.store_epoch = i.store_epoch AND t.seq = i.seq_to)`); n != 0 {
		t.Errorf("%d inbox rows begin or end at a seq with no stored tap", n)
	}
}

// TestReconcileNotifiesSites: the sites whose periods changed are reported
// after the commit, and so is a site where an unknown card was tapped (its
// manager's page lists unknown cards to assign).
func TestReconcileNotifiesSites(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	var mu sync.Mutex
	var calls []int64 // the sites of the calls since the last drain
	r := NewReconciler(pool, ReconcilerOptions{OnChange: func(sites []int64) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, sites...)
	}})
	var got [][]int64 // per drain, the sites reported
	drained := func() {
		drain(t, r)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, slices.Compact(slices.Sorted(slices.Values(calls))))
		calls = nil
	}
	f.upload(t, tapSpec{"IN", "AA0000000001", "2026-11-20 07:00:00"})
	drained()
	f.upload(t, tapSpec{"TOG2", "XX9999999999", "2026-11-20 07:10:00"})
	drained()
	f.upload(t, tapSpec{"IN", "XX9999999999", "2026-11-20 07:20:00"}, tapSpec{"TOG2", "BB0000000002", "2026-11-20 07:20:00"})
	drained()
	want := [][]int64{{f.site}, {f.site2}, {f.site, f.site2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("sites reported per drain (-want +got):\n%s", diff)
	}
}

// TestReconcileSharesABurst: two workers take a burst of 20 queued taps,
// with steps of at most 8, in two rounds of two equal steps of 5, not as
// 8, 8 and 4 (which leaves one worker idle for the last step). Each
// round's second step is taken while the first is still open.
func TestReconcileSharesABurst(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{StepTaps: 8, Workers: 2})
	for m := range 20 { // twenty inbox rows of one tap each
		f.upload(t, tapSpec{"TOG", fmt.Sprintf("XX%010d", m), fmt.Sprintf("2026-11-20 07:%02d:00", m)})
	}
	var got []int
	for range 2 {
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		first, _, err := r.step(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		second, err := r.Step(ctx) // the other worker, meanwhile
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		got = append(got, first, second)
	}
	if diff := cmp.Diff([]int{5, 5, 5, 5}, got); diff != "" {
		t.Errorf("taps per step (-want +got):\n%s", diff)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox`); n != 0 {
		t.Errorf("%d inbox rows left", n)
	}
}

// TestReconcileStepDefersABusyPerson: a step whose taps include a person
// another step is deriving (a double tap split between two steps) does not
// wait for that step: it takes the other people's taps in and queues that
// person's again, for after the other step's commit. Waiting, it held every
// other person of its step too, and one shared person made two workers'
// steps run one after the other (3 % double taps cost the morning peak of
// BenchmarkReconcile a fifth of its throughput).
func TestReconcileStepDefersABusyPerson(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{StepTaps: 1, Workers: 1})
	f.upload(t, tapSpec{"TOG", "AA0000000001", "2026-11-20 07:00:00"})
	f.upload(t, // one inbox row: Anna's double tap and two more, then Bertil
		tapSpec{"TOG", "AA0000000001", "2026-11-20 07:00:10"}, tapSpec{"TOG", "AA0000000001", "2026-11-20 12:00:00"},
		tapSpec{"TOG", "AA0000000001", "2026-11-20 13:00:00"}, tapSpec{"TOG", "BB0000000002", "2026-11-20 07:05:00"})
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox`); n != 2 {
		t.Fatalf("%d inbox rows, want 2", n)
	}
	// The first step derives Anna and holds her until it commits.
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if n, _, err := r.step(ctx, tx); err != nil || n != 1 {
		t.Fatalf("first step = %d, %v; want 1 tap", n, err)
	}
	// Meanwhile the second. Should it wait for Anna, the first step is
	// rolled back to let it go on, and the test fails.
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := r.Step(ctx)
		done <- result{n, err}
	}()
	var second result
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
wait:
	for {
		select {
		case second = <-done:
			break wait
		case <-tick.C:
			if scalar(t, pool, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`) > 0 {
				tx.Rollback(ctx)
				t.Fatalf("the second step waits for the first step's person; result once it goes on: %+v", <-done)
			}
		}
	}
	if second.err != nil || second.n != 1 {
		t.Fatalf("second step = %+v, want Bertil's tap taken in and Anna's left", second)
	}
	if diff := cmp.Diff([]string{"11-20 07:05 - ?"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("Bertil after the second step (-want +got):\n%s", diff)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox WHERE seq_from = 2 AND seq_to = 4`); n != 1 {
		t.Errorf("Anna's three taps are queued as %d runs of seq 2-4, want 1", n)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox WHERE seq_from > 1`); n != 1 {
		t.Errorf("%d inbox rows after the first step's, want 1", n)
	}
	assertQueuedOnce(t, pool)
	// While the first step holds Anna, her taps stay queued, and Drain
	// keeps trying until the first step commits.
	if n, err := r.Step(ctx); err != nil || n != 0 {
		t.Errorf("a step while Anna is held = %d, %v; want 0 taps", n, err)
	}
	drained := make(chan error, 1)
	go func() { drained <- r.Drain(ctx) }()
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) while Anna's taps were held and queued", err)
	case <-time.After(5 * drainRetry):
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 12:00", "11-20 13:00 - ?"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna (-want +got):\n%s", diff)
	}
	var marks []string
	for _, rr := range resolutions(t, pool) {
		marks = append(marks, fmt.Sprintf("%d %s", rr.Seq, rr.Mark))
	}
	if diff := cmp.Diff([]string{"1 counted", "2 double", "3 counted", "4 counted", "5 counted"}, marks); diff != "" {
		t.Errorf("marks by seq (-want +got):\n%s", diff)
	}
	if n := scalar(t, pool, `SELECT count(*) FROM reconcile_inbox`); n != 0 {
		t.Errorf("%d inbox rows left", n)
	}
}

// TestReconcileStepTaps: a step takes inbox rows while they hold fewer
// than StepTaps taps, and a larger row whole.
func TestReconcileStepTaps(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{StepTaps: 3})
	for h := 6; h < 11; h++ { // five inbox rows of one tap each
		f.upload(t, tapSpec{"TOG", "AA0000000001", fmt.Sprintf("2026-11-20 %02d:00:00", h)})
	}
	f.upload(t, // one row of four taps
		tapSpec{"IN", "BB0000000002", "2026-11-20 07:00:00"}, tapSpec{"IN", "BB0000000002", "2026-11-20 08:00:00"},
		tapSpec{"IN", "BB0000000002", "2026-11-20 09:00:00"}, tapSpec{"IN", "BB0000000002", "2026-11-20 10:00:00"})
	var got []int
	for {
		n, err := r.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, n)
	}
	if diff := cmp.Diff([]int{3, 2, 4}, got); diff != "" {
		t.Errorf("taps per step (-want +got):\n%s", diff)
	}
}

// TestReconcileReplicas: three server replicas store the same taps at
// once, in batches that repeat each other and arrive out of order, while
// two reconcilers (one per replica) take them in. Each tap is queued and
// taken in once, and the ledger is the pure derivation of the taps.
func TestReconcileReplicas(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	var specs []tapSpec
	for d := 2; d < 12; d++ {
		in := time.Date(2026, 11, d, 6, rng.IntN(60), rng.IntN(60), 0, stockholm)
		specs = append(specs,
			tapSpec{"TOG", "AA0000000001", in.Format("2006-01-02 15:04:05")},
			tapSpec{[]string{"OUT", "TOG", "IN"}[rng.IntN(3)], "AA0000000001", in.Add(time.Duration(8*3600+rng.IntN(4*3600)) * time.Second).Format("2006-01-02 15:04:05")},
			tapSpec{"IN", "XX9999999999", in.Add(time.Minute).Format("2006-01-02 15:04:05")})
	}
	groups := f.deliveries(specs, rng)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	errs := make(chan error, 5)
	for range 2 {
		go func() {
			errs <- NewReconciler(pool, ReconcilerOptions{StepTaps: 4, PollInterval: time.Millisecond}).Run(ctx)
		}()
	}
	var ingested sync.WaitGroup
	for replica := range 3 {
		st := ingest.NewStore(pool, nil)
		order := rand.New(rand.NewPCG(seed, uint64(replica))).Perm(len(groups))
		ingested.Go(func() {
			for _, i := range order {
				if _, err := st.Apply(ctx, groups[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	ingested.Wait()
	stop()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	assertQueuedOnce(t, pool)
	drain(t, NewReconciler(pool, ReconcilerOptions{StepTaps: 4}))
	var anna []tapSpec
	for _, sp := range specs {
		if sp.card == "AA0000000001" {
			anna = append(anna, sp)
		}
	}
	if diff := cmp.Diff(pureLedger(anna), f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna (-pure +db):\n%s", diff)
	}
	if n, taps := scalar(t, pool, `SELECT count(*) FROM tap_resolutions`), scalar(t, pool, `SELECT count(*) FROM taps`); n != taps || taps != int64(len(specs)) {
		t.Errorf("%d resolutions of %d taps, want %d of %d", n, taps, len(specs), len(specs))
	}
}

// TestReconcileCardResolution: a card id that two people's cards carry is
// an unknown card until a manager assigns it; the latest assignment not
// withdrawn wins, for taps taken in later as for those before.
func TestReconcileCardResolution(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	s := NewStore(pool, Rules{})
	r := NewReconciler(pool, ReconcilerOptions{})
	exec(t, pool, `INSERT INTO cards (org_id, card_number, person_id) VALUES ($1, 'DD0000000004', $2), ($3, 'DD0000000004', $4)`,
		f.owner, f.anna, f.sub, f.bertil)
	personOf := func(when string) string {
		t.Helper()
		f.upload(t, tapSpec{"IN", "DD0000000004", when})
		drain(t, r)
		var p *int64
		at, _ := time.ParseInLocation("2006-01-02 15:04:05", when, stockholm)
		if err := pool.QueryRow(context.Background(), `SELECT person_id FROM tap_resolutions WHERE event_time = $1`, at).Scan(&p); err != nil {
			t.Fatal(err)
		}
		switch {
		case p == nil:
			return "unknown"
		case *p == f.anna:
			return "Anna"
		case *p == f.bertil:
			return "Bertil"
		}
		return "someone else"
	}
	if got := personOf("2026-11-20 07:00:00"); got != "unknown" {
		t.Errorf("a card id of two people: %s, want unknown", got)
	}
	correct(t, s, f.owner, Correction{Kind: AssignCard, SiteID: f.site, PersonID: f.anna, CardIdent: "DD0000000004"})
	second := correct(t, s, f.owner, Correction{Kind: AssignCard, SiteID: f.site, PersonID: f.bertil, CardIdent: "DD0000000004"})
	if got := personOf("2026-11-20 08:00:00"); got != "Bertil" {
		t.Errorf("after two assignments: %s, want Bertil (the latest)", got)
	}
	correct(t, s, f.owner, Correction{Kind: Withdraw, SiteID: f.site, Withdraws: second})
	if got := personOf("2026-11-20 09:00:00"); got != "Anna" {
		t.Errorf("after the latest was withdrawn: %s, want Anna", got)
	}
}
