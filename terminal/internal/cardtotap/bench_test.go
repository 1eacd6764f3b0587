package cardtotap

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/cmd/liggare-bridge/crew"
	linesim "github.com/liggare/liggare/firmware-bridge/lineproto/sim"
	osdpsim "github.com/liggare/liggare/firmware-bridge/osdp/sim"
	pn532sim "github.com/liggare/liggare/firmware-bridge/pn532/sim"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// presentations is how many cards each benchmark op presents, one at a
// time: a p99 needs a couple of hundred samples.
const presentations = 200

// benchPoll is the polling drivers' poll interval here, shorter than
// their defaults (OSDP 200 ms, PN532 150 ms) so that the benchmark runs
// in seconds. It does not change the frame-to-durable time, which starts
// when the card's frame is on the line; present-p99-ms includes the wait
// for the next poll and so up to one poll interval.
const benchPoll = "50ms"

// arrivalSpread spreads the presentations over more than one poll
// interval, so that present-p99-ms sees the wait for the next poll.
const arrivalSpread = 75 * time.Millisecond

// rig is one protocol's simulated reader, driven by the benchmark.
type rig struct {
	spec string
	// present presents a card and returns when its frame was written
	// (a func, since for polled readers that happens at the next poll).
	present func(uid []byte) func() time.Time
	// feedback waits for the reader's feedback command and returns when
	// it reached the simulator.
	feedback func(tb testing.TB) time.Time
	// remove takes the card away again (PN532), or nil.
	remove func()
}

// BenchmarkCardToTap measures a card's way from the serial line into the
// outbox, per protocol, with the real driver, agent.Record and an fsync'd
// outbox. Each op presents 200 distinct cards one after another; across all
// presentations it reports
//
//	p50-ms, p99-ms    last byte of the card's frame written on the line
//	                  (right after the simulator's write returned) to the
//	                  tap durable (agent.Record returned, recorded); target
//	                  p99 <= 10 ms. ns/op is its mean.
//	fb-p50-ms, fb-p99-ms
//	                  tap durable to the reader's feedback command (OSDP
//	                  osdp_LED, PN532 WriteGPIO of the beep pin, the line
//	                  reader's configured command) read by the simulator;
//	                  target <= 100 ms.
//	present-p99-ms    the card presented to the tap durable: for the
//	                  polling protocols this adds the wait for the next
//	                  poll, up to one poll interval (benchPoll here).
//
// The kiosk answers "accepted" (the cards are in its card cache), the
// outcome a worker sees most.
func BenchmarkCardToTap(b *testing.B) {
	b.Run("line", func(b *testing.B) { benchCardToTap(b, lineRig(b)) })
	b.Run("osdp", func(b *testing.B) { benchCardToTap(b, osdpRig(b)) })
	b.Run("pn532", func(b *testing.B) { benchCardToTap(b, pn532Rig(b)) })
}

func benchCardToTap(b *testing.B, r rig) {
	k := startKiosk(b, r.spec)
	k.waitState(b, "online", func(s reader.State) bool { return s.Online })
	var frame, fb, present []time.Duration
	rng := rand.New(rand.NewPCG(1, 2))
	next := 0
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		uids := make([][]byte, presentations)
		for i := range uids {
			uids[i] = crew.ChipUID(next)
			next++
		}
		k.know(b, uids...)
		b.StartTimer()
		for _, uid := range uids {
			// Workers do not arrive in step with the polls.
			b.StopTimer()
			time.Sleep(time.Duration(rng.Int64N(int64(arrivalSpread))))
			b.StartTimer()
			began := time.Now()
			written := r.present(uid)
			tp := k.waitTap(b, uid)
			if tp.fb.Answer != "accepted" {
				b.Fatalf("tap answered %q, want accepted", tp.fb.Answer)
			}
			shown := r.feedback(b)
			frame = append(frame, max(tp.at.Sub(written()), 0))
			fb = append(fb, max(shown.Sub(tp.at), 0))
			present = append(present, tp.at.Sub(began))
			if r.remove != nil {
				r.remove()
			}
		}
	}
	b.StopTimer()
	k.noTap(b)
	var sum time.Duration
	for _, d := range frame {
		sum += d
	}
	for _, ds := range [][]time.Duration{frame, fb, present} {
		slices.Sort(ds)
	}
	b.ReportMetric(float64(sum)/float64(len(frame)), "ns/op")
	b.ReportMetric(ms(percentile(frame, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(frame, 0.99)), "p99-ms")
	b.ReportMetric(ms(percentile(fb, 0.50)), "fb-p50-ms")
	b.ReportMetric(ms(percentile(fb, 0.99)), "fb-p99-ms")
	b.ReportMetric(ms(percentile(present, 0.99)), "present-p99-ms")
}

// lineRig is a line reader that takes a feedback command for "accepted".
func lineRig(b *testing.B) rig {
	r, err := linesim.New(filepath.Join(b.TempDir(), "line"), linesim.Wire{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close() })
	return rig{
		spec: "line:" + r.Path() + "?accepted=1b47310d",
		present: func(uid []byte) func() time.Time {
			if err := r.Present(uid); err != nil {
				b.Fatal(err)
			}
			at := time.Now()
			return func() time.Time { return at }
		},
		feedback: func(tb testing.TB) time.Time {
			buf := make([]byte, 16)
			if _, err := r.ReadFeedback(buf, bound); err != nil {
				tb.Fatalf("no feedback command: %v", err)
			}
			return time.Now()
		},
	}
}

// osdpRig is an OSDP reader on a watched wire.
func osdpRig(b *testing.B) rig {
	link := filepath.Join(b.TempDir(), "osdp")
	w := newWire(b, link, osdpLED)
	pd := osdpsim.New(osdpsim.Config{Addr: 1})
	serve(b, func(ctx context.Context) { osdpsim.Serve(ctx, w, pd) })
	return rig{
		spec: "osdp:" + link + "?addr=1&poll=" + benchPoll,
		present: func(uid []byte) func() time.Time {
			w.expect(uid)
			pd.Present(uid)
			return w.written
		},
		feedback: w.waitFeedback,
	}
}

// pn532Rig is a PN532 with a buzzer on P32, on a watched wire.
func pn532Rig(b *testing.B) rig {
	link := filepath.Join(b.TempDir(), "pn532")
	w := newWire(b, link, pn532GPIO)
	s := pn532sim.New(pn532sim.Config{Seed: 1})
	serve(b, func(ctx context.Context) { s.Serve(ctx, w) })
	return rig{
		spec: "pn532:" + link + "?poll=" + benchPoll + "&gpio_beep=P32",
		present: func(uid []byte) func() time.Time {
			w.expect(uid)
			s.Present(uid)
			return w.written
		},
		feedback: w.waitFeedback,
		remove:   s.Remove,
	}
}

// serve runs a simulator until the benchmark ends.
func serve(tb testing.TB, f func(context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
}

// waitFeedback waits for the feedback command the wire was armed for.
func (w *wire) waitFeedback(tb testing.TB) time.Time {
	select {
	case at := <-w.fbAt:
		return at
	case <-time.After(bound):
		tb.Fatalf("no feedback command within %v", bound)
		return time.Time{}
	}
}
