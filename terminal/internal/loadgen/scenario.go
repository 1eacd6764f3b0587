package loadgen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

// Scenario names, as the liggare-load command takes them.
const (
	ScenarioPeak     = "peak"
	ScenarioStorm    = "storm"
	ScenarioIdle     = "idle"
	ScenarioReplicas = "replicas"
)

// Morning is the simulated morning of the peak scenario: check-ins fall
// between MorningStart and MorningEnd, normally distributed around
// MorningPeak with MorningSpread as standard deviation (so about 87 % of
// them fall between 06:30 and 07:30), and the whole morning is compressed
// into ScenarioConfig.Window of wall time.
const (
	MorningStart  = 6 * time.Hour
	MorningPeak   = 7 * time.Hour
	MorningEnd    = 9 * time.Hour
	MorningSpread = 20 * time.Minute
	morningLength = MorningEnd - MorningStart
)

// Memory readings: the server's VmRSS is read rssReadings times, half the
// settle time apart, after the settle time (DefaultRSSSettle: 2 s, then
// readings 1 s apart, as BenchmarkIdleConnections does), and the last
// reading is kept.
const (
	DefaultRSSSettle = 2 * time.Second
	rssReadings      = 3
)

// ScenarioConfig is the workload of one scenario run.
type ScenarioConfig struct {
	// Kind is the kind of simulated terminal: KindOutbox or KindSim.
	Kind string
	// Terminals is how many terminals take part.
	Terminals int
	// Taps is, for storm and replicas, how many taps each terminal has
	// buffered before it connects; for peak, how many taps each terminal
	// records during the morning.
	Taps int
	// Window is the wall time the simulated morning (06:00 to 09:00) of
	// the peak scenario is compressed into.
	Window time.Duration
	// OutageFraction of the terminals lose their network once during the
	// peak, at a random moment of the morning, for OutageLength of
	// simulated time (compressed like the morning); they keep recording
	// taps into their outboxes meanwhile and reconnect afterwards.
	OutageFraction float64
	OutageLength   time.Duration
	// Seed makes the peak's tap times and outages repeatable.
	Seed uint64
	// Timeout bounds the wait for every tap to be acknowledged.
	Timeout time.Duration
	// ConnectConcurrency, when positive, makes the idle scenario connect
	// its terminals this many at a time, each waiting for its Welcome, as
	// a fleet that comes up over a while does; zero connects all at once.
	ConnectConcurrency int
	// Warmup, when positive, makes the storm first run a small storm of
	// this many terminals per replica (warmupTaps taps each), drained and
	// disconnected before the measurement: the servers' database pools
	// are then connected and their statements prepared, as in a server
	// that has been running for a while.
	Warmup int
	// RSSSettle is how long to wait before reading the server's memory;
	// zero means DefaultRSSSettle.
	RSSSettle time.Duration
	// Sites, when positive, makes the peak set a customer up over the
	// real interfaces (see SetUpCustomer) with its terminals spread over
	// this many sites, and measure tap-to-screen latency on ScreenSites
	// of them; zero registers terminals at no site ("terminal add"), whose
	// taps no page shows.
	Sites       int
	ScreenSites int
	// ScreenGrace is how long to wait after the last acknowledgement for
	// taps not shown yet; zero means DefaultScreenGrace.
	ScreenGrace time.Duration
}

// maxCausesShown is how many failure causes Report.String lists.
const maxCausesShown = 5

