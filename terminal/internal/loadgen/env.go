package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/clock"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// Defaults and limits of the harness.
const (
	// DefaultPGPort names the cluster's socket file; the cluster has a
	// directory of its own, so the number never collides.
	DefaultPGPort = 54329
	// CredentialChunk is how many terminal ids go to one "terminal add"
	// call, to keep its argv small.
	CredentialChunk = 500
	// credentialProcs is how many "terminal add" calls run at once.
	credentialProcs = 4
	// startTimeout bounds the start of each child process.
	startTimeout = 2 * time.Minute
	// stopTimeout bounds the graceful stop of each child process.
	stopTimeout = 40 * time.Second
)

// Log keys.
const (
	logDir  = "dir"
	logAddr = "addr"
	logPID  = "pid"
	logErr  = "err"
	// logReplicas is how many server processes run.
	logReplicas = "replicas"
)

// ErrClosed is returned by methods of an Env after Close.
var ErrClosed = errors.New("loadgen: environment closed")

// Options configures StartEnv. The zero value runs a durable PostgreSQL and
// the server with its default settings in a new directory under /tmp.
type Options struct {
	// Dir holds the cluster, the server's log, the outboxes and the built
	// server binary. Empty means a new directory under /tmp, removed by
	// Close. It must be short (PostgreSQL's unix socket path is limited to
	// 107 bytes) and, when running as root, enterable by user postgres.
	Dir string
	// ServerBinary is the liggare-server executable; empty means build it
	// from the module this process is run from (go build, into Dir).
	ServerBinary string
	// NoFsync runs PostgreSQL with fsync off (devdb --durable=false). Only
	// for figures that do not depend on the database's disk, such as the
	// server's memory per connection.
	NoFsync bool
	// PoolMaxConns, when positive, is added to the server's DATABASE_URL as
	// pool_max_conns; zero keeps the server's default pool size.
	PoolMaxConns int
	// IngestWorkers, when positive, is passed as --ingest-workers.
	IngestWorkers int
	// Replicas is how many "liggare-server serve" processes run on the one
	// PostgreSQL, each on its own loopback port, as stateless replicas
	// behind a load balancer would. Zero means one. Terminals are spread
	// over them in turn (see AddTerminals); each replica gets its own
	// pool of PoolMaxConns connections.
	Replicas int
	// ServerArgs are further flags for "liggare-server serve".
	ServerArgs []string
	// PGConf holds further postgresql.conf settings of the cluster
	// ("liggare-server devdb --set").
	PGConf map[string]string
	// Statements makes the cluster count its statements
	// (StatementsConf, added to PGConf) and each Report list them.
	Statements bool
	// Nice, when positive, starts PostgreSQL and the servers n nice levels
	// below this process, each in a session of its own; see FavourSelf
	// for the rest. Zero starts them at this process's priority, in its
	// session.
	Nice int
	// ServerEnv holds further environment variables for the server
	// (GOGC=..., GOMAXPROCS=...).
	ServerEnv []string
	// Uplink is the template for every terminal's uplink configuration;
	// URL and Credential are filled in per terminal. Zero values take the
	// uplink package's defaults.
	Uplink uplink.Config
	// Outbox configures every terminal's outbox.
	Outbox outbox.Options
	// Logger receives the harness's own events; nil discards them.
	Logger *slog.Logger
}

// Env is a running PostgreSQL and liggare-server, and the terminals added
// to them. Its methods are safe for concurrent use.
type Env struct {
	opts    Options
	dir     string
	ownDir  bool // dir was created by StartEnv and is removed by Close
	bin     string
	dbURL   string   // for the harness itself and "terminal add"
	srvURL  string   // what the server got: dbURL plus pool settings
	piiEnv  []string // the keys "liggare-server keygen" made, as environment
	log     *slog.Logger
	clock   *clock.Clock
	devdb   *child
	servers []*child // one per replica, in order
	addrs   []string // host:port of each replica
	closeMu sync.Mutex
	closed  bool

	mu       sync.Mutex
	members  []Member // every terminal added, of either kind, for Close
	nextID   int
	nextRepl int // replica the next terminal connects to
}

