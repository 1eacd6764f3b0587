package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// DefaultPort is the port used when Options.Port is zero. The cluster listens
// on no TCP port; the number only names the unix socket file.
const DefaultPort = 5432

// ErrDirNotEnterable: run as root, the cluster's directory is one the
// postgres user cannot reach (under a directory private to root, such as
// one made by mktemp -d).
var ErrDirNotEnterable = errors.New("pglocal: directory not reachable by user postgres")

// DefaultMaxConnections is the max_connections setting unless ExtraConf
// overrides it: high enough for benchmarks that open many connections.
const DefaultMaxConnections = 300

// maxSocketPath is the usable length of sun_path in a unix socket address on
// Linux (108 bytes including the terminating NUL).
const maxSocketPath = 107

// Log keys.
const (
	logKeyDir      = "dir"
	logKeyPort     = "port"
	logKeyDuration = "duration"
	logKeyMode     = "mode"
)

// ErrNoPostgres means the PostgreSQL server binaries (initdb, pg_ctl,
// postgres) could not be found.
var ErrNoPostgres = errors.New("pglocal: PostgreSQL binaries not found (looked in PATH and /usr/lib/postgresql/*/bin)")

// Options says where and how to run a cluster.
type Options struct {
	// Dir holds the data directory, the socket and the log. It is created if
	// missing and reused if it already holds a cluster. Empty means a new
	// directory under os.TempDir(), which the caller removes when done.
	Dir string
	// Port names the socket file (.s.PGSQL.<port>); zero means DefaultPort.
	Port int
	// Durable keeps fsync and full_page_writes on. A non-durable cluster
	// is for tests only: an operating system crash can corrupt it, while a
	// PostgreSQL crash (as by Kill) loses no committed transaction.
	Durable bool
	// Logger receives start and stop events; nil discards them.
	Logger *slog.Logger
	// ExtraConf holds further postgresql.conf settings, applied last.
	ExtraConf map[string]string
	// BinDir is the directory holding initdb and pg_ctl; empty means look
	// them up (see the package documentation).
	BinDir string
}

// Cluster is a running (or stopped) local PostgreSQL cluster. Its methods
// are safe for concurrent use.
type Cluster struct {
	dir    string
	port   int
	bin    string // directory of initdb and pg_ctl
	runAs  []string
	logger *slog.Logger

	mu      sync.Mutex
	running bool
}

