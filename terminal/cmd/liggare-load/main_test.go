package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/terminal/internal/loadgen"
)

// serverBin is the liggare-server built once for every test here.
var serverBin string

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "liggare-load-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if serverBin, err = loadgen.BuildServer(ctx, filepath.Join(dir, "bin")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}())
}

// runJSON runs the command with args (plus the prebuilt server, a
// PostgreSQL without fsync and JSON output) and returns its reports.
func runJSON(t *testing.T, args ...string) []loadgen.Report {
	t.Helper()
	var stdout, stderr bytes.Buffer
	args = append(args, "--server-bin", serverBin, "--durable=false", "--json", "--timeout", "2m", "--rss-settle", "200ms")
	if err := run(args, &stdout, &stderr); err != nil {
		t.Fatalf("liggare-load %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	var reports []loadgen.Report
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var r loadgen.Report
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("decode report: %v\n%s", err, stdout.Bytes())
		}
		reports = append(reports, r)
	}
	return reports
}

// checkTaps checks that a report accounts for every tap: made as
// configured, every one acknowledged, the rate and latencies consistent.
func checkTaps(t *testing.T, r loadgen.Report, terminals, taps int) {
	t.Helper()
	if r.Terminals != terminals || r.TapsMade != terminals*taps || r.TapsAcked != r.TapsMade {
		t.Errorf("%s report: %d terminals, %d taps made, %d acknowledged; want %d, %d, all",
			r.Scenario, r.Terminals, r.TapsMade, r.TapsAcked, terminals, terminals*taps)
	}
	if r.Seconds <= 0 || r.TapsPerSec <= 0 || r.TapsPerSec*r.Seconds < float64(r.TapsAcked)*0.999 {
		t.Errorf("%s report: %.0f taps/s over %.3f s for %d taps: inconsistent", r.Scenario, r.TapsPerSec, r.Seconds, r.TapsAcked)
	}
	if !(r.AckP50ms <= r.AckP99ms && r.AckP99ms <= r.AckMaxms && r.AckMaxms > 0) {
		t.Errorf("%s report: ack p50 %v, p99 %v, max %v ms: want 0 < p50 <= p99 <= max", r.Scenario, r.AckP50ms, r.AckP99ms, r.AckMaxms)
	}
	// CPU is counted in 10 ms ticks: a small run may cost PostgreSQL less
	// than one, but not everything together.
	if r.ServerCPUs < 0 || r.PostgresCPUs < 0 || r.LoadCPUs < 0 || r.ServerCPUs+r.PostgresCPUs+r.LoadCPUs <= 0 || r.RSSAfterKiB <= 0 {
		t.Errorf("%s report: CPU server %v s, PostgreSQL %v s, load %v s, server RSS %d KiB: want CPU used and memory read",
			r.Scenario, r.ServerCPUs, r.PostgresCPUs, r.LoadCPUs, r.RSSAfterKiB)
	}
	// Go does not end its threads, so the server's and the generator's
	// run-queue waits only grow.
	if r.ServerWaits < 0 || r.LoadWaits < 0 {
		t.Errorf("%s report: run-queue wait server %v s, load generator %v s: want >= 0", r.Scenario, r.ServerWaits, r.LoadWaits)
	}
}

