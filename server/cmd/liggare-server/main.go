// Command liggare-server is the Liggare server: it receives taps from the
// site terminals and keeps the staff ledger in PostgreSQL.
//
//	liggare-server [serve]            run the server (the default)
//	liggare-server migrate            apply database migrations and exit
//	liggare-server terminal add ID... register terminals, print a credential each
//	liggare-server terminal revoke ID revoke every credential of a terminal
//	liggare-server devdb --dir DIR    run a private PostgreSQL for development,
//	                                  printing its URL, until interrupted
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/daemon"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pglocal"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "liggare-server:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	if cmd == "devdb" {
		return devDB(args, newLogger(env("LIGGARE_LOG_FORMAT", "text")))
	}
	fs := flag.NewFlagSet("liggare-server "+cmd, flag.ContinueOnError)
	var cfg daemon.Config
	fs.StringVar(&cfg.Listen, "listen", env("LIGGARE_LISTEN", "127.0.0.1:8080"), "address for terminals and web pages (env LIGGARE_LISTEN)")
	fs.StringVar(&cfg.DatabaseURL, "database-url", os.Getenv("DATABASE_URL"), "PostgreSQL URL (env DATABASE_URL)")
	logFormat := fs.String("log-format", env("LIGGARE_LOG_FORMAT", "text"), "log format: text or json (env LIGGARE_LOG_FORMAT)")
	fs.DurationVar(&cfg.Sync.PingInterval, "ping-interval", 0, "websocket ping interval (default 30s)")
	fs.DurationVar(&cfg.Sync.PongWait, "pong-wait", 0, "drop a terminal silent this long (default 75s)")
	fs.IntVar(&cfg.Committer.Workers, "ingest-workers", 0, "concurrent ingest transactions (default 4)")
	fs.BoolVar(&cfg.NoRetention, "no-retention", false, "do not run the daily retention job in this process")
	fs.DurationVar(&cfg.Sync.TrustedSkew, "trusted-skew", 0, "a terminal clock further than this from the server's is not trusted; its taps are timed by the monotonic clock or the receive time, and say so (default 30s)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := newLogger(*logFormat)
	if cfg.DatabaseURL == "" {
		return errors.New("no database: set DATABASE_URL or --database-url")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch cmd {
	case "serve":
		return daemon.Run(ctx, cfg, logger)
	case "migrate":
		pool, err := db.Connect(ctx, cfg.DatabaseURL, logger)
		if err != nil {
			return err
		}
		defer pool.Close()
		return db.Migrate(ctx, pool, logger)
	case "terminal":
		rest := fs.Args()
		if len(rest) < 2 || (rest[0] != "add" && rest[0] != "revoke") || (rest[0] == "revoke" && len(rest) != 2) {
			return errors.New("usage: liggare-server terminal add TERMINAL-ID... | terminal revoke TERMINAL-ID")
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		pool, err := db.Connect(ctx, cfg.DatabaseURL, logger)
		if err != nil {
			return err
		}
		defer pool.Close()
		if err := db.Migrate(ctx, pool, logger); err != nil {
			return err
		}
		terminals := auth.NewTerminals(pool)
		if rest[0] == "add" {
			for _, id := range rest[1:] {
				cred, err := terminals.Create(ctx, id)
				if err != nil {
					return err
				}
				fmt.Println(cred)
			}
			return nil
		}
		n, err := terminals.Revoke(ctx, rest[1])
		if err != nil {
			return err
		}
		fmt.Printf("revoked %d credential(s) of %s\n", n, rest[1])
		return nil
	}
	return fmt.Errorf("unknown command %q (want serve, migrate, terminal or devdb)", cmd)
}

func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func newLogger(format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil))
}

// devDB runs a private PostgreSQL cluster until interrupted: the first line
// on standard output is its URL. For development, demos and benchmarks.
func devDB(args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("liggare-server devdb", flag.ContinueOnError)
	dir := fs.String("dir", ".demo/pg", "cluster folder (created when missing, reused otherwise)")
	port := fs.Int("port", 54329, "port (unix socket only; no TCP listener)")
	durable := fs.Bool("durable", true, "keep fsync on; off is faster and loses data on a crash")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cluster, err := pglocal.Start(ctx, pglocal.Options{Dir: *dir, Port: *port, Durable: *durable, Logger: logger})
	if err != nil {
		return err
	}
	fmt.Println(cluster.URL("postgres"))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return cluster.Stop(sctx)
}
