package syncserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/downlink"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/syncproto"
)

type testServer struct {
	pool      *pgxpool.Pool
	url       string
	terminals *auth.Terminals
	sync      *Server
	// revoked receives what the credential cache reports, after the
	// server has acted on it (serverOptions.cache).
	revoked chan []int64
}

// serverOptions change startServer's defaults.
type serverOptions struct {
	// cache checks credentials with a running auth.CredentialCache, and
	// sets the periodic recheck so long that only the cache's report can
	// end a revoked session.
	cache            bool
	admissionWorkers int
}

func startServer(t *testing.T) *testServer { return startServerWith(t, serverOptions{}) }

func startServerWith(t *testing.T, o serverOptions) *testServer {
	t.Helper()
	pool := pgtest.New(t)
	store := ingest.NewStore(pool, nil)
	committer := ingest.NewCommitter(store, ingest.CommitterOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- committer.Run(ctx) }()
	terminals := auth.NewTerminals(pool)
	feed := downlink.NewFeed(pool, nil)
	go feed.Run(ctx)
	cfg := Config{Terminals: terminals, Store: store, Committer: committer, Cards: feed, CardInterval: 50 * time.Millisecond,
		CredentialRecheck: 100 * time.Millisecond, AdmissionWorkers: o.admissionWorkers}
	var s *Server
	revoked := make(chan []int64, 16)
	if o.cache {
		cfg.CredentialRecheck = time.Hour
		cfg.Credentials = auth.NewCredentialCache(terminals, auth.CacheOptions{OnRevoke: func(ids []int64) {
			s.Revoked(ids)
			revoked <- ids
		}})
	}
	s = New(cfg)
	if o.cache {
		go cfg.Credentials.Run(ctx)
		<-cfg.Credentials.Loaded()
	}
	hs := httptest.NewServer(s)
	t.Cleanup(func() {
		hs.Close()
		sctx, scancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer scancel()
		s.Shutdown(sctx)
		cancel()
		<-done
	})
	return &testServer{pool: pool, url: "ws" + strings.TrimPrefix(hs.URL, "http") + Path, terminals: terminals, sync: s, revoked: revoked}
}

func (ts *testServer) credential(t *testing.T, id string) string {
	t.Helper()
	cred, err := ts.terminals.Create(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

func (ts *testServer) dial(t *testing.T, cred string) *websocket.Conn {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(ts.url, http.Header{"Authorization": {"Bearer " + cred}})
	if err != nil {
		t.Fatalf("dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { ws.Close() })
	return ws
}

func send(t *testing.T, ws *websocket.Conn, m syncproto.Message) {
	t.Helper()
	data, err := syncproto.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, data); err != nil {
		t.Fatalf("write %s: %v", m.MsgType(), err)
	}
}

func recv(t *testing.T, ws *websocket.Conn) syncproto.Message {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, data, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	m, err := syncproto.Decode(data)
	if err != nil {
		t.Fatalf("Decode(%x): %v", data, err)
	}
	return m
}

// expectClosed reads until the server closes the connection.
func expectClosed(t *testing.T, ws *websocket.Conn) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			var ne interface{ Timeout() bool }
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("connection still open: %v", err)
			}
			return
		}
	}
}

func hello(id string) *syncproto.Hello {
	return &syncproto.Hello{
		ProtocolVersion: syncproto.ProtocolVersion,
		TerminalID:      id,
		StoreEpoch:      42,
		AgentVersion:    "test",
		Clock:           syncproto.Clock{WallMicros: time.Now().UnixMicro(), BootID: "b", MonoNanos: 1},
	}
}

func taps(first, last uint64) []syncproto.Tap {
	var out []syncproto.Tap
	for s := first; s <= last; s++ {
		out = append(out, syncproto.Tap{Seq: s, CardID: "AB0000000001",
			Clock: syncproto.Clock{WallMicros: time.Now().UnixMicro(), BootID: "b", MonoNanos: int64(s)}})
	}
	return out
}

// session opens a session with a new credential and returns the Welcome.
func session(t *testing.T, ts *testServer, id string) (*websocket.Conn, *syncproto.Welcome) {
	t.Helper()
	return sessionWith(t, ts, id, ts.credential(t, id))
}

// sessionWith opens a session with cred and returns the Welcome.
func sessionWith(t *testing.T, ts *testServer, id, cred string) (*websocket.Conn, *syncproto.Welcome) {
	t.Helper()
	ws := ts.dial(t, cred)
	send(t, ws, hello(id))
	w, ok := recv(t, ws).(*syncproto.Welcome)
	if !ok {
		t.Fatal("no Welcome")
	}
	return ws, w
}

