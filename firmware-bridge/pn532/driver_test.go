package pn532_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/pn532/sim"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Cards used by the tests: 7-byte UIDs as on ID06 2.0 cards.
var (
	cardA = []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6}
	cardB = []byte{0x04, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66}
	cardC = []byte{0x04, 0x77, 0x88, 0x99, 0xAA, 0xBB, 0xCC}
)

func id(uid []byte) string { return reader.CardID(uid, "") }

// recorder is a reader.Handler that keeps every Read.
type recorder struct {
	mu      sync.Mutex
	reads   []reader.Read
	fb      reader.Feedback
	changed chan struct{} // closed and replaced on every Read
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) handle(_ context.Context, rd reader.Read) reader.Feedback {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, rd)
	close(r.changed)
	r.changed = make(chan struct{})
	if r.fb.Outcome == 0 {
		return reader.Feedback{Outcome: reader.Accepted}
	}
	return r.fb
}

// wait blocks until n cards have been read or ctx ends.
func (r *recorder) wait(ctx context.Context, n int) error {
	for {
		r.mu.Lock()
		got, ch := len(r.reads), r.changed
		r.mu.Unlock()
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d reads, have %d: %w", n, got, ctx.Err())
		case <-ch:
		}
	}
}

// cards returns the CardIDs read so far.
func (r *recorder) cards() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := []string{}
	for _, rd := range r.reads {
		ids = append(ids, rd.CardID)
	}
	return ids
}

// pipeRig runs a driver against the simulator over net.Pipe inside a
// synctest bubble, where time is fake: waiting a "minute" costs nothing and
// no test depends on the machine's speed.
type pipeRig struct {
	t     *testing.T
	ctx   context.Context
	sim   *sim.Sim
	drv   *pn532.Driver
	rec   *recorder
	conns chan net.Conn // the plugged-in port, if any, for the opener
	wg    sync.WaitGroup
}

// newPipeRig starts the simulator (plugged in) and the driver. Call it
// inside synctest.Test; it stops both at cleanup.
func newPipeRig(t *testing.T, cfg pn532.Config) *pipeRig {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	r := &pipeRig{t: t, ctx: ctx, sim: sim.New(sim.Config{Seed: 1}), rec: newRecorder(), conns: make(chan net.Conn, 1)}
	cfg.Path = "pipe"
	cfg.Open = func(ctx context.Context) (pn532.Port, error) {
		select {
		case c := <-r.conns:
			return c, nil
		default:
			return nil, errors.New("no such device")
		}
	}
	drv, err := pn532.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r.drv = drv
	r.plug()
	r.wg.Go(func() {
		if err := drv.Run(ctx, r.rec.handle); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		r.wg.Wait()
	})
	return r
}

// plug connects a new line between the simulator and the driver.
func (r *pipeRig) plug() {
	host, dev := net.Pipe()
	r.wg.Go(func() {
		err := r.sim.Serve(r.ctx, dev)
		if err != nil && !errors.Is(err, sim.ErrUnplugged) {
			r.t.Errorf("Serve = %v", err)
		}
	})
	r.conns <- host
}

