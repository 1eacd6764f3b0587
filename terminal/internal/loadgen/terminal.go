package loadgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/clock"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// DefaultFillChunk is how many taps Fill appends per outbox transaction:
// as many as a kiosk could buffer between two fsyncs under a flood.
const DefaultFillChunk = 4096

// DefaultPoll is how often WaitDrained looks at the outboxes.
const DefaultPoll = 5 * time.Millisecond

// Terminal is one simulated kiosk: a real outbox file and a real uplink.
type Terminal struct {
	// ID is the terminal id the server knows it by.
	ID string
	// Outbox is the terminal's outbox; taps may be appended at any time.
	Outbox *outbox.Outbox
	// Uplink uploads the outbox once started.
	Uplink *uplink.Uplink

	clock *clock.Clock
	path  string

	ackTracker

	runner runner // runs the uplink
}

func (e *Env) newTerminal(id, credential string) (*Terminal, error) {
	path := filepath.Join(e.dir, "outbox", id+".db")
	ob, err := outbox.Open(path, e.opts.Outbox)
	if err != nil {
		return nil, fmt.Errorf("loadgen: terminal %s: %w", id, err)
	}
	t := &Terminal{ID: id, Outbox: ob, clock: e.clock, path: path}
	cfg := e.opts.Uplink
	cfg.URL = e.ReplicaSyncURL(e.nextReplica())
	cfg.Credential = credential
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "loadgen"
	}
	cfg.OnAck = func(through uint64) {
		// The uplink reports the Welcome's cursor first.
		t.sessionUp()
		t.acked(through)
	}
	up, err := uplink.New(cfg, ob, e.clock)
	if err != nil {
		ob.Close()
		return nil, fmt.Errorf("loadgen: terminal %s: %w", id, err)
	}
	t.Uplink = up
	return t, nil
}

// Append stores taps in the outbox, as the kiosk's reader does, and starts
// measuring the ack latency of each: from the moment the outbox made it
// durable until the uplink has the server's acknowledgement for it (and
// dropped it from the outbox).
// It returns the taps with their sequence numbers.
func (t *Terminal) Append(ctx context.Context, taps ...syncproto.Tap) ([]syncproto.Tap, error) {
	stored, err := t.Outbox.Append(ctx, taps...)
	if err != nil {
		return nil, fmt.Errorf("loadgen: terminal %s: append: %w", t.ID, err)
	}
	t.durable(stored, time.Now())
	return stored, nil
}

// Tap returns the i-th synthetic tap of the terminal, shaped like a real
// one: an ID06-like card id, the terminal's clocks, the kiosk's answer.
func (t *Terminal) Tap(i int) syncproto.Tap { return syntheticTap(t.clock, t.card(i)) }

// syntheticTap is a synthetic tap of card on a terminal with clock c.
func syntheticTap(c *clock.Clock, card string) syncproto.Tap {
	return syncproto.Tap{
		CardID: card,
		Clock:  c.Now(),
		Answer: "recorded",
	}
}

// Fill appends n synthetic taps to the outbox, chunk taps per transaction
// (DefaultFillChunk if chunk <= 0), whether or not the uplink runs.
func (t *Terminal) Fill(ctx context.Context, n, chunk int) error { return fill(ctx, t, n, chunk) }

// fill appends n synthetic taps to m, chunk taps per Append
// (DefaultFillChunk if chunk <= 0).
func fill(ctx context.Context, m Member, n, chunk int) error {
	if chunk <= 0 {
		chunk = DefaultFillChunk
	}
	buf := make([]syncproto.Tap, 0, min(n, chunk))
	for done := 0; done < n; {
		buf = buf[:0]
		for len(buf) < chunk && done+len(buf) < n {
			buf = append(buf, m.Tap(done+len(buf)))
		}
		if _, err := m.Append(ctx, buf...); err != nil {
			return err
		}
		done += len(buf)
	}
	return nil
}

// Start runs the uplink in a goroutine owned by the Terminal until Stop or
// Close. Starting a running terminal does nothing.
func (t *Terminal) Start() { t.runner.start(func(ctx context.Context) { t.Uplink.Run(ctx) }) }

// Stop ends the uplink's session (as a kiosk losing its network would) and
// waits for it to return. Taps already in the outbox stay there.
func (t *Terminal) Stop() { t.runner.stop() }

// Drained reports whether every tap appended so far has been acknowledged
// by the server and deleted from the outbox.
func (t *Terminal) Drained() bool {
	st := t.Outbox.Stats()
	return st.Depth == 0 && st.AckedThrough == st.LastSeq
}

// Connected reports whether the uplink has a session.
func (t *Terminal) Connected() bool { return t.Uplink.State().Connected }

// Describe returns the terminal's id, outbox and uplink state.
func (t *Terminal) Describe() string {
	return fmt.Sprintf("%s: outbox %+v, uplink %+v", t.ID, t.Outbox.Stats(), t.Uplink.State())
}

// Close stops the uplink, closes the outbox and deletes its file. Later
// calls do nothing.
func (t *Terminal) Close() error {
	if !t.runner.close() {
		return nil
	}
	err := t.Outbox.Close()
	if rerr := os.Remove(t.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// FillAll fills every terminal's outbox with perTerminal taps, a few
// terminals at a time (each Append waits for its own fsync).
func FillAll[T Member](ctx context.Context, terms []T, perTerminal int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4 * runtime.GOMAXPROCS(0))
	for _, t := range terms {
		g.Go(func() error { return fill(gctx, t, perTerminal, 0) })
	}
	return g.Wait()
}

// StartAll starts every terminal's uplink.
func StartAll[T Member](terms []T) {
	for _, t := range terms {
		t.Start()
	}
}

// StopAll stops every terminal's uplink and waits for them.
func StopAll[T Member](terms []T) {
	var wg sync.WaitGroup
	for _, t := range terms {
		wg.Go(t.Stop)
	}
	wg.Wait()
}

// CloseAll closes every terminal.
func CloseAll[T Member](terms []T) error {
	var errs []error
	for _, t := range terms {
		if err := t.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Pending returns the taps still in the terminals' outboxes.
func Pending(terms []*Terminal) uint64 {
	var n uint64
	for _, t := range terms {
		n += t.Outbox.Stats().Depth
	}
	return n
}

// WaitDrained polls the terminals every DefaultPoll until every one is
// Drained, or ctx ends; the error then says how many taps were left. Call
// it after the last Append: a terminal once seen drained is not looked at
// again.
func WaitDrained[T Member](ctx context.Context, terms []T) error {
	tick := time.NewTicker(DefaultPoll)
	defer tick.Stop()
	// Terminals found drained stay drained while nothing is appended, so
	// each poll looks only at those not drained yet.
	left := append([]T(nil), terms...)
	for {
		rest := left[:0]
		for _, t := range left {
			if !t.Drained() {
				rest = append(rest, t)
			}
		}
		left = rest
		if len(left) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			made, acked := 0, 0
			for _, t := range left {
				m, a := t.tracker().AckCounts()
				made, acked = made+m, acked+a
			}
			return fmt.Errorf("loadgen: %d terminals not drained, %d taps recorded by them not acknowledged (e.g. %s): %w",
				len(left), made-acked, left[0].Describe(), ctx.Err())
		case <-tick.C:
		}
	}
}
