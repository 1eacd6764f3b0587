package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LeaderLockKey is the session advisory lock the reconciler's leader holds
// (and every other replica waits for, so pg_locks lists one row per
// replica). It is negative: the ledger's transaction locks use
// non-negative keys only.
const LeaderLockKey int64 = -0x4c6967676172654c // "LiggareL"

// leaderChannel is the notification channel on which the other replicas
// wake the leader (Leader.Nudge).
const leaderChannel = "liggare_leader_wake"

// Limits of the leader election.
const (
	// nudgeTimeout bounds one Nudge's notification.
	nudgeTimeout = 5 * time.Second
	// leaderCheck is how often the leader checks that the connection
	// holding its lock is alive. A leader that lost its connection has lost
	// the lock; it stops within this.
	leaderCheck = 2 * time.Second
	// leaderRetryMin and leaderRetryMax bound the wait before a replica
	// whose connection failed connects again to compete for the lock.
	leaderRetryMin = 100 * time.Millisecond
	leaderRetryMax = 5 * time.Second
)

// leaderSessionSettings make PostgreSQL notice a leader that went silent
// (its machine or network gone, no FIN or RST) in about 15 s rather than
// the system's default of two hours of TCP keepalive: until it does, the
// session keeps the lock and no other replica can reconcile. They apply
// to TCP connections only (a Unix socket notices a dead peer at once).
const leaderSessionSettings = `SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
	SET tcp_keepalives_count = 3; SET tcp_user_timeout = 10000`

// Leader runs work on one replica at a time: the one holding a PostgreSQL
// session advisory lock. The others wait for the lock in PostgreSQL, so
// that the leader's end (a crash, a shutdown, a lost connection) hands the
// work over at once.
//
// It exists for the reconciler. Its workers are safe to run on every
// replica at once (the ledger serialises per site and person inside the
// database), but on one PostgreSQL every extra worker adds contention and
// no throughput: with three replicas on two cores, six workers made
// ingest slower than two did. Two leaders for a moment, while a lost
// connection goes unnoticed, are harmless.
//
// The other replicas wake the leader when they queue work (Nudge), so
// that it need not wait for its next poll.
type Leader struct {
	// Pool sends the nudges; its configuration is the lock connection's.
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// OnWake, when set, is called on the leader when another replica
	// nudges it. It must return quickly.
	OnWake func()
	// OnChange, when set, is told whether this replica leads.
	OnChange func(leading bool)

	leading atomic.Bool
	mu      sync.Mutex
	sending bool // a goroutine sends nudges
	again   bool // and must send one more
}

// Nudge tells the leader that there is work, unless this replica leads.
// It does not wait: a goroutine sends the notification, and nudges made
// meanwhile are folded into one more.
func (l *Leader) Nudge() {
	if l.leading.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sending {
		l.again = true
		return
	}
	l.sending = true
	go l.sendNudges()
}

func (l *Leader) sendNudges() {
	for {
		ctx, cancel := context.WithTimeout(context.Background(), nudgeTimeout)
		_, err := l.Pool.Exec(ctx, `SELECT pg_notify($1, '')`, leaderChannel)
		cancel()
		if err != nil {
			l.Logger.Warn("leader_nudge_failed", "err", err)
		}
		l.mu.Lock()
		if !l.again {
			l.sending = false
			l.mu.Unlock()
			return
		}
		l.again = false
		l.mu.Unlock()
	}
}

// Run calls work with a context that ends when leadership is lost, each
// time this replica becomes the leader, until ctx ends.
func (l *Leader) Run(ctx context.Context, work func(context.Context) error) {
	wait := leaderRetryMin
	for {
		led, err := l.lead(ctx, work)
		if ctx.Err() != nil {
			return
		}
		if led {
			wait = leaderRetryMin
		}
		l.Logger.Warn("leader_lost", "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, leaderRetryMax)
	}
}

// lead waits for the lock on a connection of its own and runs work while it
// holds it. led reports whether it got the lock.
func (l *Leader) lead(ctx context.Context, work func(context.Context) error) (led bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, l.Pool.Config().ConnConfig.Copy())
	if err != nil {
		return false, fmt.Errorf("daemon: leader: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx) // the lock goes with the session
	}()
	if _, err := conn.Exec(ctx, leaderSessionSettings); err != nil {
		return false, fmt.Errorf("daemon: leader: session settings: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, LeaderLockKey); err != nil {
		return false, fmt.Errorf("daemon: leader: lock: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{leaderChannel}.Sanitize()); err != nil {
		return true, fmt.Errorf("daemon: leader: listen: %w", err)
	}
	l.Logger.Info("leader_elected")
	l.changed(true)
	defer l.changed(false)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- work(wctx) }()
	stop := func(err error) (bool, error) {
		cancel()
		<-done
		return true, err
	}
	for {
		select {
		case err := <-done:
			return true, fmt.Errorf("daemon: leader: work ended: %w", err)
		default:
		}
		nctx, ncancel := context.WithTimeout(ctx, leaderCheck)
		n, err := conn.WaitForNotification(nctx)
		ncancel()
		switch {
		case ctx.Err() != nil:
			return stop(ctx.Err())
		case err == nil:
			if n.Channel == leaderChannel && l.OnWake != nil {
				l.OnWake()
			}
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			// Quiet for leaderCheck: is the lock's connection alive? A
			// silent network would hold Ping for minutes: bounded, so that
			// a cut-off leader stops working about when PostgreSQL gives
			// its lock away (leaderSessionSettings).
			pctx, pcancel := context.WithTimeout(ctx, leaderCheck)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				return stop(fmt.Errorf("daemon: leader: lock connection lost: %w", err))
			}
		default:
			return stop(fmt.Errorf("daemon: leader: lock connection lost: %w", err))
		}
	}
}

func (l *Leader) changed(leading bool) {
	l.leading.Store(leading)
	if l.OnChange != nil {
		l.OnChange(leading)
	}
}
