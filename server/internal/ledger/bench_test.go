package ledger

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/syncproto"
)

// seedPeak makes the morning-peak world: sites with one toggle terminal
// each and people evenly spread over them, each with an ID06 card.
func seedPeak(b *testing.B, pool *pgxpool.Pool, sites, people int) {
	b.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001')`,
		`INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		 SELECT 1, 'S' || lpad(g::text, 12, '0'), 'Site ' || g, '', 'BH', '556000-0009' FROM generate_series(1, $1) g`,
		`INSERT INTO terminals (terminal_id) SELECT 'K' || g FROM generate_series(1, $1) g`,
		`INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
		 SELECT 'K' || g, '2026-01-01', g, 'toggle', 'bench' FROM generate_series(1, $1) g`,
	} {
		args := []any{sites}
		if q[12] == 'o' {
			args = nil
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
		SELECT 1, 'Person ' || g, 'personnummer', '\x00', decode(lpad(to_hex(g), 16, '0'), 'hex'), '19800101-****'
		FROM generate_series(1, $1) g`, people); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO cards (org_id, card_number, person_id)
		SELECT 1, 'AB' || lpad(g::text, 10, '0'), g FROM generate_series(1, $1) g`, people); err != nil {
		b.Fatal(err)
	}
}

// peakShape says how a morning peak's people tap. In the plain peak each
// taps once. A real one has exceptions, per person tapping: some tap twice
// within the double-tap window (the queue pushes, the kiosk seemed slow),
// and some badge a card the registry does not know yet (a new hire whose
// employer has not sent the list). Both give tap_marks rows, which later
// steps at the person's site read, and a double tap may be split between
// two steps that run at once.
type peakShape struct {
	name                   string
	doubleTaps, unknownIDs float64 // fractions of the people tapping
}

var peakShapes = []peakShape{
	{name: "plain"},
	{name: "exceptions", doubleTaps: 0.03, unknownIDs: 0.005},
}

// peakTaps returns, per terminal, taps of its site's people at random times
// within [from, from+spread), in time order, with the shape's exceptions.
func peakTaps(rng *rand.Rand, shape peakShape, sites, people int, from time.Time, spread time.Duration, seq map[int]uint64) map[int][]syncproto.Tap {
	out := make(map[int][]syncproto.Tap)
	tap := func(site int, card string, at time.Time) {
		out[site] = append(out[site], syncproto.Tap{CardID: card,
			Clock: syncproto.Clock{WallMicros: at.UnixMicro(), BootID: "b", MonoNanos: 1}})
	}
	for p := 1; p <= people; p++ {
		site := (p-1)%sites + 1
		at := from.Add(time.Duration(rng.Int64N(int64(spread))))
		card := fmt.Sprintf("AB%010d", p)
		switch f := rng.Float64(); {
		case f < shape.unknownIDs:
			card = fmt.Sprintf("NEW%d-%d", p, seq[site])
		case f < shape.unknownIDs+shape.doubleTaps:
			tap(site, card, at.Add(time.Duration(1+rng.IntN(20))*time.Second))
		}
		tap(site, card, at)
	}
	for site, taps := range out {
		sortTaps(taps)
		for i := range taps {
			seq[site]++
			taps[i].Seq = seq[site]
		}
		out[site] = taps
	}
	return out
}

func sortTaps(taps []syncproto.Tap) {
	for i := 1; i < len(taps); i++ {
		for j := i; j > 0 && taps[j].Clock.WallMicros < taps[j-1].Clock.WallMicros; j-- {
			taps[j], taps[j-1] = taps[j-1], taps[j]
		}
	}
}

// uploadPeak stores taps as terminals in a morning peak send them: per at
// a time, so the inbox holds many small ranges.
func uploadPeak(b *testing.B, st *ingest.Store, taps map[int][]syncproto.Tap, per int) int {
	b.Helper()
	n := 0
	var subs []*ingest.Submission
	for site, ts := range taps {
		sess := &ingest.Session{TerminalID: fmt.Sprintf("K%d", site), StoreEpoch: 1,
			HelloClock: syncproto.Clock{WallMicros: time.Now().UnixMicro()}, HelloReceived: time.Now()}
		for i := 0; i < len(ts); i += per {
			batch := ts[i:min(i+per, len(ts))]
			subs = append(subs, &ingest.Submission{Session: sess, Batch: &syncproto.Batch{Taps: batch}, Received: time.Now()})
			n += len(batch)
		}
	}
	// In the order the terminals send them (each when its last tap is
	// made), so that one Apply, like one ingest transaction at the peak,
	// holds the uploads of many terminals and queues one short range each.
	slices.SortStableFunc(subs, func(a, b *ingest.Submission) int {
		return cmp.Compare(a.Batch.Taps[len(a.Batch.Taps)-1].Clock.WallMicros, b.Batch.Taps[len(b.Batch.Taps)-1].Clock.WallMicros)
	})
	for i := 0; i < len(subs); i += 256 {
		if _, err := st.Apply(context.Background(), subs[i:min(i+256, len(subs))]); err != nil {
			b.Fatal(err)
		}
	}
	return n
}

// BenchmarkReconcile: the morning peak (10 000 people on 500 sites all
// tapping in within an hour, synced a few taps at a time), then a late batch
// from terminals that were offline since the day before. Reports taps/s for
// the peak and the time to re-derive after the late batch. The peak comes
// plain (each person taps once) and with a real peak's exceptions
// (peakShape).
func BenchmarkReconcile(b *testing.B) {
	for _, shape := range peakShapes {
		b.Run(shape.name, func(b *testing.B) { benchmarkReconcile(b, shape) })
	}
}

