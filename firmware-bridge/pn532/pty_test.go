package pn532_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/pn532/sim"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
)

// TestOverPTY runs the driver, through serialport, against the simulator
// on real pseudo-terminals: identification, one tap per presentation,
// faults, and an unplug and replug behind a stable link. Real time passes
// here, so every wait is for an event, bounded only to fail instead of
// hanging.
func TestOverPTY(t *testing.T) {
	link := filepath.Join(t.TempDir(), "pn532")
	s := sim.New(sim.Config{Seed: 2})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()

	plug := func() {
		t.Helper()
		p, err := ptypair.Open()
		if err != nil {
			t.Fatalf("ptypair.Open: %v", err)
		}
		t.Cleanup(func() { _ = p.Close() })
		if err := p.Link(link); err != nil {
			t.Fatalf("Link: %v", err)
		}
		wg.Go(func() {
			if err := s.Serve(ctx, p); err != nil && !errors.Is(err, sim.ErrUnplugged) {
				t.Errorf("Serve = %v", err)
			}
		})
	}
	plug()

	cfg, err := pn532.ParseConfig("pn532:" + link + "?baud=115200&poll=20ms&name=in")
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	drv, err := pn532.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	rec := newRecorder()
	wg.Go(func() {
		if err := drv.Run(ctx, rec.handle); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})

	// within bounds a wait so that a broken build fails instead of hanging.
	within := func() context.Context {
		c, stop := context.WithTimeout(ctx, 30*time.Second)
		t.Cleanup(stop)
		return c
	}
	polls := func(n uint64) {
		t.Helper()
		start := s.Stats().Polls
		if err := s.Wait(within(), func(st sim.Stats) bool { return st.Polls >= start+n }); err != nil {
			t.Fatal(err)
		}
	}
	wantCards := func(want ...[]byte) {
		t.Helper()
		ids := []string{}
		for _, uid := range want {
			ids = append(ids, id(uid))
		}
		if diff := cmp.Diff(ids, rec.cards()); diff != "" {
			t.Errorf("cards read (-want +got):\n%s", diff)
		}
	}

	polls(3)
	if st := drv.State(); !st.Online || st.Model != "PN532 v1.6 (ISO14443A ISO14443B ISO18092)" {
		t.Errorf("state %+v: want online, identified", st)
	}

	s.Present(cardA)
	if err := rec.wait(within(), 1); err != nil {
		t.Fatal(err)
	}
	polls(10) // held on the reader
	wantCards(cardA)

	s.Inject(sim.BadDCS, sim.NACK, sim.Noise, sim.BadLCS)
	if err := s.Wait(within(), func(st sim.Stats) bool { return st.Faults == 4 }); err != nil {
		t.Fatal(err)
	}
	polls(5)
	wantCards(cardA)
	if st := drv.State(); st.ChecksumErrors < 2 || st.Retries < 3 {
		t.Errorf("state %+v: want checksum errors and retries counted", st)
	}

	// Unplug, take the card away, put another on, plug in again.
	s.Unplug()
	s.Remove()
	s.Present(cardB)
	plug()
	if err := rec.wait(within(), 2); err != nil {
		t.Fatal(err)
	}
	polls(10)
	wantCards(cardA, cardB)
	if st := drv.State(); st.Reopens < 1 || !st.Online {
		t.Errorf("state %+v: want a reopen, online", st)
	}
	if st := s.Stats(); st.Wakes != 2 || st.SAMConfigs != 2 {
		t.Errorf("sim stats %+v: want a second wake-up after the replug", st)
	}
}
