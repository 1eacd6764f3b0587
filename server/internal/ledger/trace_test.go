package ledger

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sqlTracer sums the time spent in each statement, for finding where a
// benchmark's time goes: LIGGARE_SQL_TRACE=1 go test -bench ...
type sqlTracer struct {
	mu    sync.Mutex
	total map[string]time.Duration
	count map[string]int
}

type traceKey struct{}

type traceStart struct {
	sql string
	at  time.Time
}

func (t *sqlTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{d.SQL, time.Now()})
}

func (t *sqlTracer) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}

func (t *sqlTracer) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, traceStart{"COPY " + d.TableName.Sanitize(), time.Now()})
}

func (t *sqlTracer) TraceCopyFromEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceCopyFromEndData) {
	t.end(ctx)
}

// batchStart collects the statements of a pipelined batch, which is timed
// as a whole.
type batchStart struct {
	at    time.Time
	names []string
}

func (t *sqlTracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return context.WithValue(ctx, traceKey{}, &batchStart{at: time.Now()})
}

func (t *sqlTracer) TraceBatchQuery(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	if b, ok := ctx.Value(traceKey{}).(*batchStart); ok {
		f := strings.Fields(d.SQL)
		b.names = append(b.names, strings.Join(f[:min(4, len(f))], " "))
	}
}

func (t *sqlTracer) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	if b, ok := ctx.Value(traceKey{}).(*batchStart); ok {
		t.end(context.WithValue(ctx, traceKey{}, traceStart{"BATCH " + strings.Join(b.names, "; "), b.at}))
	}
}

func (t *sqlTracer) end(ctx context.Context) {
	s, ok := ctx.Value(traceKey{}).(traceStart)
	if !ok {
		return
	}
	k := strings.Join(strings.Fields(s.sql), " ")
	if len(k) > 90 {
		k = k[:90]
	}
	t.mu.Lock()
	t.total[k] += time.Since(s.at)
	t.count[k]++
	t.mu.Unlock()
}

// reset forgets what was timed so far.
func (t *sqlTracer) reset() {
	t.mu.Lock()
	defer t.mu.Unlock()
	clear(t.total)
	clear(t.count)
}

// report prints the statements that took longest, under a heading, and
// forgets them.
func (t *sqlTracer) report(heading string) {
	defer t.reset()
	fmt.Printf("%s:\n", heading)
	type kv struct {
		k string
		d time.Duration
	}
	var all []kv
	for k, d := range t.total {
		all = append(all, kv{k, d})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].d > all[j].d })
	for _, e := range all[:min(12, len(all))] {
		fmt.Printf("%10v %6d  %s\n", e.d.Round(time.Millisecond), t.count[e.k], e.k)
	}
}

// traced returns a pool like p whose statements are timed, when tracing is
// on, and p itself otherwise.
func traced(p *pgxpool.Pool) (*pgxpool.Pool, *sqlTracer) {
	if os.Getenv("LIGGARE_SQL_TRACE") == "" {
		return p, nil
	}
	cfg := p.Config()
	tr := &sqlTracer{total: map[string]time.Duration{}, count: map[string]int{}}
	cfg.ConnConfig.Tracer = tr
	np, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	return np, tr
}
