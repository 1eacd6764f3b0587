package db_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// files makes a migration file system from name, SQL pairs.
func files(nameSQL ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(nameSQL); i += 2 {
		fsys[nameSQL[i]] = &fstest.MapFile{Data: []byte(nameSQL[i+1])}
	}
	return fsys
}

// applied returns the versions in schema_migrations.
func applied(t *testing.T, pool *pgxpool.Pool) []int {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return versions
}

func TestMigrateEmbedded(t *testing.T) {
	t.Parallel()
	entries, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var want []int
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			want = append(want, len(want)+1)
		}
	}

	pool := pgtest.NewEmpty(t)
	for range 2 { // the second run finds nothing to do
		if err := db.Migrate(t.Context(), pool, nil); err != nil {
			t.Fatalf("Migrate() = %v", err)
		}
	}
	if diff := cmp.Diff(want, applied(t, pool)); diff != "" {
		t.Errorf("applied versions (-want +got):\n%s", diff)
	}
	// pgtest's template holds the same migrations.
	if diff := cmp.Diff(want, applied(t, pgtest.New(t))); diff != "" {
		t.Errorf("template's versions (-want +got):\n%s", diff)
	}
}

func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	// Each migration fails if it runs twice.
	fsys := files(
		"0001_runs.sql", "CREATE TABLE runs (version int PRIMARY KEY);\nINSERT INTO runs VALUES (1);",
		"0002_slow.sql", "SELECT pg_sleep(0.05);\nINSERT INTO runs VALUES (2);",
		"0003_column.sql", "ALTER TABLE runs ADD COLUMN note text;\nINSERT INTO runs VALUES (3);",
	)
	url := pgtest.NewEmpty(t).Config().ConnString()

	// Five replicas, each with its own pool, start at once.
	const replicas = 5
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			pool, err := db.Connect(t.Context(), url, nil)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			errs[i] = db.MigrateFS(t.Context(), pool, fsys, nil)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: MigrateFS() = %v", i, err)
		}
	}

	pool, err := db.Connect(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if diff := cmp.Diff([]int{1, 2, 3}, applied(t, pool)); diff != "" {
		t.Errorf("applied versions (-want +got):\n%s", diff)
	}
	rows, _ := pool.Query(t.Context(), `SELECT version FROM runs ORDER BY version`)
	runs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if diff := cmp.Diff([]int{1, 2, 3}, runs); err != nil || diff != "" {
		t.Errorf("runs (-want +got), %v:\n%s", err, diff)
	}

	// A later binary adds a migration.
	fsys["0004_more.sql"] = &fstest.MapFile{Data: []byte("INSERT INTO runs VALUES (4)")}
	if err := db.MigrateFS(t.Context(), pool, fsys, nil); err != nil {
		t.Fatalf("MigrateFS() with a new migration = %v", err)
	}
	if diff := cmp.Diff([]int{1, 2, 3, 4}, applied(t, pool)); diff != "" {
		t.Errorf("applied versions (-want +got):\n%s", diff)
	}
}

func TestMigrateRefusesNewerDatabase(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewEmpty(t)
	newer := files("0001_a.sql", "CREATE TABLE a (x int)", "0002_b.sql", "CREATE TABLE b (x int)")
	if err := db.MigrateFS(t.Context(), pool, newer, nil); err != nil {
		t.Fatalf("MigrateFS(newer) = %v", err)
	}
	older := files("0001_a.sql", "CREATE TABLE a (x int)")
	if err := db.MigrateFS(t.Context(), pool, older, nil); !errors.Is(err, db.ErrDatabaseNewer) {
		t.Errorf("MigrateFS(older) = %v, want ErrDatabaseNewer", err)
	}
	renamed := files("0001_other.sql", "CREATE TABLE a (x int)", "0002_b.sql", "CREATE TABLE b (x int)")
	if err := db.MigrateFS(t.Context(), pool, renamed, nil); !errors.Is(err, db.ErrBadMigrations) {
		t.Errorf("MigrateFS(renamed) = %v, want ErrBadMigrations", err)
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := pgtest.NewEmpty(t)
	bad := files(
		"0001_a.sql", "CREATE TABLE a (x int)",
		"0002_b.sql", "CREATE TABLE b (x int);\nINSERT INTO b VALUES (1);\nSELECT 1/0;",
	)
	err := db.MigrateFS(ctx, pool, bad, nil)
	var merr *db.MigrationError
	var pgErr *pgconn.PgError
	if !errors.As(err, &merr) || merr.Version != 2 || merr.Name != "0002_b.sql" || !errors.As(err, &pgErr) || pgErr.Code != "22012" {
		t.Fatalf("MigrateFS(bad) = %v, want a MigrationError for 0002_b.sql wrapping division_by_zero", err)
	}
	if diff := cmp.Diff([]int{1}, applied(t, pool)); diff != "" {
		t.Errorf("applied versions (-want +got):\n%s", diff)
	}
	var exists bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('b') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("table b exists = %v, %v, want false, nil", exists, err)
	}

	// The fixed migration applies.
	fixed := files("0001_a.sql", "CREATE TABLE a (x int)", "0002_b.sql", "CREATE TABLE b (x int);")
	if err := db.MigrateFS(ctx, pool, fixed, nil); err != nil {
		t.Fatalf("MigrateFS(fixed) = %v", err)
	}

	// A syntax error names its line.
	syntax := files("0001_a.sql", "CREATE TABLE a (x int)", "0002_b.sql", "CREATE TABLE b (x int);",
		"0003_c.sql", "-- comment\nCREATE TABLE c (x int);\nCREAT TABLE d (x int);\n")
	err = db.MigrateFS(ctx, pool, syntax, nil)
	if !errors.As(err, &merr) || merr.Version != 3 || merr.Line != 3 || !strings.Contains(err.Error(), "0003_c.sql line 3") {
		t.Errorf("MigrateFS(syntax error) = %v, want a MigrationError at 0003_c.sql line 3", err)
	}
}

