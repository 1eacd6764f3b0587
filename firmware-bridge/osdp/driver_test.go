package osdp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/osdp"
	"github.com/liggare/liggare/firmware-bridge/osdp/sim"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// waitLimit bounds every wait; generous, since tests run under -race on
// busy machines. No test asserts how fast anything happens.
const waitLimit = 20 * time.Second

// eventually waits until cond holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// recorder is a reader.Handler that keeps every Read and answers with a
// configurable Feedback.
type recorder struct {
	mu    sync.Mutex
	reads []reader.Read
	fb    reader.Feedback
}

func (r *recorder) handle(_ context.Context, rd reader.Read) reader.Feedback {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reads = append(r.reads, rd)
	return r.fb
}

func (r *recorder) setFeedback(fb reader.Feedback) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fb = fb
}

func (r *recorder) cardIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for _, rd := range r.reads {
		ids = append(ids, rd.CardID)
	}
	return ids
}

// count returns how many reads of id were recorded.
func (r *recorder) count(id string) int {
	n := 0
	for _, got := range r.cardIDs() {
		if got == id {
			n++
		}
	}
	return n
}

// fixture is a driver talking to a simulated reader over a pseudo-terminal.
type fixture struct {
	dev *sim.Device
	drv *osdp.Driver
	rec *recorder
}

// testConfig is a driver configuration for fast tests: polls every 10 ms.
func testConfig(pd osdp.PDConfig) osdp.Config {
	return osdp.Config{
		PDs:          []osdp.PDConfig{pd},
		PollInterval: 10 * time.Millisecond,
		ReplyTimeout: 300 * time.Millisecond,
		OfflineAfter: 4,
		HoldOff:      5 * time.Second,
	}
}

// start runs a simulated reader on a pseudo-terminal and a driver on its
// slave side; both stop at the end of the test.
func start(t *testing.T, sc sim.Config, cfg osdp.Config) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dev, err := sim.Start(ctx, filepath.Join(t.TempDir(), "reader"), sim.New(sc))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Device = dev.Path() // opened through serialport, like /dev/ttyUSB0
	drv, err := osdp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{fb: reader.Feedback{Outcome: reader.Accepted}}
	done := make(chan error, 1)
	go func() { done <- drv.Run(ctx, rec.handle) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		dev.Close()
	})
	return &fixture{dev: dev, drv: drv, rec: rec}
}

func (f *fixture) waitOnline(t *testing.T) {
	t.Helper()
	eventually(t, "reader online", func() bool { return f.drv.State().Online })
}

// polls returns how many osdp_POLLs the simulator has answered.
func (f *fixture) polls() int {
	n := 0
	for _, c := range f.dev.Commands() {
		if c.Code == osdp.CmdPOLL && !c.Repeat {
			n++
		}
	}
	return n
}

// settle waits until the simulator has no card left to deliver and a few
// more polls went by, so that any duplicate would have arrived.
func (f *fixture) settle(t *testing.T) {
	t.Helper()
	eventually(t, "cards delivered", func() bool { return f.dev.Pending() == 0 })
	n := f.polls()
	eventually(t, "more polls", func() bool { return f.polls() >= n+5 })
}

func uid(i int) []byte { return []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, byte(i)} }

func cardID(i int) string { return fmt.Sprintf("04A1B2C3D4E5%02X", i) }

func TestIdentification(t *testing.T) {
	f := start(t, sim.Config{Addr: 3}, testConfig(osdp.PDConfig{Addr: 3}))
	f.waitOnline(t)
	if got, want := f.drv.State().Model, sim.DefaultID().String(); got != want {
		t.Errorf("Model = %q, want %q", got, want)
	}
	// ID with sequence 0 (perhaps more than once, should a reply be slow),
	// then CAP with 1, then numbers 1, 2, 3, 1, ...
	cmds := f.dev.Commands()
	i := 0
	for i < len(cmds) && cmds[i].Code == osdp.CmdID && cmds[i].Seq == 0 {
		i++
	}
	if i == 0 || i == len(cmds) || cmds[i].Code != osdp.CmdCAP || cmds[i].Seq != 1 {
		t.Fatalf("first commands = %+v, want ID with sequence 0, CAP with 1", cmds[:min(i+1, len(cmds))])
	}
	for ; i < len(cmds); i++ {
		if c, prev := cmds[i], cmds[i-1]; !c.Repeat && c.Seq != prev.Seq%3+1 {
			t.Errorf("command %d: sequence %d after %d", i, c.Seq, prev.Seq)
		}
	}
}

