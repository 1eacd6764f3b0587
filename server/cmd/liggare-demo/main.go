// Command liggare-demo runs the whole system on one machine: a private
// PostgreSQL cluster (unless DATABASE_URL is set), liggare-server, and a few
// liggare-terminal agents on simulated readers with a crew of workers each.
// It expects the other binaries beside itself (make build puts them in bin/).
// Stop it with Ctrl-C; everything it started stops with it.
package main

import (
	"context"
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
	flag.Parse()

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
		fmt.Println("Starting a private PostgreSQL in", filepath.Join(dir, "pg"))
		cluster, err := pglocal.Start(context.Background(), pglocal.Options{
			Dir: filepath.Join(dir, "pg"), Port: cfg.pgPort, Durable: true, Logger: logger,
		})
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

	env := append(os.Environ(), "DATABASE_URL="+dbURL)
	server := exec.Command(filepath.Join(bin, "liggare-server"), "serve", "--listen", cfg.listen)
	server.Env = env
	if err := startLogged(server, dir, "server"); err != nil {
		return err
	}
	defer terminate(server)
	if err := waitListening(ctx, cfg.listen); err != nil {
		return fmt.Errorf("server did not start (see %s): %w", filepath.Join(dir, "logs", "server.log"), err)
	}

	keys, err := demoKeys(dir)
	if err != nil {
		return err
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
	for _, id := range ids {
		credFile := filepath.Join(dir, id+".credential")
		if err := os.WriteFile(credFile, creds[id], 0o600); err != nil {
			return err
		}
		// Every kiosk is at the same gate: one crew taps at all of them.
		term := exec.Command(filepath.Join(bin, "liggare-terminal"),
			"--server", "ws://"+cfg.listen+"/v1/sync",
			"--credential-file", credFile,
			"--outbox", filepath.Join(dir, id+".outbox"),
			"--reader", fmt.Sprintf("sim:workers=%d,interval=%s,prefix=AB", cfg.workers, cfg.interval),
			"--status-interval", "2s")
		if err := startLogged(term, dir, id); err != nil {
			return err
		}
		defer terminate(term)
	}

	fmt.Printf(`
Liggare demo is running: %d kiosks at the gate of site %s, a crew of %d workers.

  Status page:   http://%s/status   (refreshes every 2 s)
  Work periods:  psql '%s' -c "SELECT p.name, to_char(w.start_at, 'HH24:MI:SS') AS in, to_char(w.end_at, 'HH24:MI:SS') AS out FROM work_periods w JOIN persons p USING (person_id) WHERE w.recorded_to = 'infinity' ORDER BY w.start_at DESC LIMIT 15"
  Logs:          %s

Press Ctrl-C to stop.
`, cfg.terminals, demoSite, cfg.workers, cfg.listen, dbURL, filepath.Join(dir, "logs"))

	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var taps int64
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\nStopping.")
			if cfg.duration > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				if taps == 0 {
					return errors.New("no taps reached the database")
				}
				fmt.Printf("demo ok: %d taps stored\n", taps)
			}
			return nil
		case <-tick.C:
			var periods, onSite int64
			if err := pool.QueryRow(ctx, `
				SELECT (SELECT count(*) FROM taps),
				       (SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity'),
				       (SELECT count(*) FROM work_periods WHERE recorded_to = 'infinity' AND end_at IS NULL
				          AND start_at > now() - interval '16 hours' AND NOT missing_checkout)`).Scan(&taps, &periods, &onSite); err == nil {
				fmt.Printf("%s  taps stored: %d   work periods: %d   on site now: %d\n", time.Now().Format("15:04:05"), taps, periods, onSite)
			}
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
