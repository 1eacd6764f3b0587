package ledger

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgarray"
)

// Defaults for ReconcilerOptions.
const (
	// DefaultStepTaps bounds the taps one transaction takes in. Larger
	// steps spread each statement's fixed cost over more taps (at the
	// morning peak of BenchmarkReconcile, about 1 000 taps per step cost a
	// third more CPU per tap than about 4 000); smaller ones hold their
	// locks for less time. An inbox row larger than this is taken whole, in
	// a step of its own.
	DefaultStepTaps = 4096
	// DefaultInboxBatch bounds the inbox rows (each a seq range of one
	// terminal, typically one uploaded batch) one transaction considers:
	// as many as DefaultStepTaps, so that steps are full even when every
	// row holds a single tap.
	DefaultInboxBatch = DefaultStepTaps
	// DefaultPollInterval is how often an idle reconciler looks for work
	// that another server replica queued.
	DefaultPollInterval = 500 * time.Millisecond
	// drainRetry is how often Drain looks again at taps left to a later
	// step because another transaction held their people.
	drainRetry = 10 * time.Millisecond
	// DefaultWorkers is how many transactions reconcile at once. A step
	// alternates between Go and its PostgreSQL backend, so two keep two
	// cores busy only while neither waits on the other; a third fills
	// those gaps. At the morning peak of BenchmarkReconcile on 2 cores,
	// alternating: two workers 87-96k taps/s, three 94-110k.
	DefaultWorkers = 3
)

// Steps and PostgreSQL's lock table. A step holds a transaction-scoped
// advisory lock per (site, person) it takes taps of (pairLocks): up to
// locksPerTap per tap. PostgreSQL keeps them in one shared table of
// max_locks_per_transaction × (max_connections +
// max_prepared_transactions) entries, for all backends together; a step
// that does not fit fails with "out of shared memory" however often it is
// tried, and the ledger stops. So the reconciler reads the table's size
// once and sizes its steps so that all its workers together fill at most
// 1/lockTableShare of it. PostgreSQL's defaults (64 × 100) give steps of
// 1 066 taps with three workers; max_locks_per_transaction = 246 with 100
// connections, or pglocal's 128 × 300, gives full DefaultStepTaps steps
// (deploy/README.md).
const (
	locksPerTap    = 1
	lockTableShare = 2
	// minStepTaps is the least a step takes, however small the table
	// (unless StepTaps asks for less).
	minStepTaps = 16
)

// LockTableQuery reads the size of PostgreSQL's shared lock table.
const LockTableQuery = `SELECT current_setting('max_locks_per_transaction')::bigint *
	(current_setting('max_connections')::bigint + current_setting('max_prepared_transactions')::bigint)`

// FullStepLockTable is the least lock table in which workers reconcilers
// take full DefaultStepTaps steps.
func FullStepLockTable(workers int) int64 {
	return int64(DefaultStepTaps) * locksPerTap * lockTableShare * int64(max(1, workers))
}

// StepTapsFor is the step size of workers reconcilers for a lock table of
// capacity entries, when StepTaps is configured.
func StepTapsFor(capacity int64, workers, configured int) int {
	fit := capacity / lockTableShare / int64(max(1, workers)) / locksPerTap
	return int(min(int64(configured), max(minStepTaps, fit)))
}

// Sharing the queued taps among the workers. A step takes an equal share
// of the taps queued ahead of it, not simply StepTaps: a burst of 10 000
// taps taken by two workers as 4 096, 4 096 and 1 808 leaves one worker
// idle for the last step, a fifth of the burst's time; in four steps of
// 2 500 both finish together. The queued taps are estimated cheaply: the
// span of inbox ids ahead (rows that other workers are taking count too,
// as they are part of the burst), times the mean taps per row of the
// first shareSampleRows rows. A step locks as many rows as the mean says
// its share needs: rows it locks beyond its share (where they are larger
// than the mean) stay locked, skipped by the other workers, until it
// commits, and then leave a hole in the span of ids.
const shareSampleRows = 64

// Log keys.
const (
	logErr   = "err"
	logTaps  = "taps"
	logPairs = "pairs"
)