func TestCardsOnce(t *testing.T) {
	f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1, Name: "in"}))
	f.waitOnline(t)
	for i := range 5 {
		f.dev.Present(uid(i))
	}
	// A card held against the reader is reported again and again.
	for range 4 {
		f.dev.Present(uid(9))
	}
	f.settle(t)
	for i := range 5 {
		if n := f.rec.count(cardID(i)); n != 1 {
			t.Errorf("card %s read %d times, want 1", cardID(i), n)
		}
	}
	if n := f.rec.count(cardID(9)); n != 1 {
		t.Errorf("held card read %d times, want 1", n)
	}
	f.rec.mu.Lock()
	defer f.rec.mu.Unlock()
	for _, r := range f.rec.reads {
		if r.Reader != "in" || r.At.IsZero() || !bytes.HasPrefix(r.UID, []byte{0x04, 0xA1}) {
			t.Errorf("Read = %+v, want reader in, a time and the UID", r)
		}
	}
}

func TestFormattedCard(t *testing.T) {
	f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1}))
	f.waitOnline(t)
	f.dev.PresentNumber("AB-0123-456789")
	f.settle(t)
	if got := f.rec.cardIDs(); len(got) != 1 || got[0] != "AB0123456789" {
		t.Errorf("card IDs = %q, want [AB0123456789]", got)
	}
}

// TestRetransmit loses the reply carrying a card: the driver sends the same
// command with the same sequence number, the reader answers it again
// without acting twice, and the card arrives once.
func TestRetransmit(t *testing.T) {
	f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1}))
	f.waitOnline(t)
	f.dev.DropReplies(1)
	f.dev.Present(uid(1))
	f.settle(t)
	if n := f.rec.count(cardID(1)); n != 1 {
		t.Errorf("card read %d times, want 1", n)
	}
	cmds := f.dev.Commands()
	repeats := 0
	for i, c := range cmds {
		if !c.Repeat {
			continue
		}
		repeats++
		if prev := cmds[i-1]; c.Seq != prev.Seq || c.Code != prev.Code {
			t.Errorf("repeat %+v after %+v: want the same command and sequence number", c, prev)
		}
	}
	if repeats < 1 {
		t.Error("no command sent again after the lost reply")
	}
	if st := f.drv.State(); st.Retries < 1 || st.MissedPolls < 1 || !st.Online {
		t.Errorf("State = %+v, want a retry, a missed poll, online", st)
	}
}

func TestLineFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inject func(*sim.Device)
	}{
		{"noise", func(d *sim.Device) { d.Noise(40) }},
		{"bad CRC", func(d *sim.Device) { d.CorruptReplies(2) }},
		{"truncated", func(d *sim.Device) { d.TruncateReplies(2) }},
		{"everything", func(d *sim.Device) { d.Noise(7); d.CorruptReplies(1); d.TruncateReplies(1); d.DropReplies(1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1}))
			f.waitOnline(t)
			for i := range 3 {
				tc.inject(f.dev)
				f.dev.Present(uid(i))
				eventually(t, "card read", func() bool { return f.rec.count(cardID(i)) > 0 })
			}
			f.settle(t)
			for i := range 3 {
				if n := f.rec.count(cardID(i)); n != 1 {
					t.Errorf("card %d read %d times, want 1", i, n)
				}
			}
			if !f.drv.State().Online {
				t.Errorf("State = %+v, want online", f.drv.State())
			}
		})
	}
	t.Run("checksum errors counted", func(t *testing.T) {
		f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1}))
		f.waitOnline(t)
		f.dev.CorruptReplies(2)
		eventually(t, "checksum errors", func() bool { return f.drv.State().ChecksumErrors >= 2 })
	})
}

