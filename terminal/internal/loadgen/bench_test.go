package loadgen_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/terminal/internal/loadgen"
)

// Settings shared by the benchmarks; docs/benchmarks.md quotes them.
const (
	// ingestTaps is the workload of one BenchmarkIngest iteration, split
	// evenly over the terminals.
	ingestTaps = 1 << 18
	// barePGBatch and barePGConns shape the bare PostgreSQL loader.
	barePGBatch = 1000
	barePGConns = 4
	// drainTaps is what the one terminal of BenchmarkDrain has buffered.
	drainTaps = 100_000
	// idleConns is how many sessions BenchmarkIdleConnections holds open.
	idleConns = 5000
	// idleDialers is how many of them are dialled at once.
	idleDialers = 64
	// benchTimeout bounds one measured phase.
	benchTimeout = 3 * time.Minute
)

// ingestOptions is the server and terminal configuration of BenchmarkIngest
// and BenchmarkDrain: a durable PostgreSQL; the server's pool raised from
// its default of max(4, NumCPU) connections so that authentication and
// session opening are not queued behind the ingest workers.
var ingestOptions = loadgen.Options{PoolMaxConns: 16}

// BenchmarkIngest measures end-to-end ingest: each iteration registers new
// terminals, fills their outboxes with ingestTaps taps in total while their
// uplinks are stopped (a fleet coming back after an outage), then starts the
// uplinks and stops the clock when every tap is acknowledged and compacted
// (Stats().Depth == 0 on every outbox). Before each iteration the server's
// reconciler is let finish and the taps, cursors, reconciler inbox and
// resolutions are truncated, so every iteration starts from the same
// database. The reconciler runs during the measurement, as in production;
// the terminals are assigned to no site, so it takes its cheapest path.
//
// In the same iteration, once before and once after, with no uplink
// running, a bare loader writes the same number of rows with multi-row INSERT ... ON CONFLICT DO NOTHING into
// a table shaped like taps (LIKE taps INCLUDING ALL), barePGBatch rows per
// statement on barePGConns connections: the PostgreSQL limit we compare with.
//
// Metrics: taps/s (ours) and x-pg-limit (ours / the bare loader's rate,
// from the mean of its two runs: the machine is shared, and bracketing our
// run evens out some of its neighbours' noise).
// Targets: terminals=256 at >= 100 000 taps/s or x-pg-limit >= 0.5.
func BenchmarkIngest(b *testing.B) {
	env := startEnv(b, ingestOptions)
	db := connectDB(b, env)
	ctx := context.Background()
	if _, err := db.Exec(ctx, `CREATE TABLE IF NOT EXISTS bare_taps (LIKE taps INCLUDING ALL)`); err != nil {
		b.Fatalf("create bare table: %v", err)
	}
	b.Logf("server DATABASE_URL: %s", env.ServerDatabaseURL())

	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprintf("terminals=%d", n), func(b *testing.B) {
			per := ingestTaps / n
			total := n * per
			var ours, bare, lag time.Duration
			var cpu loadgen.CPU
			b.ResetTimer()
			b.StopTimer()
			for range b.N {
				reconciled(b, db)
				truncateIngest(b, db)
				bare += runBare(b, db, env, n, per)

				terms, err := env.AddTerminals(ctx, n)
				if err != nil {
					b.Fatalf("AddTerminals: %v", err)
				}
				if err := loadgen.FillAll(ctx, terms, per); err != nil {
					b.Fatalf("FillAll: %v", err)
				}
				wctx, cancel := context.WithTimeout(ctx, benchTimeout)
				cpu0 := readCPU(b, env)
				b.StartTimer()
				start := time.Now()
				loadgen.StartAll(terms)
				err = loadgen.WaitDrained(wctx, terms)
				ours += time.Since(start)
				b.StopTimer()
				cancel()
				if err != nil {
					b.Fatalf("WaitDrained: %v", err)
				}
				cpu = cpu.Add(readCPU(b, env).Sub(cpu0))
				lag += reconciled(b, db)
				if err := loadgen.CloseAll(terms); err != nil {
					b.Fatalf("CloseAll: %v", err)
				}
				bare += runBare(b, db, env, n, per)
			}
			bare /= 2 // two bare runs per iteration
			rate := float64(total*b.N) / ours.Seconds()
			bareRate := float64(total*b.N) / bare.Seconds()
			b.ReportMetric(rate, "taps/s")
			b.ReportMetric(rate/bareRate, "x-pg-limit")
			b.Logf("%d terminals x %d taps: ours %.0f taps/s (%.2fs), bare INSERT %.0f rows/s (%.2fs); CPU while ours ran: %v; reconciler done %.2fs after the last ack; load average %s",
				n, per, rate, ours.Seconds()/float64(b.N), bareRate, bare.Seconds()/float64(b.N), cpu,
				lag.Seconds()/float64(b.N), loadAvg())
		})
	}
}

