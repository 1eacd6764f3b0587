package metrics

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/syncserver"
	"github.com/liggare/liggare/syncproto"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	b, _ := io.ReadAll(rec.Body)
	return string(b)
}

func expect(t *testing.T, body string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(body, "\n"+l+"\n") {
			t.Errorf("metrics lack line %q", l)
		}
	}
}

func TestTerminalGauges(t *testing.T) {
	m := New(Options{ClockThreshold: 30 * time.Second, Connections: func() int { return 2 }})
	o := m.SyncObserver()
	// Terminal A: Hello with taps waiting and a good clock; terminal B:
	// empty outbox, clock a minute off.
	a := &syncserver.TerminalReport{OutboxDepth: 12, ClockOffset: time.Second}
	b := &syncserver.TerminalReport{OutboxDepth: 0, ClockOffset: -time.Minute}
	o.Report(nil, a)
	o.Report(nil, b)
	expect(t, scrape(t, m), "liggare_connected_terminals 2", "liggare_terminals_outbox_nonempty 1",
		`liggare_terminals_clock_off{threshold_seconds="30"} 1`, "liggare_terminal_outbox_depth_count 2")
	// A drains; B's clock is fixed; then both disconnect.
	a2 := &syncserver.TerminalReport{OutboxDepth: 0, ClockOffset: time.Second}
	b2 := &syncserver.TerminalReport{OutboxDepth: 3, ClockOffset: 0}
	o.Report(a, a2)
	o.Report(b, b2)
	expect(t, scrape(t, m), "liggare_terminals_outbox_nonempty 1", `liggare_terminals_clock_off{threshold_seconds="30"} 0`)
	o.Report(a2, nil)
	o.Report(b2, nil)
	expect(t, scrape(t, m), "liggare_terminals_outbox_nonempty 0", `liggare_terminals_clock_off{threshold_seconds="30"} 0`,
		"liggare_terminal_outbox_depth_count 4")
}

func TestTapCounters(t *testing.T) {
	m := New(Options{})
	o := m.SyncObserver()
	o.BatchReceived(5)
	o.Acked(&syncproto.Ack{Rejected: []syncproto.Rejection{
		{Seq: 1, Code: syncproto.RejectInvalid}, {Seq: 2, Code: syncproto.RejectConflict}, {Seq: 3, Code: 77}}}, 5, 20*time.Millisecond)
	m.GroupCommitted(3, 700, 4*time.Millisecond)
	m.EnrollResult("/v1/enroll", "code_used")
	m.HTTPRequest("", 404)
	m.LiveClients.Set(3)
	expect(t, scrape(t, m),
		"liggare_taps_received_total 5", "liggare_batches_received_total 1", "liggare_taps_acknowledged_total 2",
		`liggare_taps_rejected_total{code="invalid"} 1`, `liggare_taps_rejected_total{code="conflict"} 1`,
		`liggare_taps_rejected_total{code="other"} 1`, "liggare_tap_conflicts_total 1",
		"liggare_ingest_latency_seconds_count 1", "liggare_commit_group_taps_sum 700", "liggare_commit_group_batches_sum 3",
		`liggare_enrollment_requests_total{result="code_used",route="/v1/enroll"} 1`,
		`liggare_http_requests_total{code="404",route="unmatched"} 1`, "liggare_live_clients 3")
}

func TestBacklog(t *testing.T) {
	fail := false
	m := New(Options{Backlog: func(context.Context) (ledger.Backlog, error) {
		if fail {
			return ledger.Backlog{}, errors.New("database down")
		}
		return ledger.Backlog{Rows: 7, OldestAge: 1500 * time.Millisecond}, nil
	}})
	expect(t, scrape(t, m), "liggare_reconcile_inbox_rows 7", "liggare_reconcile_lag_seconds 1.5")
	// A failed query leaves the backlog out, not the rest.
	fail = true
	body := scrape(t, m)
	if strings.Contains(body, "liggare_reconcile_inbox_rows ") {
		t.Errorf("backlog reported although its query failed")
	}
	expect(t, body, "liggare_live_clients 0")
}