// Report is what one scenario run measured. Latencies are in
// milliseconds, memory in KiB, CPU in seconds.
type Report struct {
	Scenario     string `json:"scenario"`
	TerminalKind string `json:"terminal_kind"`
	Terminals    int    `json:"terminals"`
	Replicas     int    `json:"replicas"`
	// TapsMade were recorded in outboxes; TapsAcked of them were
	// acknowledged by the server by the end of the run.
	TapsMade  int `json:"taps_made"`
	TapsAcked int `json:"taps_acked"`
	// Seconds is the measured phase: for storm and replicas from the
	// reconnection until every tap was acknowledged; for peak from the
	// start of the morning until every tap was acknowledged; for idle the
	// time to connect every terminal.
	Seconds    float64 `json:"seconds"`
	TapsPerSec float64 `json:"taps_per_s"`
	// AckFrom says where ack latency is counted from: "durable" (the
	// outbox commit) or "reconnect" (the start of the storm, for taps
	// buffered before it).
	AckFrom  string  `json:"ack_from,omitempty"`
	AckP50ms float64 `json:"ack_p50_ms"`
	AckP99ms float64 `json:"ack_p99_ms"`
	AckMaxms float64 `json:"ack_max_ms"`
	// Online* are the peak's taps recorded while their terminal had its
	// network: the latency a worker's tap sees on a normal morning.
	OnlineAckP50ms float64 `json:"online_ack_p50_ms,omitempty"`
	OnlineAckP99ms float64 `json:"online_ack_p99_ms,omitempty"`
	Outages        int     `json:"outages,omitempty"`
	// AllWelcomedSeconds is when the last terminal was first welcomed,
	// counted from the start of the measured phase (storm, idle).
	AllWelcomedSeconds float64 `json:"all_welcomed_s,omitempty"`
	// SessionFailures counts sessions that failed (a refused or timed out
	// handshake, a dropped connection); only sim terminals count them.
	SessionFailures int64 `json:"session_failures"`
	// FailureCauses counts the terminals by the error that ended their
	// last failed session.
	FailureCauses map[string]int `json:"failure_causes,omitempty"`
	// Server memory, summed over the replicas: before the terminals
	// connected, and at the end of the run with all of them connected.
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSAfterKiB  int64   `json:"rss_after_kib"`
	KiBPerConn   float64 `json:"kib_per_conn"`
	// CPU during the measured phase.
	ServerCPUs   float64 `json:"server_cpu_s"`
	PostgresCPUs float64 `json:"postgres_cpu_s"`
	LoadCPUs     float64 `json:"load_cpu_s"`
	// OtherCPUs is what processes not part of the run took meanwhile,
	// IdleCPUs the time the machine's cores stood idle (see CPU.Busy): a
	// comparison of two phases is fair only where these are alike.
	OtherCPUs float64 `json:"other_cpu_s"`
	IdleCPUs  float64 `json:"idle_cpu_s"`
	// The same parts' time runnable but waiting for a core during the
	// measured phase (see CPU): a load generator that waited long was
	// starved by what it measures.
	ServerWaits   float64 `json:"server_wait_s"`
	PostgresWaits float64 `json:"postgres_wait_s"`
	LoadWaits     float64 `json:"load_wait_s"`
	LoadAverage   string  `json:"load_average"`
	// Priority says how the scheduler was asked to weigh the load
	// generator against the server and PostgreSQL (see FavourSelf); the
	// liggare-load command fills it in.
	Priority string `json:"priority,omitempty"`
	// PGWriteXacts is how many writing transactions PostgreSQL began
	// during the measured phase (ingest groups, session openings, the
	// reconciler's passes, ...; see PGCounts.WriteXacts).
	PGWriteXacts int64 `json:"pg_write_xacts"`
	// PGSessions is how many PostgreSQL backends began during the
	// measured phase (see PGCounts.Sessions): a phase measured on warm
	// pools begins few but the harness's own.
	PGSessions int64 `json:"pg_sessions"`
	// The phase's write-ahead log (see PGCounts): MiB, full-page
	// images, times a backend found the WAL buffers full, write() calls.
	PGWALMiB         float64 `json:"pg_wal_mib"`
	PGWALFPI         int64   `json:"pg_wal_fpi"`
	PGWALBuffersFull int64   `json:"pg_wal_buffers_full"`
	PGWALWrites      int64   `json:"pg_wal_writes"`
	// Warmup is how many terminals per replica ran the warm-up storm
	// before the measured phase (ScenarioConfig.Warmup; 0: none).
	Warmup int `json:"warmup"`
	// PGStatements is what pg_stat_statements counted during the
	// measured phase (only with Options.Statements).
	PGStatements *PGStatements `json:"pg_statements,omitempty"`
	// VsOneReplica is, in the replicas scenario's run on several replicas,
	// its taps/s divided by the run on one.
	VsOneReplica float64 `json:"vs_one_replica,omitempty"`
	// Sites is how many sites the terminals were enrolled at (0: at
	// none), and SetupSeconds how long setting the customer up over the
	// web UI and the enrollment endpoint took, before the measured phase.
	Sites        int     `json:"sites,omitempty"`
	SetupSeconds float64 `json:"setup_s,omitempty"`
	// Tap-to-screen: from a tap durable on the terminal until the live
	// page of its site, followed on ScreenSites sites, showed its person.
	// ScreenShown taps were shown, ScreenMissed never were (by the end of
	// the grace after the last acknowledgement). ScreenOnline* count only
	// taps recorded while their terminal had its network.
	ScreenSites       int     `json:"screen_sites,omitempty"`
	ScreenShown       int     `json:"screen_shown"`
	ScreenMissed      int     `json:"screen_missed"`
	ScreenP50ms       float64 `json:"screen_p50_ms,omitempty"`
	ScreenP99ms       float64 `json:"screen_p99_ms,omitempty"`
	ScreenMaxms       float64 `json:"screen_max_ms,omitempty"`
	ScreenOnlineP50ms float64 `json:"screen_online_p50_ms,omitempty"`
	ScreenOnlineP99ms float64 `json:"screen_online_p99_ms,omitempty"`
	ScreenFetches     int     `json:"screen_fetches,omitempty"`
	ScreenFetchErrors int     `json:"screen_fetch_errors,omitempty"`
}