// waitFor lets fake time pass until cond holds, failing after a fake hour.
func (r *pipeRig) waitFor(what string, cond func() bool) {
	r.t.Helper()
	for deadline := time.Now().Add(time.Hour); !cond(); {
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting for %s: gave up; state %+v, sim %+v", what, r.drv.State(), r.sim.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (r *pipeRig) waitOnline(online bool) {
	r.t.Helper()
	r.waitFor(fmt.Sprintf("online=%v", online), func() bool { return r.drv.State().Online == online })
}

// waitPolls lets n more polls run (with or without a card).
func (r *pipeRig) waitPolls(n uint64) {
	r.t.Helper()
	start := r.sim.Stats().Polls
	r.waitFor(fmt.Sprintf("%d polls", n), func() bool { return r.sim.Stats().Polls >= start+n })
}

func (r *pipeRig) wantCards(want ...[]byte) {
	r.t.Helper()
	ids := []string{}
	for _, uid := range want {
		ids = append(ids, id(uid))
	}
	if diff := cmp.Diff(ids, r.rec.cards()); diff != "" {
		r.t.Errorf("cards read (-want +got):\n%s", diff)
	}
}

func TestIdentify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{Name: "in"})
		r.waitOnline(true)
		st := r.drv.State()
		if want := "PN532 v1.6 (ISO14443A ISO14443B ISO18092)"; st.Model != want {
			t.Errorf("Model = %q, want %q", st.Model, want)
		}
		if s := r.sim.Stats(); s.Wakes != 1 || s.SAMConfigs != 1 {
			t.Errorf("sim stats %+v: want one wake-up and one SAMConfiguration", s)
		}
		r.waitPolls(20)
		if st := r.drv.State(); st.ChecksumErrors != 0 || st.Retries != 0 || st.MissedPolls != 0 || st.Reopens != 0 {
			t.Errorf("clean line: state %+v", st)
		}
	})
}

func TestOneTapPerPresentation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{Name: "in", HoldOff: 2 * time.Second})
		r.waitOnline(true)

		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })
		before := r.sim.Stats().PollsWithCard
		r.waitPolls(50) // held on the reader for ~7 s: still one tap
		if got := r.sim.Stats().PollsWithCard - before; got < 40 {
			t.Fatalf("card seen by %d of 50 polls", got)
		}
		r.wantCards(cardA)
		rd := r.rec.reads[0]
		if rd.Reader != "in" || rd.At.IsZero() || !cmp.Equal(rd.UID, cardA) {
			t.Errorf("Read = %+v", rd)
		}

		// Lifted and put back at once: the same presentation.
		r.sim.Remove()
		r.waitPolls(2)
		r.sim.Present(cardA)
		r.waitPolls(5)
		r.wantCards(cardA)

		// Lifted, and presented again after the hold-off: a second tap.
		r.sim.Remove()
		time.Sleep(3 * time.Second)
		r.sim.Present(cardA)
		r.waitFor("a second tap", func() bool { return len(r.rec.cards()) == 2 })

		// Another card straight after: its own tap.
		r.sim.Present(cardB)
		r.waitFor("a third tap", func() bool { return len(r.rec.cards()) == 3 })
		r.waitPolls(10)
		r.wantCards(cardA, cardA, cardB)
		if s := r.sim.Stats(); s.Releases == 0 {
			t.Errorf("no InRelease after a card was seen: %+v", s)
		}
	})
}

func TestNACKResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{})
		r.waitOnline(true)
		r.sim.Inject(sim.NACK, sim.NACK)
		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })
		r.waitPolls(10)
		r.wantCards(cardA)
		if s := r.sim.Stats(); s.NACKsSent != 2 {
			t.Errorf("sim sent %d NACKs, want 2", s.NACKsSent)
		}
		if st := r.drv.State(); st.Retries != 2 || !st.Online {
			t.Errorf("state %+v: want 2 retries, online", st)
		}
	})
}

func TestGarbage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{})
		r.waitOnline(true)
		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })
		r.sim.Inject(sim.BadLCS, sim.BadDCS, sim.Noise, sim.Truncate, sim.Noise, sim.BadDCS)
		r.waitFor("faults applied", func() bool { return r.sim.Stats().Faults == 6 })
		r.waitPolls(10)
		r.wantCards(cardA)
		st := r.drv.State()
		if st.ChecksumErrors < 3 || st.Retries < 3 || !st.Online {
			t.Errorf("state %+v: want at least 3 checksum errors and retries, online", st)
		}
		if st.LastError == "" {
			t.Error("LastError empty after garbage")
		}

		// A new card after the garbage is read at once.
		r.sim.Present(cardB)
		r.waitFor("a second tap", func() bool { return len(r.rec.cards()) == 2 })
		r.wantCards(cardA, cardB)
	})
}

