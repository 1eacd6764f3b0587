package pgtest_test

import (
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestNewIsolated(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			pool := pgtest.New(t)
			ctx := t.Context()
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n == 0 {
				t.Fatalf("count(schema_migrations) = %d, %v, want > 0, nil", n, err)
			}
			// Each database is private: the same table can be created in all.
			if _, err := pool.Exec(ctx, `CREATE TABLE mine (id int)`); err != nil {
				t.Fatalf("CREATE TABLE mine: %v", err)
			}
		})
	}
}

func TestNewURL(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("pgx.Connect(%q) = %v", url, err)
	}
	defer conn.Close(t.Context())
	var name string
	if err := conn.QueryRow(t.Context(), `SELECT current_database()`).Scan(&name); err != nil {
		t.Fatal(err)
	}
	if cfg, _ := pgx.ParseConfig(url); cfg == nil || cfg.Database != name {
		t.Errorf("current_database() = %q, want the database named in %q", name, url)
	}
}

func TestNewEmpty(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewEmpty(t)
	var exists bool
	if err := pool.QueryRow(t.Context(), `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("schema_migrations exists = %v, %v, want false, nil", exists, err)
	}
}

// TestKillRestart is not parallel: killing the cluster would break the
// tests running beside it. Top-level tests without t.Parallel run before
// the parallel ones resume.
func TestKillRestart(t *testing.T) {
	c := pgtest.Cluster()
	if c == nil {
		t.Skip("PGTEST_URL is set: a shared server cannot be killed")
	}
	ctx := t.Context()
	pool := pgtest.New(t)
	if _, err := pool.Exec(ctx, `CREATE TABLE kept (id int); INSERT INTO kept VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	if err := c.Kill(ctx); err != nil {
		t.Fatalf("Kill() = %v", err)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatalf("Restart() = %v", err)
	}
	// The pool's old connections are dead; pgxpool drops them as they fail.
	var n int
	var err error
	for range 10 {
		if err = pool.QueryRow(ctx, `SELECT count(*) FROM kept`).Scan(&n); err == nil {
			break
		}
	}
	if err != nil || n != 1 {
		t.Fatalf("count(kept) after Kill and Restart = %d, %v, want 1, nil", n, err)
	}
	// New databases still work, and the cleanup drops this one.
	pgtest.New(t)
}

// BenchmarkNew measures a database clone, its pool and its drop.
func BenchmarkNew(b *testing.B) {
	for b.Loop() {
		b.Run("clone", func(b *testing.B) { pgtest.New(b) })
	}
}