// Start makes sure a cluster exists in opts.Dir (running initdb if needed),
// writes its settings, starts it with pg_ctl and waits until it accepts
// connections. If a server is already running in the directory on the same
// port, Start adopts it.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	c, err := open(ctx, opts)
	if err != nil && opts.Dir == "" && c.dir != "" {
		// Leave nothing behind in a directory nobody else knows of.
		if c.running {
			c.Kill(context.WithoutCancel(ctx))
		}
		os.RemoveAll(c.dir)
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// open does the work of Start. It returns the cluster even on error, for
// Start to clean up after.
func open(ctx context.Context, opts Options) (*Cluster, error) {
	c := &Cluster{dir: opts.Dir, port: opts.Port, bin: opts.BinDir, logger: opts.Logger}
	if c.port == 0 {
		c.port = DefaultPort
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	if err := validateConf(opts.ExtraConf); err != nil {
		return c, err
	}
	if c.bin == "" {
		bin, err := FindBinDir()
		if err != nil {
			return c, err
		}
		c.bin = bin
	}
	if err := c.prepareDir(ctx); err != nil {
		return c, err
	}
	if err := c.initdb(ctx, opts.Durable); err != nil {
		return c, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	port, running := c.runningPort()
	if running && port != c.port {
		return c, fmt.Errorf("pglocal: a server already runs in %s on port %d, not %d", c.dir, port, c.port)
	}
	// Written even for a running server: they take effect at its restart.
	if err := c.writeConf(opts); err != nil {
		return c, err
	}
	if running {
		c.logger.Info("adopted running postgresql", logKeyDir, c.dir, logKeyPort, c.port)
		c.running = true
		if err := c.waitReady(ctx); err != nil {
			return c, err
		}
		return c, nil
	}
	if err := c.start(ctx); err != nil {
		return c, err
	}
	return c, nil
}

// Dir returns the cluster's directory.
func (c *Cluster) Dir() string { return c.dir }

// Port returns the port that names the cluster's socket.
func (c *Cluster) Port() int { return c.port }

// URL returns a connection URL for database dbname as superuser postgres,
// over the cluster's unix socket.
func (c *Cluster) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable",
		url.PathEscape(dbname), url.QueryEscape(c.dir), c.port)
}

// Stop shuts the server down cleanly (pg_ctl stop -m fast): it disconnects
// clients, and the next start needs no recovery. Stopping a stopped cluster
// does nothing.
func (c *Cluster) Stop(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(ctx, "fast")
}

// Kill stops the server the way a crash would (pg_ctl stop -m immediate):
// no checkpoint, so the next start runs crash recovery. Killing a stopped
// cluster does nothing.
func (c *Cluster) Kill(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stop(ctx, "immediate")
}

// Restart starts the server again in the same directory on the same port,
// after Stop or Kill. A running server is stopped (fast) first.
func (c *Cluster) Restart(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.stop(ctx, "fast"); err != nil {
		return err
	}
	return c.start(ctx)
}

func (c *Cluster) dataDir() string { return filepath.Join(c.dir, "data") }
func (c *Cluster) logFile() string { return filepath.Join(c.dir, "postgres.log") }

// prepareDir creates the directory if needed, checks the socket path length
// and, as root, hands the directory to the postgres user.
func (c *Cluster) prepareDir(ctx context.Context) error {
	if c.dir == "" {
		dir, err := os.MkdirTemp("", "pg-")
		if err != nil {
			return fmt.Errorf("pglocal: make directory: %w", err)
		}
		c.dir = dir
	} else {
		// Parents made here must let the postgres user through.
		if err := os.MkdirAll(filepath.Dir(c.dir), 0o755); err != nil {
			return fmt.Errorf("pglocal: make directory: %w", err)
		}
		if err := os.Mkdir(c.dir, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("pglocal: make directory: %w", err)
		}
	}
	dir, err := filepath.Abs(c.dir)
	if err != nil {
		return fmt.Errorf("pglocal: directory: %w", err)
	}
	c.dir = dir
	if sock := filepath.Join(c.dir, ".s.PGSQL."+strconv.Itoa(c.port)); len(sock) > maxSocketPath {
		return fmt.Errorf("pglocal: socket path %s is %d bytes, the limit is %d: use a shorter directory", sock, len(sock), maxSocketPath)
	}
	if err := os.Chmod(c.dir, 0o700); err != nil {
		return fmt.Errorf("pglocal: directory: %w", err)
	}
	runAs, err := runAsPostgres(c.dir)
	if err != nil {
		return err
	}
	c.runAs = runAs
	if len(c.runAs) > 0 {
		// Make sure the postgres user can reach the directory: a private
		// parent (t.TempDir() is 0700 root) makes initdb fail obscurely.
		if out, err := c.command(ctx, "test", "-w", c.dir, "-a", "-x", c.dir).CombinedOutput(); err != nil {
			return fmt.Errorf("%w: user postgres cannot enter %s (is a parent directory private to root?): %v %s", ErrDirNotEnterable, c.dir, err, out)
		}
	}
	return nil
}

// initdb creates the cluster unless the data directory already holds one.
func (c *Cluster) initdb(ctx context.Context, durable bool) error {
	if _, err := os.Stat(filepath.Join(c.dataDir(), "PG_VERSION")); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("pglocal: initdb: %w", err)
	}
	began := time.Now()
	args := []string{"-D", c.dataDir(), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"}
	if !durable {
		args = append(args, "--no-sync")
	}
	out, err := c.command(ctx, filepath.Join(c.bin, "initdb"), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pglocal: initdb in %s: %w\n%s", c.dir, err, tail(out, 20))
	}
	c.logger.Info("created postgresql cluster", logKeyDir, c.dir, logKeyDuration, time.Since(began))
	return nil
}

// writeConf writes pglocal.conf in the data directory and makes sure
// postgresql.conf includes it. The settings live in the cluster rather than
// on the command line, so that a plain pg_ctl start gives the same server.
func (c *Cluster) writeConf(opts Options) error {
	conf := map[string]string{
		"listen_addresses":        "",
		"unix_socket_directories": c.dir,
		"port":                    strconv.Itoa(c.port),
		"max_connections":         strconv.Itoa(DefaultMaxConnections),
		// Room in the lock table for the reconciler's full-size steps
		// (ledger.stepTapsFor).
		"max_locks_per_transaction": "128",
		"timezone":                  "UTC",
		"log_timezone":              "UTC",
	}
	if !opts.Durable {
		// Safe against a PostgreSQL crash (Kill), not an operating system
		// crash. synchronous_commit stays on: with fsync off it costs only a
		// write(2) per commit, and off it would lose commits already
		// reported to the client when the server is killed, which is what
		// the end-to-end tests of "ack after commit" do.
		conf["fsync"] = "off"
		conf["full_page_writes"] = "off"
	}
	for k, v := range opts.ExtraConf {
		conf[k] = v
	}
	var b bytes.Buffer
	b.WriteString("# Written by pglocal at every start; edits are lost.\n")
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		fmt.Fprintf(&b, "%s = '%s'\n", k, strings.ReplaceAll(conf[k], "'", "''"))
	}
	if err := os.WriteFile(filepath.Join(c.dataDir(), "pglocal.conf"), b.Bytes(), 0o600); err != nil {
		return fmt.Errorf("pglocal: write settings: %w", err)
	}
	main := filepath.Join(c.dataDir(), "postgresql.conf")
	cur, err := os.ReadFile(main)
	if err != nil {
		return fmt.Errorf("pglocal: read settings: %w", err)
	}
	const include = "include 'pglocal.conf'\n"
	if !bytes.Contains(cur, []byte(include)) {
		f, err := os.OpenFile(main, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			return fmt.Errorf("pglocal: write settings: %w", err)
		}
		_, err = f.WriteString("\n" + include)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("pglocal: write settings: %w", err)
		}
	}
	// Files root wrote must stay readable by the server.
	if err := chownLike(c.dataDir(), filepath.Join(c.dataDir(), "pglocal.conf")); err != nil {
		return fmt.Errorf("pglocal: write settings: %w", err)
	}
	return nil
}

