// Package daemon runs liggare-server: it connects to PostgreSQL, applies
// migrations, and serves the sync endpoint, enrollment and the status pages
// (and metrics, on a listener of their own) until its context ends, then
// shuts down without losing a batch in flight. Check tests a configuration
// and its database without serving.
package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/internal/sdnotify"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/downlink"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/live"
	"github.com/liggare/liggare/server/internal/metrics"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/retention"
	"github.com/liggare/liggare/server/internal/syncserver"
	"github.com/liggare/liggare/server/internal/web"
)

// Config is liggare-server's configuration.
type Config struct {
	// Listen is the address of the sync endpoint, enrollment and the pages.
	Listen      string
	DatabaseURL string
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration
	Sync            syncserver.Config
	Committer       ingest.CommitterOptions
	// Rules are the ledger's derivation rules; zero means ledger.DefaultRules.
	Rules ledger.Rules
	// PIIKeys and PIIIndexKey are the keys protecting identity numbers
	// (pii.LoadKeys). The web UI needs them; without them the server syncs
	// terminals and keeps the ledger, but serves no web pages.
	PIIKeys, PIIIndexKey string
	// NoRetention turns off the daily retention job (for a replica that
	// should not run it; the job also takes a lock, so several may).
	NoRetention bool
	// TLSCert and TLSKey, when set, are PEM files: the main listener then
	// speaks TLS only (wss://, https://). A renewed pair is picked up
	// without a restart.
	TLSCert, TLSKey string
	// MetricsListen, when set, is the address of a plain-HTTP listener for
	// /metrics, /livez and /readyz; keep it off the public network.
	MetricsListen string
	// Pprof, when set, serves Go's profiles (net/http/pprof) under
	// /debug/pprof/ on the metrics listener, to find where CPU and memory
	// go under load. They reveal no personal data, but keep the listener
	// on loopback all the same.
	Pprof bool
	// SyncURL, when set, is the sync endpoint (ws:// or wss://) that
	// terminals reach this server at, as the web UI shows it in the enroll
	// command of a new enrollment code. Empty means the host the browser
	// reached, which is wrong behind a proxy that terminals pass another way.
	SyncURL string
	// Notifier, when set, tells systemd when the server is ready and
	// stopping, and pings its watchdog.
	Notifier *sdnotify.Notifier
	// Ready, when set, is called with the listening address once the
	// server accepts connections.
	Ready func(net.Addr)
	// MetricsReady, when set, is called with the metrics listener's
	// address once it accepts connections.
	MetricsReady func(net.Addr)
}

// defaultShutdownTimeout bounds the graceful shutdown; the systemd unit's
// TimeoutStopSec leaves room above it.
const defaultShutdownTimeout = 20 * time.Second

