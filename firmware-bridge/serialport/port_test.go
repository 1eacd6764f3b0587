package serialport

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/ptypair"
)

// bound is how long a test waits for something that should happen at once;
// it only stops a broken test from hanging, it never measures speed.
const bound = 15 * time.Second

func newPair(t testing.TB) *ptypair.Pair {
	t.Helper()
	p, err := ptypair.Open()
	if err != nil {
		t.Fatalf("ptypair.Open() = %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func openPort(t testing.TB, cfg Config) *Port {
	t.Helper()
	p, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open(%+v) = %v", cfg, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

type readResult struct {
	n   int
	err error
}

// readAsync starts one Read and returns where its result arrives.
func readAsync(p *Port, b []byte) <-chan readResult {
	ch := make(chan readResult, 1)
	go func() {
		n, err := p.Read(b)
		ch <- readResult{n, err}
	}()
	return ch
}

func await(t testing.TB, ch <-chan readResult, what string) readResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(bound):
		t.Fatalf("%s: no result within %v", what, bound)
		return readResult{}
	}
}

func TestEffectiveReadTimeout(t *testing.T) {
	for _, tc := range []struct{ in, want time.Duration }{
		{0, DefaultReadTimeout},
		{time.Nanosecond, MinReadTimeout},
		{99 * time.Millisecond, MinReadTimeout},
		{100 * time.Millisecond, 100 * time.Millisecond},
		{250 * time.Millisecond, 200 * time.Millisecond},
		{25500 * time.Millisecond, MaxReadTimeout},
		{time.Minute, MaxReadTimeout},
	} {
		if got := EffectiveReadTimeout(tc.in); got != tc.want {
			t.Errorf("EffectiveReadTimeout(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestOpenBadConfig(t *testing.T) {
	pair := newPair(t)
	for _, cfg := range []Config{
		{},
		{Path: pair.Path(), Baud: 9601},
		{Path: pair.Path(), ReadTimeout: -time.Second},
		{Path: pair.Path(), DataBits: 9},
		{Path: pair.Path(), Parity: 'M'},
		{Path: pair.Path(), StopBits: 3},
	} {
		if p, err := Open(cfg); !errors.Is(err, ErrConfig) {
			if p != nil {
				p.Close()
			}
			t.Errorf("Open(%+v) = %v, want ErrConfig", cfg, err)
		}
	}
	if _, err := Open(Config{Path: filepath.Join(t.TempDir(), "nope")}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want ErrNotExist", err)
	}
}

func TestOpenDefaults(t *testing.T) {
	pair := newPair(t)
	p := openPort(t, Config{Path: pair.Path(), ReadTimeout: 1234 * time.Millisecond})
	want := Config{Path: pair.Path(), Baud: DefaultBaud, ReadTimeout: 1200 * time.Millisecond, DataBits: 8, Parity: ParityNone, StopBits: 1}
	if got := p.Config(); got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
}

// A Read with no data returns ErrTimeout (never io.EOF), and keeps doing so.
func TestReadTimeout(t *testing.T) {
	pair := newPair(t)
	p := openPort(t, Config{Path: pair.Path()})
	for i := range 3 {
		r := await(t, readAsync(p, make([]byte, 8)), "idle Read")
		if r.n != 0 || !errors.Is(r.err, ErrTimeout) || errors.Is(r.err, io.EOF) {
			t.Fatalf("idle Read #%d = %d, %v, want 0, ErrTimeout", i, r.n, r.err)
		}
	}
}

// Every byte value crosses both ways unchanged: the line is raw.
func TestReadWriteRaw(t *testing.T) {
	pair := newPair(t)
	p := openPort(t, Config{Path: pair.Path(), Baud: 115200})
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	if _, err := pair.Write(all); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 0, 256)
	buf := make([]byte, 64)
	deadline := time.Now().Add(bound)
	for len(got) < len(all) && time.Now().Before(deadline) {
		n, err := p.Read(buf)
		if err != nil && !errors.Is(err, ErrTimeout) {
			t.Fatalf("Read = %v", err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("driver read %x, want %x", got, all)
	}

	if n, err := p.Write(all); n != len(all) || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	back := make([]byte, 256)
	if err := pair.SetReadDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(pair, back); err != nil {
		t.Fatalf("master ReadFull = %v", err)
	}
	if !bytes.Equal(back, all) {
		t.Fatalf("master read %x, want %x", back, all)
	}
}

// Close while a Read waits for data returns, and the Read ends with
// ErrClosed, both within the read timeout.
func TestCloseDuringRead(t *testing.T) {
	pair := newPair(t)
	p := openPort(t, Config{Path: pair.Path(), ReadTimeout: time.Second})
	ch := readAsync(p, make([]byte, 8))
	time.Sleep(50 * time.Millisecond) // let the Read start; correctness does not depend on it
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close() = %v", err)
		}
	case <-time.After(bound):
		t.Fatal("Close() did not return")
	}
	if r := await(t, ch, "Read during Close"); !errors.Is(r.err, ErrClosed) && !errors.Is(r.err, ErrTimeout) {
		t.Fatalf("Read during Close = %d, %v, want ErrClosed or ErrTimeout", r.n, r.err)
	}
	if _, err := p.Read(make([]byte, 8)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
}

// After an unplug a Read reports ErrGone (wrapping EIO) instead of the
// endless zero-byte reads of a hung-up tty.
func TestUnplugGone(t *testing.T) {
	pair := newPair(t)
	p := openPort(t, Config{Path: pair.Path(), ReadTimeout: 5 * time.Second})
	ch := readAsync(p, make([]byte, 8))
	if err := pair.Unplug(); err != nil {
		t.Fatal(err)
	}
	r := await(t, ch, "Read across unplug")
	if errors.Is(r.err, ErrTimeout) { // the unplug came after the Read's own timeout
		r = await(t, readAsync(p, make([]byte, 8)), "Read after unplug")
	}
	if !errors.Is(r.err, ErrGone) || !errors.Is(r.err, syscall.EIO) {
		t.Fatalf("Read after unplug = %d, %v, want ErrGone wrapping EIO", r.n, r.err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrGone) {
		t.Errorf("Write after unplug = %v, want ErrGone", err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("Close after unplug = %v", err)
	}
}

func TestList(t *testing.T) {
	pair := newPair(t)
	dev := t.TempDir()
	for _, name := range []string{"ttyUSB0", "ttyACM1", "ttyS10", "ttyS2"} {
		if err := os.Symlink(pair.Path(), filepath.Join(dev, name)); err != nil {
			t.Fatal(err)
		}
	}
	// Not a character device: skipped.
	if err := os.WriteFile(filepath.Join(dev, "ttyUSB9"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	byID := filepath.Join(dev, "serial", "by-id")
	if err := os.MkdirAll(byID, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../ttyACM1", filepath.Join(byID, "usb-Reader_123-if00")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../ttyACM7", filepath.Join(byID, "usb-Gone-if00")); err != nil {
		t.Fatal(err)
	}
	got, err := list(dev)
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{
		{Path: filepath.Join(dev, "ttyUSB0"), Kind: "usb"},
		{Path: filepath.Join(dev, "ttyACM1"), Kind: "acm"},
		{Path: filepath.Join(dev, "ttyS2"), Kind: "uart"},
		{Path: filepath.Join(dev, "ttyS10"), Kind: "uart"},
		{Path: filepath.Join(byID, "usb-Reader_123-if00"), Target: pair.Path(), Kind: "by-id"},
	}
	if len(got) != len(want) {
		t.Fatalf("list() = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("list()[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	if _, err := List(); err != nil {
		t.Errorf("List() = %v", err)
	}
}

// collector gathers what sessions read, for link tests.
type collector struct {
	mu  sync.Mutex
	got []byte
	ch  chan struct{}
}

func (c *collector) add(b []byte) {
	c.mu.Lock()
	c.got = append(c.got, b...)
	c.mu.Unlock()
	select {
	case c.ch <- struct{}{}:
	default:
	}
}

func (c *collector) waitFor(t testing.TB, want string) {
	t.Helper()
	deadline := time.After(bound)
	for {
		c.mu.Lock()
		got := string(c.got)
		c.mu.Unlock()
		if got == want {
			return
		}
		select {
		case <-c.ch:
		case <-deadline:
			t.Fatalf("sessions read %q, want %q", got, want)
		}
	}
}

// readSession reads until the port fails and hands what it reads to c.
func readSession(c *collector) Session {
	return func(ctx context.Context, p *Port) error {
		buf := make([]byte, 64)
		for ctx.Err() == nil {
			n, err := p.Read(buf)
			if errors.Is(err, ErrTimeout) {
				continue
			}
			if err != nil {
				return err
			}
			c.add(buf[:n])
		}
		return nil
	}
}

// Unplug, reopen attempts failing with backoff, replug behind the same
// link: the Link reopens it and reads on, counting one reopen.
func TestLinkReopen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "reader")
	p1 := newPair(t)
	if err := p1.Link(path); err != nil {
		t.Fatal(err)
	}
	l, err := NewLink(LinkConfig{Port: Config{Path: path}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{ch: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx, readSession(c)) }()

	if _, err := p1.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "a")
	if s := l.Stats(); !s.Online || s.Opens != 1 || s.Reopens != 0 {
		t.Errorf("Stats() before unplug = %+v, want online, 1 open", s)
	}
	if err := p1.Unplug(); err != nil {
		t.Fatal(err)
	}
	// The dangling link makes reopen attempts fail until the replug.
	waitUntil(t, "an open failure after unplug", func() bool { return l.Stats().OpenFailures > 0 })
	if s := l.Stats(); s.Online {
		t.Errorf("Stats() after unplug = %+v, want offline", s)
	}

	p2 := newPair(t)
	if _, err := p2.Write([]byte("b")); err != nil { // presented before the reopen
		t.Fatal(err)
	}
	if err := p2.Link(path); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "ab")
	if _, err := p2.Write([]byte("c")); err != nil {
		t.Fatal(err)
	}
	c.waitFor(t, "abc")
	if s := l.Stats(); !s.Online || s.Opens != 2 || s.Reopens != 1 || s.LastError == "" {
		t.Errorf("Stats() after replug = %+v, want online, 2 opens, 1 reopen, a last error", s)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(bound):
		t.Fatal("Run did not return after cancel")
	}
	if s := l.Stats(); s.Online {
		t.Errorf("Stats() after Run = %+v, want offline", s)
	}
}

// A session that ignores ctx and sits in Read still ends when ctx does:
// the Link closes the port under it.
func TestLinkCancelClosesPort(t *testing.T) {
	pair := newPair(t)
	l, err := NewLink(LinkConfig{Port: Config{Path: pair.Path(), ReadTimeout: time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	reading := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(_ context.Context, p *Port) error {
			close(reading)
			for {
				if _, err := p.Read(make([]byte, 8)); err != nil && !errors.Is(err, ErrTimeout) {
					return err
				}
			}
		})
	}()
	<-reading
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(bound):
		t.Fatal("Run did not return after cancel")
	}
}

// Run waits between failed opens and gives up only when ctx ends.
func TestLinkMissingDevice(t *testing.T) {
	l, err := NewLink(LinkConfig{Port: Config{Path: filepath.Join(t.TempDir(), "none")}, MinBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- l.Run(ctx, func(context.Context, *Port) error { t.Error("session ran without a device"); return nil })
	}()
	waitUntil(t, "three open failures", func() bool { return l.Stats().OpenFailures >= 3 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run() = %v, want nil", err)
		}
	case <-time.After(bound):
		t.Fatal("Run did not return after cancel")
	}
	if s := l.Stats(); s.Opens != 0 || s.LastError == "" {
		t.Errorf("Stats() = %+v, want no opens and a last error", s)
	}
}

func TestNewLinkBadConfig(t *testing.T) {
	if _, err := NewLink(LinkConfig{Port: Config{Path: "/dev/null", Baud: 7}}); !errors.Is(err, ErrConfig) {
		t.Errorf("NewLink(bad baud) = %v, want ErrConfig", err)
	}
	if _, err := NewLink(LinkConfig{Port: Config{Path: "/dev/null"}, MinBackoff: time.Second, MaxBackoff: time.Millisecond}); !errors.Is(err, ErrConfig) {
		t.Errorf("NewLink(max < min) = %v, want ErrConfig", err)
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
