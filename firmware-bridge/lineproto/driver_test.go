package lineproto_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/firmware-bridge/lineproto"
	"github.com/liggare/liggare/firmware-bridge/lineproto/sim"
	"github.com/liggare/liggare/firmware-bridge/reader"
	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// bound only stops a broken test from hanging; nothing measures speed.
const bound = 15 * time.Second

// recorder is a Handler that keeps every Read.
type recorder struct {
	mu      sync.Mutex
	reads   []reader.Read
	changed chan struct{}
	answer  func(reader.Read) reader.Feedback
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) handle(_ context.Context, rd reader.Read) reader.Feedback {
	r.mu.Lock()
	r.reads = append(r.reads, rd)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
	if r.answer != nil {
		return r.answer(rd)
	}
	return reader.Feedback{Outcome: reader.Accepted}
}

func (r *recorder) cards() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, rd := range r.reads {
		ids = append(ids, rd.CardID)
	}
	return ids
}

// waitCard waits until a Read of id has arrived.
func (r *recorder) waitCard(t testing.TB, id string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		for _, c := range r.cards() {
			if c == id {
				return
			}
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("card %s not read within %v; read %v", id, bound, r.cards())
		}
	}
}

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(bound)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not within %v", what, bound)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type harness struct {
	sim *sim.Reader
	d   *lineproto.Driver
	rec *recorder
}

// start plugs in a simulated reader and runs a driver on it until the test
// ends; it checks that Run returns nil then.
func start(t *testing.T, w sim.Wire, cfg lineproto.Config, rec *recorder) *harness {
	t.Helper()
	s, err := sim.New(filepath.Join(t.TempDir(), "reader"), w)
	if err != nil {
		t.Fatalf("sim.New = %v", err)
	}
	t.Cleanup(func() { s.Close() })
	cfg.Port.Path = s.Path()
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	}
	d, err := lineproto.New(cfg)
	if err != nil {
		t.Fatalf("New = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec.handle) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run() = %v, want nil", err)
			}
		case <-time.After(bound):
			t.Errorf("Run did not return after cancel")
		}
		if d.State().Online {
			t.Errorf("State().Online after Run returned")
		}
	})
	waitUntil(t, "the driver online", func() bool { return d.State().Online })
	return &harness{sim: s, d: d, rec: rec}
}

// uids returns n distinct plausible UIDs of 4, 7 and 10 bytes.
func uids(seed uint64, n int) [][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	seen := map[string]bool{}
	var out [][]byte
	for len(out) < n {
		u := make([]byte, []int{4, 7, 10}[rng.IntN(3)])
		for i := range u {
			u[i] = byte(rng.UintN(256))
		}
		if k := fmt.Sprintf("%X", u); !seen[k] && !bytes.Equal(u, make([]byte, len(u))) {
			seen[k] = true
			out = append(out, u)
		}
	}
	return out
}

func id(u []byte) string { return reader.CardID(u, "") }

// Every card presented is read exactly once, with the right identity, in
// every framing and print format.
func TestDriverWireFormats(t *testing.T) {
	for _, tc := range []struct {
		name string
		wire sim.Wire
		cfg  lineproto.Config
	}{
		{"auto", sim.Wire{}, lineproto.Config{}},
		{"cr", sim.Wire{Framing: lineproto.FrameCR}, lineproto.Config{Framing: lineproto.FrameCR}},
		{"lf", sim.Wire{Framing: lineproto.FrameLF}, lineproto.Config{Framing: lineproto.FrameLF}},
		{"crlf", sim.Wire{Framing: lineproto.FrameCRLF}, lineproto.Config{Framing: lineproto.FrameCRLF}},
		{"stx", sim.Wire{Framing: lineproto.FrameSTX}, lineproto.Config{Framing: lineproto.FrameSTX}},
		{"reversed prefixed", sim.Wire{Order: lineproto.Reversed, Prefix: "UID: ", Suffix: " OK"},
			lineproto.Config{Format: lineproto.Format{Order: lineproto.Reversed, Prefix: "UID:", Suffix: "ok"}}},
		{"lower colons", sim.Wire{Lower: true, Sep: ':'}, lineproto.Config{}},
		{"auto reads crlf-only lf", sim.Wire{Framing: lineproto.FrameLF}, lineproto.Config{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Name = "in"
			h := start(t, tc.wire, tc.cfg, newRecorder())
			cards := uids(7, 20)
			var want []string
			for _, u := range cards {
				if err := h.sim.Present(u); err != nil {
					t.Fatal(err)
				}
				want = append(want, id(u))
			}
			h.rec.waitCard(t, want[len(want)-1])
			if diff := cmp.Diff(want, h.rec.cards()); diff != "" {
				t.Fatalf("cards read (-want +got):\n%s", diff)
			}
			h.rec.mu.Lock()
			for i, rd := range h.rec.reads {
				if !bytes.Equal(rd.UID, cards[i]) || rd.Reader != "in" || rd.At.IsZero() || rd.CardNumber != "" {
					t.Errorf("read %d = %+v, want UID %X from reader in", i, rd, cards[i])
				}
			}
			h.rec.mu.Unlock()
			st := h.d.State()
			if !st.Online || st.Frames != 20 || st.ChecksumErrors != 0 || st.Model == "" {
				t.Errorf("State() = %+v, want online, 20 frames, no errors", st)
			}
		})
	}
}

