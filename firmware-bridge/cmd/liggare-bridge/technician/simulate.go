package technician

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/liggare/liggare/firmware-bridge/cmd/liggare-bridge/crew"
	linesim "github.com/liggare/liggare/firmware-bridge/lineproto/sim"
	"github.com/liggare/liggare/firmware-bridge/osdp"
	osdpsim "github.com/liggare/liggare/firmware-bridge/osdp/sim"
	pn532sim "github.com/liggare/liggare/firmware-bridge/pn532/sim"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Defaults of simulate.
const (
	DefaultSimCards    = 30
	DefaultSimInterval = 4 * time.Second
	// DefaultSimAddr is the simulated OSDP reader's address.
	DefaultSimAddr = 1
)

// pn532Hold is how long a simulated worker leaves a card on a PN532 after
// the first poll saw it, and pn532Unread how long the card waits for a
// poll at all before the worker walks away.
const (
	pn532Hold   = 300 * time.Millisecond
	pn532Unread = 3 * time.Second
)

// simReader is a simulated reader presenting crew cards.
type simReader interface {
	// present presents worker i's card and says what the reader yields,
	// or returns errSkipped when the card could not be presented.
	present(ctx context.Context, i int) (string, error)
	// drain gives the driver the chance to take the cards presented
	// last, before the reader is unplugged.
	drain(ctx context.Context)
	close() error
}

// drainFor bounds how long simulate waits, at the end of --count, for the
// driver to take the last card.
const drainFor = 5 * time.Second

// errSkipped: the simulated worker did not get to present the card.
var errSkipped = errors.New("skipped")

// simulate runs a simulated reader behind --link, presenting the cards of
// a crew at random until ctx ends.
func simulate(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := newFlags("simulate", "--protocol osdp|pn532|line --link PATH [--cards N] [--interval D]", stderr)
	proto := fs.String("protocol", "", "the reader to simulate: osdp, pn532 or line")
	link := fs.String("link", "", "the stable path to the simulated reader (a symbolic link, made here), which the driver opens")
	cards := fs.Int("cards", DefaultSimCards, "crew size: worker i carries card number "+crew.CardNumber(0)+"+i on a chip with a UID of its own")
	interval := fs.Duration("interval", DefaultSimInterval, "mean time between two presentations")
	addr := fs.Int("addr", DefaultSimAddr, "OSDP: the reader's address, 0-126")
	numbers := fs.Bool("numbers", false, "OSDP: report ID06 card numbers (osdp_FMT) rather than chip UIDs (osdp_RAW)")
	count := fs.Int("count", 0, "stop after this many presentations (0: run until Ctrl-C)")
	seed := fs.Uint64("seed", 0, "seed of the random choices (0: from the clock)")
	if _, err := parseArgs(fs, args, 0, 0); err != nil {
		return err
	}
	switch {
	case *link == "":
		return fmt.Errorf("%w: simulate: --link PATH is required", ErrUsage)
	case *cards < 1:
		return fmt.Errorf("%w: simulate: --cards must be at least 1", ErrUsage)
	case *interval <= 0:
		return fmt.Errorf("%w: simulate: --interval must be positive", ErrUsage)
	case *addr < 0 || *addr > osdp.MaxAddr:
		return fmt.Errorf("%w: simulate: --addr must be 0-%d", ErrUsage, osdp.MaxAddr)
	case *numbers && *proto != protoOSDP:
		return fmt.Errorf("%w: simulate: --numbers is for --protocol osdp", ErrUsage)
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		r    simReader
		err  error
		spec string
	)
	switch *proto {
	case protoOSDP:
		r, err = startOSDPSim(ctx, *link, byte(*addr), *numbers)
		spec = fmt.Sprintf("osdp:%s?addr=%d", *link, *addr)
	case protoPN532:
		r, err = startPN532Sim(ctx, *link, *seed)
		spec = "pn532:" + *link
	case protoLine:
		r, err = startLineSim(*link, *seed)
		spec = "line:" + *link
	default:
		return fmt.Errorf("%w: simulate: --protocol %q: want osdp, pn532 or line", ErrUsage, *proto)
	}
	if err != nil {
		return err
	}
	defer removeLink(*link)
	defer r.close()
	fmt.Fprintf(out, "simulated %s reader at %s (drive it with --reader '%s'); %d cards, one every %v on average\n",
		*proto, *link, spec, *cards, *interval)

	rng := rand.New(rand.NewPCG(*seed, 0x6c696767617265))
	last := make(map[int]time.Time) // when each worker last presented
	presented := 0
	for (*count == 0 || presented < *count) && ctx.Err() == nil {
		if !sleepCtx(ctx, time.Duration(rng.Int64N(int64(2**interval)+1))) {
			break
		}
		i, ok := pickWorker(rng, *cards, last)
		if !ok {
			continue // everyone tapped within the hold-off: wait
		}
		what, err := r.present(ctx, i)
		now := time.Now().Format(tsFormat)
		switch {
		case errors.Is(err, errSkipped):
			fmt.Fprintf(out, "%s  worker %d could not present a card: %v\n", now, i, err)
			continue
		case err != nil && ctx.Err() != nil:
			continue // stopping
		case err != nil:
			return err
		}
		presented++
		last[i] = time.Now()
		fmt.Fprintf(out, "%s  presented %s  (worker %d, card %s)\n", now, what, i, crew.CardNumber(i))
	}
	if ctx.Err() == nil {
		dctx, cancel := context.WithTimeout(ctx, drainFor)
		r.drain(dctx)
		cancel()
	}
	fmt.Fprintf(out, "stopped: %d cards presented\n", presented)
	return nil
}