func TestSessionUploadAndResume(t *testing.T) {
	ts := startServer(t)
	ws, w := session(t, ts, "T1")
	if w.AckedThrough != 0 || w.ProtocolVersion != syncproto.ProtocolVersion || w.MaxInFlight == 0 || w.MaxBatchTaps == 0 {
		t.Fatalf("Welcome = %+v", w)
	}
	// Pipelined: three batches before reading any Ack.
	for i := uint64(0); i < 3; i++ {
		send(t, ws, &syncproto.Batch{BatchID: i + 1, Taps: taps(i*10+1, i*10+10)})
	}
	var acked uint64
	for range 3 {
		a := recv(t, ws).(*syncproto.Ack)
		acked = max(acked, a.AckedThrough)
	}
	if acked != 30 {
		t.Fatalf("AckedThrough = %d, want 30", acked)
	}
	send(t, ws, &syncproto.Status{OutboxDepth: 3, ReaderState: "ok", Clock: syncproto.Clock{WallMicros: time.Now().UnixMicro()}})
	ws.Close()
	// A new session resumes from the cursor.
	ws2 := ts.dial(t, ts.credential(t, "T1"))
	send(t, ws2, hello("T1"))
	if w := recv(t, ws2).(*syncproto.Welcome); w.AckedThrough != 30 {
		t.Fatalf("resumed Welcome.AckedThrough = %d, want 30", w.AckedThrough)
	}
}