// String formats the report for a reader.
func (r Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d terminals, %d replica(s)\n", r.Scenario, r.Terminals, r.Replicas)
	fmt.Fprintf(&b, "  terminals:      %s\n", r.TerminalKind)
	if r.TapsMade > 0 {
		fmt.Fprintf(&b, "  taps:           %d made, %d acknowledged in %.2f s: %.0f taps/s\n",
			r.TapsMade, r.TapsAcked, r.Seconds, r.TapsPerSec)
		fmt.Fprintf(&b, "  ack latency:    p50 %.1f ms, p99 %.1f ms, max %.1f ms (from %s)\n",
			r.AckP50ms, r.AckP99ms, r.AckMaxms, r.AckFrom)
	} else {
		fmt.Fprintf(&b, "  connected in:   %.2f s\n", r.Seconds)
	}
	if r.AllWelcomedSeconds > 0 {
		fmt.Fprintf(&b, "  sessions:       all welcomed %.2f s after the start, %d failed sessions\n",
			r.AllWelcomedSeconds, r.SessionFailures)
	}
	causes := slices.SortedFunc(maps.Keys(r.FailureCauses), func(x, y string) int {
		return r.FailureCauses[y] - r.FailureCauses[x]
	})
	for _, msg := range causes[:min(len(causes), maxCausesShown)] {
		fmt.Fprintf(&b, "  failed:         %d terminals last by: %s\n", r.FailureCauses[msg], msg)
	}
	if r.OnlineAckP99ms > 0 {
		fmt.Fprintf(&b, "  online taps:    ack p50 %.1f ms, p99 %.1f ms (%d terminals had an outage)\n",
			r.OnlineAckP50ms, r.OnlineAckP99ms, r.Outages)
	}
	if r.Sites > 0 {
		fmt.Fprintf(&b, "  setup:          %d sites over the web UI and enrollment endpoint in %.1f s (not measured)\n",
			r.Sites, r.SetupSeconds)
	}
	if r.ScreenSites > 0 {
		fmt.Fprintf(&b, "  tap-to-screen:  p50 %.1f ms, p99 %.1f ms, max %.1f ms; %d taps shown, %d missed on %d followed sites (%d fragment fetches, %d failed)\n",
			r.ScreenP50ms, r.ScreenP99ms, r.ScreenMaxms, r.ScreenShown, r.ScreenMissed, r.ScreenSites, r.ScreenFetches, r.ScreenFetchErrors)
		fmt.Fprintf(&b, "  online taps:    screen p50 %.1f ms, p99 %.1f ms\n", r.ScreenOnlineP50ms, r.ScreenOnlineP99ms)
	}
	fmt.Fprintf(&b, "  server memory:  %d KiB -> %d KiB: %.2f KiB per connection\n",
		r.RSSBeforeKiB, r.RSSAfterKiB, r.KiBPerConn)
	if r.Warmup > 0 {
		fmt.Fprintf(&b, "  warm-up:        %d terminals per replica first, not measured\n", r.Warmup)
	}
	fmt.Fprintf(&b, "  CPU:            server %.2f s, PostgreSQL %.2f s (%d writing transactions, %d backends began), load generator %.2f s\n",
		r.ServerCPUs, r.PostgresCPUs, r.PGWriteXacts, r.PGSessions, r.LoadCPUs)
	fmt.Fprintf(&b, "  WAL:            %.0f MiB, %d full-page images, %d writes, WAL buffers full %d times\n",
		r.PGWALMiB, r.PGWALFPI, r.PGWALWrites, r.PGWALBuffersFull)
	fmt.Fprintf(&b, "  machine:        other processes %.2f s, idle %.2f s\n", r.OtherCPUs, r.IdleCPUs)
	fmt.Fprintf(&b, "  run queue:      server %.2f s, PostgreSQL %.2f s, load generator %.2f s runnable, waiting for a core\n",
		r.ServerWaits, r.PostgresWaits, r.LoadWaits)
	if st := r.PGStatements; st != nil {
		fmt.Fprintf(&b, "  statements:     %d calls, %d plans: planning %.0f ms, executing %.0f ms\n",
			st.Calls, st.Plans, st.PlanMs, st.ExecMs)
		for _, s := range st.Top[:min(len(st.Top), shownStatements)] {
			fmt.Fprintf(&b, "    %8d calls %7d plans %8.0f ms plan %8.0f ms exec  %.70s\n", s.Calls, s.Plans, s.PlanMs, s.ExecMs, oneLine(s.Query))
		}
	}
	if r.VsOneReplica > 0 {
		fmt.Fprintf(&b, "  vs one replica: %.2fx the taps/s\n", r.VsOneReplica)
	}
	fmt.Fprintf(&b, "  load average:   %s\n", r.LoadAverage)
	if r.Priority != "" {
		fmt.Fprintf(&b, "  priority:       %s\n", r.Priority)
	}
	return b.String()
}

