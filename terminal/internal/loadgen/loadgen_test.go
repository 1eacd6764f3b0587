package loadgen_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/terminal/internal/loadgen"
)

// EnvServerBin names an environment variable that points the tests and
// benchmarks at a prebuilt liggare-server (to compare two builds) instead of
// building the one in this module.
const EnvServerBin = "LOADGEN_SERVER_BIN"

// startEnv starts an environment for tb and closes it at cleanup.
func startEnv(tb testing.TB, opts loadgen.Options) *loadgen.Env {
	tb.Helper()
	if bin := os.Getenv(EnvServerBin); bin != "" && opts.ServerBinary == "" {
		opts.ServerBinary = bin
		tb.Logf("server binary from %s: %s", EnvServerBin, bin)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	env, err := loadgen.StartEnv(ctx, opts)
	if err != nil {
		tb.Fatalf("StartEnv: %v", err)
	}
	tb.Cleanup(func() {
		if err := env.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return env
}

// connectDB opens one connection to the environment's database.
func connectDB(tb testing.TB, env *loadgen.Env) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), env.DatabaseURL())
	if err != nil {
		tb.Fatalf("connect to %s: %v", env.DatabaseURL(), err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// TestHarnessSmoke runs the whole harness small: two terminals buffer taps
// offline, connect, and end with empty outboxes and every tap in the
// database; an idle session is welcomed; the server's memory can be read.
func TestHarnessSmoke(t *testing.T) {
	const terminals, perTerminal = 2, 200
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	env := startEnv(t, loadgen.Options{NoFsync: true})

	terms, err := env.AddTerminals(ctx, terminals)
	if err != nil {
		t.Fatalf("AddTerminals: %v", err)
	}
	if err := loadgen.FillAll(ctx, terms, perTerminal); err != nil {
		t.Fatalf("FillAll: %v", err)
	}
	if got, want := loadgen.Pending(terms), uint64(terminals*perTerminal); got != want {
		t.Fatalf("Pending after FillAll = %d, want %d", got, want)
	}
	loadgen.StartAll(terms)
	if err := loadgen.WaitDrained(ctx, terms); err != nil {
		t.Fatalf("WaitDrained: %v", err)
	}
	for _, term := range terms {
		st := term.Outbox.Stats()
		if st.Depth != 0 || st.AckedThrough != perTerminal {
			t.Errorf("terminal %s outbox = %+v, want depth 0, acked through %d", term.ID, st, perTerminal)
		}
	}

	conn := connectDB(t, env)
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM taps WHERE terminal_id = ANY($1)`,
		[]string{terms[0].ID, terms[1].ID}).Scan(&stored); err != nil {
		t.Fatalf("count taps: %v", err)
	}
	if stored != terminals*perTerminal {
		t.Errorf("taps stored = %d, want %d", stored, terminals*perTerminal)
	}

	creds, err := env.Credentials(ctx, env.NewIDs("idle", 1))
	if err != nil {
		t.Fatalf("Credentials: %v", err)
	}
	idle, err := env.DialIdle(ctx, creds[0])
	if err != nil {
		t.Fatalf("DialIdle: %v", err)
	}
	if idle.Welcome.AckedThrough != 0 || idle.Welcome.MaxBatchTaps == 0 {
		t.Errorf("Welcome = %+v, want acked through 0 and a batch limit", idle.Welcome)
	}
	if !idle.Alive() {
		t.Errorf("idle connection closed right after its Welcome")
	}
	idle.Close()

	rss, err := env.ServerRSS()
	if err != nil || rss <= 0 {
		t.Errorf("ServerRSS() = %d, %v; want a positive size", rss, err)
	}
	if err := loadgen.CloseAll(terms); err != nil {
		t.Errorf("CloseAll: %v", err)
	}
}

// TestTapToScreen runs a small peak on a customer set up over the real
// interfaces (org create, the admin's first sign-in, sites, a contractor,
// the staff import, enrollment codes and the enrollment endpoint), with
// both sites' live pages followed: every tap must show on its page, with
// its latency recorded. A tap the page never shows is a miss and fails
// the test.
func TestTapToScreen(t *testing.T) {
	const sites, terminals, taps = 2, 3, 3
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	env := startEnv(t, loadgen.Options{NoFsync: true})
	r, err := loadgen.Peak(ctx, env, loadgen.ScenarioConfig{Kind: loadgen.KindOutbox, Terminals: terminals, Taps: taps,
		Window: 3 * time.Second, Seed: 1, Timeout: 2 * time.Minute, RSSSettle: 100 * time.Millisecond,
		Sites: sites, ScreenSites: sites, ScreenGrace: time.Minute})
	if err != nil {
		t.Fatalf("Peak: %v\n%s", err, r)
	}
	t.Logf("%s", r)
	if r.TapsAcked != terminals*taps {
		t.Errorf("taps acknowledged = %d, want %d", r.TapsAcked, terminals*taps)
	}
	if r.ScreenShown != terminals*taps || r.ScreenMissed != 0 {
		t.Errorf("tap-to-screen: %d shown, %d missed; want %d shown, none missed", r.ScreenShown, r.ScreenMissed, terminals*taps)
	}
	if r.ScreenSites != sites || r.Sites != sites || r.SetupSeconds <= 0 {
		t.Errorf("report: %d sites, %d followed, setup %.2f s; want %d, %d and a setup time", r.Sites, r.ScreenSites, r.SetupSeconds, sites, sites)
	}
	if r.ScreenP50ms <= 0 || r.ScreenP99ms < r.ScreenP50ms {
		t.Errorf("tap-to-screen p50 %.1f ms, p99 %.1f ms; want recorded latencies", r.ScreenP50ms, r.ScreenP99ms)
	}

	// The people are on the pages as the ledger has them: each tap opened
	// a work period of the person whose imported card it was.
	conn := connectDB(t, env)
	var periods int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity'`).Scan(&periods); err != nil {
		t.Fatalf("count work periods: %v", err)
	}
	if periods != terminals*taps {
		t.Errorf("work periods = %d, want %d", periods, terminals*taps)
	}
}

// TestNice starts the server and PostgreSQL below this process's
// priority, each in a session of its own.
func TestNice(t *testing.T) {
	const nice = 3
	env := startEnv(t, loadgen.Options{NoFsync: true, Nice: nice})
	self := schedFields(t, "self")
	pm, err := os.ReadFile(filepath.Join(env.Dir(), "pg", "data", "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	postmaster, _, _ := strings.Cut(string(pm), "\n")
	for _, pid := range []string{strconv.Itoa(env.ServerPID()), postmaster} {
		got := schedFields(t, pid)
		if got.nice != self.nice+nice || got.session == self.session {
			t.Errorf("process %s: nice %d in session %d; want nice %d in a session other than this process's %d",
				pid, got.nice, got.session, self.nice+nice, self.session)
		}
	}
}

// schedFields reads the session and nice of a process from its
// /proc/PID/stat.
func schedFields(t *testing.T, pid string) (f struct{ session, nice int }) {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// After the command's ")": state(3) ppid pgrp session(6) ... nice(19).
	rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if f.session, err = strconv.Atoi(rest[3]); err != nil {
		t.Fatal(err)
	}
	if f.nice, err = strconv.Atoi(rest[16]); err != nil {
		t.Fatal(err)
	}
	return f
}
