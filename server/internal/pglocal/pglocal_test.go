package pglocal_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/pglocal"
)

// start starts a non-durable cluster in a fresh directory and removes it when
// the test ends.
func start(t testing.TB, opts pglocal.Options) *pglocal.Cluster {
	t.Helper()
	c, err := pglocal.Start(t.Context(), opts)
	if err != nil {
		t.Fatalf("Start(%+v) = %v", opts, err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background()); err != nil {
			t.Errorf("Stop() = %v", err)
		}
		if err := os.RemoveAll(c.Dir()); err != nil {
			t.Errorf("RemoveAll(%s) = %v", c.Dir(), err)
		}
	})
	return c
}

func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("pgx.Connect(%q) = %v", url, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestKillRestart(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	began := time.Now()
	c := start(t, pglocal.Options{})
	t.Logf("cluster started in %v", time.Since(began))

	conn := connect(t, c.URL("postgres"))
	if _, err := conn.Exec(ctx, `CREATE TABLE taps (id int PRIMARY KEY); INSERT INTO taps VALUES (1)`); err != nil {
		t.Fatalf("create table: %v", err)
	}

	if err := c.Kill(ctx); err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	if err := conn.Ping(ctx); err == nil {
		t.Fatalf("Ping() after Kill = nil, want an error")
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatalf("second Kill() = %v, want nil", err)
	}

	began = time.Now()
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart() = %v", err)
	}
	t.Logf("cluster restarted after kill in %v", time.Since(began))
	conn = connect(t, c.URL("postgres"))
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM taps`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("count after restart = %d, %v, want 1, nil", n, err)
	}

	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("second Stop() = %v, want nil", err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart() after Stop = %v", err)
	}
	// Restart of a running cluster stops it first.
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart() while running = %v", err)
	}
	conn = connect(t, c.URL("postgres"))
	if err := conn.Ping(ctx); err != nil {
		t.Fatalf("Ping() after restarts = %v", err)
	}
}

func TestReuseAndAdopt(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir, err := os.MkdirTemp("", "pg-")
	if err != nil {
		t.Fatal(err)
	}
	top := dir
	t.Cleanup(func() { os.RemoveAll(top) })
	if err := os.Chmod(top, 0o755); err != nil { // MkdirTemp makes it 0700
		t.Fatal(err)
	}
	dir = filepath.Join(top, "demo", "pg") // missing parents are made too
	c := start(t, pglocal.Options{Dir: dir, Port: 6543, Durable: true})
	if _, err := connect(t, c.URL("postgres")).Exec(ctx, `CREATE DATABASE kept`); err != nil {
		t.Fatalf("create database: %v", err)
	}

	// A second Start on a running cluster adopts it.
	c2, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Port: 6543, Durable: true})
	if err != nil {
		t.Fatalf("Start() on a running cluster = %v", err)
	}
	// ... unless the port differs.
	if _, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Port: 6544}); err == nil {
		t.Fatalf("Start() on a running cluster with another port = nil, want an error")
	}

	if err := c2.Stop(ctx); err != nil {
		t.Fatalf("Stop() = %v", err)
	}
	// A later Start reuses the cluster without initdb.
	c3, err := pglocal.Start(ctx, pglocal.Options{Dir: dir, Port: 6543, Durable: true})
	if err != nil {
		t.Fatalf("Start() on a stopped cluster = %v", err)
	}
	defer c3.Stop(ctx)
	var fsync string
	if err := connect(t, c3.URL("kept")).QueryRow(ctx, `SHOW fsync`).Scan(&fsync); err != nil || fsync != "on" {
		t.Fatalf("SHOW fsync in reused durable cluster = %q, %v, want on, nil", fsync, err)
	}
}

func TestSettings(t *testing.T) {
	t.Parallel()
	c := start(t, pglocal.Options{ExtraConf: map[string]string{"application_name": "it's pglocal"}})
	conn := connect(t, c.URL("postgres"))
	for _, tc := range []struct{ name, want string }{
		{"fsync", "off"},
		{"synchronous_commit", "on"}, // or Kill would lose acknowledged commits
		{"full_page_writes", "off"},
		{"listen_addresses", ""},
		{"max_connections", "300"},
		{"max_locks_per_transaction", "128"},
		{"server_encoding", "UTF8"},
		{"lc_collate", "C"},
		{"application_name", "it's pglocal"},
	} {
		var got string
		if err := conn.QueryRow(t.Context(), `SELECT current_setting($1)`, tc.name).Scan(&got); err != nil || got != tc.want {
			t.Errorf("current_setting(%q) = %q, %v, want %q, nil", tc.name, got, err, tc.want)
		}
	}
}

func TestURL(t *testing.T) {
	t.Parallel()
	c := start(t, pglocal.Options{Port: 7777})
	cfg, err := pgx.ParseConfig(c.URL("some db"))
	if err != nil {
		t.Fatalf("ParseConfig(%q) = %v", c.URL("some db"), err)
	}
	if cfg.Host != c.Dir() || cfg.Port != 7777 || cfg.Database != "some db" || cfg.User != "postgres" || cfg.TLSConfig != nil {
		t.Errorf("ParseConfig(%q) = host %q port %d db %q user %q tls %v, want %q 7777 %q postgres nil",
			c.URL("some db"), cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.TLSConfig, c.Dir(), "some db")
	}
	if _, err := os.Stat(filepath.Join(c.Dir(), ".s.PGSQL.7777")); err != nil {
		t.Errorf("socket: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	t.Parallel()
	ctx := t.Context()

	dir, err := os.MkdirTemp("", "pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_, err = pglocal.Start(ctx, pglocal.Options{Dir: dir, ExtraConf: map[string]string{"shared_buffers": "lots"}})
	if err == nil || !strings.Contains(err.Error(), `invalid value for parameter "shared_buffers"`) {
		t.Errorf("Start() with a bad setting = %v, want an error quoting the server log", err)
	}

	if _, err := pglocal.Start(ctx, pglocal.Options{ExtraConf: map[string]string{"x = 1\nfsync": "off"}}); err == nil {
		t.Errorf("Start() with a bad setting name = nil, want an error")
	}

	long := filepath.Join(os.TempDir(), strings.Repeat("x", 100))
	if _, err := pglocal.Start(ctx, pglocal.Options{Dir: long}); err == nil || !strings.Contains(err.Error(), "socket path") {
		t.Errorf("Start() with a long directory = %v, want a socket path error", err)
	}
	os.RemoveAll(long)

	if _, err := pglocal.Start(ctx, pglocal.Options{BinDir: "/nonexistent"}); err == nil {
		t.Errorf("Start() with a missing BinDir = nil, want an error")
	}
	if os.Geteuid() == 0 {
		private := t.TempDir() // 0700 root: the postgres user cannot enter
		_, err := pglocal.Start(ctx, pglocal.Options{Dir: filepath.Join(private, "pg")})
		if !errors.Is(err, pglocal.ErrDirNotEnterable) || !strings.Contains(err.Error(), "cannot enter") {
			t.Errorf("Start() under a private directory = %v, want a cannot-enter error", err)
		}
	}
}

func TestFindBinDir(t *testing.T) {
	dir, err := pglocal.FindBinDir()
	if errors.Is(err, pglocal.ErrNoPostgres) {
		t.Fatalf("FindBinDir() = %v: install PostgreSQL server binaries", err)
	}
	if err != nil {
		t.Fatalf("FindBinDir() = %v", err)
	}
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("FindBinDir() = %s without %s: %v", dir, name, err)
		}
	}
}