// Run serves until ctx ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	var certs *certReloader
	if err := checkSyncURL(cfg.SyncURL); err != nil {
		return err
	}
	if cfg.TLSCert != "" || cfg.TLSKey != "" {
		if cfg.TLSCert == "" || cfg.TLSKey == "" {
			return errors.New("daemon: tls: set both the certificate and the key file")
		}
		var err error
		if certs, err = newCertReloader(cfg.TLSCert, cfg.TLSKey, logger); err != nil {
			return err
		}
	}
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
	var site *web.Server
	var m *metrics.Metrics // set below, before anything runs
	if cfg.PIIKeys != "" || cfg.PIIIndexKey != "" {
		keys, err := pii.LoadKeys(cfg.PIIKeys, cfg.PIIIndexKey)
		if err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
		live := live.Options{OnClients: func(n int) { m.LiveClients.Set(float64(n)) }}
		if site, err = web.New(web.Config{Pool: pool, Keys: keys, Logger: logger, Rules: cfg.Rules, Live: live, SyncURL: cfg.SyncURL}); err != nil {
			return fmt.Errorf("daemon: %w", err)
		}
	} else {
		logger.Warn("web_ui_off", "reason", "no PII keys configured (LIGGARE_PII_KEYS, LIGGARE_PII_INDEX_KEY)")
	}
	recOpts := ledger.ReconcilerOptions{Rules: cfg.Rules, Logger: logger}
	if site != nil {
		recOpts.OnChange = site.LedgerChanged
	}
	reconciler := ledger.NewReconciler(pool, recOpts)
	var sync *syncserver.Server
	skew := cfg.Sync.TrustedSkew
	if skew <= 0 {
		skew = ingest.DefaultTrustedSkew
	}
	m = metrics.New(metrics.Options{
		ClockThreshold: skew,
		Connections:    func() int { return sync.Connections() },
		Backlog:        reconciler.Backlog,
		Logger:         logger,
	})
	cfg.Committer.Logger = logger
	// One replica reconciles at a time (see Leader); a single server
	// leads at once. A commit on another replica nudges the leader.
	leader := &Leader{Pool: pool, Logger: logger, OnWake: reconciler.Wake}
	cfg.Committer.OnCommit = func() {
		reconciler.Wake()
		leader.Nudge()
	}
	cfg.Committer.OnApplied = m.GroupCommitted
	committer := ingest.NewCommitter(store, cfg.Committer)
	cards := downlink.NewFeed(pool, logger)
	if err := cards.Refresh(ctx); err != nil {
		return err
	}
	terminals := auth.NewTerminals(pool)
	// Credentials are checked from memory, and a revocation announced by
	// any replica cuts this replica's sessions of that credential at once.
	creds := auth.NewCredentialCache(terminals, auth.CacheOptions{
		Logger:   logger,
		Reload:   cfg.Sync.CredentialRecheck,
		OnRevoke: func(ids []int64) { sync.Revoked(ids) },
	})
	cfg.Sync.Cards = cards
	cfg.Sync.Terminals = terminals
	cfg.Sync.Credentials = creds
	cfg.Sync.Store = store
	cfg.Sync.Committer = committer
	cfg.Sync.Logger = logger
	cfg.Sync.Observer = m.SyncObserver()
	sync = syncserver.New(cfg.Sync)
	enrollment := enroll.NewHandler(enroll.NewStore(pool, terminals), logger)
	enrollment.OnResult = m.EnrollResult

	h := &probes{pool: pool}
	mux := http.NewServeMux()
	mux.Handle(syncserver.Path, sync)
	enrollment.Register(mux)
	mux.Handle("GET /status", &statusPage{pool: pool, sync: sync})
	h.register(mux)
	if site != nil {
		mux.Handle("/", site.Handler())
	}

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("daemon: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           logRequests(mux, logger, m.HTTPRequest),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if certs != nil {
		srv.TLSConfig = certs.tlsConfig()
		// A non-nil, empty map keeps HTTP/2 off (see tlsConfig).
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	var msrv *http.Server
	var mln net.Listener
	if cfg.Pprof && cfg.MetricsListen == "" {
		ln.Close()
		return errors.New("daemon: pprof needs a metrics listener (--metrics-listen)")
	}
	if cfg.MetricsListen != "" {
		if mln, err = net.Listen("tcp", cfg.MetricsListen); err != nil {
			ln.Close()
			return fmt.Errorf("daemon: metrics listen: %w", err)
		}
		mmux := http.NewServeMux()
		mmux.Handle("GET /metrics", m.Handler())
		if cfg.Pprof {
			registerPprof(mmux)
		}
		h.register(mmux)
		msrv = &http.Server{
			Handler:           mmux,
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		}
	}

	commitCtx, stopCommitter := context.WithCancel(context.Background())
	defer stopCommitter()
	committerDone := make(chan error, 1)
	go func() { committerDone <- committer.Run(commitCtx) }()
	reconcilerDone := make(chan error, 1)
	go func() { leader.Run(commitCtx, reconciler.Run); reconcilerDone <- nil }()
	go cards.Run(commitCtx)
	go creds.Run(commitCtx)
	if site != nil {
		// Open event streams would hold the HTTP shutdown for its whole
		// timeout: end them as soon as it starts.
		webCtx, stopWeb := context.WithCancel(context.Background())
		defer stopWeb()
		srv.RegisterOnShutdown(stopWeb)
		go site.Run(webCtx)
	}
	if !cfg.NoRetention {
		job := &retention.Job{Pool: pool, Logger: logger}
		go job.Run(commitCtx)
	}
	serveDone := make(chan error, 2)
	go func() {
		if certs != nil {
			serveDone <- srv.ServeTLS(ln, "", "")
			return
		}
		serveDone <- srv.Serve(ln)
	}()
	logger.Info("server_listening", "addr", ln.Addr().String(), "tls", certs != nil)
	if msrv != nil {
		go func() {
			if err := msrv.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				serveDone <- fmt.Errorf("metrics: %w", err)
			}
		}()
		logger.Info("metrics_listening", "addr", mln.Addr().String())
		if cfg.MetricsReady != nil {
			cfg.MetricsReady(mln.Addr())
		}
	}
	if cfg.Ready != nil {
		cfg.Ready(ln.Addr())
	}
	if err := cfg.Notifier.Notify(sdnotify.Ready, sdnotify.Status("serving on "+ln.Addr().String())); err != nil {
		logger.Warn("sd_notify_failed", "err", err)
	}
	watchdogCtx, stopWatchdog := context.WithCancel(context.Background())
	defer stopWatchdog()
	go cfg.Notifier.RunWatchdog(watchdogCtx, nil)

	select {
	case <-ctx.Done():
	case err := <-serveDone:
		return fmt.Errorf("daemon: serve: %w", err)
	}

	// Shut down in order: stop accepting, let connections finish the batches
	// in flight and send their Acks, then stop the committer. /readyz says
	// no from now on, so a load balancer stops sending.
	h.draining.Store(true)
	cfg.Notifier.Notify(sdnotify.Stopping, sdnotify.Status("draining connections"))
	timeout := cfg.ShutdownTimeout
	if timeout <= 0 {
		timeout = defaultShutdownTimeout
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
	if msrv != nil {
		msrv.Close()
	}
	logger.Info("server_stopped")
	return err
}

// probes answers /livez (the process serves) and /readyz (it can do its
// work: the database answers and it is not shutting down).
type probes struct {
	pool     *pgxpool.Pool
	draining atomic.Bool
}

func (p *probes) register(mux *http.ServeMux) {
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if p.draining.Load() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.pool.Ping(ctx); err != nil {
			http.Error(w, "database unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
}

// checkSyncURL accepts an empty URL or an absolute ws:// or wss:// URL with
// a host.
func checkSyncURL(s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("daemon: sync URL %q: want ws://HOST/PATH or wss://HOST/PATH", s)
	}
	return nil
}