// repeatAfter is how long a simulated worker waits before presenting the
// card again: a worker does not tap twice within a reader's hold-off
// (reader.DefaultHoldOff), which would be one tap.
const repeatAfter = reader.DefaultHoldOff + time.Second

// pickWorker picks at random a worker who has not presented a card within
// repeatAfter, and reports false when there is none. (A card that could
// not be presented does not count: the worker may try again at once.)
func pickWorker(rng *rand.Rand, n int, last map[int]time.Time) (int, bool) {
	free := make([]int, 0, n)
	for i := range n {
		if t, ok := last[i]; !ok || time.Since(t) >= repeatAfter {
			free = append(free, i)
		}
	}
	if len(free) == 0 {
		return 0, false
	}
	return free[rng.IntN(len(free))], true
}

// removeLink removes the simulator's symbolic link, leaving anything else
// that might have taken its place.
func removeLink(path string) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		_ = os.Remove(path)
	}
}

// osdpSim is a simulated OSDP reader.
type osdpSim struct {
	dev     *osdpsim.Device
	numbers bool
}

func startOSDPSim(ctx context.Context, link string, addr byte, numbers bool) (*osdpSim, error) {
	dev, err := osdpsim.Start(ctx, link, osdpsim.New(osdpsim.Config{Addr: addr}))
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	return &osdpSim{dev: dev, numbers: numbers}, nil
}

func (s *osdpSim) present(_ context.Context, i int) (string, error) {
	// A reader keeps a card report until it is polled: with nobody
	// polling, reports would pile up and arrive all at once later.
	if s.dev.Pending() > 0 {
		return "", fmt.Errorf("%w: the reader still holds a card nobody polled", errSkipped)
	}
	if s.numbers {
		s.dev.PresentNumber(crew.CardNumber(i))
		return "card number " + crew.CardNumber(i), nil
	}
	uid := crew.ChipUID(i)
	s.dev.Present(uid)
	return fmt.Sprintf("chip %X", uid), nil
}

// drain waits until the reader's card reports have all been polled.
func (s *osdpSim) drain(ctx context.Context) {
	for {
		changed := s.dev.Changed()
		if s.dev.Pending() == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		}
	}
}

func (s *osdpSim) close() error { return s.dev.Close() }

// pn532Sim is a simulated PN532: a card lies on it until the worker takes
// it away.
type pn532Sim struct {
	sim  *pn532sim.Sim
	stop context.CancelFunc
	done chan error
}

func startPN532Sim(ctx context.Context, link string, seed uint64) (*pn532Sim, error) {
	ctx, stop := context.WithCancel(ctx)
	s := &pn532Sim{sim: pn532sim.New(pn532sim.Config{Seed: seed}), stop: stop, done: make(chan error, 1)}
	go func() { s.done <- s.sim.RunPTY(ctx, link) }()
	// RunPTY makes the link first thing; an early failure (no ptys) shows
	// here rather than as a reader nobody can open.
	for range 100 {
		if _, err := os.Lstat(link); err == nil {
			return s, nil
		}
		select {
		case err := <-s.done:
			stop()
			return nil, fmt.Errorf("simulate: %w", err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	return s, nil
}

func (s *pn532Sim) present(ctx context.Context, i int) (string, error) {
	before := s.sim.Stats().PollsWithCard
	uid := crew.ChipUID(i)
	s.sim.Present(uid)
	defer s.sim.Remove()
	wctx, cancel := context.WithTimeout(ctx, pn532Unread)
	defer cancel()
	if err := s.sim.Wait(wctx, func(st pn532sim.Stats) bool { return st.PollsWithCard > before }); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", fmt.Errorf("%w: nobody polled the reader within %v", errSkipped, pn532Unread)
	}
	sleepCtx(ctx, pn532Hold)
	return fmt.Sprintf("chip %X", uid), nil
}

// drain has nothing to wait for: present waited for the card to be seen.
func (s *pn532Sim) drain(context.Context) {}

func (s *pn532Sim) close() error {
	s.stop()
	return <-s.done
}

// lineSim is a simulated line reader.
type lineSim struct{ r *linesim.Reader }

func startLineSim(link string, seed uint64) (*lineSim, error) {
	r, err := linesim.New(link, linesim.Wire{Seed: seed})
	if err != nil {
		return nil, fmt.Errorf("simulate: %w", err)
	}
	return &lineSim{r: r}, nil
}

func (s *lineSim) present(_ context.Context, i int) (string, error) {
	uid := crew.ChipUID(i)
	if err := s.r.Present(uid); err != nil {
		return "", fmt.Errorf("simulate: %w", err)
	}
	return fmt.Sprintf("chip %X", uid), nil
}

// drain gives the driver a moment: a line reader cannot tell whether its
// lines were read, and unplugging it loses what the driver has not.
func (s *lineSim) drain(ctx context.Context) { sleepCtx(ctx, lineDrain) }

// lineDrain is how long a simulated line reader stays plugged in after its
// last card.
const lineDrain = time.Second

func (s *lineSim) close() error { return s.r.Close() }
