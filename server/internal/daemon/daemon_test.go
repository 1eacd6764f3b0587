package daemon

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/liggare/liggare/internal/sdnotify"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/syncproto"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

const waitTimeout = 60 * time.Second

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// testPKI writes a CA and a server certificate for 127.0.0.1 signed by it.
type testPKI struct {
	caFile, certFile, keyFile string
}

func newPKI(t *testing.T, dir string, notAfter time.Time) testPKI {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Liggare test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "liggare.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: notAfter,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := testPKI{filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")}
	for file, block := range map[string]*pem.Block{
		p.caFile:   {Type: "CERTIFICATE", Bytes: caDER},
		p.certFile: {Type: "CERTIFICATE", Bytes: der},
		p.keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// notifySocket listens for sd_notify datagrams and collects them.
type notifySocket struct {
	path string
	mu   sync.Mutex
	msgs []string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	// Unix socket paths are short: t.TempDir() may be too long.
	dir, err := os.MkdirTemp("", "ntf")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s := &notifySocket{path: filepath.Join(dir, "s")}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, string(buf[:n]))
			s.mu.Unlock()
		}
	}()
	return s
}

func (s *notifySocket) has(prefix string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs {
		if strings.HasPrefix(m, prefix) {
			return true
		}
	}
	return false
}

// buildTerminal builds liggare-terminal into dir.
func buildTerminal(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./terminal/cmd/liggare-terminal")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build liggare-terminal: %v\n%s", err, out)
	}
	return filepath.Join(dir, "liggare-terminal")
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func terminalEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIGGARE_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") && !strings.HasPrefix(kv, "WATCHDOG_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// healthReport is the part of the terminal's /healthz the test reads.
type healthReport struct {
	OK          bool       `json:"ok"`
	TerminalID  string     `json:"terminal_id"`
	OutboxDepth uint64     `json:"outbox_depth"`
	Connected   bool       `json:"connected"`
	LastAck     *time.Time `json:"last_ack"`
	ReaderState string     `json:"reader_state"`
	ClockOffset *int64     `json:"clock_offset_ms"`
}

