package uplink

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/outbox"
)

type fixedClock struct{}

func (fixedClock) Now() syncproto.Clock {
	return syncproto.Clock{WallMicros: time.Now().UnixMicro(), BootID: "boot", MonoNanos: time.Now().UnixNano()}
}

// peer is a scripted server end of the protocol over a real websocket. It
// holds taps in memory the way the real server holds them in PostgreSQL:
// each identity once, a contiguous cursor, an Ack after "commit".
type peer struct {
	t *testing.T

	mu       sync.Mutex
	held     map[uint64]syncproto.Tap
	cursor   uint64
	sessions int
	maxSeen  int // most batches seen in flight at once
	silent   bool
	hellos   []*syncproto.Hello
	statuses int
}

func newPeer(t *testing.T) (*peer, string) {
	p := &peer{t: t, held: make(map[uint64]syncproto.Tap)}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	return p, "ws" + strings.TrimPrefix(srv.URL, "http") + syncproto.SyncPath
}

func (p *peer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer K1.secret" {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer ws.Close()
	read := func() syncproto.Message {
		_, data, err := ws.ReadMessage()
		if err != nil {
			return nil
		}
		m, err := syncproto.Decode(data)
		if err != nil {
			p.t.Errorf("peer: Decode: %v", err)
			return nil
		}
		return m
	}
	write := func(m syncproto.Message) {
		data, err := syncproto.Encode(m)
		if err != nil {
			p.t.Errorf("peer: Encode: %v", err)
			return
		}
		ws.WriteMessage(websocket.BinaryMessage, data)
	}
	h, ok := read().(*syncproto.Hello)
	if !ok {
		return
	}
	p.mu.Lock()
	p.sessions++
	p.hellos = append(p.hellos, h)
	cursor := p.cursor
	p.mu.Unlock()
	write(&syncproto.Welcome{ProtocolVersion: 1, ServerMicros: time.Now().UnixMicro(), AckedThrough: cursor, MaxBatchTaps: 50, MaxInFlight: 4})
	msgs := make(chan syncproto.Message)
	go func() {
		defer close(msgs)
		for {
			m := read()
			if m == nil {
				return
			}
			msgs <- m
		}
	}()
	// Batches are answered in bursts of up to four, or after a short lull,
	// so the terminal must pipeline to make progress quickly.
	var queued []*syncproto.Batch
	lull := time.NewTimer(time.Hour)
	for {
		select {
		case m, ok := <-msgs:
			if !ok {
				return
			}
			switch m := m.(type) {
			case *syncproto.Status:
				p.mu.Lock()
				p.statuses++
				p.mu.Unlock()
			case *syncproto.Batch:
				p.mu.Lock()
				silent := p.silent
				p.mu.Unlock()
				if silent {
					continue // takes batches and never answers
				}
				queued = append(queued, m)
				p.mu.Lock()
				p.maxSeen = max(p.maxSeen, len(queued))
				p.mu.Unlock()
				if len(queued) >= 4 {
					p.answer(queued, write)
					queued = nil
				} else {
					lull.Reset(20 * time.Millisecond)
				}
			}
		case <-lull.C:
			p.answer(queued, write)
			queued = nil
		}
	}
}

func (p *peer) answer(batches []*syncproto.Batch, write func(syncproto.Message)) {
	for _, b := range batches {
		p.mu.Lock()
		for _, tap := range b.Taps {
			if old, ok := p.held[tap.Seq]; ok && old != tap {
				p.t.Errorf("peer: seq %d sent with different content", tap.Seq)
			}
			p.held[tap.Seq] = tap
		}
		for {
			if _, ok := p.held[p.cursor+1]; !ok {
				break
			}
			p.cursor++
		}
		ack := &syncproto.Ack{BatchID: b.BatchID, AckedThrough: p.cursor}
		p.mu.Unlock()
		write(ack)
	}
}

func openOutbox(t *testing.T) *outbox.Outbox {
	t.Helper()
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	return ob
}

