package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// Keepalives short enough that a dead or blackholed connection is noticed
// within seconds on both sides.
var (
	serverFlags = []string{"--ping-interval", "500ms", "--pong-wait", "2s"}
	// The terminal's --max-backoff is 1s: the system comes back quickly after
	// each fault, so a run packs many of them.
	terminalFlags = []string{"--ping-interval", "500ms", "--pong-wait", "2s",
		"--ack-timeout", "3s", "--max-backoff", "1s", "--status-interval", "1s"}
)

// Bounds on waiting. Generous: they only stop a hung test.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 30 * time.Second
	syncTimeout  = 2 * time.Minute
)

var listeningRe = regexp.MustCompile(`msg=server_listening addr=(\S+)`)

// system is one Liggare installation under test: a database of its own, the
// binaries, and a directory for credentials and outboxes.
type system struct {
	t     testing.TB
	bin   string
	dbURL string
	dir   string
	pool  *pgxpool.Pool
	// env is added to the environment of every liggare-server command.
	env []string
}

func newSystem(t testing.TB) *system {
	t.Helper()
	s := &system{t: t, bin: binaries(t), dbURL: pgtest.NewURL(t), dir: t.TempDir()}
	return s
}

// serverEnv is the environment of liggare-server: the test's, with the
// database and without anything that would change the log format.
func (s *system) serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DATABASE_URL=") && !strings.HasPrefix(kv, "LIGGARE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "DATABASE_URL="+s.dbURL)
	return append(env, s.env...)
}

// db returns a pool on the system's database, opened on first use. Open it
// only while PostgreSQL is up for good: the chaos test kills it.
func (s *system) db() *pgxpool.Pool {
	s.t.Helper()
	if s.pool == nil {
		pool, err := db.Connect(s.t.Context(), s.dbURL, nil)
		if err != nil {
			s.t.Fatalf("connect to the test database: %v", err)
		}
		s.t.Cleanup(pool.Close)
		s.pool = pool
	}
	return s.pool
}

// addTerminals registers terminals with liggare-server terminal add and
// writes each credential to a file; it returns the files by terminal id.
func (s *system) addTerminals(ids ...string) map[string]string {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "liggare-server"), append([]string{"terminal", "add"}, ids...)...)
	cmd.Env = s.serverEnv()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("liggare-server terminal add: %v\n%s", err, stderr.String())
	}
	lines := strings.Fields(string(out))
	if len(lines) != len(ids) {
		s.t.Fatalf("liggare-server terminal add %v printed %d credentials, want %d", ids, len(lines), len(ids))
	}
	files := make(map[string]string, len(ids))
	for i, id := range ids {
		if !strings.HasPrefix(lines[i], id+".") {
			s.t.Fatalf("credential %d is for %q, want %q", i, strings.SplitN(lines[i], ".", 2)[0], id)
		}
		files[id] = filepath.Join(s.dir, id+".credential")
		if err := os.WriteFile(files[id], []byte(lines[i]+"\n"), 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	return files
}

// revoke revokes every credential of a terminal.
func (s *system) revoke(id string) {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "liggare-server"), "terminal", "revoke", id)
	cmd.Env = s.serverEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("liggare-server terminal revoke %s: %v\n%s", id, err, out)
	}
}

// server is liggare-server, listening on a new port at every start.
type server struct {
	*process
	addr string
}

func (s *system) newServer() *server {
	s.t.Helper()
	return s.newNamedServer("server")
}

// newNamedServer is newServer for a test running several servers: name
// tells their logs apart.
func (s *system) newNamedServer(name string) *server {
	s.t.Helper()
	argv := append([]string{filepath.Join(s.bin, "liggare-server"), "serve", "--listen", "127.0.0.1:0"}, serverFlags...)
	return &server{process: newProcess(s.t, name, s.serverEnv(), argv...)}
}

// start starts the server and waits until it listens.
func (sv *server) start(ctx context.Context) error {
	if err := sv.process.start(); err != nil {
		return err
	}
	m, err := sv.waitLog(ctx, listeningRe, startTimeout)
	if err != nil {
		return err
	}
	sv.addr = m[1]
	return nil
}

// terminal is liggare-terminal with a feed reader; it keeps its outbox file,
// credential and feed port across restarts.
type terminal struct {
	*process
	id       string
	outbox   string
	feedAddr string
}

// newTerminal returns a terminal that syncs to serverAddr (host:port),
// not started yet. extra are further flags.
func (s *system) newTerminal(id, credFile, serverAddr string, extra ...string) *terminal {
	s.t.Helper()
	tm := &terminal{
		id:       id,
		outbox:   filepath.Join(s.dir, id+".outbox"),
		feedAddr: freeFeedAddr(s.t),
	}
	argv := append([]string{filepath.Join(s.bin, "liggare-terminal"),
		"--server", "ws://" + serverAddr + "/v1/sync",
		"--credential-file", credFile,
		"--outbox", tm.outbox,
		"--reader", "feed:" + tm.feedAddr,
	}, terminalFlags...)
	argv = append(argv, extra...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIGGARE_") {
			env = append(env, kv)
		}
	}
	tm.process = newProcess(s.t, "terminal-"+id, env, argv...)
	return tm
}

// outboxState is what liggare-terminal outbox prints.
type outboxState struct {
	StoreEpoch   int64  `json:"store_epoch"`
	Depth        uint64 `json:"depth"`
	LastSeq      uint64 `json:"last_seq"`
	AckedThrough uint64 `json:"acked_through"`
}