// reconciled waits until the server's reconciler has taken in every stored
// tap (its inbox is empty), so that its work does not spill into the next
// measurement, and returns how long that took. Schemas without a
// reconcile_inbox return at once.
func reconciled(b *testing.B, db *pgx.Conn) time.Duration {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	start := time.Now()
	for {
		var left int64
		err := db.QueryRow(ctx, `SELECT CASE WHEN to_regclass('reconcile_inbox') IS NULL THEN 0
			ELSE (SELECT count(*) FROM reconcile_inbox) END`).Scan(&left)
		if err != nil {
			b.Fatalf("reconcile inbox: %v", err)
		}
		if left == 0 {
			return time.Since(start)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// truncateIngest empties what ingest and reconciliation wrote, so that
// every iteration starts from the same database. Terminals are new each
// iteration, so nothing kept elsewhere refers to these rows.
func truncateIngest(b *testing.B, db *pgx.Conn) {
	b.Helper()
	ctx := context.Background()
	tables := []string{"taps", "ingest_cursors"}
	// What the ledger made of them, in whichever schema the server has
	// (tap_resolutions became a view of tap_marks and work_periods).
	for _, t := range []string{"reconcile_inbox", "tap_resolutions", "tap_marks", "work_periods"} {
		var exists bool
		if err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_class WHERE oid = to_regclass($1) AND relkind = 'r')`, t).Scan(&exists); err != nil {
			b.Fatalf("look up table %s: %v", t, err)
		}
		if exists {
			tables = append(tables, t)
		}
	}
	if _, err := db.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")); err != nil {
		b.Fatalf("truncate: %v", err)
	}
}

// runBare empties bare_taps and times one bareLoad into it.
func runBare(b *testing.B, db *pgx.Conn, env *loadgen.Env, terminals, per int) time.Duration {
	b.Helper()
	ctx := context.Background()
	if _, err := db.Exec(ctx, `TRUNCATE bare_taps`); err != nil {
		b.Fatalf("truncate: %v", err)
	}
	d, err := bareLoad(ctx, env.DatabaseURL(), terminals, per)
	if err != nil {
		b.Fatalf("bare loader: %v", err)
	}
	return d
}

// bareLoad writes terminals*per rows shaped like the server's taps into
// bare_taps and returns how long it took: the rows are built first, then
// sent by barePGConns connections, barePGBatch rows per INSERT, each
// statement its own transaction.
func bareLoad(ctx context.Context, url string, terminals, per int) (time.Duration, error) {
	rows := bareRows(terminals, per)
	stmt := bareInsert(barePGBatch)
	conns := make([]*pgx.Conn, barePGConns)
	for i := range conns {
		c, err := pgx.Connect(ctx, url)
		if err != nil {
			return 0, err
		}
		defer c.Close(ctx)
		// Prepare once, as a loader would; the time is not counted.
		if _, err := c.Prepare(ctx, "bare", stmt); err != nil {
			return 0, err
		}
		conns[i] = c
	}
	batches := make(chan [][]any)
	errs := make(chan error, len(conns))
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Go(func() {
			for batch := range batches {
				if len(batch) < barePGBatch {
					if _, err := c.Exec(ctx, bareInsert(len(batch)), flatten(batch)...); err != nil {
						errs <- err
						return
					}
					continue
				}
				if _, err := c.Exec(ctx, "bare", flatten(batch)...); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for lo := 0; lo < len(rows); lo += barePGBatch {
		select {
		case batches <- rows[lo:min(lo+barePGBatch, len(rows))]:
		case err := <-errs:
			close(batches)
			wg.Wait()
			return 0, err
		}
	}
	close(batches)
	wg.Wait()
	d := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return d, nil
}

var bareColumns = []string{
	"terminal_id", "store_epoch", "seq", "card_id", "reader", "answer",
	"device_wall_us", "boot_id", "mono_ns", "received_at", "clock_offset_us",
	"event_time", "time_source",
}

// bareInsert returns the INSERT of n rows.
func bareInsert(n int) string {
	var sb strings.Builder
	sb.WriteString("INSERT INTO bare_taps (" + strings.Join(bareColumns, ", ") + ") VALUES ")
	p := 1
	for i := range n {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString("(")
		for j := range bareColumns {
			if j > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "$%d", p)
			p++
		}
		sb.WriteString(")")
	}
	sb.WriteString(" ON CONFLICT DO NOTHING")
	return sb.String()
}

// bareRows returns rows with the values the server stores for loadgen's
// taps, terminal by terminal in sequence order.
func bareRows(terminals, per int) [][]any {
	now := time.Now()
	rows := make([][]any, 0, terminals*per)
	for t := range terminals {
		id := fmt.Sprintf("bare-%06d", t)
		epoch := rand.Int64N(1<<62) + 1
		for s := 1; s <= per; s++ {
			at := now.Add(time.Duration(s) * time.Millisecond)
			rows = append(rows, []any{
				id, epoch, int64(s), fmt.Sprintf("LG%010d", s%100_000), "", "recorded",
				at.UnixMicro(), "6f1c3d4e-0a55-4e8c-9d5f-3b1f0e2a7c11", int64(s) * 1e6, now,
				int64(0), at, "device",
			})
		}
	}
	return rows
}

func flatten(batch [][]any) []any {
	out := make([]any, 0, len(batch)*len(bareColumns))
	for _, r := range batch {
		out = append(out, r...)
	}
	return out
}

// BenchmarkDrain measures how long one terminal takes to upload a backlog:
// each iteration registers a terminal, lets it open one session with an
// empty outbox (so the server knows it), stops its uplink, buffers
// drainTaps taps, and times from the restart of the uplink until every tap
// is acknowledged and compacted.
//
// Metric: drain-s (seconds, mean over iterations). Target <= 2.
func BenchmarkDrain(b *testing.B) {
	env := startEnv(b, ingestOptions)
	ctx := context.Background()
	var total time.Duration
	var cpu loadgen.CPU
	b.ResetTimer()
	b.StopTimer()
	for range b.N {
		terms, err := env.AddTerminals(ctx, 1)
		if err != nil {
			b.Fatalf("AddTerminals: %v", err)
		}
		t := terms[0]
		t.Start()
		for !t.Uplink.State().Connected {
			time.Sleep(time.Millisecond)
		}
		t.Stop()
		if err := t.Fill(ctx, drainTaps, 0); err != nil {
			b.Fatalf("Fill: %v", err)
		}
		wctx, cancel := context.WithTimeout(ctx, benchTimeout)
		cpu0 := readCPU(b, env)
		b.StartTimer()
		start := time.Now()
		t.Start()
		err = loadgen.WaitDrained(wctx, terms)
		total += time.Since(start)
		b.StopTimer()
		cancel()
		if err != nil {
			b.Fatalf("WaitDrained: %v", err)
		}
		cpu = cpu.Add(readCPU(b, env).Sub(cpu0))
		if err := t.Close(); err != nil {
			b.Fatalf("Close: %v", err)
		}
	}
	b.ReportMetric(total.Seconds()/float64(b.N), "drain-s")
	b.Logf("%d taps in %.2fs; CPU while draining: %v; load average %s",
		drainTaps, total.Seconds()/float64(b.N), cpu, loadAvg())
}

// loadAvg returns the machine's load averages (see loadgen.LoadAverage).
func loadAvg() string { return loadgen.LoadAverage() }

// readCPU reads the environment's CPU times.
func readCPU(b *testing.B, env *loadgen.Env) loadgen.CPU {
	b.Helper()
	c, err := env.CPU()
	if err != nil {
		b.Fatalf("CPU: %v", err)
	}
	return c
}

// BenchmarkIdleConnections measures the server's memory per idle terminal:
// the server's VmRSS once it is up and the credentials exist, then again
// after idleConns sessions have been welcomed and left idle (a 2 s settle,
// then three readings 1 s apart, the last one kept). The server is not made
// to collect garbage; what it holds is what an operator would see. The
// workload is fixed: one measurement per run, whatever b.N.
//
// PostgreSQL runs with fsync off here: the figure is the server's memory,
// and the 5000 credential inserts and session openings would otherwise
// only make the run slower.
//
// Metric: KiB/conn = (after - before) / idleConns. Target <= 16.
func BenchmarkIdleConnections(b *testing.B) {
	raiseFDLimit(b, 2*idleConns+1000)
	env := startEnv(b, loadgen.Options{NoFsync: true})
	ctx, cancel := context.WithTimeout(context.Background(), benchTimeout)
	defer cancel()
	creds, err := env.Credentials(ctx, env.NewIDs("idle", idleConns))
	if err != nil {
		b.Fatalf("Credentials: %v", err)
	}
	time.Sleep(time.Second)
	before := settledRSS(b, env, 2)

	b.ResetTimer()
	start := time.Now()
	conns, err := env.DialIdleAll(ctx, creds, idleDialers)
	if err != nil {
		b.Fatalf("DialIdleAll: %v", err)
	}
	dial := time.Since(start)
	b.StopTimer()
	defer loadgen.CloseIdle(conns)

	time.Sleep(2 * time.Second)
	after := settledRSS(b, env, 3)
	for i, c := range conns {
		if !c.Alive() {
			b.Fatalf("idle connection %d closed during the measurement", i)
		}
	}
	perConn := float64(after-before) / idleConns / 1024
	b.ReportMetric(perConn, "KiB/conn")
	b.Logf("%d sessions welcomed in %v; server VmRSS %d KiB before, %d KiB after; load average %s",
		idleConns, dial.Round(time.Millisecond), before>>10, after>>10, loadAvg())
}

// settledRSS reads the server's VmRSS n times, a second apart, and returns
// the last reading.
func settledRSS(b *testing.B, env *loadgen.Env, n int) int64 {
	b.Helper()
	var rss int64
	for i := range n {
		if i > 0 {
			time.Sleep(time.Second)
		}
		r, err := env.ServerRSS()
		if err != nil {
			b.Fatalf("ServerRSS: %v", err)
		}
		b.Logf("server VmRSS reading %d: %d KiB", i+1, r>>10)
		rss = r
	}
	return rss
}

// raiseFDLimit raises this process's open-file limit (inherited by the
// server it starts) to at least want, within the hard limit.
func raiseFDLimit(b *testing.B, want uint64) {
	b.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= want {
		return
	}
	lim.Cur = min(max(want, lim.Cur), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("setrlimit: %v", err)
	}
	if lim.Cur < want {
		b.Fatalf("open-file limit %d (hard limit), need %d", lim.Cur, want)
	}
}
