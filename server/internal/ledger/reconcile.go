package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
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
	// terminal, typically one uploaded batch) one transaction considers.
	DefaultInboxBatch = 1024
	// DefaultPollInterval is how often an idle reconciler looks for work
	// that another server replica queued.
	DefaultPollInterval = 500 * time.Millisecond
	// DefaultWorkers is how many transactions reconcile at once: the work
	// is mostly PostgreSQL's, and one transaction keeps one backend busy.
	DefaultWorkers = 2
)

// initialRowTaps is the guess of taps per inbox row before the first step:
// the first step locks as many rows as it may take.
const initialRowTaps = 1

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
	// row, however large), and at most InboxBatch rows.
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
	// rowTaps is the mean number of taps per inbox row in the last step,
	// to lock about as many rows as a step takes: a locked row the step
	// leaves (over StepTaps) is skipped by the other workers until it
	// commits, and a worker that finds every row locked goes idle.
	rowTaps atomic.Int64
	// cards holds card resolutions across steps (cardcache.go).
	cards *cardCache
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
	r.rowTaps.Store(initialRowTaps)
	return r
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
// It assumes that none of the taps has been taken in before: inbox ranges
// overlap only when a batch was queued twice (a retried ingest, two
// replicas), which is rare. If one had, storing its resolution again
// violates the key of tap_resolutions, the transaction rolls back, and the
// step runs again, checking every tap.
func (r *Reconciler) Step(ctx context.Context) (int, error) {
	n, sites, err := r.stepTx(ctx, false)
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == uniqueViolation && pe.ConstraintName == "tap_resolutions_pkey" {
		n, sites, err = r.stepTx(ctx, true)
	}
	if err != nil {
		return 0, fmt.Errorf("ledger: reconcile: %w", err)
	}
	if len(sites) > 0 && r.opts.OnChange != nil {
		r.opts.OnChange(sites)
	}
	return n, nil
}

// lockRows is how many inbox rows a step locks: about as many as hold
// StepTaps taps, by the last step's mean, and at most InboxBatch.
func (r *Reconciler) lockRows() int {
	return int(min(int64(r.opts.InboxBatch), max(1, int64(r.opts.StepTaps)/max(1, r.rowTaps.Load()))))
}

// uniqueViolation is PostgreSQL's SQLSTATE for a duplicate key.
const uniqueViolation = "23505"

func (r *Reconciler) stepTx(ctx context.Context, checked bool) (int, []int64, error) {
	var n int
	var sites []int64
	err := pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		var err error
		n, sites, err = r.step(ctx, tx, checked)
		return err
	})
	return n, sites, err
}