func benchmarkReconcile(b *testing.B, shape peakShape) {
	const sites, people = 500, 10000
	day := time.Date(2026, 11, 23, 6, 0, 0, 0, stockholm)
	var peakSecs, lateSecs float64
	var peakCPU cpuTimes
	var peakN, lateN int
	var peakMallocs uint64
	var ms runtime.MemStats
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pool := pgtest.New(b)
		seedPeak(b, pool, sites, people)
		st := ingest.NewStore(pool, nil)
		tpool, tracer := traced(pool)
		r := NewReconciler(tpool, ReconcilerOptions{})
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		seq := make(map[int]uint64)
		// Yesterday, already reconciled: everyone in and out.
		uploadPeak(b, st, peakTaps(rng, shape, sites, people, day.Add(-24*time.Hour), time.Hour, seq), 50)
		uploadPeak(b, st, peakTaps(rng, shape, sites, people, day.Add(-14*time.Hour), time.Hour, seq), 50)
		if err := r.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		// A running database has statistics (autovacuum); freshly bulk-loaded
		// tables have none, and plans made without them are not the ones
		// production runs.
		if _, err := pool.Exec(context.Background(), `ANALYZE`); err != nil {
			b.Fatal(err)
		}
		// A running server writes its WAL into segments recycled at
		// checkpoints; a fresh cluster has none to recycle and creates
		// (zero-fills) a segment every 16 MiB, and every commit meanwhile
		// waits for it (IO:WALInitWrite): a third of the peak's commit
		// waits, in bursts the steps' timing decides. A checkpoint after
		// setting up recycles the setup's segments for the peak.
		if _, err := pool.Exec(context.Background(), `CHECKPOINT`); err != nil {
			b.Fatal(err)
		}
		// This morning's check-ins, a few taps per upload.
		n := uploadPeak(b, st, peakTaps(rng, shape, sites, people, day, time.Hour, seq), 3)
		if tracer != nil {
			tracer.reset() // yesterday's drain is setup
		}
		b.StartTimer()
		runtime.ReadMemStats(&ms)
		start, cpu0, mallocs0 := time.Now(), readCPU(b), ms.Mallocs
		if err := r.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		peakSecs += time.Since(start).Seconds()
		cpu := readCPU(b).sub(cpu0)
		runtime.ReadMemStats(&ms)
		peakMallocs += ms.Mallocs - mallocs0
		peakCPU.self += cpu.self
		peakCPU.postgres += cpu.postgres
		peakN += n
		b.StopTimer()
		if tracer != nil {
			tracer.report("morning peak")
		}
		if i == 0 {
			checkPeakMarks(b, pool, shape, people)
		}
		// A late batch: 50 terminals that were offline send yesterday's
		// lunch taps of their people.
		late := make(map[int][]syncproto.Tap)
		for site := 1; site <= 50; site++ {
			for p := site; p <= people; p += sites {
				at := day.Add(-20 * time.Hour).Add(time.Duration(rng.IntN(3600)) * time.Second)
				seq[site]++
				late[site] = append(late[site], syncproto.Tap{Seq: seq[site], CardID: fmt.Sprintf("AB%010d", p),
					Clock: syncproto.Clock{WallMicros: at.UnixMicro(), BootID: "b", MonoNanos: 1}})
			}
		}
		ln := uploadPeak(b, st, late, 1000)
		b.StartTimer()
		start = time.Now()
		if err := r.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		lateSecs += time.Since(start).Seconds()
		lateN += ln
		if tracer != nil {
			tracer.report("late batch")
			tpool.Close()
		}
	}
	b.ReportMetric(float64(peakN)/peakSecs, "taps/s")
	b.ReportMetric(lateSecs/float64(b.N)*1000, "late-rederive-ms")
	b.ReportMetric(float64(lateN)/float64(b.N), "late-taps")
	b.ReportMetric(float64(peakCPU.postgres.Microseconds())/float64(peakN), "pg-cpu-µs/tap")
	b.ReportMetric(float64(peakCPU.self.Microseconds())/float64(peakN), "go-cpu-µs/tap")
	b.ReportMetric(float64(peakMallocs)/float64(peakN), "allocs/tap")
}

// checkPeakMarks checks that the peaks' exceptions came out as the ledger
// keeps them: each double tap marked, each unknown card's tap listed, and
// nothing else outside a period.
func checkPeakMarks(b *testing.B, pool *pgxpool.Pool, shape peakShape, people int) {
	b.Helper()
	var doubles, unknown, other int
	if err := pool.QueryRow(context.Background(), `
		SELECT count(*) FILTER (WHERE mark = 'double'), count(*) FILTER (WHERE mark = 'unknown_card'),
		       count(*) FILTER (WHERE mark NOT IN ('double', 'unknown_card'))
		FROM tap_marks`).Scan(&doubles, &unknown, &other); err != nil {
		b.Fatal(err)
	}
	// Three peaks (two of yesterday's, this morning's) of people each.
	mean := func(f float64) float64 { return 3 * f * float64(people) }
	near := func(n int, f float64) bool {
		return float64(n) >= 0.7*mean(f) && float64(n) <= 1.3*mean(f)
	}
	if !near(doubles, shape.doubleTaps) || !near(unknown, shape.unknownIDs) || other != 0 {
		b.Fatalf("tap_marks: %d double, %d unknown card, %d other; want about %.0f, %.0f and 0",
			doubles, unknown, other, mean(shape.doubleTaps), mean(shape.unknownIDs))
	}
}
