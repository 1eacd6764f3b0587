package cardtotap

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/liggare/liggare/firmware-bridge/cmd/liggare-bridge/crew"
	linesim "github.com/liggare/liggare/firmware-bridge/lineproto/sim"
	osdpsim "github.com/liggare/liggare/firmware-bridge/osdp/sim"
	pn532sim "github.com/liggare/liggare/firmware-bridge/pn532/sim"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// presented keeps the cards a test presented, to check the outbox against.
type presented [][]byte

func (p *presented) add(uids ...[]byte) { *p = append(*p, uids...) }

// check: the outbox holds one tap per presented card, no more, no less.
func (p presented) check(t *testing.T, k *kiosk) {
	t.Helper()
	k.noTap(t)
	var want []string
	for _, uid := range p {
		want = append(want, cardID(uid))
	}
	slices.Sort(want)
	if diff := cmp.Diff(want, k.outboxCards(t)); diff != "" {
		t.Errorf("outbox card ids (-presented +stored):\n%s", diff)
	}
}

func card(i int) []byte { return crew.ChipUID(i) }

// TestEveryCardOneTap: through every fault a reader's line can have, each
// card presented becomes exactly one tap in the outbox; a card that never
// fully reached the line (a truncated frame) becomes none. Each run ends
// with a last card, so that a late duplicate would be in the outbox by the
// time it is checked: readers report in order.
func TestEveryCardOneTap(t *testing.T) {
	t.Run("line", testLineFaults)
	t.Run("osdp", testOSDPFaults)
	t.Run("pn532", testPN532Faults)
}