// run holds what every scenario measures around its phase.
type run struct {
	env    *Env
	settle time.Duration // before reading memory
	report Report
	cpu0   CPU
	pg0    PGCounts
	start  time.Time
}

func newRun(env *Env, scenario string, cfg ScenarioConfig) *run {
	settle := cfg.RSSSettle
	if settle <= 0 {
		settle = DefaultRSSSettle
	}
	return &run{env: env, settle: settle, report: Report{Scenario: scenario, TerminalKind: KindDescription(cfg.Kind),
		Terminals: cfg.Terminals, Replicas: env.Replicas()}}
}

// begin reads the CPU and starts the clock of the measured phase.
func (r *run) begin() error {
	cpu, err := r.env.CPU()
	if err != nil {
		return err
	}
	pg, err := r.env.Counts(context.Background())
	if err != nil {
		return err
	}
	if r.env.opts.Statements {
		if err := r.env.resetStatements(context.Background()); err != nil {
			return err
		}
	}
	r.cpu0, r.pg0, r.start = cpu, pg, time.Now()
	// Logged with its time, to cut a system-wide profile to the phase.
	r.env.log.Info("loadgen_phase_began", logReplicas, r.env.Replicas())
	return nil
}

// end stops the clock and fills in the CPU and the taps' figures.
func (r *run) end(terms []Member) error {
	r.report.Seconds = time.Since(r.start).Seconds()
	r.env.log.Info("loadgen_phase_ended", logReplicas, r.env.Replicas())
	cpu, err := r.env.CPU()
	if err != nil {
		return err
	}
	pg, err := r.env.Counts(context.Background())
	if err != nil {
		return err
	}
	r.report.PGWriteXacts, r.report.PGSessions = pg.WriteXacts-r.pg0.WriteXacts, pg.Sessions-r.pg0.Sessions
	r.report.PGWALMiB = float64(pg.WALBytes-r.pg0.WALBytes) / (1 << 20)
	r.report.PGWALFPI, r.report.PGWALBuffersFull = pg.WALFPI-r.pg0.WALFPI, pg.WALBuffersFull-r.pg0.WALBuffersFull
	r.report.PGWALWrites = pg.WALWrites - r.pg0.WALWrites
	if r.env.opts.Statements {
		st, err := r.env.statements(context.Background())
		if err != nil {
			return err
		}
		r.report.PGStatements = &st
	}
	d := cpu.Sub(r.cpu0)
	r.report.ServerCPUs, r.report.PostgresCPUs, r.report.LoadCPUs = d.Server.Seconds(), d.Postgres.Seconds(), d.Self.Seconds()
	r.report.OtherCPUs, r.report.IdleCPUs = d.Others().Seconds(), d.Idle.Seconds()
	r.report.ServerWaits, r.report.PostgresWaits, r.report.LoadWaits = d.ServerWait.Seconds(), d.PostgresWait.Seconds(), d.SelfWait.Seconds()
	lat, made := AckLatencies(terms)
	r.report.TapsMade, r.report.TapsAcked = made, len(lat)
	if r.report.Seconds > 0 {
		r.report.TapsPerSec = float64(len(lat)) / r.report.Seconds
	}
	r.report.AckP50ms, r.report.AckP99ms, r.report.AckMaxms = Percentile(lat, 0.50), Percentile(lat, 0.99), Percentile(lat, 1)
	var last int64
	for _, t := range terms {
		a := t.tracker()
		last = max(last, a.welcomed.Load())
		r.report.SessionFailures += a.failures.Load()
		if msg := a.lastFailure.Load(); msg != nil {
			if r.report.FailureCauses == nil {
				r.report.FailureCauses = make(map[string]int)
			}
			r.report.FailureCauses[*msg]++
		}
	}
	if last > r.start.UnixNano() {
		r.report.AllWelcomedSeconds = time.Unix(0, last).Sub(r.start).Seconds()
	}
	r.report.LoadAverage = LoadAverage()
	return nil
}

