package db

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// DefaultConnectTimeout bounds the opening of one connection when the URL
// sets no connect_timeout.
const DefaultConnectTimeout = 10 * time.Second

// Connect opens a connection pool on url and checks that the server answers.
// The URL (postgres://... or key=value form) may tune the pool with pgxpool's
// parameters: pool_max_conns (default: the larger of 4 and the number of
// CPUs), pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time,
// pool_health_check_period. The application_name defaults to liggare.
//
// minMaxConns, when given, raises the pool's default size to at least that
// many connections (a pool_max_conns in the URL still wins): the server needs
// one per ingest worker and a few for sessions and pages.
func Connect(ctx context.Context, url string, logger *slog.Logger, minMaxConns ...int32) (*pgxpool.Pool, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's message quotes the URL, redacting a password only on a
		// best-effort basis: keep the cause without the URL.
		if inner := errors.Unwrap(err); inner != nil {
			return nil, fmt.Errorf("db: connect: cannot parse database URL: %w", inner)
		}
		return nil, errors.New("db: connect: cannot parse database URL")
	}
	if len(minMaxConns) > 0 && !strings.Contains(url, "pool_max_conns") && cfg.MaxConns < minMaxConns[0] {
		cfg.MaxConns = minMaxConns[0]
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "liggare"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("db: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("db: connect to %s on %s: %w", cfg.ConnConfig.Database, cfg.ConnConfig.Host, err)
	}
	logger.Info("connected to postgresql", logKeyDatabase, cfg.ConnConfig.Database, logKeyHost, cfg.ConnConfig.Host, logKeyMaxConns, cfg.MaxConns)
	return pool, nil
}