func TestBadInputGetsClearErrorAndClose(t *testing.T) {
	ts := startServer(t)
	// A healthy terminal keeps working through all of it.
	good, _ := session(t, ts, "GOOD")

	big := make([]byte, syncproto.MaxMessageBytes+1)
	unknown, _ := cbor.Marshal(map[int]any{1: 99, 2: map[int]any{}})
	for _, tc := range []struct {
		name    string
		first   func(t *testing.T, ws *websocket.Conn) // sent instead of / after Hello
		hello   bool                                   // send a valid Hello first
		want    syncproto.ErrorCode
		wantMsg string
	}{
		{"oversized message", func(t *testing.T, ws *websocket.Conn) {
			ws.WriteMessage(websocket.BinaryMessage, big)
		}, true, syncproto.ErrorCodeTooLarge, "larger than"},
		{"malformed CBOR", func(t *testing.T, ws *websocket.Conn) {
			ws.WriteMessage(websocket.BinaryMessage, []byte{0xa2, 0x01})
		}, true, syncproto.ErrorCodeMalformed, "malformed"},
		{"unknown message type", func(t *testing.T, ws *websocket.Conn) {
			ws.WriteMessage(websocket.BinaryMessage, unknown)
		}, true, syncproto.ErrorCodeUnknownType, "unknown message type"},
		{"text message", func(t *testing.T, ws *websocket.Conn) {
			ws.WriteMessage(websocket.TextMessage, []byte("hello"))
		}, true, syncproto.ErrorCodeMalformed, "binary"},
		{"too-old protocol version", func(t *testing.T, ws *websocket.Conn) {
			h := hello("BAD")
			h.ProtocolVersion = syncproto.MinProtocolVersion - 1
			send(t, ws, h)
		}, false, syncproto.ErrorCodeVersion, "unsupported protocol version"},
		{"Hello for another terminal", func(t *testing.T, ws *websocket.Conn) {
			send(t, ws, hello("GOOD"))
		}, false, syncproto.ErrorCodeUnauthorized, "credential is for terminal"},
		{"Batch before Hello", func(t *testing.T, ws *websocket.Conn) {
			send(t, ws, &syncproto.Batch{BatchID: 1, Taps: taps(1, 1)})
		}, false, syncproto.ErrorCodeUnexpected, "want Hello"},
		{"second Hello", func(t *testing.T, ws *websocket.Conn) {
			send(t, ws, hello("BAD"))
		}, true, syncproto.ErrorCodeUnexpected, "unexpected Hello"},
		{"batch out of order", func(t *testing.T, ws *websocket.Conn) {
			b := &syncproto.Batch{BatchID: 1, Taps: taps(1, 2)}
			b.Taps[0].Seq, b.Taps[1].Seq = 2, 1
			raw, _ := cbor.Marshal(b)
			env, _ := cbor.Marshal(map[int]any{1: 3, 2: cbor.RawMessage(raw)})
			ws.WriteMessage(websocket.BinaryMessage, env)
		}, true, syncproto.ErrorCodeMalformed, "strictly ascending"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ws := ts.dial(t, ts.credential(t, "BAD"))
			if tc.hello {
				send(t, ws, hello("BAD"))
				if _, ok := recv(t, ws).(*syncproto.Welcome); !ok {
					t.Fatal("no Welcome")
				}
			}
			tc.first(t, ws)
			if tc.want == syncproto.ErrorCodeTooLarge {
				// gorilla refuses a message over the read limit itself, with
				// the standard close code 1009 (message too big).
				ws.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, _, err := ws.ReadMessage()
				if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
					t.Fatalf("read after oversized message: %v, want close 1009", err)
				}
				return
			}
			e, ok := recv(t, ws).(*syncproto.Error)
			if !ok {
				t.Fatal("got no Error message")
			}
			if e.Code != tc.want || !strings.Contains(e.Message, tc.wantMsg) {
				t.Errorf("Error = %s %q, want %s containing %q", e.Code, e.Message, tc.want, tc.wantMsg)
			}
			expectClosed(t, ws)
		})
	}
	var n int
	if err := ts.pool.QueryRow(context.Background(), `SELECT count(*) FROM taps WHERE terminal_id = 'BAD'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("taps stored from bad sessions = %d, %v; want 0", n, err)
	}
	send(t, good, &syncproto.Batch{BatchID: 1, Taps: taps(1, 5)})
	if a := recv(t, good).(*syncproto.Ack); a.AckedThrough != 5 {
		t.Errorf("healthy terminal after the bad ones: Ack %+v, want AckedThrough 5", a)
	}
}

func TestCredentialsRefusedAtUpgrade(t *testing.T) {
	ts := startServer(t)
	cred := ts.credential(t, "T1")
	revoked := ts.credential(t, "T2")
	if _, err := ts.terminals.Revoke(context.Background(), "T2"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, header string }{
		{"no credential", ""},
		{"wrong secret", "Bearer T1.not-the-secret"},
		{"secret of another terminal", "Bearer T3." + strings.SplitN(cred, ".", 2)[1]},
		{"revoked", "Bearer " + revoked},
		{"not bearer", "Basic " + cred},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Authorization", tc.header)
			}
			_, resp, err := websocket.DefaultDialer.Dial(ts.url, h)
			if err == nil {
				t.Fatal("dial succeeded")
			}
			if resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("response %v, want 401", resp)
			}
			var body bytes.Buffer
			body.ReadFrom(resp.Body)
			if !strings.Contains(body.String(), "unauthorized") {
				t.Errorf("body %q does not say why", body.String())
			}
		})
	}
	ws := ts.dial(t, cred)
	send(t, ws, hello("T1"))
	if _, ok := recv(t, ws).(*syncproto.Welcome); !ok {
		t.Fatal("valid credential not welcomed")
	}
}

func TestShutdownAnswersBatchesInFlight(t *testing.T) {
	ts := startServer(t)
	ws, _ := session(t, ts, "T1")
	for i := uint64(0); i < 4; i++ {
		send(t, ws, &syncproto.Batch{BatchID: i + 1, Taps: taps(i*500+1, i*500+500)})
	}
	// Read the first Ack so at least one batch is known to be under way.
	first := recv(t, ws).(*syncproto.Ack)
	go ts.sync.Shutdown(context.Background())
	acked := first.AckedThrough
	for {
		m := recv(t, ws)
		if a, ok := m.(*syncproto.Ack); ok {
			acked = max(acked, a.AckedThrough)
			continue
		}
		e, ok := m.(*syncproto.Error)
		if !ok || e.Code != syncproto.ErrorCodeShutdown {
			t.Fatalf("got %v, want Acks then a shutdown Error", m)
		}
		break
	}
	var n uint64
	if err := ts.pool.QueryRow(context.Background(), `SELECT count(*) FROM taps`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if acked > n {
		t.Fatalf("acknowledged through %d but only %d stored", acked, n)
	}
	expectClosed(t, ws)
}

func TestCardDownlink(t *testing.T) {
	ts := startServer(t)
	ctx := context.Background()
	cred := ts.credential(t, "K1")
	for _, q := range []string{
		`INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556036-0793')`,
		`INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		 VALUES (1, 'ABCDEFGHIJ123', 'Eken', '', 'BH', '556036-0793')`,
		`INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked) VALUES (1, 'Anna', 'personnummer', '\x00', '\x01', '-')`,
		`INSERT INTO cards (org_id, card_number, person_id) VALUES (1, 'AA0000000001', 1)`,
		`INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by) VALUES ('K1', now() - interval '1 hour', 1, 'in', 'test')`,
	} {
		if _, err := ts.pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// A version 1 terminal gets no card data, and works as before.
	ws := ts.dial(t, cred)
	h := hello("K1")
	h.ProtocolVersion = 1
	send(t, ws, h)
	if w := recv(t, ws).(*syncproto.Welcome); w.ProtocolVersion != 1 {
		t.Fatalf("Welcome.ProtocolVersion = %d, want 1", w.ProtocolVersion)
	}
	send(t, ws, &syncproto.Batch{BatchID: 1, Taps: taps(1, 1)})
	if _, ok := recv(t, ws).(*syncproto.Ack); !ok {
		t.Fatal("version 1 terminal got something other than its Ack")
	}
	ws.Close()

	ws = ts.dial(t, cred)
	send(t, ws, hello("K1"))
	if w := recv(t, ws).(*syncproto.Welcome); w.ProtocolVersion != 2 {
		t.Fatalf("Welcome.ProtocolVersion = %d, want 2", w.ProtocolVersion)
	}
	u, ok := recv(t, ws).(*syncproto.CardUpdate)
	if !ok || !u.Reset || !u.Final || len(u.Cards) != 1 || u.Cards[0].Name != "Anna" {
		t.Fatalf("first card update = %+v, want a snapshot with Anna's card", u)
	}
	send(t, ws, &syncproto.CardAck{Cursor: u.Cursor})
	if _, err := ts.pool.Exec(ctx, `UPDATE cards SET status = 'blocked_id06'`); err != nil {
		t.Fatal(err)
	}
	u, ok = recv(t, ws).(*syncproto.CardUpdate)
	if !ok || u.Reset || len(u.Cards) != 1 || u.Cards[0].Status != syncproto.CardBlockedID06 {
		t.Fatalf("update after the block = %+v", u)
	}
	send(t, ws, &syncproto.CardAck{Cursor: u.Cursor})
	// Taps still flow in the same session.
	send(t, ws, &syncproto.Batch{BatchID: 2, Taps: taps(2, 3)})
	if a, ok := recv(t, ws).(*syncproto.Ack); !ok || a.AckedThrough != 3 {
		t.Fatalf("Ack = %+v", a)
	}
}

