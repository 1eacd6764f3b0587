package technician

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// tsFormat stamps every line watch and quality print.
const tsFormat = "15:04:05.000"

// stateEvery is how often the reader's state is sampled for changes.
const stateEvery = 100 * time.Millisecond

// notAnsweringAfter is how long a reader may take to come online before
// watch says it is not answering.
const notAnsweringAfter = 3 * time.Second

// session runs a device's driver with a handler until stop is called.
type session struct {
	dev  *device
	out  io.Writer
	stop context.CancelFunc
	done chan error // Run's error, once
	once sync.Once
	err  error

	cards atomic.Uint64

	mu        sync.Mutex
	started   time.Time
	online    bool   // as last printed
	reopens   uint64 // the driver's State.Reopens at the last check
	warned    bool   // "not answering" was printed
	samples   int    // state samples taken since the reader first answered
	onSamples int    // ... with the reader online
	everOn    bool
}

// start runs dev's driver: every card is printed and answered with fb.
// onCard, if set, is called after a card's line is printed.
func start(ctx context.Context, dev *device, out io.Writer, fb reader.Feedback, onCard func(reader.Read)) *session {
	ctx, stop := context.WithCancel(ctx)
	s := &session{dev: dev, out: out, stop: stop, done: make(chan error, 1), started: time.Now()}
	h := func(_ context.Context, r reader.Read) reader.Feedback {
		s.cards.Add(1)
		s.check(false) // "reader online" before its first card
		at := r.At
		if at.IsZero() {
			at = time.Now()
		}
		name := ""
		if r.Reader != "" {
			name = "  reader " + r.Reader
		}
		fmt.Fprintf(out, "%s  card %s%s\n", at.Format(tsFormat), r.CardID, name)
		if onCard != nil {
			onCard(r)
		}
		return fb
	}
	var wg sync.WaitGroup
	wg.Go(func() { s.monitor(ctx) })
	go func() {
		err := dev.drv.Run(ctx, h)
		stop()
		wg.Wait()
		s.done <- err
	}()
	return s
}

// wait stops the driver and returns Run's error. It may be called again.
func (s *session) wait() error {
	s.stop()
	s.once.Do(func() { s.err = <-s.done })
	return s.err
}

// monitor samples the reader's state until ctx ends.
func (s *session) monitor(ctx context.Context) {
	t := time.NewTicker(stateEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.check(true)
		}
	}
}

// check prints the reader's state when it came online or went offline
// since the last check, and once if it does not come online at first.
// sample counts the check for onlineShare.
func (s *session) check(sample bool) {
	st := s.dev.drv.State()
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now().Format(tsFormat)
	switch {
	case st.Online && s.online && st.Reopens > s.reopens:
		// The port went away and was open again before this check: say
		// so, as a technician chasing a loose cable needs to see it.
		fmt.Fprintf(s.out, "%s  reader offline  %s\n", now, orDash(st.LastError))
		fmt.Fprintf(s.out, "%s  reader online  %s\n", now, orDash(st.Model))
	case st.Online && !s.online:
		fmt.Fprintf(s.out, "%s  reader online  %s\n", now, orDash(st.Model))
	case !st.Online && s.online:
		fmt.Fprintf(s.out, "%s  reader offline  %s\n", now, orDash(st.LastError))
	case !st.Online && !s.warned && time.Since(s.started) > notAnsweringAfter:
		fmt.Fprintf(s.out, "%s  reader not answering  %s\n", now, orDash(st.LastError))
		s.warned = true
	}
	s.online, s.reopens = st.Online, st.Reopens
	// The share counts from the first answer: bringing a reader up
	// takes a moment and is no fault of the link.
	s.everOn = s.everOn || st.Online
	if sample && s.everOn {
		s.samples++
		if st.Online {
			s.onSamples++
		}
	}
}

