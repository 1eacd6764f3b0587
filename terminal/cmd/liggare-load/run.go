package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/liggare/liggare/terminal/internal/loadgen"
)

// Defaults of each scenario, for --terminals and --taps left at zero.
var scenarioDefaults = map[string]struct{ terminals, taps int }{
	// Peak: 20 taps per terminal, a crew of about 20 checking in at each
	// gate (with some checking out, and the odd double tap).
	loadgen.ScenarioPeak: {terminals: 2000, taps: 20},
	// Storm: the target of issue 6, 10 000 terminals with 100 taps each.
	loadgen.ScenarioStorm: {terminals: 10_000, taps: 100},
	// Idle: the target of issue 6, 10 000 connected terminals.
	loadgen.ScenarioIdle: {terminals: 10_000},
	// Replicas: 1000 terminals with 200 taps each, 200 000 taps.
	loadgen.ScenarioReplicas: {terminals: 1000, taps: 200},
}

// Open files a simulated terminal holds in this process: an outbox
// terminal its bbolt file and its websocket, a sim terminal its websocket.
// The server inherits the limit and needs one per terminal. fdSpare covers
// the rest (PostgreSQL connections, logs, binaries).
const (
	fdsPerOutbox = 2
	fdsPerSim    = 1
	fdSpare      = 1000
)

// Tap-to-screen defaults of the peak: sites followed, and terminals per
// site when --sites is left at zero (a gate or two at a site, a few
// hundred sites for a few thousand terminals).
const (
	defaultScreenSites = 10
	terminalsPerSite   = 8
)

// defaultNice is --nice: a nice 10 thread weighs about a tenth of one at
// nice 0, so the generator runs as soon as it is runnable.
const defaultNice = 10

// kindAuto picks KindOutbox when the open-file limit allows it.
const kindAuto = "auto"

// Config is what the flags set.
type Config struct {
	Scenario     string
	Kind         string
	Terminals    int
	Taps         int
	Replicas     int
	Runs         int
	Window       time.Duration
	OutageFrac   float64
	OutageLength time.Duration
	Seed         uint64
	Timeout      time.Duration
	RSSSettle    time.Duration
	ConnectConc  int
	Warmup       int
	Sites        int
	ScreenSites  int
	ScreenGrace  time.Duration
	Workers      int
	Durable      bool
	PoolMaxConns int
	// Nice is how many nice levels PostgreSQL and the servers run below
	// the load generator (--nice; see loadgen.FavourSelf).
	Nice         int
	ServerBinary string
	// ServerFlags are further flags for every replica's
	// "liggare-server serve", as given (--server-flag, repeated).
	ServerFlags []string
	// PGConf are further postgresql.conf settings (--pg-set, repeated).
	PGConf map[string]string
	// Statements reports what pg_stat_statements counted in each run.
	Statements bool
	Dir        string
	JSON       bool
	Verbose    bool
}

