package loadgen

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liggare/liggare/syncproto"
)

// ackTracker measures the ack latency of a terminal's taps: from the moment
// a tap was durable on the terminal until the terminal had the server's
// acknowledgement for it. Both kinds of terminal embed one.
type ackTracker struct {
	mu      sync.Mutex
	waiting []durableTap // recorded, not acknowledged yet, in Seq order
	through uint64       // highest sequence acknowledged so far
	made    int          // taps recorded
	lat     []ackedTap   // each tap acknowledged, in order
	offline atomic.Bool  // cut off from the network by the peak scenario
	// welcomed records when the terminal was first welcomed by the
	// server, as Unix nanoseconds; zero before.
	welcomed atomic.Int64
	// failures counts sessions that ended other than by Stop, and
	// lastFailure holds the error of the last one.
	failures    atomic.Int64
	lastFailure atomic.Pointer[string]
	// cards, when set, are the cards the terminal's taps use in turn (see
	// card); set before the terminal records its first tap.
	cards []string
	// onDurable, when set, is told of every tap recorded and when it was
	// durable (the tap-to-screen watch); set before the first tap.
	onDurable func(taps []syncproto.Tap, at time.Time, offline bool)
}

// card is the card of the terminal's i-th synthetic tap: its cards in
// turn, or an ID06-like number no registry knows.
func (a *ackTracker) card(i int) string {
	if len(a.cards) > 0 {
		return a.cards[i%len(a.cards)]
	}
	return fmt.Sprintf("LG%010d", i%100_000)
}

// failed records a session that failed.
func (a *ackTracker) failed(err error) {
	a.failures.Add(1)
	msg := err.Error()
	a.lastFailure.Store(&msg)
}

// sessionUp records that the server welcomed the terminal.
func (a *ackTracker) sessionUp() { a.welcomed.CompareAndSwap(0, time.Now().UnixNano()) }

// durableTap is a tap whose ack latency is being measured.
type durableTap struct {
	seq uint64
	at  time.Time // when it was durable
}

// ackedTap is the ack latency of one tap.
type ackedTap struct {
	seq uint64
	lat time.Duration
}

// durable starts measuring the taps, durable since at.
func (a *ackTracker) durable(taps []syncproto.Tap, at time.Time) {
	if a.onDurable != nil {
		a.onDurable(taps, at, a.isOffline())
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.made += len(taps)
	for _, tap := range taps {
		if tap.Seq <= a.through {
			// Acknowledged between the commit and the caller's call: its
			// latency is below what can be seen from here.
			a.lat = append(a.lat, ackedTap{seq: tap.Seq})
			continue
		}
		a.waiting = append(a.waiting, durableTap{seq: tap.Seq, at: at})
	}
}

// acked records that the server acknowledged every sequence up to through.
func (a *ackTracker) acked(through uint64) {
	now := time.Now()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.through = max(a.through, through)
	n := 0
	for n < len(a.waiting) && a.waiting[n].seq <= through {
		a.lat = append(a.lat, ackedTap{seq: a.waiting[n].seq, lat: now.Sub(a.waiting[n].at)})
		n++
	}
	a.waiting = a.waiting[n:]
}

// RestartLatency counts the ack latency of every tap still waiting from at
// instead of from the moment it became durable: for taps buffered before a
// measurement starts (a reconnection storm), whose time offline is not the
// server's doing.
func (a *ackTracker) RestartLatency(at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := range a.waiting {
		a.waiting[i].at = at
	}
}

// AckCounts returns how many taps were recorded and how many of them have
// been acknowledged.
func (a *ackTracker) AckCounts() (made, acked int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.made, len(a.lat)
}

// latenciesOf returns the ack latencies of those of the taps seqs (in
// ascending order) that have been acknowledged.
func (a *ackTracker) latenciesOf(seqs []uint64) []time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []time.Duration
	i := 0
	for _, l := range a.lat {
		for i < len(seqs) && seqs[i] < l.seq {
			i++
		}
		if i < len(seqs) && seqs[i] == l.seq {
			out = append(out, l.lat)
		}
	}
	return out
}

func (a *ackTracker) tracker() *ackTracker { return a }

// setOffline marks the terminal as cut off from the network (for the
// peak's outages); isOffline reads the mark.
func (a *ackTracker) setOffline(v bool) { a.offline.Store(v) }
func (a *ackTracker) isOffline() bool   { return a.offline.Load() }

// runner runs a terminal's session loop in a goroutine it owns, from start
// until stop, as both kinds of terminal do.
type runner struct {
	mu     sync.Mutex
	cancel context.CancelFunc // of the running loop, nil when stopped
	done   chan struct{}      // closed when the running loop returned
	closed bool
}

// start runs loop until stop or close; starting a running or closed
// runner does nothing.
func (r *runner) start(loop func(context.Context)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cancel != nil || r.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r.cancel, r.done = cancel, done
	go func() {
		defer close(done)
		loop(ctx)
	}()
}

// stop ends the loop and waits for it to return.
func (r *runner) stop() {
	r.mu.Lock()
	cancel, done := r.cancel, r.done
	r.cancel, r.done = nil, nil
	r.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// close stops the loop for good and reports whether it was the first call.
func (r *runner) close() bool {
	r.stop()
	r.mu.Lock()
	defer r.mu.Unlock()
	first := !r.closed
	r.closed = true
	return first
}

// Member is a simulated terminal of either kind: a Terminal (real outbox
// and uplink) or a SimTerminal (the real protocol over a real websocket,
// with its taps in memory).
type Member interface {
	// Append records taps, as the kiosk's reader does, and returns them
	// with their sequence numbers once they are durable.
	Append(ctx context.Context, taps ...syncproto.Tap) ([]syncproto.Tap, error)
	// Tap returns the terminal's i-th synthetic tap.
	Tap(i int) syncproto.Tap
	// Start connects (and keeps reconnecting) until Stop.
	Start()
	// Stop ends the session, as a kiosk losing its network, and waits.
	Stop()
	// Close stops the terminal and frees what it holds.
	Close() error
	// Connected reports whether the terminal has been welcomed and its
	// session is up.
	Connected() bool
	// Drained reports whether every tap recorded has been acknowledged.
	Drained() bool
	// Describe says what the terminal is doing, for an error message.
	Describe() string

	tracker() *ackTracker
}

// AckLatencies returns the ack latencies of the terminals' acknowledged
// taps, unsorted, and how many taps were recorded in all.
func AckLatencies[T Member](terms []T) (lat []time.Duration, made int) {
	for _, t := range terms {
		a := t.tracker()
		a.mu.Lock()
		for _, l := range a.lat {
			lat = append(lat, l.lat)
		}
		made += a.made
		a.mu.Unlock()
	}
	return lat, made
}
