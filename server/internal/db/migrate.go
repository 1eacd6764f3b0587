package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// LockKey is the pg_advisory_lock key Migrate holds while it runs: the
// ASCII bytes "LiggareM" read as a big-endian int64. Anything else that must
// not run during a migration can take the same lock.
const LockKey int64 = 0x4c6967676172654d

// Log keys.
const (
	logKeyVersion  = "version"
	logKeyName     = "name"
	logKeyDuration = "duration"
	logKeyCount    = "count"
	logKeyDatabase = "database"
	logKeyHost     = "host"
	logKeyMaxConns = "max_conns"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// ErrDatabaseNewer means the database holds migrations this binary does not
// know: it was migrated by a newer binary, and running an older one against
// it is unsafe.
var ErrDatabaseNewer = errors.New("db: database schema is newer than this binary")

// ErrBadMigrations means the set of migration files is malformed: a name
// that is not NNNN_name.sql, a duplicate version, or a gap in the numbering.
var ErrBadMigrations = errors.New("db: bad migration files")

// MigrationError reports a migration that failed; its transaction was rolled
// back, so neither its changes nor its schema_migrations row remain.
type MigrationError struct {
	Version int
	Name    string
	// Line is the 1-based line in the file where PostgreSQL placed the
	// error, or 0 when it did not say.
	Line int
	Err  error
}

// Error implements error.
func (e *MigrationError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("db: migration %s line %d: %v", e.Name, e.Line, e.Err)
	}
	return fmt.Sprintf("db: migration %s: %v", e.Name, e.Err)
}

// Unwrap returns the underlying error, often a *pgconn.PgError.
func (e *MigrationError) Unwrap() error { return e.Err }

// migration is one parsed migration file.
type migration struct {
	version int
	name    string // file name, e.g. 0001_ingest.sql
	sql     string
}

var migrationName = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_-]+\.sql$`)

// Migrate applies the embedded migrations (see the package documentation).
func Migrate(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("db: migrations: %w", err)
	}
	return MigrateFS(ctx, pool, sub, logger)
}

// MigrateFS applies the migrations in the top directory of fsys, named
// NNNN_name.sql, as Migrate does with the embedded ones. It exists for tests.
func MigrateFS(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	migs, err := readMigrations(fsys)
	if err != nil {
		return err
	}

	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("db: migrate: %w", err)
	}
	defer conn.Release()

	began := time.Now()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, LockKey); err != nil {
		return fmt.Errorf("db: migrate: take lock: %w", err)
	}
	defer func() {
		// The lock belongs to the session: if it cannot be released (the
		// context is gone, the connection broke), close the connection so
		// the pool does not hand a locked session to someone else.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, LockKey); err != nil {
			conn.Conn().Close(uctx)
		}
	}()
	if waited := time.Since(began); waited > time.Second {
		logger.Info("waited for migration lock", logKeyDuration, waited)
	}

	return apply(ctx, conn.Conn(), migs, logger)
}

// apply runs the missing migrations on conn, which holds the lock.
func apply(ctx context.Context, conn *pgx.Conn, migs []migration, logger *slog.Logger) error {
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    int PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`); err != nil {
		return fmt.Errorf("db: migrate: create schema_migrations: %w", err)
	}

	rows, err := conn.Query(ctx, `SELECT version, name FROM schema_migrations ORDER BY version`)
	if err != nil {
		return fmt.Errorf("db: migrate: read schema_migrations: %w", err)
	}
	applied := map[int]string{}
	var version int
	var name string
	_, err = pgx.ForEachRow(rows, []any{&version, &name}, func() error {
		applied[version] = name
		return nil
	})
	if err != nil {
		return fmt.Errorf("db: migrate: read schema_migrations: %w", err)
	}

	for v, name := range applied {
		if v > len(migs) || v < 1 {
			return fmt.Errorf("%w: it holds migration %d (%s), this binary knows up to %d", ErrDatabaseNewer, v, name, len(migs))
		}
		if want := migs[v-1].name; name != want {
			return fmt.Errorf("%w: migration %d was applied as %s, this binary has %s", ErrBadMigrations, v, name, want)
		}
	}

	n := 0
	for _, m := range migs {
		if _, ok := applied[m.version]; ok {
			continue
		}
		began := time.Now()
		if err := applyOne(ctx, conn, m); err != nil {
			return err
		}
		n++
		logger.Info("applied migration", logKeyVersion, m.version, logKeyName, m.name, logKeyDuration, time.Since(began))
	}
	if n > 0 {
		logger.Info("database schema migrated", logKeyCount, n, logKeyVersion, len(migs))
	}
	return nil
}

// applyOne runs one migration and records it, in one transaction.
func applyOne(ctx context.Context, conn *pgx.Conn, m migration) error {
	err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		// No arguments: pgx uses the simple protocol, which runs a file of
		// several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.version, m.name)
		return err
	})
	if err != nil {
		merr := &MigrationError{Version: m.version, Name: m.name, Err: err}
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Position > 0 {
			merr.Line = lineAt(m.sql, int(pgErr.Position))
		}
		return merr
	}
	return nil
}

// lineAt returns the 1-based line of the pos'th character (1-based, as
// PostgreSQL counts them) of s.
func lineAt(s string, pos int) int {
	line, i := 1, 0
	for _, r := range s {
		i++
		if i >= pos {
			break
		}
		if r == '\n' {
			line++
		}
	}
	return line
}

// readMigrations reads and checks the *.sql files at the top of fsys, in
// version order.
func readMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, ".")
	if err != nil {
		return nil, fmt.Errorf("db: read migrations: %w", err)
	}
	var migs []migration
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".sql" {
			continue
		}
		match := migrationName.FindStringSubmatch(e.Name())
		if match == nil {
			return nil, fmt.Errorf("%w: %s is not named NNNN_name.sql", ErrBadMigrations, e.Name())
		}
		v, err := strconv.Atoi(match[1])
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadMigrations, e.Name(), err)
		}
		b, err := fs.ReadFile(fsys, e.Name())
		if err != nil {
			return nil, fmt.Errorf("db: read migrations: %w", err)
		}
		if strings.TrimSpace(string(b)) == "" {
			return nil, fmt.Errorf("%w: %s is empty", ErrBadMigrations, e.Name())
		}
		migs = append(migs, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(migs, func(a, b migration) int { return a.version - b.version })
	for i, m := range migs {
		if m.version != i+1 {
			if i > 0 && m.version == migs[i-1].version {
				return nil, fmt.Errorf("%w: %s and %s have the same version", ErrBadMigrations, migs[i-1].name, m.name)
			}
			return nil, fmt.Errorf("%w: expected version %d, found %s (versions start at 1, without gaps)", ErrBadMigrations, i+1, m.name)
		}
	}
	return migs, nil
}