// StartEnv starts PostgreSQL and liggare-server and waits until the server
// is ready. The caller must Close the Env, also after an error of a later
// call.
func StartEnv(ctx context.Context, opts Options) (*Env, error) {
	e := &Env{opts: opts, log: opts.Logger}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if err := e.start(ctx); err != nil {
		if cerr := e.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, err
	}
	return e, nil
}

func (e *Env) start(ctx context.Context) error {
	c, err := clock.New()
	if err != nil {
		return fmt.Errorf("loadgen: %w", err)
	}
	e.clock = c

	e.dir = e.opts.Dir
	if e.dir == "" {
		dir, err := os.MkdirTemp("/tmp", "lg-")
		if err != nil {
			return fmt.Errorf("loadgen: make directory: %w", err)
		}
		e.dir, e.ownDir = dir, true
	} else if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return fmt.Errorf("loadgen: make directory: %w", err)
	}
	// The postgres user must be able to pass through to the cluster's
	// directory when the harness runs as root.
	if err := os.Chmod(e.dir, 0o755); err != nil {
		return fmt.Errorf("loadgen: directory: %w", err)
	}
	for _, sub := range []string{"outbox", "logs"} {
		if err := os.MkdirAll(filepath.Join(e.dir, sub), 0o755); err != nil {
			return fmt.Errorf("loadgen: make directory: %w", err)
		}
	}

	e.bin = e.opts.ServerBinary
	if e.bin == "" {
		bin, err := BuildServer(ctx, filepath.Join(e.dir, "bin"))
		if err != nil {
			return err
		}
		e.bin = bin
	}

	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := e.keygen(ctx); err != nil {
		return err
	}
	if err := e.startDevDB(ctx); err != nil {
		return err
	}
	for i := range max(e.opts.Replicas, 1) {
		if err := e.startServer(ctx, i); err != nil {
			return err
		}
	}
	return nil
}

// BuildServer builds liggare-server from the module of the current
// directory into dir and returns the executable's path.
func BuildServer(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("loadgen: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("loadgen: build server: not inside the liggare module")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("loadgen: build server: %w", err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./server/cmd/liggare-server")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("loadgen: build server: %w\n%s", err, out)
	}
	return filepath.Join(dir, "liggare-server"), nil
}

// keygen makes the keys that protect identity numbers, as an operator
// does with "liggare-server keygen": the web UI and "org create" need them.
func (e *Env) keygen(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, e.bin, "keygen").Output()
	if err != nil {
		return fmt.Errorf("loadgen: keygen: %w", err)
	}
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "LIGGARE_PII_") {
			e.piiEnv = append(e.piiEnv, line)
		}
	}
	if len(e.piiEnv) != 2 {
		return fmt.Errorf("loadgen: keygen printed %d keys, want 2", len(e.piiEnv))
	}
	return nil
}

func (e *Env) startDevDB(ctx context.Context) error {
	args := []string{"devdb", "--dir", filepath.Join(e.dir, "pg"), "--port", strconv.Itoa(DefaultPGPort),
		"--durable=" + strconv.FormatBool(!e.opts.NoFsync)}
	conf := maps.Clone(e.opts.PGConf)
	if e.opts.Statements {
		if conf == nil {
			conf = map[string]string{}
		}
		maps.Copy(conf, StatementsConf)
	}
	for _, k := range slices.Sorted(maps.Keys(conf)) {
		args = append(args, "--set", k+"="+conf[k])
	}
	// devdb prints its URL alone on standard output; logs go to stderr.
	ch, err := startChild(e.opts.Nice, e.bin, args, nil, filepath.Join(e.dir, "logs", "devdb.log"), firstLine, nil)
	if err != nil {
		return fmt.Errorf("loadgen: start devdb: %w", err)
	}
	e.devdb = ch
	url, err := ch.await(ctx)
	if err != nil {
		return fmt.Errorf("loadgen: devdb gave no URL (see %s): %w", ch.logPath, err)
	}
	e.dbURL = url
	e.srvURL = url
	if e.opts.PoolMaxConns > 0 {
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		e.srvURL += sep + "pool_max_conns=" + strconv.Itoa(e.opts.PoolMaxConns)
	}
	e.log.Info("loadgen_devdb_started", logDir, filepath.Join(e.dir, "pg"), logPID, ch.cmd.Process.Pid)
	return nil
}