// ReconcilerOptions configures a Reconciler.
type ReconcilerOptions struct {
	Rules   Rules
	Workers int
	// StepTaps and InboxBatch bound one transaction: it takes inbox rows
	// in order while they hold at most StepTaps taps in all (or the first
	// row, however large), and at most InboxBatch rows. Where fewer than
	// Workers × StepTaps taps are queued, a step takes an equal share of
	// them (see shareSampleRows).
	StepTaps     int
	InboxBatch   int
	PollInterval time.Duration
	Logger       *slog.Logger
	// OnChange, when set, is called after a commit with the sites whose
	// ledger changed (for live pages): a period was added or replaced, or
	// an unknown card was tapped there.
	OnChange func(sites []int64)
}

// Reconciler takes newly stored taps into the ledger.
type Reconciler struct {
	pool *pgxpool.Pool
	opts ReconcilerOptions
	wake chan struct{}
	// cards holds card resolutions across steps (cardcache.go).
	cards *cardCache
	// fitted says the step size was fitted to the server's lock table;
	// stepSize holds it (opts.StepTaps until then).
	fitted   atomic.Bool
	stepSize atomic.Int64
}

// NewReconciler returns a Reconciler on pool. Call Run to start it.
func NewReconciler(pool *pgxpool.Pool, opts ReconcilerOptions) *Reconciler {
	if opts.Rules == (Rules{}) {
		opts.Rules = DefaultRules
	}
	if opts.StepTaps <= 0 {
		opts.StepTaps = DefaultStepTaps
	}
	if opts.InboxBatch <= 0 {
		opts.InboxBatch = DefaultInboxBatch
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Reconciler{pool: pool, opts: opts, wake: make(chan struct{}, 1), cards: newCardCache()}
	r.stepSize.Store(int64(opts.StepTaps))
	return r
}

// stepTaps bounds the taps of one step: StepTaps, or less where the
// server's lock table is small.
func (r *Reconciler) stepTaps() int { return int(r.stepSize.Load()) }

// fitLockTable sizes steps to the server's lock table, once. Until it
// succeeds, steps keep their configured size: a failure to read the
// settings is logged, and tried again at the next step.
func (r *Reconciler) fitLockTable(ctx context.Context) {
	if r.fitted.Load() {
		return
	}
	var capacity int64
	err := r.pool.QueryRow(ctx, LockTableQuery).Scan(&capacity)
	if err != nil {
		r.opts.Logger.Warn("reconcile_lock_table_unknown", logErr, err)
		return
	}
	n := StepTapsFor(capacity, r.opts.Workers, r.opts.StepTaps)
	if r.fitted.CompareAndSwap(false, true) {
		r.stepSize.Store(int64(n))
		if n < r.opts.StepTaps {
			r.opts.Logger.Warn("reconcile_steps_fitted_to_lock_table", "lock_table", capacity, "step_taps", n,
				"want_step_taps", r.opts.StepTaps,
				"hint", "raise max_locks_per_transaction (see deploy/README.md) for full-size steps")
		}
	}
}

// Wake tells the reconciler there is work, without waiting.
func (r *Reconciler) Wake() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run reconciles on Workers goroutines until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range r.opts.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.work(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (r *Reconciler) work(ctx context.Context) {
	for {
		n, err := r.Step(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			r.opts.Logger.Error("reconcile_failed", logErr, err)
		}
		if n > 0 && err == nil {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-time.After(r.opts.PollInterval):
		}
	}
}

// Step reconciles one group of queued taps in one transaction and reports
// how many taps it took in.
//
// Each tap is queued in exactly one inbox row (ingest queues the taps its
// transaction inserts, as disjoint runs), and a step takes the rows it
// deletes: so each tap is taken in once, by one step, whatever the number
// of workers and server replicas.
func (r *Reconciler) Step(ctx context.Context) (int, error) {
	r.fitLockTable(ctx)
	var n int
	var sites []int64
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		n, sites, err = r.step(ctx, tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("ledger: reconcile: %w", err)
	}
	if len(sites) > 0 && r.opts.OnChange != nil {
		r.opts.OnChange(sites)
	}
	return n, nil
}

// Drain reconciles on Workers goroutines until the inbox is empty (for
// tests, tools and benchmarks). Where the taps left are of people another
// transaction holds (a correction, another replica's step), it tries again
// every drainRetry until that transaction ends.
func (r *Reconciler) Drain(ctx context.Context) error {
	for progress := true; ; {
		var left int
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM reconcile_inbox`).Scan(&left); err != nil {
			return fmt.Errorf("ledger: drain: %w", err)
		}
		if left == 0 {
			return nil
		}
		if !progress {
			select {
			case <-ctx.Done():
				return fmt.Errorf("ledger: drain: %w", ctx.Err())
			case <-time.After(drainRetry):
			}
		}
		var taken atomic.Int64
		errs := make(chan error, r.opts.Workers)
		for range r.opts.Workers {
			go func() {
				for {
					n, err := r.Step(ctx)
					taken.Add(int64(n))
					if err != nil || n == 0 {
						errs <- err
						return
					}
				}
			}()
		}
		var first error
		for range r.opts.Workers {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
		progress = taken.Load() > 0
	}
}

// newTap is a stored tap not yet reconciled.
type newTap struct {
	id   TapID
	card string
	at   time.Time
	// site and mode are the terminal's assignment at the tap's event
	// time, if it has one (hasSite): set by cardCache.assignTaps.
	site    int64
	hasSite bool
	mode    string
	// person is the person its card id resolves to at the site (0 for
	// nobody): set by cardCache.resolve.
	person int64
}

// step takes in the taps of the next inbox rows, within StepTaps and
// InboxBatch.
func (r *Reconciler) step(ctx context.Context, tx pgx.Tx) (int, []int64, error) {
	// The inbox rows and their taps, with the terminal's assignment at each
	// tap's event time. The candidate rows are locked (and later ones left
	// to the next step) in a MATERIALIZED CTE, and deleted by their row
	// addresses (which a locked row keeps), so that each is picked once and
	// found without a scan: joined instead, the planner may run the locking
	// subquery, or the running sum, once per inbox row, and by id it may
	// read the whole inbox (both when the inbox was empty at the last
	// ANALYZE). The picked rows are joined to the inbox by ctid (a TID scan
	// per row, or a hash join) rather than matched by ctid = ANY(array):
	// the planner ran that as a sequential scan that compared every inbox
	// row with every picked address (1 024 × 3 300 at the morning peak of
	// BenchmarkReconcile, 11 of the step's 20 ms). Each taken row's taps
	// are read by a range scan of the taps' key: OFFSET 0 keeps the
	// subquery from being joined as a whole, which the planner ran, where
	// the table was small enough, as a hash of every tap of the taken
	// terminals' streams, each probed by every range of its stream (at the
	// morning peak a third more of PostgreSQL's time for this statement).
	//
	// The step's share ($2 StepTaps, $3 workers): the queued taps t, in
	// rounds = ceil(t / (StepTaps × workers)) rounds of one step per
	// worker, t / (rounds × workers) taps per step. The rows it locks: as
	// many of the sampled rows as hold the share, and beyond the sample as
	// many as the sample's mean says.
	rows, err := tx.Query(ctx, `
		WITH sample AS MATERIALIZED (
			SELECT n, sum(n) OVER (ORDER BY inbox_id) AS upto FROM (
				SELECT inbox_id, seq_to - seq_from + 1 AS n FROM reconcile_inbox ORDER BY inbox_id LIMIT $4::bigint) s),
		ahead AS MATERIALIZED (
			SELECT greatest(1, (SELECT max(inbox_id) FROM reconcile_inbox) - (SELECT min(inbox_id) FROM reconcile_inbox) + 1)
			           * coalesce(avg(n), 1) AS t,
			       coalesce(avg(n), 1) AS per_row, coalesce(sum(n), 0) AS taps, count(*) AS n_rows
			FROM sample),
		share AS MATERIALIZED (
			SELECT ceil(t / (ceil(t / ($2::bigint * $3::bigint)) * $3::bigint)) AS taps FROM ahead),
		lock AS MATERIALIZED (
			SELECT least($1::bigint, CASE
				WHEN s.taps <= a.taps THEN greatest(1, (SELECT count(*) FROM sample WHERE upto <= s.taps))
				ELSE a.n_rows + ceil((s.taps - a.taps) / a.per_row) END)::bigint AS n_rows
			FROM share s, ahead a),
		candidates AS MATERIALIZED (
			SELECT ctid AS tid, inbox_id, seq_to - seq_from + 1 AS n FROM reconcile_inbox
			ORDER BY inbox_id
			LIMIT (SELECT n_rows FROM lock)
			FOR UPDATE SKIP LOCKED),
		picked AS (
			SELECT tid FROM (
				SELECT tid, sum(n) OVER (ORDER BY inbox_id) AS upto, n FROM candidates) c
			WHERE upto <= (SELECT taps FROM share) OR upto = n),
		taken AS (
			DELETE FROM reconcile_inbox i USING picked p WHERE i.ctid = p.tid
			RETURNING i.terminal_id, i.store_epoch, i.seq_from, i.card_ids, i.event_times)
		SELECT terminal_id, store_epoch, seq_from, card_ids, event_times, (SELECT n FROM registry_version)
		FROM taken`,
		r.opts.InboxBatch, r.stepTaps(), r.opts.Workers, shareSampleRows)
	if err != nil {
		return 0, nil, fmt.Errorf("take inbox: %w", err)
	}
	taps := make([]newTap, 0, r.stepTaps())
	var registry int64
	// Scan targets declared once (see loadWork); each row sets them all.
	// A terminal's id is one string for all its taps.
	var nt newTap
	var cards []string
	var times []time.Time
	terminal := internedText{seen: make(map[string]string)}
	dest := []any{&terminal, &nt.id.Epoch, &nt.id.Seq, &cards, &times, &registry}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			rows.Close()
			return 0, nil, err
		}
		if len(cards) != len(times) {
			rows.Close()
			return 0, nil, fmt.Errorf("take inbox: a row of %s holds %d card ids and %d times", terminal.s, len(cards), len(times))
		}
		nt.id.Terminal = terminal.s
		for i := range cards { // seq_from, seq_from+1, ...
			nt.card, nt.at = cards[i], times[i]
			taps = append(taps, nt)
			nt.id.Seq++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("take inbox: %w", err)
	}
	if len(taps) == 0 {
		return 0, nil, nil
	}

	// Each tap's site and reader mode, then its person, from the registry
	// at the version read with the taps (or a later one).
	registry, err = r.cards.assignTaps(ctx, tx, taps, registry)
	if err != nil {
		return 0, nil, err
	}
	orgs, err := r.cards.resolve(ctx, tx, taps, registry)
	if err != nil {
		return 0, nil, err
	}

	// Each tap's inputs, and the (site, person) pairs to re-derive.
	type resolved struct {
		nt           newTap
		site, person *int64 // nil, or the taps' site and personID below
		personID     int64
		mode, mark   string
	}
	res := make([]resolved, len(taps))
	for i, nt := range taps {
		rv := &res[i]
		rv.nt, rv.mode, rv.mark = nt, "in", "unassigned"
		if nt.hasSite {
			rv.site, rv.mode, rv.mark = &taps[i].site, nt.mode, "unknown_card"
			if nt.person != 0 {
				rv.personID = nt.person
				rv.person, rv.mark = &rv.personID, "pending"
			}
		}
	}
	// The fresh taps grouped by pair, each group a part of one slice.
	// Another reconciler (a worker, a replica) may be taking in taps of
	// the same people: rederive locks the pairs, so that derivations of one
	// person never interleave, and leaves the pairs another transaction
	// holds to a later step (requeue).
	type pairTap struct {
		k  pair
		ft freshTap
	}
	all := make([]pairTap, 0, len(taps))
	for i, rv := range res {
		if rv.person == nil {
			continue
		}
		mode, _ := ParseMode(rv.mode)
		all = append(all, pairTap{pair{*rv.site, *rv.person}, freshTap{id: rv.nt.id, idx: i, ev: Event{Ref: rv.nt.id.Ref(), At: rv.nt.at, Mode: mode}}})
	}
	slices.SortFunc(all, func(a, b pairTap) int {
		return cmp.Or(cmp.Compare(a.k.site, b.k.site), cmp.Compare(a.k.person, b.k.person))
	})
	fts := make([]freshTap, len(all))
	for i, pt := range all {
		fts[i] = pt.ft
	}
	spans := make(map[pair]span, len(all))
	fresh := make(map[pair][]freshTap, len(all))
	for i := 0; i < len(all); {
		j, k := i, all[i].k
		var sp span
		for ; j < len(all) && all[j].k == k; j++ {
			sp = sp.add(all[j].ft.ev.At)
		}
		spans[k], fresh[k] = sp, fts[i:j:j]
		i = j
	}
	derived := make([]derivedMark, len(res))
	sites, busy, err := rederive(ctx, tx, spans, r.opts.Rules, fresh, derived, orgs, nil, skipBusyPairs)
	if err != nil {
		return 0, nil, err
	}
	// A counted tap is kept by the period that names it; the others get a
	// row in tap_marks.
	var markRows [][]any
	var later []newTap
	for i, rv := range res {
		if rv.person != nil && busy[pair{*rv.site, *rv.person}] {
			later = append(later, rv.nt)
			continue
		}
		if rv.site != nil && rv.person == nil && !slices.Contains(sites, *rv.site) {
			sites = append(sites, *rv.site) // the site's list of unknown cards changed
		}
		var dir *string
		if rv.person != nil {
			m := derived[i]
			if m.mark == "" {
				return 0, nil, fmt.Errorf("tap %s was not derived", rv.nt.id.Ref())
			}
			if m.mark == MarkCounted.String() {
				continue
			}
			rv.mark, dir = m.mark, m.direction
		}
		markRows = append(markRows, []any{rv.nt.id.Terminal, rv.nt.id.Epoch, rv.nt.id.Seq, rv.site, rv.person,
			rv.nt.at, rv.nt.card, rv.mode, false, dir, rv.mark})
	}
	if len(markRows) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tap_marks"},
			[]string{"terminal_id", "store_epoch", "seq", "site_id", "person_id", "event_time", "card_ident", "mode", "voided", "direction", "mark"},
			pgx.CopyFromRows(markRows)); err != nil {
			return 0, nil, fmt.Errorf("record marks: %w", err)
		}
	}
	if err := requeue(ctx, tx, later); err != nil {
		return 0, nil, err
	}
	return len(taps) - len(later), sites, nil
}

// requeue queues taps again that a step took but left to a later one,
// because another transaction was deriving their people: in runs of
// consecutive sequence numbers, as ingest queues them, at the end of the
// queue. The step deleted the rows that held them, so each tap is still
// queued once; and as the ledger does not depend on the order in which
// taps are taken in, being later changes nothing in it. At a morning peak
// they are a few (a double tap split between two steps); where a backlog
// holds each person's day, most of a step's.
func requeue(ctx context.Context, tx pgx.Tx, taps []newTap) error {
	if len(taps) == 0 {
		return nil
	}
	terms := make([]string, len(taps))
	epochs, seqs := make([]int64, len(taps)), make([]int64, len(taps))
	cards, times := make([]string, len(taps)), make([]time.Time, len(taps))
	for i, nt := range taps {
		terms[i], epochs[i], seqs[i], cards[i], times[i] = nt.id.Terminal, nt.id.Epoch, nt.id.Seq, nt.card, nt.at
	}
	if _, err := tx.Exec(ctx, `
		INSERT INTO reconcile_inbox (terminal_id, store_epoch, seq_from, seq_to, card_ids, event_times)
		SELECT t, e, min(s), max(s), array_agg(c ORDER BY s), array_agg(at ORDER BY s)
		FROM (SELECT *, s - row_number() OVER (PARTITION BY t, e ORDER BY s) AS run
		      FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[]) AS u(t, e, s, c, at)) u
		GROUP BY t, e, run
		ORDER BY min(s), t, e`,
		pgarray.Text(terms), pgarray.Int8(epochs), pgarray.Int8(seqs), pgarray.Text(cards), pgarray.Timestamptz(times)); err != nil {
		return fmt.Errorf("queue taps again: %w", err)
	}
	return nil
}

// pair is one person at one site: the unit of derivation.
type pair struct {
	site, person int64
}

// span is a time range; the zero span is empty.
type span struct {
	lo, hi time.Time
}

func (s span) add(t time.Time) span {
	if s.lo.IsZero() || t.Before(s.lo) {
		s.lo = t
	}
	if s.hi.IsZero() || t.After(s.hi) {
		s.hi = t
	}
	return s
}

func (s span) union(o span) span {
	if o.lo.IsZero() {
		return s
	}
	return s.add(o.lo).add(o.hi)
}

// freshTap is a tap being taken in: not yet stored anywhere, so its event
// is handed to the derivation in memory. idx is its place in the caller's
// list, where rederive writes its mark.
type freshTap struct {
	id  TapID
	idx int
	ev  Event
}

// derivedMark is what derivation made of a fresh tap.
type derivedMark struct {
	mark      string
	direction *string
}

// internedText scans a text column whose values repeat into one string
// per value. NULL gives "".
type internedText struct {
	s    string
	seen map[string]string
}

// ScanBytes implements pgtype.BytesScanner.
func (t *internedText) ScanBytes(b []byte) error {
	s, ok := t.seen[string(b)]
	if !ok {
		s = string(b)
		t.seen[s] = s
	}
	t.s = s
	return nil
}
