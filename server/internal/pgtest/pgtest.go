package pgtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pglocal"
)

// EnvURL names the environment variable that points pgtest at an existing
// server instead of a cluster of its own.
const EnvURL = "PGTEST_URL"

const (
	dirPrefix = "pgtest-"
	ownerFile = "pgtest.owner" // the pid of the test binary that owns a cluster directory
	timeout   = 2 * time.Minute
)

// env is what Main sets up for one test binary.
type env struct {
	cluster  *pglocal.Cluster // nil when EnvURL is used
	admin    *url.URL         // a database to run CREATE/DROP DATABASE from
	template string
	prefix   string // of database names: unique per process
	seq      atomic.Uint64
}

// current is the binary's environment, set by Main before any test runs and
// never changed while they run. It is the one piece of global state pgtest
// cannot avoid: TestMain has no other way to reach the tests.
var current *env

// Main runs the tests of a binary that uses PostgreSQL; call it from
// TestMain. It exits the process with the tests' status.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	e, stop, err := setup(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	current = e
	code := m.Run()
	ctx, cancel = context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := stop(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// setup starts or reaches the server and creates the template database. It
// returns a function that undoes it all.
func setup(ctx context.Context) (*env, func(context.Context) error, error) {
	pid := os.Getpid()
	e := &env{
		template: fmt.Sprintf("pgtest_%d_template", pid),
		prefix:   fmt.Sprintf("pgtest_%d_", pid),
	}
	var stopCluster func(context.Context) error
	if raw := os.Getenv(EnvURL); raw != "" {
		u, err := url.Parse(raw)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, nil, fmt.Errorf("pgtest: %s must be a postgres:// URL", EnvURL)
		}
		e.admin = u
		stopCluster = func(context.Context) error { return nil }
	} else {
		reapStale(os.TempDir())
		if _, err := pglocal.FindBinDir(); err != nil {
			return nil, nil, fmt.Errorf("pgtest: %w; install the PostgreSQL server (apt-get install postgresql) or set %s", err, EnvURL)
		}
		dir, err := os.MkdirTemp("", dirPrefix)
		if err != nil {
			return nil, nil, fmt.Errorf("pgtest: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(pid)), 0o644); err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("pgtest: %w", err)
		}
		c, err := pglocal.Start(ctx, pglocal.Options{Dir: dir})
		if err != nil {
			os.RemoveAll(dir)
			return nil, nil, fmt.Errorf("pgtest: %w", err)
		}
		e.cluster = c
		e.admin, _ = url.Parse(c.URL("postgres"))
		stopCluster = func(ctx context.Context) error {
			err := c.Stop(ctx)
			if err == nil {
				err = os.RemoveAll(dir)
			}
			if err != nil {
				return fmt.Errorf("pgtest: remove cluster: %w", err)
			}
			return nil
		}
	}

	if err := e.createTemplate(ctx); err != nil {
		return nil, nil, errors.Join(err, stopCluster(ctx))
	}
	stop := func(ctx context.Context) error {
		var err error
		if e.cluster == nil {
			// A shared server keeps no litter; a throwaway cluster goes whole.
			err = e.exec(ctx,
				`ALTER DATABASE `+quote(e.template)+` WITH IS_TEMPLATE false`,
				`DROP DATABASE IF EXISTS `+quote(e.template)+` WITH (FORCE)`)
		}
		return errors.Join(err, stopCluster(ctx))
	}
	return e, stop, nil
}

// createTemplate creates the template database and migrates it.
func (e *env) createTemplate(ctx context.Context) error {
	if err := e.exec(ctx,
		`DROP DATABASE IF EXISTS `+quote(e.template)+` WITH (FORCE)`,
		`CREATE DATABASE `+quote(e.template)+` TEMPLATE template0`,
	); err != nil {
		return err
	}
	pool, err := db.Connect(ctx, e.url(e.template), nil)
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	err = db.Migrate(ctx, pool, slog.New(slog.DiscardHandler))
	pool.Close()
	if err != nil {
		return fmt.Errorf("pgtest: migrate template: %w", err)
	}
	// No one may connect to the template any more: CREATE DATABASE refuses
	// to copy a database others are connected to.
	return e.exec(ctx, `ALTER DATABASE `+quote(e.template)+` WITH IS_TEMPLATE true ALLOW_CONNECTIONS false`)
}

// exec runs statements on a fresh connection to the admin database. A fresh
// connection, not a pool, so that a test may Kill and Restart the cluster.
func (e *env) exec(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, e.admin.String())
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("pgtest: %s: %w", s, err)
		}
	}
	return nil
}