// memory reads the server's settled memory with the terminals connected.
func (r *run) memory(ctx context.Context, before int64) error {
	after, err := SettledRSS(ctx, r.env, r.settle)
	if err != nil {
		return err
	}
	r.report.RSSBeforeKiB, r.report.RSSAfterKiB = before>>10, after>>10
	r.report.KiBPerConn = float64(after-before) / 1024 / float64(r.report.Terminals)
	return nil
}

// SettledRSS waits settle, then reads the server's VmRSS rssReadings
// times settle/2 apart and returns the last reading.
func SettledRSS(ctx context.Context, env *Env, settle time.Duration) (int64, error) {
	var rss int64
	for i := range rssReadings {
		wait := settle / 2
		if i == 0 {
			wait = settle
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(wait):
		}
		var err error
		if rss, err = env.ServerRSS(); err != nil {
			return 0, err
		}
	}
	return rss, nil
}

// Storm runs the reconnection storm: cfg.Terminals terminals each buffer
// cfg.Taps taps while offline, then all connect at once; the phase ends
// when every tap is acknowledged and compacted. Ack latency is counted from
// the reconnection.
func Storm(ctx context.Context, env *Env, cfg ScenarioConfig) (Report, error) {
	r := newRun(env, ScenarioStorm, cfg)
	if err := warmUp(ctx, env, cfg); err != nil {
		return r.report, err
	}
	r.report.Warmup = max(cfg.Warmup, 0)
	terms, err := env.AddMembers(ctx, cfg.Terminals, cfg.Kind)
	if err != nil {
		return r.report, err
	}
	defer CloseAll(terms)
	if err := FillAll(ctx, terms, cfg.Taps); err != nil {
		return r.report, err
	}
	before, err := env.ServerRSS()
	if err != nil {
		return r.report, err
	}
	if err := r.begin(); err != nil {
		return r.report, err
	}
	for _, t := range terms {
		t.tracker().RestartLatency(r.start)
	}
	r.report.AckFrom = "reconnect"
	return r.report, r.startAndMeasure(ctx, terms, cfg.Timeout, StartAll[Member], WaitDrained[Member], before)
}