// startServer starts replica i and waits until it is ready. Replicas start
// one after the other, so the first applies the migrations alone.
func (e *Env) startServer(ctx context.Context, i int) error {
	args := []string{"serve", "--listen", "127.0.0.1:0"}
	if e.opts.IngestWorkers > 0 {
		args = append(args, "--ingest-workers", strconv.Itoa(e.opts.IngestWorkers))
	}
	args = append(args, e.opts.ServerArgs...)
	env := append([]string{"DATABASE_URL=" + e.srvURL, "LIGGARE_LOG_FORMAT=json"}, e.piiEnv...)
	env = append(env, e.opts.ServerEnv...)
	name := "server.log"
	if i > 0 {
		name = fmt.Sprintf("server-%d.log", i+1)
	}
	ch, err := startChild(e.opts.Nice, e.bin, args, env, filepath.Join(e.dir, "logs", name), nil, listeningAddr)
	if err != nil {
		return fmt.Errorf("loadgen: start server: %w", err)
	}
	e.servers = append(e.servers, ch)
	addr, err := ch.await(ctx)
	if err != nil {
		return fmt.Errorf("loadgen: server did not start listening (see %s): %w", ch.logPath, err)
	}
	e.addrs = append(e.addrs, addr)
	if err := waitReady(ctx, "http://"+addr+"/readyz"); err != nil {
		return fmt.Errorf("loadgen: server not ready (see %s): %w", ch.logPath, err)
	}
	e.log.Info("loadgen_server_started", logAddr, addr, logPID, ch.cmd.Process.Pid)
	return nil
}

func waitReady(ctx context.Context, url string) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Dir returns the environment's directory.
func (e *Env) Dir() string { return e.dir }

// SyncURL returns the first replica's websocket endpoint,
// ws://127.0.0.1:PORT/v1/sync.
func (e *Env) SyncURL() string { return e.ReplicaSyncURL(0) }

// ReplicaSyncURL returns replica i's websocket endpoint.
func (e *Env) ReplicaSyncURL(i int) string { return "ws://" + e.addrs[i] + syncproto.SyncPath }

// WebURL returns the first replica's web UI, http://127.0.0.1:PORT.
func (e *Env) WebURL() string { return "http://" + e.addrs[0] }

// Replicas returns how many server processes run.
func (e *Env) Replicas() int { return len(e.servers) }

// Addr returns the host:port the first replica listens on.
func (e *Env) Addr() string { return e.addrs[0] }

// nextReplica returns the replica the next terminal connects to: each in
// turn.
func (e *Env) nextReplica() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	r := e.nextRepl % len(e.servers)
	e.nextRepl++
	return r
}

// DatabaseURL returns the URL of the cluster's "postgres" database (over its
// unix socket), without the pool settings given to the server.
func (e *Env) DatabaseURL() string { return e.dbURL }

// ServerDatabaseURL returns the DATABASE_URL the server was started with.
func (e *Env) ServerDatabaseURL() string { return e.srvURL }

// ServerPID returns the process id of the first "liggare-server serve".
func (e *Env) ServerPID() int { return e.servers[0].cmd.Process.Pid }

// ServerPIDs returns the process ids of every replica, in order.
func (e *Env) ServerPIDs() []int {
	pids := make([]int, len(e.servers))
	for i, s := range e.servers {
		pids[i] = s.cmd.Process.Pid
	}
	return pids
}

// ServerRSS returns the resident set size of the server processes in
// bytes (VmRSS in /proc/PID/status), summed over the replicas.
func (e *Env) ServerRSS() (int64, error) {
	var sum int64
	for _, pid := range e.ServerPIDs() {
		rss, err := ProcessRSS(pid)
		if err != nil {
			return 0, err
		}
		sum += rss
	}
	return sum, nil
}

// ProcessRSS returns the resident set size of process pid in bytes, from
// VmRSS in /proc/PID/status (Linux only).
func ProcessRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("loadgen: rss: %w", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("loadgen: rss: cannot parse %q", line)
		}
		kib, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("loadgen: rss: %w", err)
		}
		return kib << 10, nil
	}
	return 0, fmt.Errorf("loadgen: rss: no VmRSS for process %d", pid)
}