func TestSilence(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{})
		r.waitOnline(true)
		r.sim.Silence(true)
		r.waitOnline(false)
		missed := r.drv.State().MissedPolls
		if missed < pn532.DefaultMaxMissed {
			t.Errorf("offline after %d missed polls, want at least %d", missed, pn532.DefaultMaxMissed)
		}
		time.Sleep(20 * time.Second) // long enough to reach the longest backoff
		r.sim.Silence(false)         // back as after a power glitch: asleep
		r.waitOnline(true)
		if s := r.sim.Stats(); s.Wakes != 2 || s.SAMConfigs != 2 {
			t.Errorf("sim stats %+v: want a second wake-up and SAMConfiguration", s)
		}
		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })
		r.waitPolls(5)
		r.wantCards(cardA)
		if st := r.drv.State(); st.Reopens != 0 {
			t.Errorf("silence reopened the port: %+v", st)
		}
	})
}

func TestUnplugReplug(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{})
		r.waitOnline(true)
		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })

		r.sim.Unplug()
		r.waitOnline(false)
		r.sim.Remove()
		time.Sleep(10 * time.Second) // reopen attempts fail meanwhile
		r.sim.Present(cardC)         // put on the reader while it is unplugged
		r.plug()
		r.waitOnline(true)
		r.waitFor("the card on the replugged reader", func() bool { return len(r.rec.cards()) == 2 })
		r.waitPolls(10)
		r.sim.Remove()
		r.waitPolls(2)
		r.sim.Present(cardB)
		r.waitFor("a card after the replug", func() bool { return len(r.rec.cards()) == 3 })
		r.waitPolls(10)
		r.wantCards(cardA, cardC, cardB)
		if st := r.drv.State(); st.Reopens != 1 {
			t.Errorf("state %+v: want 1 reopen", st)
		}
		if s := r.sim.Stats(); s.Wakes != 2 {
			t.Errorf("sim stats %+v: want a wake-up after the replug", s)
		}
	})
}

func TestBeep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{Beep: 0x32})
		r.waitOnline(true)
		writes := r.sim.Stats().GPIOWrites
		if writes != 1 {
			t.Errorf("%d WriteGPIO at wake-up, want 1 (buzzer off)", writes)
		}
		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })
		r.waitPolls(5)
		s := r.sim.Stats()
		if s.GPIOWrites != writes+2 || s.P3&0x04 != 0 {
			t.Errorf("sim stats %+v: want on and off for an accepted tap, P32 low after", s)
		}

		r.rec.mu.Lock()
		r.rec.fb = reader.Feedback{Outcome: reader.NotRecorded}
		r.rec.mu.Unlock()
		r.sim.Present(cardB)
		r.waitFor("a second tap", func() bool { return len(r.rec.cards()) == 2 })
		r.waitPolls(5)
		// Three beeps: on off on off on, then off.
		if s2 := r.sim.Stats(); s2.GPIOWrites != s.GPIOWrites+6 || s2.P3&0x04 != 0 {
			t.Errorf("sim stats %+v: want six writes for three beeps, P32 low after", s2)
		}
	})
}

func TestNoFeedbackWithoutBeepPin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newPipeRig(t, pn532.Config{})
		r.waitOnline(true)
		r.sim.Present(cardA)
		r.waitFor("a tap", func() bool { return len(r.rec.cards()) == 1 })
		r.waitPolls(5)
		if s := r.sim.Stats(); s.GPIOWrites != 0 {
			t.Errorf("%d WriteGPIO without a beep pin", s.GPIOWrites)
		}
	})
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []pn532.Config{
		{},
		{Path: "/dev/ttyS0", Baud: 1234},
		{Path: "/dev/ttyS0", Beep: 0x40},
		{Path: "/dev/ttyS0", PollInterval: time.Hour},
	} {
		if _, err := pn532.New(cfg); !errors.Is(err, pn532.ErrConfig) {
			t.Errorf("New(%+v) error %v, want ErrConfig", cfg, err)
		}
	}
}