// TestScenarios runs every scenario small, with both kinds of terminal
// where it matters, and checks that the taps really went through: every
// tap made was acknowledged, and the figures agree with each other. It
// asserts nothing about speed.
func TestScenarios(t *testing.T) {
	t.Run("storm/outbox", func(t *testing.T) {
		rs := runJSON(t, "--scenario", "storm", "--kind", "outbox", "--terminals", "8", "--taps", "300")
		if len(rs) != 1 {
			t.Fatalf("%d reports, want 1", len(rs))
		}
		checkTaps(t, rs[0], 8, 300)
		if rs[0].AllWelcomedSeconds <= 0 || !strings.HasPrefix(rs[0].TerminalKind, loadgen.KindOutbox) {
			t.Errorf("report = %+v, want outbox terminals all welcomed", rs[0])
		}
	})
	t.Run("server-flag", func(t *testing.T) {
		// The flag reaches the server: one it does not know stops it.
		var out, errOut bytes.Buffer
		err := run([]string{"--scenario", "storm", "--kind", "sim", "--terminals", "1", "--taps", "1", "--server-flag=--no-such-flag"}, &out, &errOut)
		if err == nil {
			t.Fatalf("a server flag the server does not know gave no error; output:\n%s", out.String())
		}
	})
	t.Run("storm/sim", func(t *testing.T) {
		rs := runJSON(t, "--scenario", "storm", "--kind", "sim", "--terminals", "8", "--taps", "300", "--warmup", "2",
			"--server-flag=--admission-workers=2")
		checkTaps(t, rs[0], 8, 300) // the warm-up's taps are not counted
		if rs[0].PGWriteXacts <= 0 {
			t.Errorf("storm: %d writing transactions in PostgreSQL, want some", rs[0].PGWriteXacts)
		}
		// pg_stat_wal may lag a short phase by a second; it never goes back.
		if rs[0].PGWALMiB < 0 || rs[0].PGWALWrites < 0 || rs[0].PGWALFPI < 0 || rs[0].PGWALBuffersFull < 0 {
			t.Errorf("storm: WAL %v MiB, %d writes, %d full-page images, buffers full %d times; want none negative",
				rs[0].PGWALMiB, rs[0].PGWALWrites, rs[0].PGWALFPI, rs[0].PGWALBuffersFull)
		}
		if rs[0].SessionFailures != 0 || !strings.HasPrefix(rs[0].TerminalKind, loadgen.KindSim) {
			t.Errorf("report = %+v, want sim terminals and no failed session", rs[0])
		}
	})
	t.Run("storm/pg-statements", func(t *testing.T) {
		// pg_stat_statements is loaded through --pg-set's path (devdb
		// --set) and counts the phase's statements, the ingest's COPY
		// among them; the warm-up's backends began before the phase.
		rs := runJSON(t, "--scenario", "storm", "--kind", "sim", "--terminals", "4", "--taps", "300", "--warmup", "2",
			"--pg-statements", "--pg-set", "log_min_duration_statement=-1")
		if rs[0].Warmup != 2 || rs[0].PGSessions < 0 {
			t.Errorf("storm --warmup 2: report says warm-up %d, %d backends began; want 2, not negative", rs[0].Warmup, rs[0].PGSessions)
		}
		st := rs[0].PGStatements
		if st == nil {
			t.Fatalf("storm --pg-statements: no statements in the report %+v", rs[0])
		}
		copied := false
		for _, s := range st.Top {
			copied = copied || strings.Contains(s.Query, `copy "taps"`)
		}
		if st.Calls <= 0 || st.ExecMs <= 0 || !copied {
			t.Errorf("storm --pg-statements: %d calls, %v ms executing, top %+v; want calls, time and the COPY of taps", st.Calls, st.ExecMs, st.Top)
		}
	})
	t.Run("peak", func(t *testing.T) {
		// Half the terminals lose their network for a simulated hour of
		// the three: taps are buffered and still all acknowledged.
		rs := runJSON(t, "--scenario", "peak", "--terminals", "12", "--taps", "6", "--window", "3s",
			"--outage-fraction", "0.5", "--outage-length", "60m", "--seed", "7")
		r := rs[0]
		checkTaps(t, r, 12, 6)
		if r.Outages == 0 || r.Outages == 12 {
			t.Errorf("peak: %d outages among 12 terminals at fraction 0.5 (seed 7): want some, not all", r.Outages)
		}
		if r.OnlineAckP50ms <= 0 || r.OnlineAckP50ms > r.AckMaxms {
			t.Errorf("peak: online ack p50 %v ms, max of all %v ms: want 0 < online <= max", r.OnlineAckP50ms, r.AckMaxms)
		}
		// By default the terminals are enrolled at sites (here one, for
		// 12 terminals) whose pages are followed: every tap shows.
		if r.Sites != 1 || r.ScreenSites != 1 || r.ScreenShown != 12*6 || r.ScreenMissed != 0 || r.ScreenP99ms < r.ScreenP50ms || r.ScreenP50ms <= 0 {
			t.Errorf("peak: %d sites, %d followed, %d taps shown, %d missed, screen p50 %v ms, p99 %v ms; want 1, 1, %d, 0, 0 < p50 <= p99",
				r.Sites, r.ScreenSites, r.ScreenShown, r.ScreenMissed, r.ScreenP50ms, r.ScreenP99ms, 12*6)
		}
	})
	t.Run("peak/no-sites", func(t *testing.T) {
		rs := runJSON(t, "--scenario", "peak", "--terminals", "4", "--taps", "3", "--window", "1s", "--screen-sites", "0")
		checkTaps(t, rs[0], 4, 3)
		if rs[0].Sites != 0 || rs[0].ScreenSites != 0 {
			t.Errorf("peak --screen-sites 0: %d sites, %d followed; want none", rs[0].Sites, rs[0].ScreenSites)
		}
	})
	t.Run("idle", func(t *testing.T) {
		rs := runJSON(t, "--scenario", "idle", "--terminals", "10")
		r := rs[0]
		if r.Terminals != 10 || r.TapsMade != 0 || r.AllWelcomedSeconds <= 0 || r.RSSBeforeKiB <= 0 || r.RSSAfterKiB <= 0 {
			t.Errorf("idle report = %+v: want 10 terminals welcomed, no taps, memory read", r)
		}
	})
	t.Run("replicas", func(t *testing.T) {
		rs := runJSON(t, "--scenario", "replicas", "--replicas", "2", "--terminals", "6", "--taps", "200")
		if len(rs) != 2 || rs[0].Replicas != 1 || rs[1].Replicas != 2 {
			t.Fatalf("replicas: %d reports (%+v), want one on 1 replica and one on 2", len(rs), rs)
		}
		for _, r := range rs {
			checkTaps(t, r, 6, 200)
			if r.Priority == "" {
				t.Errorf("replicas on %d: no priority in the report, want the default --nice's", r.Replicas)
			}
		}
		if want := rs[1].TapsPerSec / rs[0].TapsPerSec; rs[1].VsOneReplica < want*0.999 || rs[1].VsOneReplica > want*1.001 {
			t.Errorf("replicas: vs one replica %v, want %v", rs[1].VsOneReplica, want)
		}
	})
}

// TestFlags checks that bad flags are refused before anything starts.
func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scenario", "lunch"},
		{"--kind", "paper"},
		{"--outage-fraction", "2"},
		{"--runs", "0"},
		{"--screen-sites", "-1"},
		{"--terminals", "4", "--sites", "5"},
		{"--server-flag", "admission-workers=4"},
		{"--nice", "-1"},
		{"--nice", "20"},
		{"--pg-set", "fsync"},
		{"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(args, &out, &errOut); err == nil {
			t.Errorf("run(%q) = nil, want an error", args)
		}
	}
}