// Credentials registers the terminals ids and returns one credential
// "ID.secret" for each, in order, issued by "liggare-server terminal add"
// in chunks of CredentialChunk ids, a few chunks at a time.
func (e *Env) Credentials(ctx context.Context, ids []string) ([]string, error) {
	if err := e.checkOpen(); err != nil {
		return nil, err
	}
	creds := make([]string, len(ids))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(credentialProcs)
	for lo := 0; lo < len(ids); lo += CredentialChunk {
		hi := min(lo+CredentialChunk, len(ids))
		g.Go(func() error {
			args := append([]string{"terminal", "add"}, ids[lo:hi]...)
			cmd := exec.CommandContext(gctx, e.bin, args...)
			cmd.Env = append(os.Environ(), "DATABASE_URL="+e.dbURL, "LIGGARE_LOG_FORMAT=json")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("loadgen: terminal add: %w\n%s", err, tailLines(stderr.Bytes(), 10))
			}
			lines := strings.Fields(string(out))
			if len(lines) != hi-lo {
				return fmt.Errorf("loadgen: terminal add: %d credentials for %d ids", len(lines), hi-lo)
			}
			for i, cred := range lines {
				if !strings.HasPrefix(cred, ids[lo+i]+".") {
					return fmt.Errorf("loadgen: terminal add: credential %d is not for %s", lo+i, ids[lo+i])
				}
				creds[lo+i] = cred
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return creds, nil
}

// CreateOrg creates an organisation and its first admin with
// "liggare-server org create", as an operator sets a customer up, and
// returns the admin's one-time password.
func (e *Env) CreateOrg(ctx context.Context, name, orgNumber, adminEmail string) (string, error) {
	if err := e.checkOpen(); err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, e.bin, "org", "create", "--name", name, "--org-number", orgNumber, "--admin", adminEmail)
	cmd.Env = append(append(os.Environ(), "DATABASE_URL="+e.dbURL, "LIGGARE_LOG_FORMAT=json"), e.piiEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("loadgen: org create: %w\n%s", err, tailLines(stderr.Bytes(), 10))
	}
	password := strings.TrimSpace(string(out))
	if password == "" || strings.Contains(password, "\n") {
		return "", fmt.Errorf("loadgen: org create printed %d lines, want the one-time password alone", strings.Count(password, "\n")+1)
	}
	return password, nil
}

// NewIDs returns n terminal ids not used before in this Env: prefix-000001
// and up.
func (e *Env) NewIDs(prefix string, n int) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, n)
	for i := range ids {
		e.nextID++
		ids[i] = fmt.Sprintf("%s-%06d", prefix, e.nextID)
	}
	return ids
}

// AddTerminals registers n new terminals and opens an outbox for each, with
// an uplink that is not started yet (see Terminal.Start and StartAll). The
// terminals are closed by Close, or earlier by Terminal.Close.
func (e *Env) AddTerminals(ctx context.Context, n int) ([]*Terminal, error) {
	ids := e.NewIDs("lg", n)
	creds, err := e.Credentials(ctx, ids)
	if err != nil {
		return nil, err
	}
	return e.openTerminals(ids, creds)
}

// openTerminals opens an outbox and an uplink (not started) for each
// terminal id with its credential, and keeps them for Close.
func (e *Env) openTerminals(ids, creds []string) ([]*Terminal, error) {
	terms := make([]*Terminal, 0, len(ids))
	for i, id := range ids {
		t, err := e.newTerminal(id, creds[i])
		if err != nil {
			for _, t := range terms {
				t.Close()
			}
			return nil, err
		}
		terms = append(terms, t)
	}
	ms := make([]Member, len(terms))
	for i, t := range terms {
		ms[i] = t
	}
	if err := e.keep(ms); err != nil {
		return nil, err
	}
	return terms, nil
}

// keep remembers new terminals for Close, or closes them if the Env is
// closed already. Close takes the list under closeMu: a terminal added
// after it began would never be closed.
func (e *Env) keep(ms []Member) error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		CloseAll(ms)
		return ErrClosed
	}
	e.mu.Lock()
	e.members = append(e.members, ms...)
	e.mu.Unlock()
	return nil
}

func (e *Env) checkOpen() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return ErrClosed
	}
	return nil
}