func defineFlags(fs *flag.FlagSet) *Config {
	c := &Config{}
	fs.StringVar(&c.Scenario, "scenario", loadgen.ScenarioPeak, "peak, storm, idle or replicas")
	fs.StringVar(&c.Kind, "kind", kindAuto, "simulated terminals: outbox (real bbolt outbox + real uplink, 2 open files each), "+
		"sim (real protocol, taps in memory, 1 open file each), or auto (outbox when the open-file limit allows it)")
	fs.IntVar(&c.Terminals, "terminals", 0, "simulated terminals (default: peak 2000, storm 10000, idle 10000, replicas 1000)")
	fs.IntVar(&c.Taps, "taps", 0, "taps per terminal: recorded during the peak, or buffered before the storm and replicas runs (default: peak 20, storm 100, replicas 200)")
	fs.IntVar(&c.Replicas, "replicas", 0, "server replicas on the one PostgreSQL; for --scenario replicas, the count compared with one (default: 3 for replicas, 1 otherwise)")
	fs.IntVar(&c.Runs, "runs", 1, "repeat the scenario this many times, each on a fresh database and server")
	fs.DurationVar(&c.Window, "window", 60*time.Second, "peak: wall time the simulated morning 06:00-09:00 is compressed into")
	fs.Float64Var(&c.OutageFrac, "outage-fraction", 0.1, "peak: fraction of the terminals that lose their network once")
	fs.DurationVar(&c.OutageLength, "outage-length", 20*time.Minute, "peak: length of an outage in simulated time (compressed like the morning)")
	fs.Uint64Var(&c.Seed, "seed", 1, "peak: seed of the tap times and outages")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Minute, "give up when the taps are not all acknowledged (or the terminals not all connected) within this")
	fs.DurationVar(&c.RSSSettle, "rss-settle", loadgen.DefaultRSSSettle, "wait this long before reading the server's memory, then read it three times, half as long apart")
	fs.IntVar(&c.ConnectConc, "connect-concurrency", 0, "idle: connect the terminals this many at a time, each waiting for its Welcome (0: all at once)")
	fs.IntVar(&c.Warmup, "warmup", 0, "storm and replicas: first run a small storm of this many terminals per replica (100 taps each), so that the servers' database pools are warm (0: none)")
	fs.IntVar(&c.Sites, "sites", 0, "peak: sites the terminals are enrolled at, set up as an org admin would over the web UI (0: one per "+
		strconv.Itoa(terminalsPerSite)+" terminals); only with --screen-sites")
	fs.IntVar(&c.ScreenSites, "screen-sites", defaultScreenSites, "peak: live site pages followed by one signed-in session for tap-to-screen latency "+
		"(0: no customer set-up; terminals registered at no site with \"terminal add\")")
	fs.DurationVar(&c.ScreenGrace, "screen-grace", loadgen.DefaultScreenGrace, "peak: after the last acknowledgement, wait this long for taps the pages have not shown; the rest are misses")
	fs.IntVar(&c.Workers, "ingest-workers", 0, "the server's --ingest-workers, per replica (0: the server's default)")
	fs.BoolVar(&c.Durable, "durable", true, "run PostgreSQL with fsync on (off: the idle scenario's memory figure does not need it)")
	fs.IntVar(&c.PoolMaxConns, "pool-max-conns", 16, "the server's pool_max_conns, per replica (0: the server's default)")
	fs.IntVar(&c.Nice, "nice", defaultNice, "measurement hygiene: run PostgreSQL and the servers this many nice levels below the load generator, "+
		"alike in every run, so that the simulated terminals (kiosks with CPUs of their own) are not starved by what they measure; "+
		"where the kernel shares the CPU by session (autogroup) the children get sessions of their own and the generator's session "+
		"is raised, which needs CAP_SYS_NICE (0: everything at one priority, as before)")
	fs.StringVar(&c.ServerBinary, "server-bin", "", "liggare-server executable (default: build it from the module of the current directory)")
	fs.Func("server-flag", "a further flag for every replica's \"liggare-server serve\", such as --server-flag=--admission-workers=4 (repeat for more)",
		func(v string) error {
			if !strings.HasPrefix(v, "-") {
				return fmt.Errorf("%q is not a flag (write --server-flag=--name=value)", v)
			}
			c.ServerFlags = append(c.ServerFlags, v)
			return nil
		})
	fs.Func("pg-set", "a further postgresql.conf setting of the private cluster, NAME=VALUE (repeat for more)",
		func(v string) error {
			name, value, ok := strings.Cut(v, "=")
			if !ok || name == "" {
				return fmt.Errorf("%q is not NAME=VALUE", v)
			}
			if c.PGConf == nil {
				c.PGConf = map[string]string{}
			}
			c.PGConf[name] = value
			return nil
		})
	fs.BoolVar(&c.Statements, "pg-statements", false, "load pg_stat_statements into the cluster and report the statements of each measured phase: calls, plans, planning and execution time")
	fs.StringVar(&c.Dir, "dir", "", "directory for the database, outboxes and logs (default: a new one under /tmp, removed afterwards); keep it short")
	fs.BoolVar(&c.JSON, "json", false, "print one JSON report per line instead of text")
	fs.BoolVar(&c.Verbose, "v", false, "log the harness's events to standard error")
	return c
}

