// Command liggare-demo runs the whole system on one machine: a private
// PostgreSQL cluster (unless DATABASE_URL is set), liggare-server, and a few
// liggare-terminal agents, one crew of workers tapping at all of them.
//
// Each kiosk reads a simulated card reader over a pseudo-terminal, through
// the same driver a real reader would use: by default the first kiosk has
// an OSDP reader, the second a PN532, the third a line reader (and so on in
// turn), each simulated by "liggare-bridge simulate" behind a stable path
// in the demo folder (.demo/reader-N). --readers sim gives every kiosk the
// terminal's built-in simulator instead, for machines without
// pseudo-terminals.
//
// It expects the other binaries beside itself (make build puts them in
// bin/). Stop it with Ctrl-C; everything it started stops with it.
package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pglocal"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "liggare-demo:", err)
		os.Exit(1)
	}
}

type config struct {
	dir       string
	listen    string
	terminals int
	workers   int
	interval  time.Duration
	duration  time.Duration
	pgPort    int
	readers   string
}

func run() error {
	var cfg config
	flag.StringVar(&cfg.dir, "dir", ".demo", "folder for the demo's database, outboxes and logs")
	flag.StringVar(&cfg.listen, "listen", "127.0.0.1:8080", "server address")
	flag.IntVar(&cfg.terminals, "terminals", 3, "simulated terminals")
	flag.IntVar(&cfg.workers, "workers", 30, "simulated workers (one of them with an unregistered card)")
	flag.DurationVar(&cfg.interval, "interval", 4*time.Second, "mean time between a terminal's taps (a worker taps about every workers*interval/terminals)")
	flag.DurationVar(&cfg.duration, "duration", 0, "stop after this long and check taps arrived (0: run until Ctrl-C)")
	flag.IntVar(&cfg.pgPort, "pg-port", 54329, "port of the private PostgreSQL (unix socket only)")
	flag.StringVar(&cfg.readers, "readers", "mix", "the kiosks' card readers: mix (OSDP, PN532, line reader in turn), "+
		"a comma-separated list of osdp, pn532 and line (used in turn), or sim (the terminal's built-in simulator, no pseudo-terminals needed)")
	flag.Parse()
	kinds, err := readerKinds(cfg.readers)
	if err != nil {
		return err
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.duration)
		defer cancel()
	}
	dir, err := filepath.Abs(cfg.dir)
	if err != nil {
		return err
	}
	if kinds[0] != readerSim {
		if err := ptysWork(); err != nil {
			fmt.Printf("Pseudo-terminals do not work here (%v): every kiosk uses --reader sim.\n", err)
			kinds = []string{readerSim}
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	bin := filepath.Dir(exe)

	dbURL := os.Getenv("DATABASE_URL")
	if dbURL == "" {
		pgDir := filepath.Join(dir, "pg")
		fmt.Println("Starting a private PostgreSQL in", pgDir)
		start := func() (*pglocal.Cluster, error) {
			return pglocal.Start(context.Background(), pglocal.Options{
				Dir: pgDir, Port: cfg.pgPort, Durable: true, Logger: logger,
			})
		}
		cluster, err := start()
		if errors.Is(err, pglocal.ErrDirNotEnterable) {
			// Run as root from a checkout private to root (mktemp -d):
			// PostgreSQL runs as user postgres, so its data lives under
			// the system's temporary directory instead, one per checkout.
			pgDir = fallbackPGDir(dir)
			fmt.Println("  user postgres cannot enter this checkout; using", pgDir, "instead")
			cluster, err = start()
		}
		if err != nil {
			return err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cluster.Stop(sctx)
		}()
		dbURL = cluster.URL("postgres")
	}
	pool, err := db.Connect(ctx, dbURL, logger)
	if err != nil {
		return err
	}
	defer pool.Close()

	keys, keyConf, err := demoKeys(dir)
	if err != nil {
		return err
	}
	env := append(os.Environ(), "DATABASE_URL="+dbURL)
	serverEnv := append(env[:len(env):len(env)], "LIGGARE_PII_KEYS="+keyConf[0], "LIGGARE_PII_INDEX_KEY="+keyConf[1])
	server := exec.Command(filepath.Join(bin, "liggare-server"), "serve", "--listen", cfg.listen)
	server.Env = serverEnv
	if err := startLogged(server, dir, "server"); err != nil {
		return err
	}
	defer terminate(server)
	if err := waitListening(ctx, cfg.listen); err != nil {
		return fmt.Errorf("server did not start (see %s): %w", filepath.Join(dir, "logs", "server.log"), err)
	}

	var ids []string
	creds := make(map[string][]byte)
	for i := 1; i <= cfg.terminals; i++ {
		id := fmt.Sprintf("demo-%d", i)
		add := exec.Command(filepath.Join(bin, "liggare-server"), "terminal", "add", id)
		add.Env = env
		add.Stderr = io.Discard
		cred, err := add.Output()
		if err != nil {
			return fmt.Errorf("create terminal %s: %w", id, err)
		}
		ids, creds[id] = append(ids, id), cred
	}
	if err := seed(ctx, pool, keys, ids, cfg.workers); err != nil {
		return fmt.Errorf("seed the demo registry: %w", err)
	}
	adminPassword, err := seedAdmin(ctx, pool, keys, dir)
	if err != nil {
		return fmt.Errorf("create the demo admin: %w", err)
	}
	started := time.Now()
	var kiosks []kiosk
	for i, id := range ids {
		// Each kiosk has a folder of its own, as each real kiosk has its
		// own disk: its outbox, card cache and journal sit side by side.
		kioskDir := filepath.Join(dir, id)
		if err := os.MkdirAll(kioskDir, 0o755); err != nil {
			return err
		}
		credFile := filepath.Join(kioskDir, "credential")
		if err := os.WriteFile(credFile, creds[id], 0o600); err != nil {
			return err
		}
		k := newKiosk(id, kinds[i%len(kinds)], filepath.Join(dir, fmt.Sprintf("reader-%d", i+1)), cfg)
		if k.kind != readerSim {
			// The reader first: the terminal opens its stable path.
			sim := exec.Command(filepath.Join(bin, "liggare-bridge"), k.simulateArgs(cfg)...)
			if err := startLogged(sim, dir, fmt.Sprintf("reader-%d", i+1)); err != nil {
				return err
			}
			defer terminate(sim)
			if err := waitPath(ctx, k.link); err != nil {
				return fmt.Errorf("simulated reader %s did not start (see %s): %w", k.link,
					filepath.Join(dir, "logs", fmt.Sprintf("reader-%d.log", i+1)), err)
			}
		}
		// Every kiosk is at the same gate: one crew taps at all of them.
		term := exec.Command(filepath.Join(bin, "liggare-terminal"),
			"--server", "ws://"+cfg.listen+"/v1/sync",
			"--credential-file", credFile,
			"--outbox", filepath.Join(kioskDir, "outbox.db"),
			"--reader", k.spec,
			"--status-interval", "2s")
		if err := startLogged(term, dir, id); err != nil {
			return err
		}
		defer terminate(term)
		kiosks = append(kiosks, k)
	}

	fmt.Printf(`
Liggare demo is running: %d kiosks at the gate of site %s, a crew of %d workers.

%s
  Web UI:        http://%s/   sign in as %s with the one-time password %s
                 (you then choose a password and set up a TOTP app: two-step login is required)
  Status page:   http://%s/status   (refreshes every 2 s)
  Work periods:  psql '%s' -c "SELECT p.name, to_char(w.start_at, 'HH24:MI:SS') AS in, to_char(w.end_at, 'HH24:MI:SS') AS out FROM work_periods w JOIN persons p USING (person_id) WHERE w.recorded_to = 'infinity' ORDER BY w.start_at DESC LIMIT 15"
  Logs:          %s

Press Ctrl-C to stop.
`, cfg.terminals, demoSite, cfg.workers, describeKiosks(kiosks, cfg.dir), cfg.listen, demoAdmin, adminPassword, cfg.listen, dbURL, filepath.Join(dir, "logs"))

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var taps, periods int64
	perKiosk := map[string]int64{}
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nStopping.")
			if cfg.duration > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return checkRun(kiosks, perKiosk, taps, periods, dir)
			}
			return nil
		case <-tick.C:
			var onSite int64
			if err := pool.QueryRow(ctx, `
				SELECT (SELECT count(*) FROM taps),
				       (SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity'),
				       (SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity' AND end_at IS NULL
				          AND start_at > now() - interval '16 hours' AND NOT missing_checkout)`).Scan(&taps, &periods, &onSite); err != nil {
				continue
			}
			if counts, err := tapsSince(ctx, pool, started); err == nil {
				perKiosk = counts
			}
			fmt.Printf("%s  taps stored: %d (this run: %s)   work periods: %d   on site now: %d\n",
				time.Now().Format("15:04:05"), taps, kioskCounts(kiosks, perKiosk), periods, onSite)
		}
	}
}

// startLogged starts cmd with its output in dir/logs/name.log.
func startLogged(cmd *exec.Cmd, dir, name string) error {
	f, err := os.OpenFile(filepath.Join(dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	return nil
}

// terminate stops a child gracefully, then by force.
func terminate(cmd *exec.Cmd) {
	if cmd.Process == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func waitListening(ctx context.Context, addr string) error {
	for i := 0; ; i++ {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if i > 100 {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fallbackPGDir is the cluster directory for a demo directory that user
// postgres cannot reach: under the system's temporary directory, named by
// the demo directory so that the next run finds the same data.
func fallbackPGDir(demoDir string) string {
	abs, err := filepath.Abs(demoDir)
	if err != nil {
		abs = demoDir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join(os.TempDir(), "liggare-demo-pg-"+hex.EncodeToString(sum[:4]))
}
