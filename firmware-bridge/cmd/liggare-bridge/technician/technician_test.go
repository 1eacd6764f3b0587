package technician

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/cmd/liggare-bridge/crew"
	linesim "github.com/liggare/liggare/firmware-bridge/lineproto/sim"
	"github.com/liggare/liggare/firmware-bridge/osdp"
	osdpsim "github.com/liggare/liggare/firmware-bridge/osdp/sim"
	pn532sim "github.com/liggare/liggare/firmware-bridge/pn532/sim"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// bound only stops a broken test from hanging; nothing measures speed.
const bound = 20 * time.Second

// output collects what a command prints and lets a test wait for a line.
type output struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

func newOutput() *output { return &output{changed: make(chan struct{})} }

func (o *output) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	close(o.changed)
	o.changed = make(chan struct{})
	return o.buf.Write(b)
}

func (o *output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}

// waitFor waits until the output contains want.
func (o *output) waitFor(t testing.TB, want string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		o.mu.Lock()
		got, changed := o.buf.String(), o.changed
		o.mu.Unlock()
		if strings.Contains(got, want) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("output has no %q within %v:\n%s", want, bound, got)
		}
	}
}

// command runs liggare-bridge with args in the background.
type command struct {
	out    *output
	stderr *output
	cancel context.CancelFunc
	done   chan error
}

func startCmd(t testing.TB, args ...string) *command {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bound)
	c := &command{out: newOutput(), stderr: newOutput(), cancel: cancel, done: make(chan error, 1)}
	go func() { c.done <- Run(ctx, args, c.out, c.stderr) }()
	t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// wait waits for the command to end by itself.
func (c *command) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-c.done:
		c.done <- err // for the cleanup
		return err
	case <-time.After(bound):
		t.Fatalf("command did not end within %v:\n%s", bound, c.out)
		return nil
	}
}

// interrupt stops the command as Ctrl-C does and returns its error.
func (c *command) interrupt(t testing.TB) error {
	t.Helper()
	c.cancel()
	return c.wait(t)
}

// run runs liggare-bridge with args to the end.
func run(t testing.TB, args ...string) (string, error) {
	t.Helper()
	c := startCmd(t, args...)
	err := c.wait(t)
	return c.out.String(), err
}