// TestOfflineAndBack: a silent reader goes offline after OfflineAfter
// missed replies, is probed, and comes back from sequence number 0.
func TestOfflineAndBack(t *testing.T) {
	cfg := testConfig(osdp.PDConfig{Addr: 1})
	cfg.ReplyTimeout = 50 * time.Millisecond
	f := start(t, sim.Config{Addr: 1}, cfg)
	f.waitOnline(t)
	f.dev.SetSilent(true)
	eventually(t, "reader offline", func() bool { return !f.drv.State().Online })
	if st := f.drv.State(); st.MissedPolls < uint64(cfg.OfflineAfter) || st.LastError == "" {
		t.Errorf("State = %+v, want %d missed polls and an error", st, cfg.OfflineAfter)
	}
	before := len(f.dev.Commands())
	f.dev.SetSilent(false)
	f.waitOnline(t)
	// (A poll sent during the silence may still reach the reader first.)
	restarted := false
	for _, c := range f.dev.Commands()[before:] {
		restarted = restarted || (c.Code == osdp.CmdID && c.Seq == 0)
	}
	if !restarted {
		t.Error("after silence: no ID with sequence 0")
	}
	f.dev.Present(uid(1))
	f.settle(t)
	if n := f.rec.count(cardID(1)); n != 1 {
		t.Errorf("card read %d times, want 1", n)
	}
}

// TestUnplugReplug pulls the reader out and plugs it in again: the driver
// reopens the port, and the cards presented after the replug arrive once;
// the ones delivered before are not delivered again.
func TestUnplugReplug(t *testing.T) {
	f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1}))
	f.waitOnline(t)
	f.dev.Present(uid(1))
	f.settle(t)
	for round := range 2 {
		if err := f.dev.Unplug(); err != nil {
			t.Fatal(err)
		}
		eventually(t, "reader offline", func() bool { return !f.drv.State().Online })
		if err := f.dev.Replug(); err != nil {
			t.Fatal(err)
		}
		card := 10 + round
		f.dev.Present(uid(card))
		eventually(t, "card after replug", func() bool { return f.rec.count(cardID(card)) > 0 })
		f.settle(t)
		if n := f.rec.count(cardID(card)); n != 1 {
			t.Errorf("round %d: card read %d times, want 1", round, n)
		}
	}
	if n := f.rec.count(cardID(1)); n != 1 {
		t.Errorf("card from before the unplug read %d times, want 1", n)
	}
	if st := f.drv.State(); st.Reopens < 2 || !st.Online {
		t.Errorf("State = %+v, want 2 reopens and online", st)
	}
}

func TestFeedback(t *testing.T) {
	f := start(t, sim.Config{Addr: 1}, testConfig(osdp.PDConfig{Addr: 1}))
	f.waitOnline(t)
	for i, tc := range []struct {
		outcome reader.Outcome
		color   osdp.Color
		beeps   byte
	}{
		{reader.Accepted, osdp.Green, 1},
		{reader.Refused, osdp.Red, 1},
		{reader.RecordedOffline, osdp.Amber, 1},
		{reader.NotRecorded, osdp.Red, 3},
	} {
		f.rec.setFeedback(reader.Feedback{Outcome: tc.outcome})
		before := len(f.dev.Signals())
		f.dev.Present(uid(i))
		eventually(t, "LED and buzzer", func() bool { return len(f.dev.Signals()) >= before+2 })
		sig := f.dev.Signals()[before:]
		if sig[0].LED == nil || sig[0].LED.Temporary.OnColor != tc.color || sig[0].LED.Temporary.Control != osdp.LEDTempSet {
			t.Errorf("%v: LED %+v, want temporary %v", tc.outcome, sig[0].LED, tc.color)
		}
		if sig[1].Buzzer == nil || sig[1].Buzzer.Count != tc.beeps || sig[1].Buzzer.Tone != osdp.ToneDefault {
			t.Errorf("%v: buzzer %+v, want %d beeps", tc.outcome, sig[1].Buzzer, tc.beeps)
		}
	}
	before := len(f.dev.Signals())
	f.drv.Show(reader.Feedback{Outcome: reader.Accepted})
	eventually(t, "Show", func() bool { return len(f.dev.Signals()) >= before+2 })
}