// url returns the URL of database name on the server.
func (e *env) url(name string) string {
	u := *e.admin
	u.Path = "/" + name
	u.RawPath = ""
	q := u.Query()
	q.Del("dbname")
	q.Del("database")
	u.RawQuery = q.Encode()
	return u.String()
}

// New returns a pool on a fresh database cloned from the migrated template.
// The test's cleanup closes the pool and drops the database.
func New(t testing.TB) *pgxpool.Pool {
	t.Helper()
	u := NewURL(t)
	pool, err := db.Connect(t.Context(), u, nil)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close) // runs before NewURL's cleanup drops the database
	return pool
}

// NewURL is New for tests that need a URL instead of a pool, such as an
// end-to-end test that starts the server binary.
func NewURL(t testing.TB) string {
	t.Helper()
	return newDatabase(t, mustEnv(t).template)
}

// NewEmpty returns a pool on a fresh database without any migrations, for
// tests of the migrations themselves.
func NewEmpty(t testing.TB) *pgxpool.Pool {
	t.Helper()
	u := newDatabase(t, "template0")
	pool, err := db.Connect(t.Context(), u, nil)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Cluster returns the binary's cluster, so that end-to-end tests can Kill
// and Restart PostgreSQL, or nil when PGTEST_URL is used. Tests that need it
// should skip when it is nil: a shared server cannot be killed. A test that
// kills the cluster must not call t.Parallel, or it breaks its neighbours;
// top-level tests without t.Parallel run before the parallel ones resume.
func Cluster() *pglocal.Cluster {
	if current == nil {
		panic("pgtest: Cluster called, but pgtest.Main was not called from TestMain")
	}
	return current.cluster
}

func mustEnv(t testing.TB) *env {
	t.Helper()
	if current == nil {
		t.Fatalf("pgtest: call pgtest.Main(m) from TestMain in this package")
	}
	return current
}

// newDatabase creates a database from template and drops it in the test's
// cleanup. It returns the database's URL.
func newDatabase(t testing.TB, template string) string {
	t.Helper()
	e := mustEnv(t)
	name := e.prefix + strconv.FormatUint(e.seq.Add(1), 10)
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	if err := e.exec(ctx, `CREATE DATABASE `+quote(name)+` TEMPLATE `+quote(template)); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err := e.exec(ctx, `DROP DATABASE `+quote(name)+` WITH (FORCE)`); err != nil {
			t.Errorf("pgtest: drop database: %v", err)
		}
	})
	return e.url(name)
}

// quote quotes an identifier.
func quote(name string) string {
	return pgx.Identifier{name}.Sanitize()
}

// reapStale stops and removes the clusters of test binaries that died
// without cleaning up. Errors are ignored: reaping is hygiene, and a
// cluster that cannot be removed harms no one but the disk.
func reapStale(tmp string) {
	dirs, _ := filepath.Glob(filepath.Join(tmp, dirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue // not ours, or being set up right now
		}
		owner, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || alive(owner) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid")); err == nil {
			line, _, _ := strings.Cut(string(b), "\n")
			if pid, err := strconv.Atoi(strings.TrimSpace(line)); err == nil && pid > 0 {
				// SIGQUIT is PostgreSQL's immediate shutdown.
				syscall.Kill(pid, syscall.SIGQUIT)
				for i := 0; i < 100 && alive(pid); i++ {
					time.Sleep(50 * time.Millisecond)
				}
			}
		}
		os.RemoveAll(dir)
	}
}

func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