// warmupTaps is what each terminal of a warm-up storm uploads.
const warmupTaps = 100

// warmUp runs cfg.Warmup terminals per replica through a small storm and
// closes them.
func warmUp(ctx context.Context, env *Env, cfg ScenarioConfig) error {
	if cfg.Warmup <= 0 {
		return nil
	}
	terms, err := env.AddMembers(ctx, cfg.Warmup*env.Replicas(), cfg.Kind)
	if err != nil {
		return err
	}
	defer CloseAll(terms)
	if err := FillAll(ctx, terms, warmupTaps); err != nil {
		return err
	}
	StartAll(terms)
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	return WaitDrained(wctx, terms)
}

// startAndMeasure starts every terminal with start, waits for them with
// wait (at most timeout), ends the measured phase and reads the server's
// memory against before.
func (r *run) startAndMeasure(ctx context.Context, terms []Member, timeout time.Duration,
	start func([]Member), wait func(context.Context, []Member) error, before int64) error {
	start(terms)
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	werr := wait(wctx, terms)
	if err := r.end(terms); err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	return r.memory(ctx, before)
}

// addFleet adds the scenario's terminals, not started, and reads the
// server's settled memory before they connect.
func (r *run) addFleet(ctx context.Context, cfg ScenarioConfig) ([]Member, int64, error) {
	terms, err := r.env.AddMembers(ctx, cfg.Terminals, cfg.Kind)
	if err != nil {
		return nil, 0, err
	}
	before, err := SettledRSS(ctx, r.env, r.settle)
	if err != nil {
		CloseAll(terms)
		return nil, 0, err
	}
	return terms, before, nil
}

// Idle connects cfg.Terminals terminals with empty outboxes and measures
// the server's memory per connection once they are all welcomed.
func Idle(ctx context.Context, env *Env, cfg ScenarioConfig) (Report, error) {
	r := newRun(env, ScenarioIdle, cfg)
	terms, before, err := r.addFleet(ctx, cfg)
	if err != nil {
		return r.report, err
	}
	defer CloseAll(terms)
	if err := r.begin(); err != nil {
		return r.report, err
	}
	start := StartAll[Member]
	if cfg.ConnectConcurrency > 0 {
		start = func(terms []Member) { startGradually(terms, cfg.ConnectConcurrency) }
	}
	if err := r.startAndMeasure(ctx, terms, cfg.Timeout, start, WaitConnected, before); err != nil {
		return r.report, err
	}
	if n := Connected(terms); n != len(terms) {
		return r.report, fmt.Errorf("loadgen: idle: %d of %d terminals lost their session during the measurement", len(terms)-n, len(terms))
	}
	return r.report, nil
}

// connectWait bounds how long startGradually waits for one terminal.
const connectWait = 2 * time.Minute