// inspect reads the terminal's outbox with liggare-terminal outbox. The
// terminal must be stopped.
func (tm *terminal) inspect(t testing.TB) outboxState {
	t.Helper()
	cmd := exec.Command(tm.argv[0], "outbox", "--outbox", tm.outbox)
	cmd.Env = tm.env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("liggare-terminal outbox --outbox %s: %v\n%s", tm.outbox, err, stderr.String())
	}
	var st outboxState
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("liggare-terminal outbox printed %q: %v", out, err)
	}
	return st
}

// freeFeedAddr returns a loopback address with a port that is free now and
// lies below the kernel's ephemeral range, so that no outgoing connection
// takes it while its terminal is down between a kill and a restart.
func freeFeedAddr(t testing.TB) string {
	t.Helper()
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				low = n
			}
		}
	}
	const first = 10000
	if low <= first+1000 {
		t.Fatalf("ephemeral port range starts at %d; no room below it for feed ports", low)
	}
	for range 100 {
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(first+rand.IntN(low-first)))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free port for a feed reader")
	return ""
}

// waitSynced waits until the server holds every tap of each terminal up to
// the sequence given (ingest_cursors over all its epochs), and then until
// each terminal reports an empty outbox: stopping it must then leave depth
// 0. The terminals must have stopped taking taps.
//
// It fails at once when a terminal reports an empty outbox while the server
// still misses some of its taps: they are lost, and waiting cannot help.
func (s *system) waitSynced(ctx context.Context, want map[string]uint64) error {
	pool := s.db()
	w, err := s.watchEmpty(ctx)
	if err != nil {
		return err
	}
	err = waitFor(ctx, syncTimeout, "the server to hold every confirmed tap", func() (bool, error) {
		for id, seq := range want {
			// The Status first: an empty outbox reported before the cursor
			// is read means the cursor must already be complete.
			empty, err := w.empty(ctx, id)
			if err != nil {
				return false, err
			}
			var acked int64
			if err := pool.QueryRow(ctx, `
				SELECT coalesce(max(acked_through), 0) FROM ingest_cursors WHERE terminal_id = $1`, id).Scan(&acked); err != nil {
				return false, err
			}
			if uint64(acked) >= seq {
				continue
			}
			if empty {
				return false, fmt.Errorf("terminal %s reports an empty outbox, but the server holds its taps only through seq %d of %d: taps lost", id, acked, seq)
			}
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("%w (acked_through per terminal: %s)", err, s.cursorSummary(ctx))
	}
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	return s.waitEmptyOutboxes(ctx, ids...)
}

// waitEmptyOutboxes waits until each terminal reports an empty outbox.
func (s *system) waitEmptyOutboxes(ctx context.Context, ids ...string) error {
	w, err := s.watchEmpty(ctx)
	if err != nil {
		return err
	}
	return waitFor(ctx, syncTimeout, fmt.Sprintf("terminals %v to report an empty outbox", ids), func() (bool, error) {
		for _, id := range ids {
			if empty, err := w.empty(ctx, id); err != nil || !empty {
				return false, err
			}
		}
		return true, nil
	})
}

// emptyWatch reads the outbox depth terminals report in their Status
// messages (every second; terminals.outbox_depth).
type emptyWatch struct {
	pool  *pgxpool.Pool
	since time.Time
	first map[string]time.Time // status_at of a first report of 0
}

// watchEmpty starts watching for reports received from now on.
func (s *system) watchEmpty(ctx context.Context) (*emptyWatch, error) {
	w := &emptyWatch{pool: s.db(), first: make(map[string]time.Time)}
	if err := w.pool.QueryRow(ctx, `SELECT now()`).Scan(&w.since); err != nil {
		return nil, err
	}
	return w, nil
}

// empty reports whether the terminal has reported depth 0 twice in a row,
// both received since the watch began. A report received afterwards may
// have been sent a little before (it waited in the server's socket); the
// second of two, sent a status interval later, reflects the outbox as it
// was after the caller's taps.
func (w *emptyWatch) empty(ctx context.Context, id string) (bool, error) {
	var depth *int64
	var at *time.Time
	if err := w.pool.QueryRow(ctx, `
		SELECT outbox_depth, status_at FROM terminals WHERE terminal_id = $1`, id).Scan(&depth, &at); err != nil {
		return false, err
	}
	if depth == nil || at == nil || !at.After(w.since) {
		return false, nil
	}
	if *depth != 0 {
		delete(w.first, id)
		return false, nil
	}
	first, ok := w.first[id]
	if !ok {
		w.first[id] = *at
		return false, nil
	}
	return at.After(first), nil
}

func (s *system) cursorSummary(ctx context.Context) string {
	rows, err := s.db().Query(ctx, `
		SELECT terminal_id || '/' || store_epoch || ': ' || acked_through || ' (max seen ' || max_seen || ')'
		FROM ingest_cursors ORDER BY 1`)
	if err != nil {
		return err.Error()
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err.Error()
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return err.Error()
	}
	return strings.Join(out, ", ")
}

// stopAll stops terminals with SIGTERM; each must exit cleanly.
func stopAll(t testing.TB, terms ...*terminal) {
	t.Helper()
	for _, tm := range terms {
		if err := tm.stop(stopTimeout); err != nil {
			t.Errorf("terminal %s after SIGTERM: %v, want a clean exit", tm.id, err)
		}
	}
}
