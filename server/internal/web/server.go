package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"time"
	_ "time/tzdata" // Europe/Stockholm on machines without zoneinfo

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/live"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
)

// Defaults for Config.
const (
	DefaultHeartbeat        = 15 * time.Second
	DefaultOnlineWithin     = 2 * time.Minute
	DefaultOfflineAlert     = 10 * time.Minute
	DefaultCleanupEvery     = 5 * time.Minute
	DefaultSessionRetention = 30 * 24 * time.Hour
	DefaultAttentionDays    = 14
)

// WorkingHours is when a terminal that stops reporting raises an alert:
// weekdays from From to To o'clock, local time.
type WorkingHours struct {
	From, To int
}

// Config configures a Server. Pool and Keys are required; zero fields take
// defaults.
type Config struct {
	Pool *pgxpool.Pool
	// Keys seal TOTP secrets (account) and identity numbers (registry
	// import).
	Keys *pii.Keys
	// Accounts configures the account store (timeouts, limits, clock).
	Accounts account.Options
	// Rules are the ledger's rules, as given to the reconciler.
	Rules ledger.Rules
	// Live configures the hub of live updates. Its OnClients is the gauge
	// of browsers following a live page.
	Live live.Options
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For is believed; without them the client address is the
	// connection's.
	TrustedProxies []netip.Prefix
	Logger         *slog.Logger
	// Now is the clock [time.Now]; it should be the one in Accounts.Now.
	Now func() time.Time
	// Location is the time zone pages show [Europe/Stockholm].
	Location *time.Location
	// Heartbeat is the interval of comments on live event streams, which
	// also re-checks the session [DefaultHeartbeat].
	Heartbeat time.Duration
	// OnlineWithin: a terminal heard from this recently is online
	// [DefaultOnlineWithin]. OfflineAlert: one silent for longer during
	// WorkingHours raises an alert [DefaultOfflineAlert].
	OnlineWithin, OfflineAlert time.Duration
	// WorkingHours [06-18].
	WorkingHours WorkingHours
	// AttentionDays is how far back forgotten check-outs are listed
	// [DefaultAttentionDays].
	AttentionDays int
	// SyncURL is the terminals' sync endpoint (ws:// or wss://) as the
	// enroll command shown with a new enrollment code names it; empty
	// means the host the browser reached, with ws or wss as it did.
	SyncURL string
	// CleanupEvery is how often Run calls account.Store.Cleanup
	// [DefaultCleanupEvery]; SessionRetention is passed to it
	// [DefaultSessionRetention].
	CleanupEvery, SessionRetention time.Duration
}

// Server is the web UI.
type Server struct {
	cfg      Config
	log      *slog.Logger
	accounts *account.Store
	ledger   *ledger.Store
	registry *registry.Store
	enroll   *enroll.Store
	hub      *live.Hub
	pages    *pages
	handler  http.Handler
	// table is every route, for the access table test.
	table []route
	// stopping is closed when Run ends, so that event streams end and a
	// graceful shutdown does not wait for them.
	stopping chan struct{}
}

// New builds a Server from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Pool == nil {
		return nil, errors.New("web: no database pool")
	}
	if cfg.Keys == nil {
		return nil, errors.New("web: no pii keys")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
		if cfg.Accounts.Now != nil {
			cfg.Now = cfg.Accounts.Now
		}
	}
	if cfg.Accounts.Now == nil {
		cfg.Accounts.Now = cfg.Now
	}
	if cfg.Accounts.Logger == nil {
		cfg.Accounts.Logger = cfg.Logger
	}
	if cfg.Location == nil {
		loc, err := time.LoadLocation("Europe/Stockholm")
		if err != nil {
			return nil, fmt.Errorf("web: time zone: %w", err)
		}
		cfg.Location = loc
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.Heartbeat, DefaultHeartbeat)
	def(&cfg.OnlineWithin, DefaultOnlineWithin)
	def(&cfg.OfflineAlert, DefaultOfflineAlert)
	def(&cfg.CleanupEvery, DefaultCleanupEvery)
	def(&cfg.SessionRetention, DefaultSessionRetention)
	if cfg.WorkingHours == (WorkingHours{}) {
		cfg.WorkingHours = WorkingHours{From: 6, To: 18}
	}
	if cfg.AttentionDays <= 0 {
		cfg.AttentionDays = DefaultAttentionDays
	}
	if cfg.Live.Logger == nil {
		cfg.Live.Logger = cfg.Logger
	}
	pg, err := loadPages()
	if err != nil {
		return nil, err
	}
	s := &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		accounts: account.NewStore(cfg.Pool, cfg.Keys, cfg.Accounts),
		ledger:   ledger.NewStore(cfg.Pool, cfg.Rules),
		registry: registry.NewStore(cfg.Pool, cfg.Keys),
		enroll:   enroll.NewStore(cfg.Pool, auth.NewTerminals(cfg.Pool)),
		hub:      live.New(cfg.Pool, cfg.Live),
		pages:    pg,
		stopping: make(chan struct{}),
	}
	s.enroll.Now = cfg.Now
	s.table = s.routes()
	mux := http.NewServeMux()
	for _, rt := range s.table {
		mux.Handle(rt.pattern, s.wrap(rt))
	}
	mux.Handle("/", s.wrap(route{pattern: "/", access: public, h: s.notFound}))
	s.handler = s.logRequests(mux)
	return s, nil
}

// Handler returns the HTTP handler of every page. Mount it at "/".
func (s *Server) Handler() http.Handler { return s.handler }

// LedgerChanged reports the sites whose ledger changed, for live pages on
// every replica. It fits ledger.ReconcilerOptions.OnChange and never
// blocks.
func (s *Server) LedgerChanged(sites []int64) { s.hub.Publish(sites) }

// Hub returns the live hub (for tests and benchmarks that follow a site
// directly).
func (s *Server) Hub() *live.Hub { return s.hub }

// Accounts returns the account store the pages use (for the admin CLI and
// tests).
func (s *Server) Accounts() *account.Store { return s.accounts }

// Run does the server's background work until ctx ends: the live hub's
// publisher and listener, and periodic account cleanup. When it returns,
// open event streams end.
func (s *Server) Run(ctx context.Context) error {
	defer close(s.stopping)
	hubDone := make(chan error, 1)
	go func() { hubDone <- s.hub.Run(ctx) }()
	tick := time.NewTicker(s.cfg.CleanupEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			<-hubDone
			return nil
		case <-tick.C:
			if err := s.accounts.Cleanup(ctx, s.cfg.SessionRetention); err != nil && ctx.Err() == nil {
				s.log.Warn("account_cleanup_failed", logErr, err)
			}
		}
	}
}
