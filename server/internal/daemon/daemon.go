// Package daemon runs liggare-server: it connects to PostgreSQL, applies
// migrations, and serves the sync endpoint and the status pages until its
// context ends, then shuts down without losing a batch in flight.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/downlink"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/retention"
	"github.com/liggare/liggare/server/internal/syncserver"
)

// Config is liggare-server's configuration.
type Config struct {
	// Listen is the address of the sync endpoint and the status page.
	Listen      string
	DatabaseURL string
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	Sync            syncserver.Config
	Committer       ingest.CommitterOptions
	// Rules are the ledger's derivation rules; zero means ledger.DefaultRules.
	Rules ledger.Rules
	// NoRetention turns off the daily retention job (for a replica that
	// should not run it; the job also takes a lock, so several may).
	NoRetention bool
	// Ready, when set, is called with the listening address once the
	// server accepts connections.
	Ready func(net.Addr)
}

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	workers := cfg.Committer.Workers
	if workers <= 0 {
		workers = ingest.DefaultWorkers
	}
	pool, err := db.Connect(ctx, cfg.DatabaseURL, logger, int32(workers+8))
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := db.Migrate(ctx, pool, logger); err != nil {
		return err
	}

	store := ingest.NewStore(pool, logger)
	reconciler := ledger.NewReconciler(pool, ledger.ReconcilerOptions{Rules: cfg.Rules, Logger: logger})
	cfg.Committer.Logger = logger
	cfg.Committer.OnCommit = reconciler.Wake
	committer := ingest.NewCommitter(store, cfg.Committer)
	cards := downlink.NewFeed(pool, logger)
	if err := cards.Refresh(ctx); err != nil {
		return err
	}
	cfg.Sync.Cards = cards
	cfg.Sync.Terminals = auth.NewTerminals(pool)
	cfg.Sync.Store = store
	cfg.Sync.Committer = committer
	cfg.Sync.Logger = logger
	sync := syncserver.New(cfg.Sync)

	mux := http.NewServeMux()
	mux.Handle(syncserver.Path, sync)
	mux.Handle("GET /status", &statusPage{pool: pool, sync: sync})
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := pool.Ping(r.Context()); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}

	commitCtx, stopCommitter := context.WithCancel(context.Background())
	defer stopCommitter()
	committerDone := make(chan error, 1)
	go func() { committerDone <- committer.Run(commitCtx) }()
	reconcilerDone := make(chan error, 1)
	go func() { reconcilerDone <- reconciler.Run(commitCtx) }()
	go cards.Run(commitCtx)
	if !cfg.NoRetention {
		job := &retention.Job{Pool: pool, Logger: logger}
		go job.Run(commitCtx)
	}
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()
	logger.Info("server_listening", "addr", ln.Addr().String())
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}

	select {
	case <-ctx.Done():
	case err := <-serveDone:
		return fmt.Errorf("daemon: serve: %w", err)
	}

	// Shut down in order: stop accepting, let connections finish the batches
	// in flight and send their Acks, then stop the committer.
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	logger.Info("server_stopping", "connections", sync.Connections())
	err = srv.Shutdown(sctx)
	if serr := sync.Shutdown(sctx); serr != nil {
		err = errors.Join(err, serr)
	}
	stopCommitter()
	if cerr := <-committerDone; cerr != nil && !errors.Is(cerr, context.Canceled) {
		err = errors.Join(err, cerr)
	}
	<-reconcilerDone
	logger.Info("server_stopped")
	return err
}