func getJSON(url string, v any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestEnrollConnectObserve runs the server in process with TLS, metrics and
// sd_notify, and the real liggare-terminal binary: enrollment with a code
// (credential file 0600), a wss:// connection trusted through --ca-file,
// taps stored and placed on the code's site, the terminal's health, the
// metrics without personal data, rotation while the agent runs,
// revocation (taps stay in the outbox, the upgrade is refused),
// re-enrollment with the same outbox, and a graceful stop of both.
func TestEnrollConnectObserve(t *testing.T) {
	dir := t.TempDir()
	bin := buildTerminal(t, dir)
	pki := newPKI(t, dir, time.Now().Add(24*time.Hour))
	dbURL := pgtest.NewURL(t)
	ctx := t.Context()
	pool, err := db.Connect(ctx, dbURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// The server.
	serverNotify := newNotifySocket(t)
	var addr, metricsAddr string
	ready := make(chan struct{})
	cfg := Config{
		Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0", DatabaseURL: dbURL,
		TLSCert: pki.certFile, TLSKey: pki.keyFile,
		Notifier:     sdnotify.New(serverNotify.path).WithWatchdog(200 * time.Millisecond),
		Ready:        func(a net.Addr) { addr = a.String(); close(ready) },
		MetricsReady: func(a net.Addr) { metricsAddr = a.String() },
	}
	cfg.Sync.CredentialRecheck = 200 * time.Millisecond
	cfg.Sync.PingInterval = 500 * time.Millisecond
	var serverLog syncBuffer
	logger := slog.New(slog.NewJSONHandler(&serverLog, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srvCtx, stopServer := context.WithCancel(context.Background())
	defer stopServer()
	srvDone := make(chan error, 1)
	go func() { srvDone <- Run(srvCtx, cfg, logger) }()
	select {
	case <-ready:
	case err := <-srvDone:
		t.Fatalf("Run: %v", err)
	}
	waitFor(t, "READY=1 from the server", func() (bool, error) { return serverNotify.has(sdnotify.Ready), nil })
	waitFor(t, "a watchdog ping from the server", func() (bool, error) { return serverNotify.has(sdnotify.Watchdog), nil })
	syncURL := "wss://" + addr + syncproto.SyncPath

	var orgID, siteID int64
	if err := pool.QueryRow(ctx, `INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001') RETURNING org_id`).Scan(&orgID); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, `INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		VALUES ($1, '1A2B3C4D5E6F7', 'Kv. Bryggan', 'Gatan 1', 'Bygg AB', '556000-0001') RETURNING site_id`, orgID).Scan(&siteID); err != nil {
		t.Fatal(err)
	}
	store := enroll.NewStore(pool, auth.NewTerminals(pool))
	code, err := store.CreateCode(ctx, enroll.CodeRequest{SiteIdent: "1A2B3C4D5E6F7", TerminalID: "gate-1", Direction: "in", CreatedBy: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}

	// Enroll.
	credFile := filepath.Join(dir, "state", "credential")
	if err := os.MkdirAll(filepath.Dir(credFile), 0o700); err != nil {
		t.Fatal(err)
	}
	terminalCmd := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = terminalEnv()
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := terminalCmd("enroll", "--server", syncURL, "--ca-file", pki.caFile, "--credential-file", credFile,
		"--code", strings.ToLower(enroll.FormatCode(code.Code)))
	if err != nil {
		t.Fatalf("liggare-terminal enroll: %v\n%s", err, out)
	}
	for _, f := range []string{credFile, credFile + ".key"} {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	cred1 := readCred(t, credFile)
	if !strings.HasPrefix(cred1, "gate-1.") {
		t.Fatalf("credential %q", cred1)
	}
	// A second enrollment with the same code is refused.
	if out, err := terminalCmd("enroll", "--server", syncURL, "--ca-file", pki.caFile, "--credential-file", filepath.Join(dir, "other"),
		"--code", code.Code); err == nil || !strings.Contains(out, "already used") {
		t.Errorf("second enroll with the code: %v\n%s", err, out)
	}
	// Without the CA the server's certificate is not trusted.
	if out, err := terminalCmd("enroll", "--server", syncURL, "--credential-file", filepath.Join(dir, "other2"),
		"--code", code.Code); err == nil || !strings.Contains(out, "certificate") {
		t.Errorf("enroll without --ca-file: %v\n%s", err, out)
	}

	// Run the agent.
	feedAddr := freeAddr(t)
	termNotify := newNotifySocket(t)
	var termLog syncBuffer
	agent := exec.Command(bin, "run", "--server", syncURL, "--ca-file", pki.caFile, "--credential-file", credFile,
		"--outbox", filepath.Join(dir, "state", "outbox.db"), "--reader", "feed:"+feedAddr, "--health-listen", "127.0.0.1:0",
		"--ping-interval", "500ms", "--pong-wait", "2s", "--ack-timeout", "3s", "--max-backoff", "1s", "--status-interval", "300ms")
	agent.Env = terminalEnv("NOTIFY_SOCKET="+termNotify.path, "WATCHDOG_USEC=400000")
	agent.Stdout, agent.Stderr = &termLog, &termLog
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	agentDone := make(chan error, 1)
	go func() { agentDone <- agent.Wait() }()
	defer func() {
		agent.Process.Kill()
		<-agentDone
		if t.Failed() {
			t.Logf("terminal log:\n%s", termLog.String())
			t.Logf("server log (tail):\n%s", tail(serverLog.String(), 60))
		}
	}()
	healthRe := regexp.MustCompile(`msg=health_listening addr=(\S+)`)
	var healthURL string
	waitFor(t, "the terminal's health listener", func() (bool, error) {
		m := healthRe.FindStringSubmatch(termLog.String())
		if m != nil {
			healthURL = "http://" + m[1] + "/healthz"
		}
		return m != nil, nil
	})
	waitFor(t, "READY=1 from the terminal", func() (bool, error) { return termNotify.has(sdnotify.Ready), nil })
	waitFor(t, "a watchdog ping from the terminal", func() (bool, error) { return termNotify.has(sdnotify.Watchdog), nil })
	health := func() healthReport {
		var h healthReport
		if err := getJSON(healthURL, &h); err != nil {
			t.Fatalf("GET %s: %v", healthURL, err)
		}
		return h
	}
	waitFor(t, "the terminal to connect over wss", func() (bool, error) { return health().Connected, nil })

	feed := dialFeed(t, feedAddr)
	cards := []string{"AB0000000001", "AB0000000002", "AB0000000003"}
	for _, c := range cards {
		feed.tap(t, c)
	}
	taps := func() int64 {
		var n int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM taps WHERE terminal_id = 'gate-1'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	waitFor(t, "3 taps stored", func() (bool, error) { return taps() == 3, nil })
	waitFor(t, "the taps placed on the code's site", func() (bool, error) {
		var n int64
		err := pool.QueryRow(ctx, `SELECT count(*) FROM tap_resolutions WHERE terminal_id = 'gate-1' AND site_id = $1`, siteID).Scan(&n)
		return n == 3, err
	})
	waitFor(t, "the outbox to drain", func() (bool, error) {
		h := health()
		return h.OutboxDepth == 0 && h.LastAck != nil, nil
	})
	if h := health(); !h.OK || h.TerminalID != "gate-1" || h.ReaderState != "ok" || h.ClockOffset == nil {
		t.Errorf("health = %+v", h)
	}

	// Metrics: the expected series, and nothing personal.
	metricsURL := "http://" + metricsAddr + "/metrics"
	var metrics string
	waitFor(t, "metrics of the session", func() (bool, error) {
		_, metrics = get(t, metricsURL)
		// The gauge follows the terminal's next Status after the Ack.
		return strings.Contains(metrics, "liggare_taps_acknowledged_total 3") &&
			strings.Contains(metrics, "liggare_terminals_outbox_nonempty 0"), nil
	})
	for _, want := range []string{
		"liggare_connected_terminals 1",
		"liggare_taps_received_total 3",
		"liggare_batches_received_total",
		`liggare_taps_rejected_total{code="invalid"} 0`,
		"liggare_tap_conflicts_total 0",
		"liggare_ingest_latency_seconds_count",
		"liggare_commit_group_taps_count",
		"liggare_commit_group_batches_count",
		"liggare_terminal_outbox_depth_count",
		"liggare_terminal_clock_offset_abs_seconds_count",
		"liggare_terminals_outbox_nonempty 0",
		"liggare_terminals_clock_off{threshold_seconds=\"30\"} 0",
		"liggare_reconcile_inbox_rows",
		"liggare_reconcile_lag_seconds",
		"liggare_live_clients 0",
		`liggare_enrollment_requests_total{result="ok",route="/v1/enroll"} 1`,
		`liggare_http_requests_total{code="101",route="/v1/sync"}`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	_, secret, _ := strings.Cut(cred1, ".")
	for _, personal := range append([]string{cred1, secret, code.Code, "gate-1", "terminal_id"}, cards...) {
		if strings.Contains(metrics, personal) {
			t.Errorf("metrics hold %q", personal)
		}
	}
	for _, path := range []string{"/livez", "/readyz"} {
		if status, _ := get(t, "http://"+metricsAddr+path); status != http.StatusOK {
			t.Errorf("GET %s on the metrics listener = %d", path, status)
		}
	}
	// Logs: a request id on HTTP requests, the terminal id on connection
	// lines, no card id or credential anywhere.
	logs := serverLog.String()
	if !regexp.MustCompile(`"msg":"http_request","request_id":"[0-9a-f]{16}","method":"POST","route":"POST /v1/enroll"`).MatchString(logs) {
		t.Errorf("no http_request line with a request id for the enrollment")
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"msg":"sync_`) && !strings.Contains(line, `"terminal_id":"gate-1"`) && !strings.Contains(line, "sync_auth_refused") {
			t.Errorf("connection log line without terminal_id: %s", line)
		}
		for _, personal := range append([]string{secret, code.Code}, cards...) {
			if strings.Contains(line, personal) {
				t.Errorf("log line holds %q: %s", personal, line)
			}
		}
	}

	// Rotation while the agent runs.
	_, oldID, err := auth.NewTerminals(pool).Authenticate(ctx, cred1)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := terminalCmd("rotate", "--server", syncURL, "--ca-file", pki.caFile, "--credential-file", credFile); err != nil {
		t.Fatalf("liggare-terminal rotate: %v\n%s", err, out)
	}
	cred2 := readCred(t, credFile)
	if cred2 == cred1 || !strings.HasPrefix(cred2, "gate-1.") {
		t.Fatalf("credential after rotation %q", cred2)
	}
	if fi, _ := os.Stat(credFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("rotated credential mode %v", fi.Mode().Perm())
	}
	if active, err := auth.NewTerminals(pool).Active(ctx, oldID); err != nil || active {
		t.Errorf("old credential active = %v, %v after rotation", active, err)
	}
	if status := dialStatus(t, syncURL, pki.caFile, cred1); status != http.StatusUnauthorized {
		t.Errorf("upgrade with the rotated-out credential = %d, want 401", status)
	}
	feed.tap(t, "AB0000000004")
	waitFor(t, "a tap stored with the rotated credential", func() (bool, error) { return taps() == 4, nil })

	// Revocation: the live connection ends, taps stay in the outbox, the
	// upgrade refuses the credential.
	if _, err := store.Revoke(ctx, "gate-1", "cli:test"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revoked terminal to be disconnected", func() (bool, error) { return !health().Connected, nil })
	if status := dialStatus(t, syncURL, pki.caFile, cred2); status != http.StatusUnauthorized {
		t.Errorf("upgrade with a revoked credential = %d, want 401", status)
	}
	feed.tap(t, "AB0000000005")
	feed.tap(t, "AB0000000006")
	if h := health(); h.OutboxDepth != 2 || h.Connected {
		t.Errorf("health of the revoked terminal = %+v, want 2 taps waiting, not connected", h)
	}
	if n := taps(); n != 4 {
		t.Errorf("%d taps stored while revoked, want 4", n)
	}

	// Re-enrollment under the same id keeps the outbox: the taps buffered
	// meanwhile are uploaded under their identities, in the same epoch.
	code2, err := store.CreateCode(ctx, enroll.CodeRequest{SiteIdent: "1A2B3C4D5E6F7", TerminalID: "gate-1", Direction: "in", CreatedBy: "cli:test"})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := terminalCmd("enroll", "--server", syncURL, "--ca-file", pki.caFile, "--credential-file", credFile,
		"--code", code2.Code); err != nil || !strings.Contains(out, "enrolled again") {
		t.Fatalf("re-enroll: %v\n%s", err, out)
	}
	waitFor(t, "the buffered taps uploaded after re-enrollment", func() (bool, error) { return taps() == 6, nil })
	var epochs, maxSeq int64
	if err := pool.QueryRow(ctx, `SELECT count(DISTINCT store_epoch), max(seq) FROM taps WHERE terminal_id = 'gate-1'`).Scan(&epochs, &maxSeq); err != nil {
		t.Fatal(err)
	}
	if epochs != 1 || maxSeq != 6 {
		t.Errorf("taps in %d epochs up to seq %d, want 1 epoch, seq 1-6", epochs, maxSeq)
	}

	// Graceful stops: SIGTERM to the agent, cancellation to the server.
	agent.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-agentDone:
		agentDone <- err
		if err != nil {
			t.Errorf("agent exit after SIGTERM: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("agent did not stop")
	}
	waitFor(t, "STOPPING=1 from the terminal", func() (bool, error) { return termNotify.has(sdnotify.Stopping), nil })
	stopServer()
	if err := <-srvDone; err != nil {
		t.Errorf("Run: %v", err)
	}
	waitFor(t, "STOPPING=1 from the server", func() (bool, error) { return serverNotify.has(sdnotify.Stopping), nil })
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

func readCred(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// dialStatus tries a sync upgrade and returns the HTTP status.
func dialStatus(t *testing.T, url, caFile, cred string) int {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	d := websocket.Dialer{TLSClientConfig: &tls.Config{RootCAs: roots}, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.Dial(url, http.Header{"Authorization": {"Bearer " + cred}})
	if err == nil {
		ws.Close()
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

// feedConn presents cards to the terminal's feed reader.
type feedConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialFeed(t *testing.T, addr string) *feedConn {
	t.Helper()
	var conn net.Conn
	waitFor(t, "the terminal's feed reader", func() (bool, error) {
		var err error
		conn, err = net.Dial("tcp", addr)
		return err == nil, nil
	})
	t.Cleanup(func() { conn.Close() })
	return &feedConn{conn: conn, r: bufio.NewReader(conn)}
}

// tap presents a card and waits for the kiosk to say it was recorded.
func (f *feedConn) tap(t *testing.T, card string) {
	t.Helper()
	f.conn.SetDeadline(time.Now().Add(waitTimeout))
	if _, err := fmt.Fprintln(f.conn, card); err != nil {
		t.Fatal(err)
	}
	line, err := f.r.ReadString('\n')
	if err != nil {
		t.Fatalf("feed: %v", err)
	}
	if !strings.HasPrefix(line, "ok ") {
		t.Fatalf("tap %s answered %q", card, line)
	}
}

func TestCheckSyncURL(t *testing.T) {
	for _, ok := range []string{"", "wss://liggare.example.se/v1/sync", "ws://10.0.0.5:8080/v1/sync"} {
		if err := checkSyncURL(ok); err != nil {
			t.Errorf("checkSyncURL(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"liggare.example.se", "https://liggare.example.se/v1/sync", "wss:///v1/sync", "wss://a b/"} {
		if err := checkSyncURL(bad); err == nil {
			t.Errorf("checkSyncURL(%q) = nil, want an error", bad)
		}
	}
}
