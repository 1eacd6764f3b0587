package cardtotap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/osdp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
	"github.com/liggare/liggare/firmware-bridge/reader"
	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/clock"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
)

// bound only stops a broken test from hanging; nothing measures speed.
const bound = 20 * time.Second

// tap is one tap as the kiosk recorded it.
type tap struct {
	read tapsource.Read
	fb   tapsource.Feedback
	// at is when agent.Record returned: the tap is durable.
	at time.Time
}

// kiosk is a terminal's card path: the driver a --reader value names,
// tapsource's adapter, agent.Record and a real outbox.
type kiosk struct {
	src   *tapsource.Driver
	ob    *outbox.Outbox
	cards *cardcache.Cache
	taps  chan tap
	// cursor is the card cache's change feed position.
	cursor uint64
}

// startKiosk runs the card path for spec until the test ends.
func startKiosk(tb testing.TB, spec string) *kiosk {
	tb.Helper()
	dir := tb.TempDir()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ob.Close() })
	cards, err := cardcache.Open(filepath.Join(dir, "cards.db"), cardcache.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cards.Close() })
	clk, err := clock.New()
	if err != nil {
		tb.Fatal(err)
	}
	ag := &agent.Agent{Outbox: ob, Cards: cards, Clock: clk, Logger: slog.New(slog.DiscardHandler)}
	src, err := tapsource.Parse(spec)
	if err != nil {
		tb.Fatalf("tapsource.Parse(%q): %v", spec, err)
	}
	d, ok := src.(*tapsource.Driver)
	if !ok {
		tb.Fatalf("tapsource.Parse(%q) = %T, want a *tapsource.Driver", spec, src)
	}
	k := &kiosk{src: d, ob: ob, cards: cards, taps: make(chan tap, 4096)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- d.Run(ctx, func(ctx context.Context, r tapsource.Read) tapsource.Feedback {
			fb := ag.Record(ctx, r)
			k.taps <- tap{read: r, fb: fb, at: time.Now()}
			return fb
		})
	}()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Run = %v, want nil", err)
		}
	})
	return k
}

// know puts cards in the card cache as active crew cards, so that the
// kiosk answers "accepted" for them.
func (k *kiosk) know(tb testing.TB, uids ...[]byte) {
	tb.Helper()
	u := &syncproto.CardUpdate{Cursor: k.cursor + 1, Reset: k.cursor == 0, Final: true}
	for _, uid := range uids {
		u.Cards = append(u.Cards, syncproto.CardInfo{CardID: cardID(uid), Name: "Anna Andersson", Employer: "Bygg AB", Status: syncproto.CardActive})
	}
	if err := k.cards.Apply(u); err != nil {
		tb.Fatal(err)
	}
	k.cursor++
}

// show prints a reader.State in full (its String is one word).
func show(s reader.State) string {
	return fmt.Sprintf("{online %v, frames %d, checksum errors %d, retries %d, missed polls %d, reopens %d, last error %q}",
		s.Online, s.Frames, s.ChecksumErrors, s.Retries, s.MissedPolls, s.Reopens, s.LastError)
}

func cardID(uid []byte) string { return reader.CardID(uid, "") }

// state is the reader's state as the driver sees it.
func (k *kiosk) state() reader.State { return k.src.D.State() }

// waitTap waits for the next tap and checks it is uid's, recorded.
func (k *kiosk) waitTap(tb testing.TB, uid []byte) tap {
	tb.Helper()
	select {
	case tp := <-k.taps:
		if tp.read.CardID != cardID(uid) || !tp.fb.Recorded {
			tb.Fatalf("tap %+v, %+v; want card %s recorded", tp.read, tp.fb, cardID(uid))
		}
		return tp
	case <-time.After(bound):
		tb.Fatalf("no tap of card %s within %v; reader %s", cardID(uid), bound, show(k.state()))
		return tap{}
	}
}

// waitTaps waits for taps of all uids, in any order.
func (k *kiosk) waitTaps(tb testing.TB, uids ...[]byte) {
	tb.Helper()
	want := make(map[string]bool)
	for _, uid := range uids {
		want[cardID(uid)] = true
	}
	for len(want) > 0 {
		select {
		case tp := <-k.taps:
			if !want[tp.read.CardID] || !tp.fb.Recorded {
				tb.Fatalf("tap %+v, %+v; want one of %v recorded", tp.read, tp.fb, want)
			}
			delete(want, tp.read.CardID)
		case <-time.After(bound):
			tb.Fatalf("no taps of %v within %v; reader %s", want, bound, show(k.state()))
		}
	}
}

