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

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/cardcache"
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

	// cards scripts the card data of each session, in order; sessions
	// beyond the script get none. The peer sends a script whatever version
	// it welcomed, the way a broken server would.
	cards []cardScript
	// cardAcks are the cursors of the CardAcks received, in order.
	cardAcks []uint64
	// onCardAck runs when a CardAck arrives, before the next update is sent.
	onCardAck func(cursor uint64)
}

// cardScript is the card data of one session: updates, each sent after the
// CardAck of the one before; then, with hangUp, the connection is dropped
// the way a network failure drops it.
type cardScript struct {
	updates []*syncproto.CardUpdate
	hangUp  bool
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
	var script cardScript
	if p.sessions <= len(p.cards) {
		script = p.cards[p.sessions-1]
	}
	p.mu.Unlock()
	version, err := syncproto.Negotiate(h.ProtocolVersion)
	if err != nil {
		p.t.Errorf("peer: %v", err)
		return
	}
	write(&syncproto.Welcome{ProtocolVersion: version, ServerMicros: time.Now().UnixMicro(), AckedThrough: cursor, MaxBatchTaps: 50, MaxInFlight: 4})
	cardsSent := 0
	if len(script.updates) > 0 {
		write(script.updates[0])
		cardsSent = 1
	} else if script.hangUp {
		return
	}
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
			case *syncproto.CardAck:
				p.mu.Lock()
				p.cardAcks = append(p.cardAcks, m.Cursor)
				onAck := p.onCardAck
				p.mu.Unlock()
				if cardsSent == 0 || m.Cursor != script.updates[cardsSent-1].Cursor {
					p.t.Errorf("peer: CardAck %d, sent %d updates of %+v", m.Cursor, cardsSent, script.updates)
				}
				if onAck != nil {
					onAck(m.Cursor)
				}
				if cardsSent < len(script.updates) {
					write(script.updates[cardsSent])
					cardsSent++
				} else if script.hangUp {
					return
				}
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
	// Without a card cache the terminal speaks version 1: no card data.
	if h := p.hellos[0]; h.StoreEpoch != ob.Epoch() || h.OutboxDepth != 1000 || h.TerminalID != "K1" || h.ProtocolVersion != 1 || h.CardCursor != 0 {
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

func openCards(t *testing.T) *cardcache.Cache {
	t.Helper()
	c, err := cardcache.Open(filepath.Join(t.TempDir(), "cards.db"), cardcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func cardInfo(id, status string) syncproto.CardInfo {
	return syncproto.CardInfo{CardID: id, Name: "Namn " + id, Employer: "Bygg AB", Status: status}
}

// cacheAt is what the peer saw of the terminal's card cache when a CardAck
// arrived: the update must already be stored.
type cacheAt struct {
	Ack, Cursor uint64
	Len         int
	Loaded      bool
}

func TestUplinkCardSnapshotAndChanges(t *testing.T) {
	p, url := newPeer(t)
	ob := openOutbox(t)
	cards := openCards(t)
	// The cache holds an older snapshot.
	old := &syncproto.CardUpdate{Cursor: 40, Reset: true, Final: true, Cards: []syncproto.CardInfo{cardInfo("AA0000000009", syncproto.CardActive)}}
	if err := cards.Apply(old); err != nil {
		t.Fatal(err)
	}
	appendTaps(t, ob, 30)
	page1 := &syncproto.CardUpdate{Cursor: 50, Reset: true, Cards: []syncproto.CardInfo{
		cardInfo("AA0000000001", syncproto.CardActive), cardInfo("AA0000000002", syncproto.CardBlockedID06),
	}}
	page2 := &syncproto.CardUpdate{Cursor: 50, Final: true, Cards: []syncproto.CardInfo{
		cardInfo("04A1B2C3D4E580", syncproto.CardActive),
	}}
	changes := &syncproto.CardUpdate{Cursor: 53, Final: true, Cards: []syncproto.CardInfo{
		cardInfo("AA0000000001", syncproto.CardBlockedSite), {CardID: "AA0000000002", Removed: true},
		cardInfo("AA0000000003", syncproto.CardNotActivated),
	}}
	p.cards = []cardScript{
		// The connection is lost after the snapshot's first page.
		{updates: []*syncproto.CardUpdate{page1}, hangUp: true},
		// The whole snapshot again, then a change set.
		{updates: []*syncproto.CardUpdate{page1, page2, changes}, hangUp: true},
		// Nothing: the Hello shows where the cache is.
	}
	var seen []cacheAt
	p.onCardAck = func(ack uint64) {
		at := cacheAt{ack, cards.Cursor(), cards.Len(), cards.Loaded()}
		p.mu.Lock()
		seen = append(seen, at)
		p.mu.Unlock()
	}
	u, _ := run(t, Config{URL: url, Cards: cards}, ob)
	waitFor(t, "a third session and an empty outbox", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return p.sessions >= 3 && ob.Stats().Depth == 0
	})

	p.mu.Lock()
	defer p.mu.Unlock()
	var hellos [][2]uint64
	for _, h := range p.hellos[:3] {
		hellos = append(hellos, [2]uint64{uint64(h.ProtocolVersion), h.CardCursor})
	}
	// The second Hello asks for a snapshot again (cursor 0): the first
	// session ended after the new snapshot's page 1.
	if diff := cmp.Diff([][2]uint64{{2, 40}, {2, 0}, {2, 53}}, hellos); diff != "" {
		t.Errorf("Hellos' (version, card cursor) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]uint64{50, 50, 50, 53}, p.cardAcks); diff != "" {
		t.Errorf("CardAcks (-want +got):\n%s", diff)
	}
	want := []cacheAt{
		// Page 1, then the connection is lost: the kiosk keeps answering
		// from the old snapshot (1 card), the cursor says "resend".
		{Ack: 50, Cursor: 0, Len: 1, Loaded: true},
		{Ack: 50, Cursor: 0, Len: 1, Loaded: true},  // page 1 again
		{Ack: 50, Cursor: 50, Len: 3, Loaded: true}, // page 2, Final
		{Ack: 53, Cursor: 53, Len: 3, Loaded: true}, // the change set
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("cache when each CardAck arrived (-want +got):\n%s", diff)
	}
	got := map[string]string{}
	for _, id := range []string{"AA0000000009", "AA0000000001", "AA0000000002", "AA0000000003", "04A1B2C3D4E580"} {
		if ci, ok := cards.Lookup(id); ok {
			got[id] = ci.Status
		}
	}
	wantCards := map[string]string{"AA0000000001": "blocked_site", "AA0000000003": "not_activated", "04A1B2C3D4E580": "active"}
	if diff := cmp.Diff(wantCards, got); diff != "" {
		t.Errorf("card cache (-want +got):\n%s", diff)
	}
	if ci, _ := cards.Lookup("AA0000000003"); ci.Name != "Namn AA0000000003" || ci.Employer != "Bygg AB" {
		t.Errorf("Lookup(AA0000000003) = %+v, want name and employer", ci)
	}
	if u.State().LastCardUpdate.IsZero() {
		t.Error("State().LastCardUpdate is zero after card updates")
	}
	if len(p.held) != 30 {
		t.Errorf("peer holds %d taps, want 30: card data must not hold up the upload", len(p.held))
	}
}

// TestUplinkCardUpdateNotStoredNotAcked: an update the cache cannot store
// ends the session without a CardAck, so the server sends it again.
func TestUplinkCardUpdateNotStoredNotAcked(t *testing.T) {
	p, url := newPeer(t)
	ob := openOutbox(t)
	cards := openCards(t)
	u := &syncproto.CardUpdate{Cursor: 7, Reset: true, Final: true, Cards: []syncproto.CardInfo{cardInfo("AA0000000001", "active")}}
	p.cards = []cardScript{{updates: []*syncproto.CardUpdate{u}}, {updates: []*syncproto.CardUpdate{u}}}
	cards.Close() // every Apply fails
	run(t, Config{URL: url, Cards: cards}, ob)
	waitFor(t, "a third session", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.sessions >= 3 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cardAcks) != 0 {
		t.Errorf("CardAcks %v for updates the cache could not store, want none", p.cardAcks)
	}
}

// TestUplinkCardUpdateWithoutCache: a terminal without a card cache offers
// version 1; a server sending card data anyway ends the session.
func TestUplinkCardUpdateWithoutCache(t *testing.T) {
	p, url := newPeer(t)
	ob := openOutbox(t)
	u := &syncproto.CardUpdate{Cursor: 7, Reset: true, Final: true}
	p.cards = []cardScript{{updates: []*syncproto.CardUpdate{u}}}
	run(t, Config{URL: url}, ob)
	waitFor(t, "a second session", func() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.sessions >= 2 })
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.cardAcks) != 0 || p.hellos[0].ProtocolVersion != 1 {
		t.Errorf("CardAcks %v, Hello version %d; want none, 1", p.cardAcks, p.hellos[0].ProtocolVersion)
	}
}