// Run runs cfg.Runs runs of the scenario, each on a fresh environment, and
// prints a report of each to stdout.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	def, ok := scenarioDefaults[cfg.Scenario]
	if !ok {
		return fmt.Errorf("unknown scenario %q (want peak, storm, idle or replicas)", cfg.Scenario)
	}
	if cfg.Terminals == 0 {
		cfg.Terminals = def.terminals
	}
	if cfg.Taps == 0 {
		cfg.Taps = def.taps
	}
	if cfg.Replicas == 0 {
		cfg.Replicas = 1
		if cfg.Scenario == loadgen.ScenarioReplicas {
			cfg.Replicas = 3
		}
	}
	switch {
	case cfg.Terminals < 1:
		return errors.New("--terminals must be positive")
	case cfg.Taps < 1 && cfg.Scenario != loadgen.ScenarioIdle:
		return errors.New("--taps must be positive")
	case cfg.OutageFrac < 0 || cfg.OutageFrac > 1:
		return errors.New("--outage-fraction must be between 0 and 1")
	case cfg.Runs < 1:
		return errors.New("--runs must be positive")
	case cfg.Sites < 0 || cfg.ScreenSites < 0:
		return errors.New("--sites and --screen-sites must not be negative")
	case cfg.Nice < 0 || cfg.Nice > 19:
		return errors.New("--nice must be between 0 and 19")
	}
	if cfg.Scenario != loadgen.ScenarioPeak || cfg.ScreenSites == 0 {
		cfg.Sites, cfg.ScreenSites = 0, 0
	} else if cfg.Sites == 0 {
		cfg.Sites = max(1, cfg.Terminals/terminalsPerSite)
	}
	if cfg.Sites > cfg.Terminals {
		return fmt.Errorf("--sites %d: more sites than terminals (%d)", cfg.Sites, cfg.Terminals)
	}
	kind, err := chooseKind(cfg.Kind, cfg.Terminals)
	if err != nil {
		return err
	}
	cfg.Kind = kind
	level := slog.LevelWarn + 1 // the uplinks' disconnections are expected
	if cfg.Verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	// Build the server once, not once per run.
	if cfg.ServerBinary == "" {
		bin, cleanup, err := buildServer(ctx)
		if err != nil {
			return err
		}
		defer cleanup()
		cfg.ServerBinary = bin
	}
	priority, undo, err := loadgen.FavourSelf(cfg.Nice)
	if err != nil {
		return err
	}
	defer undo()
	for range cfg.Runs {
		reports, err := runOnce(ctx, cfg, logger)
		for _, r := range reports {
			r.Priority = priority
			if perr := print(stdout, cfg, r); perr != nil {
				return perr
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// runOnce runs the scenario once; the replicas scenario runs the storm's
// workload on one replica, then on cfg.Replicas.
func runOnce(ctx context.Context, cfg Config, logger *slog.Logger) ([]loadgen.Report, error) {
	sc := loadgen.ScenarioConfig{Kind: cfg.Kind, Terminals: cfg.Terminals, Taps: cfg.Taps, Window: cfg.Window,
		OutageFraction: cfg.OutageFrac, OutageLength: cfg.OutageLength, Seed: cfg.Seed, Timeout: cfg.Timeout,
		RSSSettle: cfg.RSSSettle, ConnectConcurrency: cfg.ConnectConc, Warmup: cfg.Warmup,
		Sites: cfg.Sites, ScreenSites: cfg.ScreenSites, ScreenGrace: cfg.ScreenGrace}
	if cfg.Scenario != loadgen.ScenarioReplicas {
		r, err := withEnv(ctx, cfg, cfg.Replicas, logger, func(env *loadgen.Env) (loadgen.Report, error) {
			switch cfg.Scenario {
			case loadgen.ScenarioPeak:
				return loadgen.Peak(ctx, env, sc)
			case loadgen.ScenarioStorm:
				return loadgen.Storm(ctx, env, sc)
			default:
				return loadgen.Idle(ctx, env, sc)
			}
		})
		return []loadgen.Report{r}, err
	}
	var reports []loadgen.Report
	for _, n := range []int{1, cfg.Replicas} {
		r, err := withEnv(ctx, cfg, n, logger, func(env *loadgen.Env) (loadgen.Report, error) {
			return loadgen.Storm(ctx, env, sc)
		})
		r.Scenario = loadgen.ScenarioReplicas
		if len(reports) > 0 && reports[0].TapsPerSec > 0 {
			r.VsOneReplica = r.TapsPerSec / reports[0].TapsPerSec
		}
		reports = append(reports, r)
		if err != nil {
			return reports, err
		}
	}
	return reports, nil
}

// withEnv starts a fresh environment with replicas servers, runs f in it
// and closes it.
func withEnv(ctx context.Context, cfg Config, replicas int, logger *slog.Logger,
	f func(*loadgen.Env) (loadgen.Report, error)) (loadgen.Report, error) {
	env, err := loadgen.StartEnv(ctx, loadgen.Options{Dir: cfg.Dir, ServerBinary: cfg.ServerBinary,
		NoFsync: !cfg.Durable, PoolMaxConns: cfg.PoolMaxConns, Nice: cfg.Nice, IngestWorkers: cfg.Workers, Replicas: replicas, Logger: logger,
		ServerArgs: cfg.ServerFlags, PGConf: cfg.PGConf, Statements: cfg.Statements})
	if err != nil {
		return loadgen.Report{}, err
	}
	r, err := f(env)
	if cerr := env.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return r, err
}

func print(w io.Writer, cfg Config, r loadgen.Report) error {
	if cfg.JSON {
		return json.NewEncoder(w).Encode(r)
	}
	_, err := fmt.Fprintln(w, r)
	return err
}

// buildServer builds liggare-server into a temporary directory.
func buildServer(ctx context.Context) (string, func(), error) {
	dir, err := os.MkdirTemp("", "liggare-load-bin-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	bin, err := loadgen.BuildServer(ctx, dir)
	if err != nil {
		cleanup()
		return "", nil, err
	}
	return bin, cleanup, nil
}

// chooseKind resolves --kind and raises the open-file limit for n
// terminals of that kind.
func chooseKind(kind string, n int) (string, error) {
	need := map[string]uint64{loadgen.KindOutbox: fdsPerOutbox, loadgen.KindSim: fdsPerSim}
	if kind == kindAuto {
		kind = loadgen.KindOutbox
		if raiseFDLimit(need[kind]*uint64(n)+fdSpare) != nil {
			kind = loadgen.KindSim
		}
	}
	per, ok := need[kind]
	if !ok {
		return "", fmt.Errorf("unknown --kind %q (want outbox, sim or auto)", kind)
	}
	return kind, raiseFDLimit(per*uint64(n) + fdSpare)
}

// raiseFDLimit raises the open-file limit to at least want; the server and
// PostgreSQL inherit it. As root the hard limit is raised too.
func raiseFDLimit(want uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur >= want {
		return nil
	}
	if lim.Max < want {
		// Only a privileged process may raise the hard limit; try.
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}); err == nil {
			return nil
		}
	}
	lim.Cur = min(want, lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("setrlimit: %w", err)
	}
	if lim.Cur < want {
		return fmt.Errorf("open-file limit %d (the hard limit), need %d for these terminals", lim.Cur, want)
	}
	return nil
}