var testKey = mustKey("000102030405060708090a0b0c0d0e0f")

func mustKey(s string) osdp.Key {
	k, err := osdp.ParseKey(s)
	if err != nil {
		panic(err)
	}
	return k
}

func TestSecureChannel(t *testing.T) {
	f := start(t, sim.Config{Addr: 1, Secure: true, Key: testKey}, testConfig(osdp.PDConfig{Addr: 1, Key: testKey}))
	f.waitOnline(t)
	if !f.dev.Secure() {
		t.Fatal("secure channel not open on the reader")
	}
	f.dev.DropReplies(1) // a retry inside the channel: the MAC chain holds
	f.dev.Present(uid(1))
	f.dev.CorruptReplies(1)
	f.dev.Present(uid(2))
	f.settle(t)
	for _, i := range []int{1, 2} {
		if n := f.rec.count(cardID(i)); n != 1 {
			t.Errorf("card %d read %d times, want 1", i, n)
		}
	}
	var plainPolls, securePolls, led int
	for _, c := range f.dev.Commands() {
		switch {
		case c.Code == osdp.CmdPOLL && c.Secure:
			securePolls++
		case c.Code == osdp.CmdPOLL:
			plainPolls++
		case c.Code == osdp.CmdLED && c.Secure:
			led++
		}
	}
	if plainPolls != 0 || securePolls == 0 || led == 0 {
		t.Errorf("polls in clear %d, secure %d, secure LED %d; want none, some, some", plainPolls, securePolls, led)
	}
	if hs, keys := f.dev.Handshakes(); hs < 1 || keys != 0 {
		t.Errorf("handshakes %d, keys installed %d; want at least 1, 0", hs, keys)
	}
}

// TestInstallMode: a factory-new reader knows only SCBK-D; the driver opens
// the channel with it, installs its key, and talks with that from then on.
func TestInstallMode(t *testing.T) {
	f := start(t, sim.Config{Addr: 1, Secure: true}, testConfig(osdp.PDConfig{Addr: 1, Key: testKey, Install: true}))
	f.waitOnline(t)
	if f.dev.Key() != testKey {
		t.Error("reader key was not installed")
	}
	if hs, keys := f.dev.Handshakes(); hs < 2 || keys != 1 {
		t.Errorf("handshakes %d, keys installed %d; want at least 2, 1", hs, keys)
	}
	f.dev.Present(uid(1))
	f.settle(t)
	if n := f.rec.count(cardID(1)); n != 1 {
		t.Errorf("card read %d times, want 1", n)
	}
}

func TestWrongKey(t *testing.T) {
	other := mustKey("ffeeddccbbaa99887766554433221100")
	for _, tc := range []struct {
		name string
		sc   sim.Config
		want error
	}{
		{"other key", sim.Config{Addr: 1, Secure: true, Key: other}, osdp.ErrCryptogram},
		{"no secure channel", sim.Config{Addr: 1}, osdp.ErrCryptogram},
		{"factory-new without install", sim.Config{Addr: 1, Secure: true}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, tc.sc, testConfig(osdp.PDConfig{Addr: 1, Key: testKey, Install: false}))
			eventually(t, "an error", func() bool { return f.drv.State().LastError != "" })
			n := len(f.dev.Commands())
			eventually(t, "more attempts", func() bool { return len(f.dev.Commands()) > n+6 })
			if st := f.drv.State(); st.Online {
				t.Errorf("State = %+v, want offline", st)
			}
			for _, c := range f.dev.Commands() {
				if c.Code == osdp.CmdPOLL || c.Code == osdp.CmdKEYSET {
					t.Errorf("%s sent to a reader without a channel", osdp.CodeName(c.Code, false))
				}
			}
			if strings.Contains(f.drv.State().LastError, "0001020304") {
				t.Errorf("LastError shows the key: %s", f.drv.State().LastError)
			}
		})
	}
}