func TestRevokedCredentialEndsLiveSession(t *testing.T) {
	ts := startServer(t)
	ws, _ := session(t, ts, "T1")
	if _, err := ts.terminals.Revoke(context.Background(), "T1"); err != nil {
		t.Fatal(err)
	}
	e, ok := recv(t, ws).(*syncproto.Error)
	if !ok || e.Code != syncproto.ErrorCodeUnauthorized {
		t.Fatalf("got %v, want an Unauthorized error", e)
	}
	expectClosed(t, ws)
}

func TestCachedCredentialRevokedAtOnce(t *testing.T) {
	ts := startServerWith(t, serverOptions{cache: true})
	ctx := context.Background()
	ws, _ := session(t, ts, "T1")
	cred := ts.credential(t, "T2")
	ws2, _ := sessionWith(t, ts, "T2", cred)
	ws2.Close()
	// Only the cache's report can end the live session: the periodic
	// recheck is an hour away.
	if _, err := ts.terminals.Revoke(ctx, "T1"); err != nil {
		t.Fatal(err)
	}
	e, ok := recv(t, ws).(*syncproto.Error)
	if !ok || e.Code != syncproto.ErrorCodeUnauthorized {
		t.Fatalf("got %v, want an Unauthorized error", e)
	}
	expectClosed(t, ws)
	<-ts.revoked // T1's

	// Once reported, a revoked credential is refused at the upgrade.
	if _, err := ts.terminals.Revoke(ctx, "T2"); err != nil {
		t.Fatal(err)
	}
	<-ts.revoked
	_, resp, err := websocket.DefaultDialer.Dial(ts.url, http.Header{"Authorization": {"Bearer " + cred}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("revoked credential: dial = %v, %v; want 401", resp, err)
	}
}

// TestAdmissionLetsEverySessionIn dials many terminals at once through a
// single admission worker: every one is welcomed, including those queued
// behind connections that gave up while they waited.
func TestAdmissionLetsEverySessionIn(t *testing.T) {
	ts := startServerWith(t, serverOptions{cache: true, admissionWorkers: 1})
	const n, quitters = 60, 20
	creds := make([]string, n+quitters)
	for i := range creds {
		creds[i] = ts.credential(t, fmt.Sprintf("T%d", i))
	}
	conns := make([]*websocket.Conn, len(creds))
	for i, cred := range creds {
		conns[i] = ts.dial(t, cred)
	}
	for i, ws := range conns {
		send(t, ws, hello(fmt.Sprintf("T%d", i)))
		if i >= n {
			ws.Close() // gives up before its Welcome
		}
	}
	for i, ws := range conns[:n] {
		if _, ok := recv(t, ws).(*syncproto.Welcome); !ok {
			t.Fatalf("terminal %d: no Welcome", i)
		}
		send(t, ws, &syncproto.Batch{BatchID: 1, Taps: taps(1, 2)})
	}
	for i, ws := range conns[:n] {
		if a, ok := recv(t, ws).(*syncproto.Ack); !ok || a.AckedThrough != 2 {
			t.Fatalf("terminal %d: got %v, want Ack through 2", i, a)
		}
	}
}

// TestShutdownWhileAdmitting shuts the server down while sessions wait for
// admission: each terminal hears its Welcome and the shutdown, or only the
// shutdown, or (closed before the server read its Hello) a reset; none is
// left open, and Shutdown returns.
func TestShutdownWhileAdmitting(t *testing.T) {
	ts := startServerWith(t, serverOptions{cache: true, admissionWorkers: 1})
	const n = 40
	conns := make([]*websocket.Conn, n)
	for i := range conns {
		conns[i] = ts.dial(t, ts.credential(t, fmt.Sprintf("T%d", i)))
	}
	for i, ws := range conns {
		send(t, ws, hello(fmt.Sprintf("T%d", i)))
	}
	if err := ts.sync.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	for i, ws := range conns {
		ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		var got []string
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
					t.Fatalf("terminal %d: still open after %v", i, got)
				}
				break
			}
			m, err := syncproto.Decode(data)
			if err != nil {
				t.Fatalf("terminal %d: Decode(%x) = %v", i, data, err)
			}
			switch m := m.(type) {
			case *syncproto.Welcome:
				got = append(got, "Welcome")
			case *syncproto.Error:
				got = append(got, m.Code.String())
			default:
				got = append(got, m.MsgType().String())
			}
		}
		switch strings.Join(got, ",") {
		case "Welcome,shutdown", "shutdown", "":
		default:
			t.Errorf("terminal %d heard %v, want [Welcome] shutdown", i, got)
		}
	}
}

