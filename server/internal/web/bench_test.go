package web

import (
	"context"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/live"
	"github.com/liggare/liggare/syncproto"
)

// tapsPerOp is how many taps one iteration of BenchmarkTapToScreen
// measures, so that even -benchtime=1x gives a p99 of many.
const tapsPerOp = 100

// BenchmarkTapToScreen measures tap-to-screen latency: from the commit of
// a tap by ingest's Committer to the "change" event on a site manager's
// open event stream, through the reconciler (woken by the commit, as the
// daemon wires it), the live hub with its default 100 ms coalescing,
// PostgreSQL NOTIFY and the hub's LISTEN connection, and the SSE handler
// over real HTTP. The page's fragment fetch that follows is one request
// (see the access table for its cost). Reported as p50-ms and p99-ms; the
// target is p99 <= 500 ms.
func BenchmarkTapToScreen(b *testing.B) {
	w := newWorld(b, func(c *Config) { c.Live = live.Options{} })
	mgr := w.newUser(b, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	ts := httptest.NewServer(w.srv.Handler())
	defer ts.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rec := ledger.NewReconciler(w.pool, ledger.ReconcilerOptions{OnChange: w.srv.LedgerChanged})
	committer := ingest.NewCommitter(w.ingest, ingest.CommitterOptions{OnCommit: rec.Wake})
	go rec.Run(ctx)
	go committer.Run(ctx)
	<-w.srv.Hub().Listening()
	c := openEvents(b, ts.URL, "/sites/"+itoa(w.siteA)+"/events", w.session(b, mgr))
	defer c.cancel() // before ts.Close, which waits for the stream
	c.next(b, ":live", 5*time.Second)

	sess := &ingest.Session{TerminalID: "TA", StoreEpoch: 1,
		HelloClock: syncproto.Clock{WallMicros: time.Now().UnixMicro()}, HelloReceived: time.Now()}
	at := w.clock.Now()
	cards := []string{"AB0000000001", "AB0000000002"}
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		for range tapsPerOp {
			// Anna and Erik take turns on the toggle reader, a minute
			// apart: every tap changes a period.
			w.seq["TA"]++
			at = at.Add(time.Minute)
			tap := syncproto.Tap{Seq: w.seq["TA"], CardID: cards[w.seq["TA"]%2],
				Clock: syncproto.Clock{WallMicros: at.UnixMicro(), BootID: "b", MonoNanos: int64(w.seq["TA"])}}
			done := make(chan error, 1)
			err := committer.Submit(ctx, &ingest.Submission{Session: sess, Received: time.Now(),
				Batch: &syncproto.Batch{BatchID: w.seq["TA"], Taps: []syncproto.Tap{tap}}},
				func(_ *syncproto.Ack, err error) { done <- err })
			if err != nil {
				b.Fatal(err)
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			committed := time.Now()
			c.next(b, "change", 10*time.Second)
			lat = append(lat, time.Since(committed))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := int(float64(len(lat))*p+0.999999) - 1
		return float64(lat[max(i, 0)]) / float64(time.Millisecond)
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), "max-ms")
}