// A card held against the reader (repeated lines) is one tap.
func TestDriverHoldOff(t *testing.T) {
	h := start(t, sim.Wire{}, lineproto.Config{HoldOff: time.Hour}, newRecorder())
	c := uids(3, 3)
	for _, u := range [][]byte{c[0], c[0], c[0], c[1], c[0], c[1], c[2]} {
		if err := h.sim.Present(u); err != nil {
			t.Fatal(err)
		}
	}
	h.rec.waitCard(t, id(c[2]))
	if diff := cmp.Diff([]string{id(c[0]), id(c[1]), id(c[2])}, h.rec.cards()); diff != "" {
		t.Fatalf("cards read (-want +got):\n%s", diff)
	}
	if s := h.d.Stats(); s.Sightings != 7 || s.Taps != 3 {
		t.Errorf("Stats() = %+v, want 7 sightings, 3 taps", s)
	}
}

// Noise, garbage lines, truncated and overlong lines are never taps, are
// counted, and do not disturb the cards around them.
func TestDriverLineFaults(t *testing.T) {
	h := start(t, sim.Wire{Seed: 42}, lineproto.Config{}, newRecorder())
	c := uids(11, 4)
	stats := h.d.Stats
	steps := []struct {
		name  string
		fault func() error
		done  func() bool // the driver has dealt with the fault
	}{
		{"noise", func() error { return h.sim.Noise(40) }, func() bool { return stats().Truncated == 1 }},
		{"garbage line", func() error { return h.sim.GarbageLine("ERROR: ANTENNA") }, func() bool { return stats().BadLines == 1 }},
		{"short hex line", func() error { return h.sim.GarbageLine("04A1B2") }, func() bool { return stats().BadLines == 2 }},
		{"truncated", func() error { return h.sim.Truncate(c[3]) }, func() bool { return stats().Truncated == 2 }},
		{"overlong", h.sim.Overlong, func() bool { return stats().Overlong == 1 }},
		{"blank card", func() error { return h.sim.Present([]byte{0, 0, 0, 0}) }, func() bool { return stats().BadLines == 3 }},
	}
	var want []string
	for i, st := range steps {
		if err := st.fault(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		waitUntil(t, st.name, st.done)
		u := c[i%3]
		if i >= 3 {
			u = uids(uint64(i), 1)[0]
		}
		if err := h.sim.Present(u); err != nil {
			t.Fatal(err)
		}
		h.rec.waitCard(t, id(u))
		want = append(want, id(u))
	}
	if diff := cmp.Diff(want, h.rec.cards()); diff != "" {
		t.Fatalf("cards read (-want +got):\n%s", diff)
	}
	s := stats()
	wantStats := lineproto.Stats{Sightings: uint64(len(want)), Taps: uint64(len(want)), BadLines: 3, Overlong: 1, Truncated: 2}
	if s != wantStats {
		t.Errorf("Stats() = %+v, want %+v", s, wantStats)
	}
	if st := h.d.State(); st.ChecksumErrors != 6 || st.LastError == "" || !st.Online {
		t.Errorf("State() = %+v, want 6 errors, a last error, online", st)
	}
}

// With STX/ETX framing, noise between frames and a frame cut off by the
// next one's start cost nothing but the cut-off frame.
func TestDriverSTXFaults(t *testing.T) {
	h := start(t, sim.Wire{Framing: lineproto.FrameSTX, Seed: 9}, lineproto.Config{Framing: lineproto.FrameSTX}, newRecorder())
	c := uids(5, 4)
	for _, step := range []func() error{
		func() error { return h.sim.Noise(10) },
		func() error { return h.sim.Present(c[0]) },
		func() error { return h.sim.Noise(3) },
		func() error { return h.sim.Present(c[1]) },
		func() error { return h.sim.Truncate(c[2]) },
		func() error { return h.sim.Present(c[3]) },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	h.rec.waitCard(t, id(c[3]))
	if diff := cmp.Diff([]string{id(c[0]), id(c[1]), id(c[3])}, h.rec.cards()); diff != "" {
		t.Fatalf("cards read (-want +got):\n%s", diff)
	}
	if s := h.d.Stats(); s.Noise != 2 || s.Truncated != 1 || s.Taps != 3 {
		t.Errorf("Stats() = %+v, want 2 noise runs, 1 truncated, 3 taps", s)
	}
}

// Unplug and replug: no card presented after the replug is lost (even one
// presented before the driver has reopened), none is read twice, a line cut
// by the unplug is no tap, and the hold-off survives the reopen.
func TestDriverUnplugReplug(t *testing.T) {
	h := start(t, sim.Wire{}, lineproto.Config{HoldOff: time.Hour}, newRecorder())
	c := uids(13, 8)
	var want []string
	present := func(u []byte) {
		t.Helper()
		if err := h.sim.Present(u); err != nil {
			t.Fatal(err)
		}
		want = append(want, id(u))
	}
	present(c[0])
	present(c[1])
	h.rec.waitCard(t, id(c[1]))

	for cycle := range 2 {
		if cycle == 1 {
			// Unplugged mid-line.
			if err := h.sim.Truncate(c[7]); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.sim.Unplug(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the driver offline", func() bool { return !h.d.State().Online })
		if err := h.sim.Present(c[2]); !errors.Is(err, sim.ErrUnplugged) {
			t.Fatalf("Present while unplugged = %v, want ErrUnplugged", err)
		}
		if err := h.sim.Replug(); err != nil {
			t.Fatal(err)
		}
		// Presented at once: the driver may not have reopened yet.
		present(c[3+2*cycle])
		h.rec.waitCard(t, id(c[3+2*cycle]))
		// Presented again within the hold-off: the same presentation.
		if err := h.sim.Present(c[3+2*cycle]); err != nil {
			t.Fatal(err)
		}
		present(c[4+2*cycle])
		h.rec.waitCard(t, id(c[4+2*cycle]))
		if st := h.d.State(); !st.Online || st.Reopens != uint64(cycle+1) {
			t.Fatalf("State() after replug %d = %+v, want online, %d reopens", cycle+1, st, cycle+1)
		}
	}
	if diff := cmp.Diff(want, h.rec.cards()); diff != "" {
		t.Fatalf("cards read (-want +got):\n%s", diff)
	}
	// The cut line is counted if the driver read its bytes before the
	// hang-up flushed them; either way it is no tap and spoils nothing.
	if s := h.d.Stats(); s.Truncated > 1 || s.BadLines != 0 {
		t.Errorf("Stats() = %+v, want at most 1 truncated line, no bad lines", s)
	}
}

// Configured feedback commands reach the reader right after the Handler
// answers; outcomes without a command send nothing.
func TestDriverFeedbackCommand(t *testing.T) {
	c := uids(17, 3)
	rec := newRecorder()
	rec.answer = func(rd reader.Read) reader.Feedback {
		switch rd.CardID {
		case id(c[0]):
			return reader.Feedback{Outcome: reader.Accepted}
		case id(c[1]):
			return reader.Feedback{Outcome: reader.Refused, Reason: "blocked_id06"}
		}
		return reader.Feedback{Outcome: reader.RecordedOffline}
	}
	cfg := lineproto.Config{Feedback: map[reader.Outcome][]byte{
		reader.Accepted: []byte("\x1bG1\r"),
		reader.Refused:  []byte("\x1bR3\r"),
	}}
	h := start(t, sim.Wire{}, cfg, rec)
	for _, u := range c {
		if err := h.sim.Present(u); err != nil {
			t.Fatal(err)
		}
	}
	h.rec.waitCard(t, id(c[2]))
	want := "\x1bG1\r\x1bR3\r"
	var got []byte
	buf := make([]byte, 64)
	for len(got) < len(want) {
		n, err := h.sim.ReadFeedback(buf, bound)
		if err != nil {
			t.Fatalf("ReadFeedback after %q: %v", got, err)
		}
		got = append(got, buf[:n]...)
	}
	if string(got) != want {
		t.Fatalf("feedback = %q, want %q", got, want)
	}
	if n, err := h.sim.ReadFeedback(buf, 100*time.Millisecond); err == nil {
		t.Errorf("extra feedback %q for an outcome without a command", buf[:n])
	}
}

// A reader that is not plugged in: offline, saying why, until it appears.
func TestDriverNoDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reader")
	d, err := lineproto.New(lineproto.Config{Port: serialport.Config{Path: path}, MinBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx, rec.handle) }()
	waitUntil(t, "an open failure", func() bool { return d.State().LastError != "" })
	if st := d.State(); st.Online || st.String() != "offline" {
		t.Errorf("State() = %+v, want offline", st)
	}
	s, err := sim.New(path, sim.Wire{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u := uids(19, 1)[0]
	if err := s.Present(u); err != nil {
		t.Fatal(err)
	}
	rec.waitCard(t, id(u))
	if st := d.State(); !st.Online || st.Reopens != 0 {
		t.Errorf("State() = %+v, want online, no reopens (first open)", st)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Run did not return after cancel")
	}
}
