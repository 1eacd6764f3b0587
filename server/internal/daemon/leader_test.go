package daemon

import (
	"context"
	"log/slog"
	"testing"

	"github.com/liggare/liggare/server/internal/pgtest"
)

// TestLeaderHandsOver runs three replicas' leader elections on one
// database: one works at a time, and when the leader ends (its context, as
// at a shutdown, or its connection, as at a crash) another takes over.
func TestLeaderHandsOver(t *testing.T) {
	pool := pgtest.New(t)
	type replica struct {
		l       *Leader
		cancel  context.CancelFunc
		done    chan struct{}
		working chan struct{} // closed when its work starts
		stopped chan struct{} // closed when its work ends
	}
	started := make(chan int, 8)
	woken := make(chan int, 8)
	start := func(i int) *replica {
		r := &replica{done: make(chan struct{}), working: make(chan struct{}), stopped: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		l := &Leader{Pool: pool, Logger: slog.New(slog.DiscardHandler), OnWake: func() { woken <- i }}
		r.l = l
		first := true
		go func() {
			defer close(r.done)
			l.Run(ctx, func(ctx context.Context) error {
				if first {
					close(r.working)
					started <- i
				}
				<-ctx.Done()
				if first {
					close(r.stopped)
				}
				first = false
				return nil
			})
		}()
		return r
	}
	replicas := []*replica{start(0), start(1), start(2)}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.cancel()
			<-r.done
		}
	})

	leader := <-started
	// A nudge from another replica wakes the leader.
	replicas[(leader+1)%3].l.Nudge()
	if i := <-woken; i != leader {
		t.Fatalf("replica %d woken, want the leader %d", i, leader)
	}
	// Shutdown: the leader's context ends; its work stops before another
	// replica's starts.
	replicas[leader].cancel()
	<-replicas[leader].done
	select {
	case <-replicas[leader].stopped:
	default:
		t.Fatal("the old leader's work had not stopped when Run returned")
	}
	next := <-started
	if next == leader {
		t.Fatalf("replica %d led twice", leader)
	}
	select {
	case i := <-started:
		t.Fatalf("replicas %d and %d lead at once", next, i)
	default:
	}

	// Crash: the leader's connection is terminated. It stops working (at
	// its next check), and the last replica takes over.
	if _, err := pool.Exec(context.Background(), `
		SELECT pg_terminate_backend(pid) FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objsubid = 1
		  AND (classid::bigint << 32 | objid::bigint) = $1`, LeaderLockKey); err != nil {
		t.Fatal(err)
	}
	<-replicas[next].stopped
	last := <-started
	if last == leader || last == next {
		t.Fatalf("replica %d took over, want the third", last)
	}
}
