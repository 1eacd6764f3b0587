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

	mu     sync.Mutex
	cancel context.CancelFunc // of the running uplink, nil when stopped
	done   chan struct{}      // closed when the running uplink returned
	closed bool
}

func (e *Env) newTerminal(id, credential string) (*Terminal, error) {
	path := filepath.Join(e.dir, "outbox", id+".db")
	ob, err := outbox.Open(path, e.opts.Outbox)
	if err != nil {
		return nil, fmt.Errorf("loadgen: terminal %s: %w", id, err)
	}
	cfg := e.opts.Uplink
	cfg.URL = e.SyncURL()
	cfg.Credential = credential
	if cfg.AgentVersion == "" {
		cfg.AgentVersion = "loadgen"
	}
	up, err := uplink.New(cfg, ob, e.clock)
	if err != nil {
		ob.Close()
		return nil, fmt.Errorf("loadgen: terminal %s: %w", id, err)
	}
	return &Terminal{ID: id, Outbox: ob, Uplink: up, clock: e.clock, path: path}, nil
}

// Tap returns the i-th synthetic tap of the terminal, shaped like a real
// one: an ID06-like card id, the terminal's clocks, the kiosk's answer.
func (t *Terminal) Tap(i int) syncproto.Tap {
	return syncproto.Tap{
		CardID: fmt.Sprintf("LG%010d", i%100_000),
		Clock:  t.clock.Now(),
		Answer: "recorded",
	}
}

// Fill appends n synthetic taps to the outbox, chunk taps per transaction
// (DefaultFillChunk if chunk <= 0), whether or not the uplink runs.
func (t *Terminal) Fill(ctx context.Context, n, chunk int) error {
	if chunk <= 0 {
		chunk = DefaultFillChunk
	}
	buf := make([]syncproto.Tap, 0, min(n, chunk))
	for done := 0; done < n; {
		buf = buf[:0]
		for len(buf) < chunk && done+len(buf) < n {
			buf = append(buf, t.Tap(done+len(buf)))
		}
		if _, err := t.Outbox.Append(ctx, buf...); err != nil {
			return fmt.Errorf("loadgen: terminal %s: fill: %w", t.ID, err)
		}
		done += len(buf)
	}
	return nil
}

// Start runs the uplink in a goroutine owned by the Terminal until Stop or
// Close. Starting a running terminal does nothing.
func (t *Terminal) Start() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cancel != nil || t.closed {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.cancel, t.done = cancel, done
	go func() {
		defer close(done)
		t.Uplink.Run(ctx)
	}()
}

// Stop ends the uplink's session (as a kiosk losing its network would) and
// waits for it to return. Taps already in the outbox stay there.
func (t *Terminal) Stop() {
	t.mu.Lock()
	cancel, done := t.cancel, t.done
	t.cancel, t.done = nil, nil
	t.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Drained reports whether every tap appended so far has been acknowledged
// by the server and deleted from the outbox.
func (t *Terminal) Drained() bool {
	st := t.Outbox.Stats()
	return st.Depth == 0 && st.AckedThrough == st.LastSeq
}

// Close stops the uplink, closes the outbox and deletes its file. Later
// calls do nothing.
func (t *Terminal) Close() error {
	t.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	err := t.Outbox.Close()
	if rerr := os.Remove(t.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
		err = errors.Join(err, rerr)
	}
	return err
}

// FillAll fills every terminal's outbox with perTerminal taps, a few
// terminals at a time (each Append waits for its own fsync).
func FillAll(ctx context.Context, terms []*Terminal, perTerminal int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4 * runtime.GOMAXPROCS(0))
	for _, t := range terms {
		g.Go(func() error { return t.Fill(gctx, perTerminal, 0) })
	}
	return g.Wait()
}

// StartAll starts every terminal's uplink.
func StartAll(terms []*Terminal) {
	for _, t := range terms {
		t.Start()
	}
}

// StopAll stops every terminal's uplink and waits for them.
func StopAll(terms []*Terminal) {
	var wg sync.WaitGroup
	for _, t := range terms {
		wg.Go(t.Stop)
	}
	wg.Wait()
}

// CloseAll closes every terminal.
func CloseAll(terms []*Terminal) error {
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
func WaitDrained(ctx context.Context, terms []*Terminal) error {
	tick := time.NewTicker(DefaultPoll)
	defer tick.Stop()
	// Terminals found drained stay drained while nothing is appended, so
	// each poll looks only at those not drained yet.
	left := append([]*Terminal(nil), terms...)
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
			st := left[0].Uplink.State()
			return fmt.Errorf("loadgen: %d terminals not drained, %d taps left (e.g. %s: %+v): %w",
				len(left), Pending(left), left[0].ID, st, ctx.Err())
		case <-tick.C:
		}
	}
}