// noTap checks that no tap is waiting.
func (k *kiosk) noTap(tb testing.TB) {
	tb.Helper()
	select {
	case tp := <-k.taps:
		tb.Errorf("unexpected tap %+v", tp.read)
	default:
	}
}

// waitState waits until the reader's state satisfies cond.
func (k *kiosk) waitState(tb testing.TB, what string, cond func(reader.State) bool) {
	tb.Helper()
	deadline := time.Now().Add(bound)
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !cond(k.state()) {
		if time.Now().After(deadline) {
			tb.Fatalf("reader not %s within %v: %s", what, bound, show(k.state()))
		}
		<-t.C
	}
}

// outboxCards returns the card ids of every tap in the outbox, sorted.
func (k *kiosk) outboxCards(tb testing.TB) []string {
	tb.Helper()
	taps, err := k.ob.Pending(0, 1<<20)
	if err != nil {
		tb.Fatal(err)
	}
	var ids []string
	for _, tp := range taps {
		ids = append(ids, tp.CardID)
	}
	slices.Sort(ids)
	return ids
}

// wire is the master side of a pseudo-terminal as a simulator uses it,
// watched: it notes when a card's frame has been written, and when the
// driver's feedback command has been read.
type wire struct {
	pair  *ptypair.Pair
	isCmd func(*cmdScanner, []byte) bool

	mu      sync.Mutex
	uid     []byte    // the card whose frame is awaited
	frameAt time.Time // when it was written
	armed   bool      // a feedback command is awaited
	scan    cmdScanner
	fbAt    chan time.Time
}

// cmdScanner keeps the bytes of a partial command across reads.
type cmdScanner struct {
	buf    []byte
	parser pn532.Parser
}

func newWire(tb testing.TB, link string, isCmd func(*cmdScanner, []byte) bool) *wire {
	tb.Helper()
	p, err := ptypair.Open()
	if err != nil {
		tb.Fatalf("ptypair.Open: %v", err)
	}
	if err := p.Link(link); err != nil {
		p.Close()
		tb.Fatalf("Link: %v", err)
	}
	return &wire{pair: p, isCmd: isCmd, fbAt: make(chan time.Time, 1)}
}

// expect arms the wire for uid's frame and the feedback after it.
func (w *wire) expect(uid []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.uid, w.frameAt, w.armed = uid, time.Time{}, true
	select {
	case <-w.fbAt:
	default:
	}
}

// written returns when the awaited card's frame was written.
func (w *wire) written() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.frameAt
}

// Write is the simulator writing to the driver.
func (w *wire) Write(b []byte) (int, error) {
	n, err := w.pair.Write(b)
	now := time.Now()
	w.mu.Lock()
	if w.uid != nil && w.frameAt.IsZero() && bytes.Contains(b[:n], w.uid) {
		w.frameAt = now
	}
	w.mu.Unlock()
	return n, err
}

// Read is the simulator reading what the driver sent.
func (w *wire) Read(b []byte) (int, error) {
	n, err := w.pair.Read(b)
	if n > 0 {
		now := time.Now()
		w.mu.Lock()
		if w.isCmd(&w.scan, b[:n]) && w.armed {
			w.armed = false
			w.fbAt <- now
		}
		w.mu.Unlock()
	}
	return n, err
}

func (w *wire) Close() error { return w.pair.Close() }

// osdpLED reports whether the bytes complete an osdp_LED command.
func osdpLED(s *cmdScanner, b []byte) bool {
	s.buf = append(s.buf, b...)
	found := false
	for len(s.buf) > 0 {
		f, n, err := osdp.Parse(s.buf)
		if errors.Is(err, osdp.ErrShort) {
			break
		}
		s.buf = s.buf[max(n, 1):]
		if err == nil && !f.Reply && f.Code == osdp.CmdLED {
			found = true
		}
	}
	s.buf = slices.Clone(s.buf)
	return found
}

// beepPin is the P3 bit of the buzzer the PN532 rig has (gpio_beep=P32).
const beepPin = 1 << 2

// pn532GPIO reports whether the bytes complete a WriteGPIO command that
// turns the beeper on (the one that turns it off ends the last pattern).
func pn532GPIO(s *cmdScanner, b []byte) bool {
	_, _ = s.parser.Write(b)
	found := false
	for {
		f, err := s.parser.Next()
		if errors.Is(err, pn532.ErrIncomplete) {
			return found
		}
		if code, ok := f.Code(); err == nil && ok && f.TFI == pn532.TFIHost && code == byte(pn532.CmdWriteGPIO) &&
			len(f.Data) > 1 && f.Data[1]&beepPin != 0 {
			found = true
		}
	}
}

// percentile returns the p-th percentile (0 < p <= 1) of sorted ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	i := int(float64(len(ds))*p+0.999999) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