func TestMigrateBadFiles(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewEmpty(t)
	for _, tc := range []struct {
		name string
		fsys fstest.MapFS
	}{
		{"gap", files("0001_a.sql", "SELECT 1", "0003_c.sql", "SELECT 1")},
		{"duplicate", files("0001_a.sql", "SELECT 1", "001_b.sql", "SELECT 1")},
		{"not from 1", files("0002_b.sql", "SELECT 1")},
		{"zero", files("0000_a.sql", "SELECT 1", "0001_b.sql", "SELECT 1")},
		{"bad name", files("0001_a.sql", "SELECT 1", "two.sql", "SELECT 1")},
		{"no name", files("0001.sql", "SELECT 1")},
		{"empty", files("0001_a.sql", " \n")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := db.MigrateFS(t.Context(), pool, tc.fsys, nil); !errors.Is(err, db.ErrBadMigrations) {
				t.Errorf("MigrateFS(%v) = %v, want ErrBadMigrations", tc.fsys, err)
			}
		})
	}
	var exists bool
	if err := pool.QueryRow(t.Context(), `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil || exists {
		t.Errorf("schema_migrations exists after refused runs = %v, %v, want false, nil", exists, err)
	}
	// Other files are ignored.
	ok := files("0001_a.sql", "SELECT 1", "README.md", "notes", "0002_b.sql", "SELECT 2")
	if err := db.MigrateFS(t.Context(), pool, ok, nil); err != nil {
		t.Errorf("MigrateFS(with README.md) = %v", err)
	}
}

func TestMigrateWaitsForLock(t *testing.T) {
	t.Parallel()
	pool := pgtest.NewEmpty(t)
	holder, err := pool.Acquire(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Release()
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_lock($1)`, db.LockKey); err != nil {
		t.Fatal(err)
	}

	// While another session holds the lock, Migrate waits until its
	// context ends, and leaves no lock behind.
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	fsys := files("0001_a.sql", "CREATE TABLE a (x int)")
	if err := db.MigrateFS(ctx, pool, fsys, nil); err == nil {
		t.Fatalf("MigrateFS() while the lock is held = nil, want a context error")
	}
	if _, err := holder.Exec(t.Context(), `SELECT pg_advisory_unlock($1)`, db.LockKey); err != nil {
		t.Fatal(err)
	}
	if err := db.MigrateFS(t.Context(), pool, fsys, nil); err != nil {
		t.Fatalf("MigrateFS() after release = %v", err)
	}
	var locks int
	if err := pool.QueryRow(t.Context(), `
		SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&locks); err != nil || locks != 0 {
		t.Errorf("advisory locks held after MigrateFS = %d, %v, want 0, nil", locks, err)
	}
}

func TestConnect(t *testing.T) {
	t.Parallel()
	_, err := db.Connect(t.Context(), "postgres://liggare:sekret@/x?port=notaport", nil)
	if err == nil || strings.Contains(err.Error(), "sekret") {
		t.Errorf("Connect(bad URL) = %v, want an error without the password", err)
	}
	_, err = db.Connect(t.Context(), "postgres://postgres@/x?host=/nonexistent&sslmode=disable", nil)
	if err == nil {
		t.Errorf("Connect(no server) = nil, want an error")
	}

	pool := pgtest.New(t)
	pool2, err := db.Connect(t.Context(), pool.Config().ConnString(), nil)
	if err != nil {
		t.Fatalf("Connect(%q) = %v", pool.Config().ConnString(), err)
	}
	defer pool2.Close()
	var app string
	if err := pool2.QueryRow(t.Context(), `SHOW application_name`).Scan(&app); err != nil || app != "liggare" {
		t.Errorf("application_name = %q, %v, want liggare, nil", app, err)
	}
}