func startOSDP(t testing.TB, addr byte) (string, *osdpsim.Device) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "osdp")
	dev, err := osdpsim.Start(t.Context(), link, osdpsim.New(osdpsim.Config{Addr: addr}))
	if err != nil {
		t.Fatalf("osdp sim: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	return link, dev
}

func startPN532(t testing.TB) (string, *pn532sim.Sim) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "pn532")
	s := pn532sim.New(pn532sim.Config{Seed: 1})
	p, err := ptypair.Open()
	if err != nil {
		t.Fatalf("ptypair: %v", err)
	}
	if err := p.Link(link); err != nil {
		t.Fatalf("Link: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); s.Serve(ctx, p) }()
	t.Cleanup(func() { cancel(); p.Close(); <-done })
	return link, s
}

func startLine(t testing.TB, w linesim.Wire) (string, *linesim.Reader) {
	t.Helper()
	link := filepath.Join(t.TempDir(), "line")
	r, err := linesim.New(link, w)
	if err != nil {
		t.Fatalf("line sim: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return link, r
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "usage: no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"probe"}, "probe takes one argument"},
		{[]string{"watch", "a", "b"}, "watch takes one argument"},
		{[]string{"watch", "/dev/ttyUSB0"}, `reader "/dev/ttyUSB0": want osdp:PATH`},
		{[]string{"watch", "serial:/dev/ttyUSB0"}, `unknown protocol "serial"`},
		{[]string{"watch", "osdp:/dev/ttyUSB0?addr=300"}, "osdp: bad configuration: addr"},
		{[]string{"feedback", "line:/dev/ttyACM0", "green"}, `outcome "green": want accepted, error, offline, refused`},
		{[]string{"quality", "line:/dev/ttyACM0", "--for", "0s"}, "--for must be positive"},
		{[]string{"quality", "line:/dev/ttyACM0", "--colour"}, "flag provided but not defined: -colour"},
		{[]string{"simulate", "--protocol", "osdp"}, "--link PATH is required"},
		{[]string{"simulate", "--protocol", "wiegand", "--link", "x"}, `--protocol "wiegand"`},
		{[]string{"simulate", "--protocol", "line", "--link", "x", "--numbers"}, "--numbers is for --protocol osdp"},
		{[]string{"probe", "--bauds", "fast", "/dev/ttyUSB0"}, `--bauds: "fast" is not a line speed`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, stderr bytes.Buffer
			err := Run(t.Context(), tc.args, &out, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestNoKeyInOutput: an OSDP spec may hold the reader's key; no command
// prints the spec back.
func TestNoKeyInOutput(t *testing.T) {
	const key = "000102030405060708090a0b0c0d0e0f"
	link, _ := startOSDP(t, 1)
	out, err := run(t, "quality", "osdp:"+link+"?addr=1&key="+key, "--for", "300ms")
	if err != nil {
		t.Fatalf("quality: %v", err)
	}
	if strings.Contains(out, key) || strings.Contains(out, "0001020304") {
		t.Errorf("quality printed the key:\n%s", out)
	}
}

func TestList(t *testing.T) {
	link, _ := startLine(t, linesim.Wire{})
	out, err := run(t, "list", filepath.Dir(link))
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if !regexp.MustCompile(regexp.QuoteMeta(link) + `\s+link\s+-> /dev/pts/\d+`).MatchString(out) {
		t.Errorf("list does not show %s -> /dev/pts/N:\n%s", link, out)
	}
	// A dangling link (an unplugged reader) is not a port.
	if _, err := run(t, "list", t.TempDir()); err != nil {
		t.Errorf("list of an empty directory: %v", err)
	}
}

func TestProbe(t *testing.T) {
	t.Run("osdp", func(t *testing.T) {
		link, _ := startOSDP(t, 2)
		out, err := run(t, "probe", link)
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		for _, want := range []string{
			"found: OSDP reader at 9600 baud, address 2",
			"model: " + osdpsim.DefaultID().String(),
			"capabilities: LED, buzzer",
			fmt.Sprintf("use: --reader 'osdp:%s?addr=2'", link),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("probe output has no %q:\n%s", want, out)
			}
		}
	})
	t.Run("osdp-old", func(t *testing.T) {
		// An old reader that knows only the 8-bit checksum, at address 0,
		// offering the secure channel.
		link := filepath.Join(t.TempDir(), "osdp")
		dev, err := osdpsim.Start(t.Context(), link, osdpsim.New(osdpsim.Config{Addr: 0, ChecksumOnly: true, Secure: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		out, err := run(t, "probe", link)
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		for _, want := range []string{
			"found: OSDP reader at 9600 baud, address 0",
			"secure channel (AES-128)",
			"check character: 8-bit checksum only",
			fmt.Sprintf("use: --reader 'osdp:%s?addr=0'", link),
		} {
			if !strings.Contains(out, want) {
				t.Errorf("probe output has no %q:\n%s", want, out)
			}
		}
	})
	t.Run("pn532", func(t *testing.T) {
		link, _ := startPN532(t)
		out, err := run(t, "probe", link)
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		for _, want := range []string{"found: PN532 at 115200 baud", "model: PN532 v1.6", "use: --reader 'pn532:" + link + "'"} {
			if !strings.Contains(out, want) {
				t.Errorf("probe output has no %q:\n%s", want, out)
			}
		}
	})
	t.Run("line", func(t *testing.T) {
		link, r := startLine(t, linesim.Wire{})
		// The line waits in the terminal's queue, as a card presented
		// while the probe asks the other protocols.
		if err := r.Present(crew.ChipUID(3)); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, "probe", link)
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		for _, want := range []string{"found: line reader", fmt.Sprintf("it printed card %X in lines", crew.ChipUID(3)), "use: --reader 'line:" + link + "'"} {
			if !strings.Contains(out, want) {
				t.Errorf("probe output has no %q:\n%s", want, out)
			}
		}
	})
	t.Run("line-stx", func(t *testing.T) {
		link, r := startLine(t, linesim.Wire{Framing: 4 /* lineproto.FrameSTX */})
		if err := r.Present(crew.ChipUID(4)); err != nil {
			t.Fatal(err)
		}
		out, err := run(t, "probe", link)
		if err != nil {
			t.Fatalf("probe: %v\n%s", err, out)
		}
		if want := "use: --reader 'line:" + link + "?frame=stx'"; !strings.Contains(out, want) {
			t.Errorf("probe output has no %q:\n%s", want, out)
		}
	})
	t.Run("nothing", func(t *testing.T) {
		p, err := ptypair.Open()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, err := run(t, "probe", "--bauds", "9600", "--timeout", "100ms", "--listen", "200ms", p.Path())
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("probe of a silent port = %v, want ErrNotFound\n%s", err, out)
		}
	})
}

func TestWatch(t *testing.T) {
	t.Run("osdp", func(t *testing.T) {
		link, dev := startOSDP(t, 1)
		c := startCmd(t, "watch", "osdp:"+link+"?addr=1&name=in")
		c.out.waitFor(t, "reader online  "+osdpsim.DefaultID().String())
		dev.Present(crew.ChipUID(1))
		dev.Present(crew.ChipUID(2))
		c.out.waitFor(t, fmt.Sprintf("card %X  reader in", crew.ChipUID(1)))
		c.out.waitFor(t, fmt.Sprintf("card %X  reader in", crew.ChipUID(2)))
		if err := c.interrupt(t); err != nil {
			t.Errorf("watch = %v", err)
		}
		c.out.waitFor(t, "stopped: 2 cards read")
	})
	t.Run("pn532", func(t *testing.T) {
		link, s := startPN532(t)
		c := startCmd(t, "watch", "pn532:"+link+"?poll=20ms")
		c.out.waitFor(t, "reader online  PN532 v1.6")
		s.Present(crew.ChipUID(5))
		c.out.waitFor(t, fmt.Sprintf("card %X\n", crew.ChipUID(5)))
		if err := c.interrupt(t); err != nil {
			t.Errorf("watch = %v", err)
		}
	})
	t.Run("line", func(t *testing.T) {
		link, r := startLine(t, linesim.Wire{})
		c := startCmd(t, "watch", "line:"+link)
		c.out.waitFor(t, "reader online")
		for i := range 3 {
			if err := r.Present(crew.ChipUID(i)); err != nil {
				t.Fatal(err)
			}
			c.out.waitFor(t, fmt.Sprintf("card %X\n", crew.ChipUID(i)))
		}
		if err := c.interrupt(t); err != nil {
			t.Errorf("watch = %v", err)
		}
		out := c.out.String()
		// Only card ids and reader state: no names, no registry data.
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if !regexp.MustCompile(`^(watching the line reader on \S+; Ctrl-C to stop|\d\d:\d\d:\d\d\.\d{3}  (card [0-9A-F]+|reader (online|offline|not answering)  .*)|stopped: \d+ cards read)$`).MatchString(l) {
				t.Errorf("watch printed %q", l)
			}
		}
	})
}

func TestFeedback(t *testing.T) {
	t.Run("osdp", func(t *testing.T) {
		link, dev := startOSDP(t, 1)
		out, err := run(t, "feedback", "osdp:"+link+"?addr=1", "refused")
		if err != nil {
			t.Fatalf("feedback: %v\n%s", err, out)
		}
		if !strings.Contains(out, "showed refused on the osdp reader on "+link) {
			t.Errorf("feedback output:\n%s", out)
		}
		wantLED, wantBuz := osdp.Signals(reader.Feedback{Outcome: reader.Refused})
		var gotLED, gotBuz bool
		for _, s := range dev.Signals() {
			gotLED = gotLED || s.LED != nil && *s.LED == wantLED
			gotBuz = gotBuz || s.Buzzer != nil && *s.Buzzer == wantBuz
		}
		if !gotLED || !gotBuz {
			t.Errorf("reader showed %+v, want LED %+v and buzzer %+v", dev.Signals(), wantLED, wantBuz)
		}
	})
	t.Run("pn532", func(t *testing.T) {
		link, s := startPN532(t)
		c := startCmd(t, "feedback", "pn532:"+link+"?poll=20ms&gpio_beep=P32", "accepted")
		c.out.waitFor(t, "present a card")
		c.out.waitFor(t, "reader online")
		before := s.Stats().GPIOWrites
		s.Present(crew.ChipUID(7))
		if err := c.wait(t); err != nil {
			t.Fatalf("feedback: %v\n%s", err, c.out)
		}
		c.out.waitFor(t, fmt.Sprintf("showed accepted for card %X", crew.ChipUID(7)))
		// Accepted is one beep: the pin up, then down.
		if got := s.Stats().GPIOWrites - before; got < 2 {
			t.Errorf("%d WriteGPIO after the card, want the beep's 2", got)
		}
	})
	t.Run("line", func(t *testing.T) {
		link, r := startLine(t, linesim.Wire{})
		c := startCmd(t, "feedback", "line:"+link+"?accepted=1b47310d&refused=1b52300d", "refused")
		c.out.waitFor(t, "reader online")
		if err := r.Present(crew.ChipUID(8)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 16)
		n, err := r.ReadFeedback(buf, bound)
		if err != nil || !bytes.Equal(buf[:n], []byte{0x1b, 'R', '0', '\r'}) {
			t.Errorf("reader got %q, %v; want the refused command", buf[:n], err)
		}
		if err := c.wait(t); err != nil {
			t.Fatalf("feedback: %v\n%s", err, c.out)
		}
	})
	t.Run("mute", func(t *testing.T) {
		link, _ := startLine(t, linesim.Wire{})
		out, err := run(t, "feedback", "line:"+link, "accepted", "--wait", "200ms")
		if err == nil || !strings.Contains(err.Error(), "no card within 200ms") {
			t.Errorf("feedback without a card = %v, want no card", err)
		}
		if !strings.Contains(out, "note: no feedback commands are configured") {
			t.Errorf("feedback does not say the reader is mute:\n%s", out)
		}
	})
}

// counter reads a counter line of quality's report.
func counter(t testing.TB, out, name string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  ` + name + `\s+(\d+)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("quality report has no %q:\n%s", name, out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func TestQuality(t *testing.T) {
	t.Run("osdp", func(t *testing.T) {
		link, dev := startOSDP(t, 1)
		c := startCmd(t, "quality", "osdp:"+link+"?addr=1&poll=20ms", "--for", "2s")
		c.out.waitFor(t, "reader online")
		dev.CorruptReplies(3)
		if err := c.wait(t); err != nil {
			t.Fatalf("quality: %v", err)
		}
		out := c.out.String()
		if got := counter(t, out, "checksum errors"); got != 3 {
			t.Errorf("checksum errors = %d, want 3\n%s", got, out)
		}
		if got := counter(t, out, "retries"); got < 3 {
			t.Errorf("retries = %d, want at least 3\n%s", got, out)
		}
		if counter(t, out, "frames") == 0 || counter(t, out, "reopens") != 0 {
			t.Errorf("frames and reopens:\n%s", out)
		}
	})
	t.Run("pn532", func(t *testing.T) {
		link, s := startPN532(t)
		c := startCmd(t, "quality", "pn532:"+link+"?poll=20ms", "--for", "2s")
		c.out.waitFor(t, "reader online")
		s.Inject(pn532sim.BadDCS)
		if err := c.wait(t); err != nil {
			t.Fatalf("quality: %v", err)
		}
		out := c.out.String()
		if got := counter(t, out, "checksum errors"); got != 1 {
			t.Errorf("checksum errors = %d, want 1\n%s", got, out)
		}
		if !strings.Contains(out, "model            PN532 v1.6") {
			t.Errorf("no model:\n%s", out)
		}
	})
	t.Run("line-unplug", func(t *testing.T) {
		link, r := startLine(t, linesim.Wire{})
		c := startCmd(t, "quality", "line:"+link, "--for", "3s")
		c.out.waitFor(t, "reader online")
		if err := r.Unplug(); err != nil {
			t.Fatal(err)
		}
		c.out.waitFor(t, "reader offline")
		if err := r.Replug(); err != nil {
			t.Fatal(err)
		}
		if err := c.wait(t); err != nil {
			t.Fatalf("quality: %v", err)
		}
		out := c.out.String()
		// One unplug; the driver may need more than one attempt to open
		// the port again while the replug completes.
		if got := counter(t, out, "reopens"); got < 1 {
			t.Errorf("reopens = %d, want at least 1\n%s", got, out)
		}
		if !strings.Contains(out, "verdict: UNSTABLE: the port went away") {
			t.Errorf("verdict:\n%s", out)
		}
	})
	t.Run("no-link", func(t *testing.T) {
		out, err := run(t, "quality", "osdp:"+filepath.Join(t.TempDir(), "none"), "--for", "300ms")
		if err != nil {
			t.Fatalf("quality: %v", err)
		}
		if !strings.Contains(out, "verdict: NO LINK") {
			t.Errorf("verdict:\n%s", out)
		}
	})
}

// TestSimulate runs each simulator with its driver: every card presented
// is read, and is a crew card.
func TestSimulate(t *testing.T) {
	for _, proto := range []string{protoOSDP, protoPN532, protoLine} {
		t.Run(proto, func(t *testing.T) {
			link := filepath.Join(t.TempDir(), "reader")
			sim := startCmd(t, "simulate", "--protocol", proto, "--link", link, "--cards", "5",
				"--interval", "20ms", "--count", "4", "--seed", "7")
			sim.out.waitFor(t, "simulated "+proto+" reader at "+link)
			m := regexp.MustCompile(`--reader '([^']+)'`).FindStringSubmatch(sim.out.String())
			if m == nil {
				t.Fatalf("simulate does not say how to drive it:\n%s", sim.out)
			}
			spec := m[1]
			if proto == protoPN532 {
				spec += "?poll=20ms"
			}
			w := startCmd(t, "watch", spec)
			if err := sim.wait(t); err != nil {
				t.Fatalf("simulate: %v\n%s", err, sim.out)
			}
			presented := regexp.MustCompile(`presented chip ([0-9A-F]+)  \(worker (\d), card (AB\d{10})\)`).FindAllStringSubmatch(sim.out.String(), -1)
			if len(presented) != 4 {
				t.Fatalf("simulate presented %d cards, want 4:\n%s", len(presented), sim.out)
			}
			for _, p := range presented {
				i, _ := strconv.Atoi(p[2])
				if p[1] != fmt.Sprintf("%X", crew.ChipUID(i)) || p[3] != crew.CardNumber(i) {
					t.Errorf("worker %d presented %s %s, want %X %s", i, p[1], p[3], crew.ChipUID(i), crew.CardNumber(i))
				}
				w.out.waitFor(t, "card "+p[1])
			}
			if err := w.interrupt(t); err != nil {
				t.Errorf("watch: %v", err)
			}
		})
	}
}