// TestRevokedBeforeAdmissionGetsNoWelcome: the cache has not heard of a
// revocation yet (here made in SQL, with no notification at all), so the
// upgrade succeeds; the check before admission refuses the session before
// any Welcome, so the terminal cannot store a tap.
func TestRevokedBeforeAdmissionGetsNoWelcome(t *testing.T) {
	ts := startServerWith(t, serverOptions{cache: true})
	cred := ts.credential(t, "T1")
	ws, _ := sessionWith(t, ts, "T1", cred)
	ws.Close()
	if _, err := ts.pool.Exec(context.Background(), `UPDATE terminal_credentials SET revoked_at = now() WHERE terminal_id = 'T1'`); err != nil {
		t.Fatal(err)
	}
	ws = ts.dial(t, cred) // the cache still holds the credential
	send(t, ws, hello("T1"))
	e, ok := recv(t, ws).(*syncproto.Error)
	if !ok || e.Code != syncproto.ErrorCodeUnauthorized {
		t.Fatalf("got %v, want an Unauthorized error before any Welcome", e)
	}
	expectClosed(t, ws)
}

// TestRevocationAnswersBatchesInFlight: a session whose credential is
// revoked takes no batch any more, but answers those already committing
// before its Unauthorized error, so that no stored tap goes unacknowledged.
func TestRevocationAnswersBatchesInFlight(t *testing.T) {
	ts := startServerWith(t, serverOptions{cache: true})
	ws, _ := session(t, ts, "T1")
	for i := uint64(0); i < 4; i++ {
		send(t, ws, &syncproto.Batch{BatchID: i + 1, Taps: taps(i*500+1, i*500+500)})
	}
	acked := recv(t, ws).(*syncproto.Ack).AckedThrough
	if _, err := ts.terminals.Revoke(context.Background(), "T1"); err != nil {
		t.Fatal(err)
	}
	for {
		m := recv(t, ws)
		if a, ok := m.(*syncproto.Ack); ok {
			acked = max(acked, a.AckedThrough)
			continue
		}
		if e, ok := m.(*syncproto.Error); !ok || e.Code != syncproto.ErrorCodeUnauthorized {
			t.Fatalf("got %v, want Acks then an Unauthorized error", m)
		}
		break
	}
	expectClosed(t, ws)
	var stored uint64
	if err := ts.pool.QueryRow(context.Background(), `SELECT count(*) FROM taps`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if acked != stored {
		t.Errorf("acknowledged through %d, %d stored: every stored tap must be acknowledged", acked, stored)
	}
}