// start runs pg_ctl start and waits until the server accepts connections.
// The caller holds c.mu.
func (c *Cluster) start(ctx context.Context) error {
	began := time.Now()
	out, err := c.command(ctx, filepath.Join(c.bin, "pg_ctl"),
		"start", "-w", "-t", "120", "-D", c.dataDir(), "-l", c.logFile()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pglocal: start postgresql in %s: %w\n%s\n--- tail of %s ---\n%s",
			c.dir, err, bytes.TrimSpace(out), c.logFile(), c.logTail())
	}
	c.running = true
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	c.logger.Info("started postgresql", logKeyDir, c.dir, logKeyPort, c.port, logKeyDuration, time.Since(began))
	return nil
}

// waitReady connects until the server answers; pg_ctl -w has normally
// waited already, so the first try succeeds.
func (c *Cluster) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		conn, err := pgconn.Connect(ctx, c.URL("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pglocal: postgresql in %s does not answer: %w\n--- tail of %s ---\n%s",
				c.dir, err, c.logFile(), c.logTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop runs pg_ctl stop in the given mode. The caller holds c.mu.
func (c *Cluster) stop(ctx context.Context, mode string) error {
	began := time.Now()
	out, err := c.command(ctx, filepath.Join(c.bin, "pg_ctl"),
		"stop", "-w", "-t", "120", "-m", mode, "-D", c.dataDir()).CombinedOutput()
	if err != nil {
		if _, ok := c.runningPort(); !ok {
			// Already stopped (or crashed): that is what was asked for.
			c.running = false
			return nil
		}
		return fmt.Errorf("pglocal: stop postgresql in %s (-m %s): %w\n%s", c.dir, mode, err, bytes.TrimSpace(out))
	}
	if c.running {
		c.logger.Info("stopped postgresql", logKeyDir, c.dir, logKeyMode, mode, logKeyDuration, time.Since(began))
	}
	c.running = false
	return nil
}

// runningPort reports whether a server runs in the data directory, and on
// which port, from postmaster.pid and a signal-0 probe of its process.
func (c *Cluster) runningPort() (int, bool) {
	pid, port, ok := readPostmasterPID(c.dataDir())
	if !ok || !processAlive(pid) {
		return 0, false
	}
	return port, true
}

// readPostmasterPID reads the process id (line 1) and port (line 4) from
// postmaster.pid in dataDir.
func readPostmasterPID(dataDir string) (pid, port int, ok bool) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, 0, false
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, 0, false
	}
	return pid, port, true
}

// logTail returns the last lines of the server log, for error messages.
func (c *Cluster) logTail() string {
	f, err := os.Open(c.logFile())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 8 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > max {
		if _, err := f.Seek(-max, 2); err != nil {
			return "(log unreadable: " + err.Error() + ")"
		}
	}
	b := make([]byte, max)
	n, _ := f.Read(b)
	return string(tail(b[:n], 30))
}

// tail returns the last n lines of b.
func tail(b []byte, n int) []byte {
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// command builds a command that runs as the cluster's owner, with the
// cluster directory as working directory (the caller's may be private to
// root) and without PG* variables that could redirect the tools.
func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(slices.Clone(c.runAs), name)
	argv = append(argv, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.dir
	cmd.WaitDelay = 5 * time.Second
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	return cmd
}

var confKey = regexp.MustCompile(`^[a-z][a-z0-9_.]*$`)

func validateConf(conf map[string]string) error {
	for k := range conf {
		if !confKey.MatchString(k) {
			return fmt.Errorf("pglocal: bad setting name %q", k)
		}
	}
	return nil
}