// Close closes every terminal, stops the server (gracefully, as on SIGTERM)
// and then PostgreSQL, and removes the directory if StartEnv created it.
// Later calls do nothing.
func (e *Env) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	var errs []error
	e.mu.Lock()
	terms := e.members
	e.members = nil
	e.mu.Unlock()
	if err := CloseAll(terms); err != nil {
		errs = append(errs, err)
	}
	for _, s := range e.servers {
		if err := s.stop(); err != nil {
			errs = append(errs, fmt.Errorf("loadgen: stop server: %w", err))
		}
	}
	if e.devdb != nil {
		if err := e.devdb.stop(); err != nil {
			errs = append(errs, fmt.Errorf("loadgen: stop devdb: %w", err))
		}
	}
	if e.ownDir && len(errs) == 0 {
		if err := os.RemoveAll(e.dir); err != nil {
			errs = append(errs, fmt.Errorf("loadgen: remove %s: %w", e.dir, err))
		}
	} else if e.ownDir {
		e.log.Warn("loadgen_dir_kept", logDir, e.dir)
	}
	return errors.Join(errs...)
}

// child is a running child process whose output goes to a log file while a
// matcher looks for one value in it (a URL, a listening address).
type child struct {
	cmd     *exec.Cmd
	logPath string
	found   chan string // receives the matched value once
	exited  chan struct{}
	waitErr error
}

// matcher returns the value it looks for in one line of output, or "".
type matcher func(line []byte) string

// firstLine matches the first non-empty line.
func firstLine(line []byte) string { return string(bytes.TrimSpace(line)) }

// listeningAddr matches the server's JSON log line "server_listening".
func listeningAddr(line []byte) string {
	var rec struct {
		Msg  string `json:"msg"`
		Addr string `json:"addr"`
	}
	if json.Unmarshal(line, &rec) != nil || rec.Msg != "server_listening" {
		return ""
	}
	return rec.Addr
}

// startChild starts bin (at nice +nice, see niceCommand) with its standard
// output and error appended to logPath; the matcher given for a stream
// looks for the value await returns.
func startChild(nice int, bin string, args, env []string, logPath string, matchStdout, matchStderr matcher) (*child, error) {
	cmd, err := niceCommand(nice, bin, args)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	ch := &child{logPath: logPath, found: make(chan string, 1), exited: make(chan struct{})}
	// exec copies each stream through its own goroutine: one lock for the
	// shared file.
	var mu sync.Mutex
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = &lineWriter{mu: &mu, out: f, match: matchStdout, found: ch.found}
	cmd.Stderr = &lineWriter{mu: &mu, out: f, match: matchStderr, found: ch.found}
	// If this process dies, the child is told to stop: no orphan clusters.
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGTERM
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	ch.cmd = cmd
	go func() {
		ch.waitErr = cmd.Wait()
		f.Close()
		close(ch.exited)
	}()
	return ch, nil
}

// await returns the matched value, or fails when the child exits or ctx ends.
func (c *child) await(ctx context.Context) (string, error) {
	select {
	case v := <-c.found:
		return v, nil
	case <-c.exited:
		select {
		case v := <-c.found:
			return v, nil
		default:
		}
		return "", fmt.Errorf("exited: %v\n%s", c.waitErr, c.logTail())
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stop sends SIGTERM, waits for the child to exit, and kills it after
// stopTimeout.
func (c *child) stop() error {
	select {
	case <-c.exited:
		return nil
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-c.exited:
		return nil
	case <-time.After(stopTimeout):
		c.cmd.Process.Kill()
		<-c.exited
		return fmt.Errorf("pid %d did not stop within %v; killed", c.cmd.Process.Pid, stopTimeout)
	}
}

func (c *child) logTail() []byte {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return nil
	}
	return tailLines(b, 20)
}

// lineWriter copies a child's output to a file and hands each complete
// line to a matcher until it has matched once.
type lineWriter struct {
	mu      *sync.Mutex // shared by the writers of one file
	out     io.Writer
	match   matcher // nil: only copy
	found   chan<- string
	partial []byte
	done    bool
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, err := w.out.Write(p); err != nil {
		return 0, err
	}
	if w.done || w.match == nil {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		line := w.partial[:i]
		if v := w.match(line); v != "" {
			w.found <- v
			w.done = true
			w.partial = nil
			break
		}
		w.partial = w.partial[i+1:]
	}
	return len(p), nil
}

func tailLines(b []byte, n int) []byte {
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