func appendTaps(t *testing.T, ob *outbox.Outbox, n int) {
	t.Helper()
	for range n {
		if _, err := ob.Append(context.Background(), syncproto.Tap{CardID: "AB0000000001", Clock: fixedClock{}.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, cfg Config, ob *outbox.Outbox) (*Uplink, context.CancelFunc) {
	t.Helper()
	cfg.Credential = "K1.secret"
	cfg.MinBackoff = 10 * time.Millisecond
	cfg.MaxBackoff = 50 * time.Millisecond
	u, err := New(cfg, ob, fixedClock{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return u, cancel
}

// waitFor polls cond until it holds or a generous deadline passes; the
// deadline bounds waiting, it does not judge speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestUplinkDrainsOutboxPipelined(t *testing.T) {
	p, url := newPeer(t)
	ob := openOutbox(t)
	appendTaps(t, ob, 1000)
	run(t, Config{URL: url, MaxBatchTaps: 100, StatusInterval: 20 * time.Millisecond}, ob)
	waitFor(t, "outbox empty", func() bool { return ob.Stats().Depth == 0 })
	// Taps made while connected go up too.
	appendTaps(t, ob, 10)
	waitFor(t, "new taps acknowledged", func() bool { return ob.Stats().Depth == 0 && ob.Stats().AckedThrough == 1010 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.held) != 1010 || p.cursor != 1010 {
		t.Errorf("peer holds %d taps, cursor %d; want 1010, 1010", len(p.held), p.cursor)
	}
	if p.maxSeen < 4 {
		t.Errorf("at most %d batches in flight; want the Welcome's window of 4", p.maxSeen)
	}
	if p.hellos[0].StoreEpoch != ob.Epoch() || p.hellos[0].OutboxDepth != 1000 || p.hellos[0].TerminalID != "K1" {
		t.Errorf("Hello = %+v", p.hellos[0])
	}
}

func TestUplinkResumesFromWelcomeCursor(t *testing.T) {
	p, url := newPeer(t)
	ob := openOutbox(t)
	appendTaps(t, ob, 30)
	// The server already holds 1..20 (an Ack the terminal never got).
	for _, tap := range mustPending(t, ob, 0, 20) {
		p.held[tap.Seq] = tap
	}
	p.cursor = 20
	run(t, Config{URL: url}, ob)
	waitFor(t, "outbox empty", func() bool { return ob.Stats().Depth == 0 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cursor != 30 {
		t.Errorf("peer cursor = %d, want 30", p.cursor)
	}
}

func TestUplinkReconnectsWhenAcksStop(t *testing.T) {
	p, url := newPeer(t)
	p.silent = true
	ob := openOutbox(t)
	appendTaps(t, ob, 20)
	run(t, Config{URL: url, AckTimeout: 200 * time.Millisecond}, ob)
	waitFor(t, "a second session", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.sessions >= 2 })
	if ob.Stats().Depth != 20 {
		t.Fatalf("outbox depth = %d while nothing was acknowledged, want 20", ob.Stats().Depth)
	}
	p.mu.Lock()
	p.silent = false
	p.mu.Unlock()
	waitFor(t, "outbox empty", func() bool { return ob.Stats().Depth == 0 })
}

func TestUplinkRefusedCredentialKeepsTaps(t *testing.T) {
	_, url := newPeer(t)
	ob := openOutbox(t)
	appendTaps(t, ob, 5)
	u, err := New(Config{URL: url, Credential: "K1.wrong"}, ob, fixedClock{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.session(context.Background()); err != ErrUnauthorized {
		t.Fatalf("session with a wrong credential = %v, want ErrUnauthorized", err)
	}
	if ob.Stats().Depth != 5 {
		t.Errorf("outbox depth = %d, want 5", ob.Stats().Depth)
	}
}

func mustPending(t *testing.T, ob *outbox.Outbox, after uint64, n int) []syncproto.Tap {
	t.Helper()
	taps, err := ob.Pending(after, n)
	if err != nil {
		t.Fatal(err)
	}
	return taps
}