// onlineShare is the share of state samples with the reader online, and
// whether it was ever online.
func (s *session) onlineShare() (float64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.samples == 0 { // online only at the very end, or never
		return 0, s.everOn
	}
	return float64(s.onSamples) / float64(s.samples), s.everOn
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// watch prints every card read until ctx ends.
func watch(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := newFlags("watch", "SPEC", stderr)
	show := fs.String("show", "error", "what the reader shows for each card: accepted, refused, offline or error (watch records nothing, hence error)")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	fb, err := parseOutcome(*show)
	if err != nil {
		return err
	}
	dev, err := openDevice(pos[0], nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "watching the %s; Ctrl-C to stop\n", dev.describe())
	s := start(ctx, dev, out, fb, nil)
	<-ctx.Done()
	if err := s.wait(); err != nil {
		return err
	}
	fmt.Fprintf(out, "stopped: %d cards read\n", s.cards.Load())
	return nil
}

// feedback shows one outcome on the reader. A driver that can show
// feedback without a card (OSDP) shows it as soon as the reader is online;
// the others show feedback only in answer to a card, so the technician
// presents one.
func feedback(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := newFlags("feedback", "SPEC accepted|refused|offline|error", stderr)
	wait := fs.Duration("wait", 30*time.Second, "how long to wait for the reader to come online, or for a card")
	pos, err := parseArgs(fs, args, 2, 2)
	if err != nil {
		return err
	}
	fb, err := parseOutcome(pos[1])
	if err != nil {
		return err
	}
	dev, err := openDevice(pos[0], nil)
	if err != nil {
		return err
	}
	if dev.mute != "" {
		fmt.Fprintf(out, "note: %s\n", dev.mute)
	}
	deadline, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	name := outcomeName(fb.Outcome)

	if dev.show == nil {
		carded := make(chan reader.Read, 1)
		fmt.Fprintf(out, "present a card to the %s: it will show %s\n", dev.describe(), name)
		s := start(ctx, dev, out, fb, func(r reader.Read) {
			select {
			case carded <- r:
			default:
			}
		})
		select {
		case r := <-carded:
			// The driver shows the outcome once the handler returns:
			// give it the time a beep pattern takes.
			sleepCtx(ctx, feedbackGrace)
			err := s.wait()
			fmt.Fprintf(out, "showed %s for card %s\n", name, r.CardID)
			return err
		case <-deadline.Done():
			err := s.wait()
			return errors.Join(noCard(ctx, *wait), err)
		}
	}

	s := start(ctx, dev, out, fb, nil)
	defer s.wait()
	if err := waitOnline(deadline, dev); err != nil {
		return err
	}
	before := dev.drv.State().Frames
	dev.show(fb)
	// The LED and buzzer commands go out ahead of the next poll; their
	// replies, and the poll's, are three more frames.
	shownCtx, cancelShown := context.WithTimeout(ctx, feedbackGrace)
	defer cancelShown()
	for dev.drv.State().Frames < before+3 {
		if !sleepCtx(shownCtx, 10*time.Millisecond) {
			return fmt.Errorf("the %s did not confirm the feedback: %s", dev.describe(), orDash(dev.drv.State().LastError))
		}
	}
	fmt.Fprintf(out, "showed %s on the %s (%s)\n", name, dev.describe(), orDash(dev.drv.State().Model))
	return s.wait()
}

// feedbackGrace is how long a driver gets to show an outcome after it was
// decided: the longest beep pattern is 500 ms.
const feedbackGrace = time.Second

func noCard(ctx context.Context, wait time.Duration) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return fmt.Errorf("no card within %v", wait)
}

// waitOnline waits until dev's reader is online or ctx ends.
func waitOnline(ctx context.Context, dev *device) error {
	for !dev.drv.State().Online {
		if !sleepCtx(ctx, stateEvery) {
			return fmt.Errorf("the %s did not come online: %s", dev.describe(), orDash(dev.drv.State().LastError))
		}
	}
	return nil
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Link quality thresholds for the verdict.
const (
	// poorErrorRate: more failed exchanges than this share is a bad line.
	poorErrorRate = 0.01
	// poorOnlineShare: a reader online less than this share of the time
	// is dropping out.
	poorOnlineShare = 0.99
)

// quality runs the reader for a while and reports its link counters.
func quality(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := newFlags("quality", "SPEC [--for 30s]", stderr)
	dur := fs.Duration("for", 30*time.Second, "how long to run the reader")
	show := fs.String("show", "error", "what the reader shows for a card presented meanwhile")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *dur <= 0 {
		return fmt.Errorf("%w: quality: --for must be positive", ErrUsage)
	}
	fb, err := parseOutcome(*show)
	if err != nil {
		return err
	}
	dev, err := openDevice(pos[0], nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "measuring the %s for %v; Ctrl-C to stop early\n", dev.describe(), *dur)
	began := time.Now()
	qctx, cancel := context.WithTimeout(ctx, *dur)
	defer cancel()
	s := start(qctx, dev, out, fb, nil)
	<-qctx.Done()
	st := dev.drv.State()
	share, everOn := s.onlineShare()
	if err := s.wait(); err != nil {
		return err
	}
	report(out, dev, st, time.Since(began), share, everOn, s.cards.Load())
	return nil
}

// report prints the link counters and a verdict.
func report(out io.Writer, dev *device, st reader.State, over time.Duration, share float64, everOn bool, cards uint64) {
	exchanges := st.Frames + st.MissedPolls
	failed := st.ChecksumErrors + st.MissedPolls
	rate := 0.0
	if exchanges > 0 {
		rate = float64(failed) / float64(exchanges)
	}
	fmt.Fprintf(out, "link quality of the %s over %v\n", dev.describe(), over.Round(100*time.Millisecond))
	fmt.Fprintf(out, "  model            %s\n", orDash(st.Model))
	fmt.Fprintf(out, "  online           %.0f%% of the time since it first answered\n", 100*share)
	fmt.Fprintf(out, "  frames           %d\n", st.Frames)
	fmt.Fprintf(out, "  checksum errors  %d\n", st.ChecksumErrors)
	fmt.Fprintf(out, "  retries          %d\n", st.Retries)
	fmt.Fprintf(out, "  missed polls     %d\n", st.MissedPolls)
	fmt.Fprintf(out, "  reopens          %d\n", st.Reopens)
	fmt.Fprintf(out, "  cards read       %d\n", cards)
	fmt.Fprintf(out, "  last error       %s\n", orDash(st.LastError))
	switch {
	case !everOn:
		fmt.Fprintln(out, "verdict: NO LINK: the reader never answered; check power, cable, port, baud and address (probe finds them)")
	case st.Reopens > 0:
		fmt.Fprintf(out, "verdict: UNSTABLE: the port went away %d times; check the USB cable and the reader's power\n", st.Reopens)
	case rate > poorErrorRate:
		fmt.Fprintf(out, "verdict: POOR: %.1f%% of frames lost or garbled; check RS-485 termination, cable length and baud\n", 100*rate)
	case share < poorOnlineShare:
		fmt.Fprintf(out, "verdict: POOR: the reader was offline %.0f%% of the time\n", 100*(1-share))
	default:
		fmt.Fprintln(out, "verdict: GOOD")
	}
}