// startGradually starts the terminals n at a time: each waits for its
// Welcome (or for its first failure, or connectWait) before the next one
// starts.
func startGradually(terms []Member, n int) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, n)
	for _, t := range terms {
		slots <- struct{}{}
		t.Start()
		wg.Go(func() {
			defer func() { <-slots }()
			a, began := t.tracker(), time.Now()
			for a.welcomed.Load() == 0 && a.failures.Load() == 0 && time.Since(began) < connectWait {
				time.Sleep(time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// Connected returns how many of the terminals have a session.
func Connected(terms []Member) int {
	n := 0
	for _, t := range terms {
		if t.Connected() {
			n++
		}
	}
	return n
}

// WaitConnected polls until every terminal has been welcomed, or ctx ends.
func WaitConnected(ctx context.Context, terms []Member) error {
	tick := time.NewTicker(10 * DefaultPoll)
	defer tick.Stop()
	for {
		n := Connected(terms)
		if n == len(terms) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("loadgen: %d of %d terminals connected: %w", n, len(terms), ctx.Err())
		case <-tick.C:
		}
	}
}

// Peak runs the morning peak: every terminal is connected, then records
// cfg.Taps taps at times drawn from the simulated morning (see Morning),
// compressed into cfg.Window; a fraction of the terminals lose their
// network for a while and reconnect. The phase ends when every tap is
// acknowledged.
func Peak(ctx context.Context, env *Env, cfg ScenarioConfig) (Report, error) {
	if cfg.Window <= 0 {
		return Report{}, errors.New("loadgen: peak: the window must be positive")
	}
	r := newRun(env, ScenarioPeak, cfg)
	terms, watch, before, err := r.peakFleet(ctx, cfg)
	if err != nil {
		return r.report, err
	}
	defer CloseAll(terms)
	StartAll(terms)
	wctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := WaitConnected(wctx, terms); err != nil {
		return r.report, err
	}
	if watch != nil {
		watchCtx, stopWatch := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			watch.Run(watchCtx)
		}()
		defer func() { stopWatch(); <-done }()
		if err := watch.WaitOpen(wctx); err != nil {
			return r.report, err
		}
	}

	plans := planMorning(cfg)
	scale := float64(cfg.Window) / float64(morningLength)
	wall := func(d time.Duration) time.Duration { return time.Duration(float64(d) * scale) }
	if err := r.begin(); err != nil {
		return r.report, err
	}
	r.report.AckFrom = "durable"
	var online onlineTaps
	g, gctx := errgroup.WithContext(wctx)
	for i, t := range terms {
		p := plans[i]
		if p.outage {
			r.report.Outages++
			g.Go(func() error {
				if !sleepUntil(gctx, r.start.Add(wall(p.outageAt))) {
					return nil
				}
				t.Stop()
				t.tracker().setOffline(true)
				if sleepUntil(gctx, r.start.Add(wall(p.outageAt+cfg.OutageLength))) {
					t.tracker().setOffline(false)
					t.Start()
				}
				return nil
			})
		}
		g.Go(func() error {
			for k, at := range p.taps {
				if !sleepUntil(gctx, r.start.Add(wall(at))) {
					return gctx.Err()
				}
				offline := t.tracker().isOffline()
				stored, err := t.Append(gctx, t.Tap(k))
				if err != nil {
					return err
				}
				if !offline {
					online.add(t.tracker(), stored[0].Seq)
				}
			}
			return nil
		})
	}
	gerr := g.Wait()
	StartAll(terms) // an outage cut short by an error leaves its terminal stopped
	werr := WaitDrained(wctx, terms)
	if err := r.end(terms); err != nil {
		return r.report, err
	}
	if err := errors.Join(gerr, werr); err != nil {
		return r.report, err
	}
	olat := online.latencies()
	r.report.OnlineAckP50ms, r.report.OnlineAckP99ms = Percentile(olat, 0.50), Percentile(olat, 0.99)
	if watch != nil {
		grace := cfg.ScreenGrace
		if grace <= 0 {
			grace = DefaultScreenGrace
		}
		watch.Settle(ctx, grace)
		r.screen(watch.Result())
		if err := watch.Failure(); err != nil {
			return r.report, fmt.Errorf("loadgen: screen: %w", err)
		}
	}
	return r.report, r.memory(ctx, before)
}

// peakFleet adds the peak's terminals, not started, and reads the
// server's settled memory before they connect. With cfg.Sites it sets a
// customer up and returns a watch of cfg.ScreenSites of its sites' pages;
// otherwise the terminals stand at no site and the watch is nil.
func (r *run) peakFleet(ctx context.Context, cfg ScenarioConfig) ([]Member, *ScreenWatch, int64, error) {
	if cfg.Sites <= 0 {
		terms, before, err := r.addFleet(ctx, cfg)
		return terms, nil, before, err
	}
	cust, err := SetUpCustomer(ctx, r.env, CustomerConfig{Kind: cfg.Kind, Sites: cfg.Sites, Terminals: cfg.Terminals, Taps: cfg.Taps})
	if err != nil {
		return nil, nil, 0, err
	}
	r.report.Sites, r.report.SetupSeconds = cfg.Sites, cust.Seconds
	var watch *ScreenWatch
	if cfg.ScreenSites > 0 {
		watch = NewScreenWatch(cust, cfg.ScreenSites)
	}
	before, err := SettledRSS(ctx, r.env, r.settle)
	if err != nil {
		CloseAll(cust.Members)
		return nil, nil, 0, err
	}
	return cust.Members, watch, before, nil
}

// screen fills in the tap-to-screen figures.
func (r *run) screen(res ScreenResult) {
	r.report.ScreenSites, r.report.ScreenShown, r.report.ScreenMissed = res.Sites, res.Shown, res.Missed
	r.report.ScreenP50ms, r.report.ScreenP99ms = Percentile(res.Latencies, 0.50), Percentile(res.Latencies, 0.99)
	r.report.ScreenMaxms = Percentile(res.Latencies, 1)
	r.report.ScreenOnlineP50ms, r.report.ScreenOnlineP99ms = Percentile(res.Online, 0.50), Percentile(res.Online, 0.99)
	r.report.ScreenFetches, r.report.ScreenFetchErrors = res.Fetches, res.FetchErrors
}

// morningPlan is one terminal's morning: when it taps, and whether and when
// it loses its network, in simulated time since MorningStart.
type morningPlan struct {
	taps     []time.Duration
	outage   bool
	outageAt time.Duration
}

// planMorning draws every terminal's morning from cfg.Seed.
func planMorning(cfg ScenarioConfig) []morningPlan {
	rng := rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))
	plans := make([]morningPlan, cfg.Terminals)
	for i := range plans {
		p := &plans[i]
		for range cfg.Taps {
			at := MorningPeak - MorningStart + time.Duration(rng.NormFloat64()*float64(MorningSpread))
			p.taps = append(p.taps, min(max(at, 0), morningLength))
		}
		slices.Sort(p.taps)
		if rng.Float64() < cfg.OutageFraction {
			p.outage = true
			p.outageAt = time.Duration(rng.Int64N(int64(max(morningLength-cfg.OutageLength, 1))))
		}
	}
	return plans
}

// onlineTaps remembers which taps were recorded while their terminal had
// its network, to report their latency apart.
type onlineTaps struct {
	mu   sync.Mutex
	taps map[*ackTracker][]uint64
}

func (o *onlineTaps) add(t *ackTracker, seq uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.taps == nil {
		o.taps = make(map[*ackTracker][]uint64)
	}
	o.taps[t] = append(o.taps[t], seq)
}

func (o *onlineTaps) latencies() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var lat []time.Duration
	for t, seqs := range o.taps {
		lat = append(lat, t.latenciesOf(seqs)...)
	}
	return lat
}

// sleepUntil waits until at and reports whether ctx was still live then.
func sleepUntil(ctx context.Context, at time.Time) bool {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// Percentile returns the p-th quantile (0 < p <= 1) of lat in milliseconds,
// by the nearest-rank method; 0 for no samples. It sorts lat.
func Percentile(lat []time.Duration, p float64) float64 {
	if len(lat) == 0 {
		return 0
	}
	slices.Sort(lat)
	i := int(math.Ceil(float64(len(lat))*p)) - 1
	return float64(lat[min(max(i, 0), len(lat)-1)]) / float64(time.Millisecond)
}

// LoadAverage returns the machine's 1, 5 and 15 minute load averages, or
// "unknown": the machine may be shared, and a figure is only as quiet as
// it was.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// oneLine folds a statement's white space into single spaces.
func oneLine(q string) string { return strings.Join(strings.Fields(q), " ") }