func testLineFaults(t *testing.T) {
	r, err := linesim.New(filepath.Join(t.TempDir(), "line"), linesim.Wire{Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k := startKiosk(t, "line:"+r.Path())
	k.waitState(t, "online", func(s reader.State) bool { return s.Online })
	var p presented
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// errorsAfter waits until the driver has dropped the garbage.
	dropped := func(before uint64) {
		t.Helper()
		k.waitState(t, "counting the garbage", func(s reader.State) bool { return s.ChecksumErrors > before })
	}

	// Two cards in one burst.
	must(r.Present(card(0)))
	must(r.Present(card(1)))
	p.add(card(0), card(1))
	k.waitTaps(t, card(0), card(1))

	// Noise: dropped once the line goes quiet; the next card is read.
	before := k.state().ChecksumErrors
	must(r.Noise(40))
	dropped(before)
	must(r.Present(card(2)))
	p.add(card(2))
	k.waitTap(t, card(2))

	// A frame cut short is no card (the worker sees no light and taps
	// again); the next card is read whole.
	before = k.state().ChecksumErrors
	must(r.Truncate(card(3)))
	dropped(before)
	must(r.Present(card(4)))
	p.add(card(4))
	k.waitTap(t, card(4))

	// A banner and an overlong line between cards.
	must(r.GarbageLine("READER V1.2 READY"))
	must(r.Present(card(5)))
	must(r.Overlong())
	must(r.Present(card(6)))
	// The card held on the reader repeats its line: one presentation.
	must(r.Present(card(6)))
	must(r.Present(card(6)))
	p.add(card(5), card(6))
	k.waitTaps(t, card(5), card(6))

	// Unplug and replug behind the same path.
	reopens := k.state().Reopens
	must(r.Unplug())
	k.waitState(t, "offline", func(s reader.State) bool { return !s.Online })
	if err := r.Present(card(7)); !errors.Is(err, linesim.ErrUnplugged) {
		t.Fatalf("Present while unplugged = %v, want ErrUnplugged", err)
	}
	must(r.Replug())
	k.waitState(t, "reopened", func(s reader.State) bool { return s.Online && s.Reopens > reopens })
	must(r.Present(card(8)))
	p.add(card(8))
	k.waitTap(t, card(8))

	// Silence is a line reader's idle state: nothing to recover from. The
	// last card.
	must(r.Present(card(9)))
	p.add(card(9))
	k.waitTap(t, card(9))
	p.check(t, k)
}

func testOSDPFaults(t *testing.T) {
	link := filepath.Join(t.TempDir(), "osdp")
	dev, err := osdpsim.Start(t.Context(), link, osdpsim.New(osdpsim.Config{Addr: 1}))
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	k := startKiosk(t, "osdp:"+link+"?addr=1&poll=20ms&timeout=50ms&offline=4")
	k.waitState(t, "online", func(s reader.State) bool { return s.Online })
	var p presented

	// Three cards at once: the reader reports one per poll.
	dev.Present(card(0))
	dev.Present(card(1))
	dev.Present(card(2))
	p.add(card(0), card(1), card(2))
	k.waitTaps(t, card(0), card(1), card(2))

	// Noise before a reply, replies with a bad CRC, a lost reply and a
	// truncated one, each around a card report: the control panel asks
	// again with the same sequence number and the reader sends the same
	// report, which is one tap.
	dev.Noise(40)
	dev.Present(card(3))
	p.add(card(3))
	k.waitTap(t, card(3))
	dev.CorruptReplies(2)
	dev.Present(card(4))
	p.add(card(4))
	k.waitTap(t, card(4))
	dev.Present(card(5))
	dev.DropReplies(1)
	p.add(card(5))
	k.waitTap(t, card(5))
	dev.TruncateReplies(1)
	dev.Present(card(6))
	p.add(card(6))
	k.waitTap(t, card(6))
	if s := k.state(); s.ChecksumErrors < 2 || s.Retries < 4 {
		t.Errorf("state %s: want the bad replies counted and retried", show(s))
	}

	// Unplugged, a card is presented to the reader (on its own power);
	// it is reported once the reader is back.
	reopens := k.state().Reopens
	if err := dev.Unplug(); err != nil {
		t.Fatal(err)
	}
	k.waitState(t, "offline", func(s reader.State) bool { return !s.Online })
	dev.Present(card(7))
	p.add(card(7))
	if err := dev.Replug(); err != nil {
		t.Fatal(err)
	}
	k.waitTap(t, card(7))
	if s := k.state(); s.Reopens <= reopens {
		t.Errorf("state %s: want a reopen counted", show(s))
	}

	// A silent reader goes offline; a card presented meanwhile is
	// reported when it answers again.
	dev.SetSilent(true)
	k.waitState(t, "offline", func(s reader.State) bool { return !s.Online })
	dev.Present(card(8))
	p.add(card(8))
	dev.SetSilent(false)
	k.waitTap(t, card(8))

	dev.Present(card(9))
	p.add(card(9))
	k.waitTap(t, card(9))
	p.check(t, k)
}

func testPN532Faults(t *testing.T) {
	link := filepath.Join(t.TempDir(), "pn532")
	s := pn532sim.New(pn532sim.Config{Seed: 4})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	plug := func() {
		t.Helper()
		pair, err := ptypair.Open()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { pair.Close() })
		if err := pair.Link(link); err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := s.Serve(ctx, pair); err != nil && !errors.Is(err, pn532sim.ErrUnplugged) {
				t.Errorf("Serve = %v", err)
			}
		})
	}
	plug()
	k := startKiosk(t, "pn532:"+link+"?poll=20ms")
	k.waitState(t, "online", func(s reader.State) bool { return s.Online })
	var p presented
	within := func() context.Context {
		c, stop := context.WithTimeout(ctx, bound)
		t.Cleanup(stop)
		return c
	}
	polls := func(n uint64) {
		t.Helper()
		start := s.Stats().Polls
		if err := s.Wait(within(), func(st pn532sim.Stats) bool { return st.Polls >= start+n }); err != nil {
			t.Fatal(err)
		}
	}
	tapOnce := func(uid []byte) {
		t.Helper()
		s.Present(uid)
		p.add(uid)
		k.waitTap(t, uid)
		s.Remove()
	}

	tapOnce(card(0))
	// Held on the reader for many polls: still one tap.
	s.Present(card(1))
	p.add(card(1))
	k.waitTap(t, card(1))
	polls(10)
	s.Remove()

	// Each fault hits the next command, whatever it is; the card lies on
	// the reader through them.
	for i, faults := range [][]pn532sim.Fault{
		{pn532sim.Noise, pn532sim.BadDCS},
		{pn532sim.BadLCS, pn532sim.Truncate},
		{pn532sim.NACK, pn532sim.Deaf},
	} {
		n := s.Stats().Faults
		s.Inject(faults...)
		tapOnce(card(2 + i))
		if err := s.Wait(within(), func(st pn532sim.Stats) bool { return st.Faults >= n+uint64(len(faults)) }); err != nil {
			t.Fatal(err)
		}
	}

	// Unplugged with a card on it: read once after the replug.
	reopens := k.state().Reopens
	s.Unplug()
	k.waitState(t, "offline", func(s reader.State) bool { return !s.Online })
	s.Present(card(5))
	p.add(card(5))
	plug()
	k.waitTap(t, card(5))
	s.Remove()
	if st := k.state(); st.Reopens <= reopens {
		t.Errorf("state %s: want a reopen counted", show(st))
	}

	// Silent (a power glitch): offline; woken again, the card on it is
	// read once.
	s.Silence(true)
	k.waitState(t, "offline", func(s reader.State) bool { return !s.Online })
	s.Present(card(6))
	p.add(card(6))
	s.Silence(false)
	k.waitTap(t, card(6))
	polls(5)
	s.Remove()

	tapOnce(card(7))
	p.check(t, k)
}

// TestCrewCardsKnown: the kiosk answers from its card cache for the
// simulated crew's chip UIDs, the ids the demo registers.
func TestCrewCardsKnown(t *testing.T) {
	r, err := linesim.New(filepath.Join(t.TempDir(), "line"), linesim.Wire{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	k := startKiosk(t, "line:"+r.Path()+"?name=in")
	k.know(t, card(0))
	for i, want := range []string{"accepted", "unknown_card"} {
		if err := r.Present(card(i)); err != nil {
			t.Fatal(err)
		}
		tp := k.waitTap(t, card(i))
		if tp.fb.Answer != want || tp.read.Reader != "in" {
			t.Errorf("card %d: answer %q reader %q, want %q from reader in", i, tp.fb.Answer, tp.read.Reader, want)
		}
	}
}
