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

// peakTaps returns, per terminal, taps of its site's people at random times
// within [from, from+spread), in time order.
func peakTaps(rng *rand.Rand, sites, people int, from time.Time, spread time.Duration, seq map[int]uint64) map[int][]syncproto.Tap {
	out := make(map[int][]syncproto.Tap)
	for p := 1; p <= people; p++ {
		site := (p-1)%sites + 1
		at := from.Add(time.Duration(rng.Int64N(int64(spread))))
		out[site] = append(out[site], syncproto.Tap{CardID: fmt.Sprintf("AB%010d", p),
			Clock: syncproto.Clock{WallMicros: at.UnixMicro(), BootID: "b", MonoNanos: 1}})
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
// the peak and the time to re-derive after the late batch.
func BenchmarkReconcile(b *testing.B) {
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
		uploadPeak(b, st, peakTaps(rng, sites, people, day.Add(-24*time.Hour), time.Hour, seq), 50)
		uploadPeak(b, st, peakTaps(rng, sites, people, day.Add(-14*time.Hour), time.Hour, seq), 50)
		if err := r.Drain(context.Background()); err != nil {
			b.Fatal(err)
		}
		// A running database has statistics (autovacuum); freshly bulk-loaded
		// tables have none, and plans made without them are not the ones
		// production runs.
		if _, err := pool.Exec(context.Background(), `ANALYZE`); err != nil {
			b.Fatal(err)
		}
		// This morning's check-ins, a few taps per upload.
		n := uploadPeak(b, st, peakTaps(rng, sites, people, day, time.Hour, seq), 3)
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
