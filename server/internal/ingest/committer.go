package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/liggare/liggare/syncproto"
	"golang.org/x/sync/errgroup"
)

// Defaults for CommitterOptions.
const (
	// DefaultWorkers is how many transactions run at once. Two keep
	// PostgreSQL busy while the next group is being gathered.
	DefaultWorkers = 4
	// DefaultMaxGroupTaps bounds the taps applied in one transaction.
	DefaultMaxGroupTaps = 16384
	// DefaultQueue is how many submissions may wait for a worker.
	DefaultQueue = 4096
	// applyTimeout bounds one transaction, including at shutdown.
	applyTimeout = 30 * time.Second
	// maxRetries bounds retries of a group that hit a deadlock or
	// serialization failure.
	maxRetries = 5
)

// ErrStopped is returned for submissions that were not applied because the
// Committer stopped. Their batches are not acknowledged; the terminal will
// send them again.
var ErrStopped = errors.New("ingest: committer stopped")

// CommitterOptions configures a Committer. Zero values mean the defaults.
type CommitterOptions struct {
	Workers      int
	MaxGroupTaps int
	Queue        int
	Logger       *slog.Logger
	// OnCommit, when set, is called after each committed group: the ledger's
	// reconciler uses it to start at once instead of at its next poll.
	OnCommit func()
	// OnApplied, when set, is called after each committed group with its
	// size and how long the transaction took (for metrics).
	OnApplied func(batches, taps int, took time.Duration)
}

// Done receives the outcome of one submission: its Ack after the commit, or
// an error, in which case nothing about the batch may be acknowledged.
type Done func(*syncproto.Ack, error)

type request struct {
	sub  *Submission
	done Done
}

// Committer applies submissions from many connections in shared
// transactions (group commit). Each terminal's batches always go to the same
// worker: batches of one terminal in two concurrent transactions would wait
// for each other on the terminal's cursor row and could commit out of order,
// which sends the later one down the slow path of looking up what is held.
type Committer struct {
	store   *Store
	opts    CommitterOptions
	queues  []chan request
	stopped chan struct{}
	// mu makes stopping atomic with respect to Submit: a request is either
	// queued before the final drain (and answered) or refused.
	mu        sync.RWMutex
	isStopped bool
}

// NewCommitter returns a Committer over store. Call Run to start it.
func NewCommitter(store *Store, opts CommitterOptions) *Committer {
	if opts.Workers <= 0 {
		opts.Workers = DefaultWorkers
	}
	if opts.MaxGroupTaps <= 0 {
		opts.MaxGroupTaps = DefaultMaxGroupTaps
	}
	if opts.Queue <= 0 {
		opts.Queue = DefaultQueue
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	queues := make([]chan request, opts.Workers)
	for i := range queues {
		queues[i] = make(chan request, max(1, opts.Queue/opts.Workers))
	}
	return &Committer{
		store:   store,
		opts:    opts,
		queues:  queues,
		stopped: make(chan struct{}),
	}
}

// queueFor picks the worker of a terminal (FNV-1a of its id).
func (c *Committer) queueFor(terminal string) chan request {
	h := uint32(2166136261)
	for i := 0; i < len(terminal); i++ {
		h = (h ^ uint32(terminal[i])) * 16777619
	}
	return c.queues[h%uint32(len(c.queues))]
}

// Submit queues sub; done is called exactly once, from a worker goroutine,
// after the transaction holding it committed or failed. Submit blocks while
// the queue is full (back-pressure on the connection) and fails when ctx ends
// or the Committer stopped.
func (c *Committer) Submit(ctx context.Context, sub *Submission, done Done) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.isStopped {
		return ErrStopped
	}
	select {
	case c.queueFor(sub.Session.TerminalID) <- request{sub, done}:
		return nil
	case <-c.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run applies submissions until ctx ends. A group already taken finishes and
// is answered; submissions still queued are answered with ErrStopped.
func (c *Committer) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, q := range c.queues {
		g.Go(func() error { c.work(gctx, q); return nil })
	}
	err := g.Wait()
	// Wake Submits blocked on a full queue, then wait until none is inside
	// Submit, so the drain below sees every queued request.
	close(c.stopped)
	c.mu.Lock()
	c.isStopped = true
	c.mu.Unlock()
	for _, q := range c.queues {
	drain:
		for {
			select {
			case r := <-q:
				r.done(nil, ErrStopped)
			default:
				break drain
			}
		}
	}
	return err
}

func (c *Committer) work(ctx context.Context, queue chan request) {
	var group []request
	for {
		group = group[:0]
		select {
		case <-ctx.Done():
			return
		case r := <-queue:
			group = append(group, r)
		}
		n := len(group[0].sub.Batch.Taps)
	gather:
		for n < c.opts.MaxGroupTaps {
			select {
			case r := <-queue:
				group = append(group, r)
				n += len(r.sub.Batch.Taps)
			default:
				break gather
			}
		}
		c.apply(group)
	}
}

// apply runs one group to completion, even if the Committer is stopping:
// its batches were taken from connections that wait for the answer.
func (c *Committer) apply(group []request) {
	subs := make([]*Submission, len(group))
	for i, r := range group {
		subs[i] = r.sub
	}
	var acks []*syncproto.Ack
	var err error
	began := time.Now()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), applyTimeout)
		acks, err = c.store.Apply(ctx, subs)
		cancel()
		if err == nil || !retryable(err) || attempt >= maxRetries {
			break
		}
		c.opts.Logger.Warn("ingest_retry", "attempt", attempt+1, logErr, err)
	}
	if err != nil {
		c.opts.Logger.Error("ingest_apply_failed", "batches", len(subs), logErr, err)
		for _, r := range group {
			r.done(nil, fmt.Errorf("ingest: %w", err))
		}
		return
	}
	if c.opts.OnCommit != nil {
		c.opts.OnCommit()
	}
	if c.opts.OnApplied != nil {
		taps := 0
		for _, sub := range subs {
			taps += len(sub.Batch.Taps)
		}
		c.opts.OnApplied(len(subs), taps, time.Since(began))
	}
	for i, r := range group {
		r.done(acks[i], nil)
	}
}

// retryable reports errors after which the same group can simply run again.
func retryable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}