// Drain reconciles on Workers goroutines until the inbox is empty (for
// tests, tools and benchmarks).
func (r *Reconciler) Drain(ctx context.Context) error {
	for {
		var left int
		if err := r.pool.QueryRow(ctx, `SELECT count(*) FROM reconcile_inbox`).Scan(&left); err != nil {
			return fmt.Errorf("ledger: drain: %w", err)
		}
		if left == 0 {
			return nil
		}
		errs := make(chan error, r.opts.Workers)
		for range r.opts.Workers {
			go func() {
				for {
					n, err := r.Step(ctx)
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
	}
}

// newTap is a stored tap not yet reconciled.
type newTap struct {
	id     TapID
	card   string
	at     time.Time
	siteID *int64
	mode   *string
}

// step takes in the taps of the next inbox rows, within StepTaps and
// InboxBatch. With checked, taps that already have a resolution are left
// out (see Step).
func (r *Reconciler) step(ctx context.Context, tx pgx.Tx, checked bool) (int, []int64, error) {
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
	// BenchmarkReconcile, 11 of the step's 20 ms).
	rows, err := tx.Query(ctx, `
		WITH candidates AS MATERIALIZED (
			SELECT ctid AS tid, inbox_id, seq_to - seq_from + 1 AS n FROM reconcile_inbox
			ORDER BY inbox_id LIMIT $1 FOR UPDATE SKIP LOCKED),
		picked AS (
			SELECT tid FROM (
				SELECT tid, sum(n) OVER (ORDER BY inbox_id) AS upto, n FROM candidates) c
			WHERE upto <= $2 OR upto = n),
		taken AS (
			DELETE FROM reconcile_inbox i USING picked p WHERE i.ctid = p.tid
			RETURNING i.terminal_id, i.store_epoch, i.seq_from, i.seq_to)
		SELECT t.terminal_id, t.store_epoch, t.seq, t.card_id, t.event_time, a.site_id, a.direction,
		       (SELECT count(*) FROM taken), (SELECT n FROM registry_version)
		FROM taken r
		JOIN taps t ON t.terminal_id = r.terminal_id AND t.store_epoch = r.store_epoch
		           AND t.seq BETWEEN r.seq_from AND r.seq_to
		LEFT JOIN LATERAL (
			SELECT ta.site_id, ta.direction FROM terminal_assignments ta
			WHERE ta.terminal_id = t.terminal_id AND ta.valid_from <= t.event_time
			ORDER BY ta.valid_from DESC LIMIT 1) a ON true`, r.lockRows(), r.opts.StepTaps)
	if err != nil {
		return 0, nil, fmt.Errorf("take inbox: %w", err)
	}
	taps := make([]newTap, 0, r.opts.StepTaps)
	seen := make(map[TapID]bool, r.opts.StepTaps)
	var inboxRows, registry int64
	for rows.Next() {
		var nt newTap
		if err := rows.Scan(&nt.id.Terminal, &nt.id.Epoch, &nt.id.Seq, &nt.card, &nt.at, &nt.siteID, &nt.mode, &inboxRows, &registry); err != nil {
			rows.Close()
			return 0, nil, err
		}
		if !seen[nt.id] { // inbox ranges may overlap
			seen[nt.id] = true
			taps = append(taps, nt)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("take inbox: %w", err)
	}
	if inboxRows > 0 {
		r.rowTaps.Store(max(1, int64(len(taps))/inboxRows))
	}
	if len(taps) == 0 {
		return 0, nil, nil
	}

	persons, orgs, err := r.cards.resolve(ctx, tx, taps, registry)
	if err != nil {
		return 0, nil, err
	}

	// Each tap's inputs, and the (site, person) pairs to re-derive.
	type resolved struct {
		nt           newTap
		site, person *int64
		mode, mark   string
	}
	res := make([]resolved, len(taps))
	for i, nt := range taps {
		rv := &res[i]
		rv.nt, rv.mode, rv.mark = nt, "in", "unassigned"
		if nt.siteID != nil {
			rv.site, rv.mode, rv.mark = nt.siteID, *nt.mode, "unknown_card"
			if p, ok := persons[cardAt{*nt.siteID, nt.card}]; ok {
				rv.person, rv.mark = &p, "pending"
			}
		}
	}
	// Another reconciler (a replica) may be taking in the same taps: lock
	// the people, so that derivations of one person never interleave.
	lockSpans := make(map[pair]span, len(taps))
	var streams []TapID
	for _, rv := range res {
		if rv.person != nil {
			k := pair{*rv.site, *rv.person}
			lockSpans[k] = lockSpans[k].add(rv.nt.at)
			continue
		}
		// No person, no pair lock: lock the tap's stream instead.
		streams = append(streams, TapID{Terminal: rv.nt.id.Terminal, Epoch: rv.nt.id.Epoch})
	}
	if err := lockKeys(ctx, tx, lockSpans, streams); err != nil {
		return 0, nil, err
	}
	var done map[TapID]bool
	if checked {
		if done, err = alreadyResolved(ctx, tx, taps); err != nil {
			return 0, nil, err
		}
	}
	spans := make(map[pair]span, len(lockSpans))
	fresh := make(map[pair][]freshTap, len(lockSpans))
	for i, rv := range res {
		if rv.person == nil || done[rv.nt.id] {
			continue
		}
		k := pair{*rv.site, *rv.person}
		spans[k] = spans[k].add(rv.nt.at)
		mode, _ := ParseMode(rv.mode)
		fresh[k] = append(fresh[k], freshTap{id: rv.nt.id, idx: i, ev: Event{Ref: rv.nt.id.Ref(), At: rv.nt.at, Mode: mode}})
	}
	derived := make([]derivedMark, len(res))
	sites, err := rederive(ctx, tx, spans, r.opts.Rules, fresh, derived, orgs)
	if err != nil {
		return 0, nil, err
	}
	copyRows := make([][]any, 0, len(res))
	for i, rv := range res {
		if done[rv.nt.id] {
			continue
		}
		if rv.site != nil && rv.person == nil && !slices.Contains(sites, *rv.site) {
			sites = append(sites, *rv.site) // the site's list of unknown cards changed
		}
		var dir *string
		if m := derived[i]; m.mark != "" {
			rv.mark, dir = m.mark, m.direction
		}
		copyRows = append(copyRows, []any{rv.nt.id.Terminal, rv.nt.id.Epoch, rv.nt.id.Seq, rv.site, rv.person,
			rv.nt.at, rv.nt.card, rv.mode, false, dir, rv.mark})
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"tap_resolutions"},
		[]string{"terminal_id", "store_epoch", "seq", "site_id", "person_id", "event_time", "card_ident", "mode", "voided", "direction", "mark"},
		pgx.CopyFromRows(copyRows)); err != nil {
		return 0, nil, fmt.Errorf("record resolutions: %w", err)
	}
	return len(copyRows), sites, nil
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

// freshTap is a tap being taken in: not yet in tap_resolutions, so its event
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

// alreadyResolved reports which of the taps have a resolution already.
func alreadyResolved(ctx context.Context, tx pgx.Tx, taps []newTap) (map[TapID]bool, error) {
	terms := make([]string, len(taps))
	epochs := make([]int64, len(taps))
	seqs := make([]int64, len(taps))
	for i, nt := range taps {
		terms[i], epochs[i], seqs[i] = nt.id.Terminal, nt.id.Epoch, nt.id.Seq
	}
	rows, err := tx.Query(ctx, `
		SELECT tr.terminal_id, tr.store_epoch, tr.seq FROM tap_resolutions tr
		JOIN unnest($1::text[], $2::bigint[], $3::bigint[]) AS u(terminal_id, store_epoch, seq)
		  ON tr.terminal_id = u.terminal_id AND tr.store_epoch = u.store_epoch AND tr.seq = u.seq`,
		terms, epochs, seqs)
	if err != nil {
		return nil, fmt.Errorf("check resolutions: %w", err)
	}
	defer rows.Close()
	out := make(map[TapID]bool)
	for rows.Next() {
		var id TapID
		if err := rows.Scan(&id.Terminal, &id.Epoch, &id.Seq); err != nil {
			return nil, fmt.Errorf("check resolutions: %w", err)
		}
		out[id] = true
	}
	return out, rows.Err()
}