// TestOverPipe runs the simulator on a net.Pipe rather than a terminal:
// both ends take any byte stream.
func TestOverPipe(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pd := sim.New(sim.Config{Addr: 1})
	conns := make(chan net.Conn, 4)
	cfg := testConfig(osdp.PDConfig{Addr: 1})
	cfg.Open = func(ctx context.Context) (osdp.Port, error) {
		a, b := net.Pipe()
		go pd.Serve(ctx, b)
		conns <- b
		return a, nil
	}
	drv, err := osdp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{fb: reader.Feedback{Outcome: reader.Accepted}}
	done := make(chan error, 1)
	go func() { done <- drv.Run(ctx, rec.handle) }()
	eventually(t, "online", func() bool { return drv.State().Online })
	pd.Present(uid(1))
	eventually(t, "card", func() bool { return rec.count(cardID(1)) == 1 })
	if err := pd.Unplug(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reopened", func() bool { return drv.State().Reopens >= 1 && drv.State().Online })
	pd.Present(uid(2))
	eventually(t, "card after replug", func() bool { return rec.count(cardID(2)) == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, cfg := range []osdp.Config{
		{Device: "/dev/null"},
		{Device: "/dev/null", PDs: []osdp.PDConfig{{Addr: 0x7F}}},
		{Device: "/dev/null", PDs: []osdp.PDConfig{{Addr: 1}, {Addr: 1}}},
		{Device: "/dev/null", PDs: []osdp.PDConfig{{Addr: 1, Install: true}}},
		{PDs: []osdp.PDConfig{{Addr: 1}}},
	} {
		if _, err := osdp.New(cfg); !errors.Is(err, osdp.ErrConfig) {
			t.Errorf("New(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
}

// TestTwoReaders polls two readers on one bus ("in" and "out"): each card
// is reported under its reader's name, and the feedback goes back to the
// reader that read it.
func TestTwoReaders(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	in, out := sim.New(sim.Config{Addr: 1}), sim.New(sim.Config{Addr: 2, Secure: true, Key: testKey})
	dev, err := sim.Start(ctx, filepath.Join(t.TempDir(), "bus"), in, out)
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(osdp.PDConfig{Addr: 1, Name: "in"})
	cfg.PDs = append(cfg.PDs, osdp.PDConfig{Addr: 2, Name: "out", Key: testKey})
	cfg.Device = dev.Path()
	drv, err := osdp.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{fb: reader.Feedback{Outcome: reader.Accepted}}
	done := make(chan error, 1)
	go func() { done <- drv.Run(ctx, rec.handle) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
		dev.Close()
	}()
	eventually(t, "both online", func() bool { return drv.State().Online })
	if m := drv.State().Model; strings.Count(m, "OSDP vendor") != 2 {
		t.Errorf("Model = %q, want both readers", m)
	}
	in.Present(uid(1))
	out.Present(uid(2))
	eventually(t, "both cards", func() bool { return len(rec.cardIDs()) == 2 })
	eventually(t, "feedback on both", func() bool { return len(in.Signals()) == 2 && len(out.Signals()) == 2 })
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.reads {
		want := map[string]string{cardID(1): "in", cardID(2): "out"}[r.CardID]
		if r.Reader != want {
			t.Errorf("card %s from reader %q, want %q", r.CardID, r.Reader, want)
		}
	}
}

// TestChecksumReader: an old reader that knows only the 8-bit checksum
// refuses the first CRC; the driver switches, secure channel included.
func TestChecksumReader(t *testing.T) {
	f := start(t, sim.Config{Addr: 1, ChecksumOnly: true, Secure: true, Key: testKey}, testConfig(osdp.PDConfig{Addr: 1, Key: testKey}))
	f.waitOnline(t)
	f.dev.Present(uid(1))
	f.settle(t)
	if n := f.rec.count(cardID(1)); n != 1 {
		t.Errorf("card read %d times, want 1", n)
	}
	if !f.dev.Secure() {
		t.Error("secure channel not open")
	}
}
