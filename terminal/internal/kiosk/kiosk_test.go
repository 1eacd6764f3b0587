package kiosk

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/inspect"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

type wallClock struct{}

func (wallClock) Now() syncproto.Clock {
	return syncproto.Clock{WallMicros: time.Now().UnixMicro(), BootID: "boot", MonoNanos: 1}
}

// link is a settable uplink state.
type link struct {
	mu sync.Mutex
	st uplink.State
}

func (l *link) State() uplink.State { l.mu.Lock(); defer l.mu.Unlock(); return l.st }
func (l *link) set(st uplink.State) { l.mu.Lock(); l.st = st; l.mu.Unlock() }

// terminal is a kiosk as liggare-terminal wires it: a real outbox, card
// cache and tap journal, the agent's Observe feeding the journal and the
// screen, the screen served on a loopback port.
type terminal struct {
	agent   *agent.Agent
	screen  *Screen
	link    *link
	url     string
	ob      *outbox.Outbox
	journal *inspect.Journal
	cards   *cardcache.Cache
}

func startTerminal(t *testing.T, inspectHandler func(*terminal) http.Handler) *terminal {
	t.Helper()
	dir := t.TempDir()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	cards, err := cardcache.Open(filepath.Join(dir, "cards.db"), cardcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cards.Close() })
	if err := cards.Apply(&syncproto.CardUpdate{Cursor: 1, Reset: true, Final: true, Cards: []syncproto.CardInfo{
		{CardID: "AA0000000001", Name: "Åsa Öberg", Employer: "Bygg & Betong AB", Status: syncproto.CardActive},
		{CardID: "CC0000000003", Name: "Cecilia Ek", Employer: "El Öst AB", Status: syncproto.CardBlockedID06},
	}}); err != nil {
		t.Fatal(err)
	}
	journal, err := inspect.OpenJournal(filepath.Join(dir, "journal.db"), inspect.JournalOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { journal.Close() })
	tm := &terminal{link: &link{}, ob: ob, journal: journal, cards: cards}
	cfg := Config{Outbox: ob, Link: tm.link.State, TerminalID: "K1", StatusEvery: 20 * time.Millisecond}
	if inspectHandler != nil {
		cfg.Inspect = inspectHandler(tm)
	}
	tm.screen = New(cfg)
	tm.agent = &agent.Agent{Outbox: ob, Cards: cards, Clock: wallClock{}, Logger: slog.New(slog.DiscardHandler),
		Observe: func(o agent.Observation) { tm.screen.Show(o, string(journal.Add(o))) }}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tm.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tm.screen.Run(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return tm
}

func (tm *terminal) tap(card string) tapsource.Feedback {
	return tm.agent.Record(context.Background(), tapsource.Read{CardID: card})
}

// stream reads server-sent events.
type stream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

func openStream(t *testing.T, url string) *stream {
	t.Helper()
	resp, err := http.Get(url + "/events")
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("GET /events = %d, %q", resp.StatusCode, ct)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return &stream{body: resp.Body, r: bufio.NewReader(resp.Body)}
}

// next returns the next event named name, skipping others.
func (s *stream) next(t *testing.T, name string, v any) {
	t.Helper()
	var ev, data string
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading events: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = line[len("event: "):]
		case strings.HasPrefix(line, "data: "):
			data = line[len("data: "):]
		case line == "" && ev != "":
			if ev == name {
				if err := json.Unmarshal([]byte(data), v); err != nil {
					t.Fatalf("event %s: %v", ev, err)
				}
				return
			}
			ev, data = "", ""
		}
	}
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

func TestPageAndLiveEvents(t *testing.T) {
	tm := startTerminal(t, nil)
	code, body := get(t, tm.url+"/")
	for _, want := range []string{"Blippa ditt ID06-kort", "Tap your ID06 card", "Ingen nätverksanslutning", `href="/kiosk.css"`, `src="/kiosk.js"`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET / = %d, lacks %q", code, want)
		}
	}
	if strings.Contains(body, "http://") || strings.Contains(body, "https://") {
		t.Errorf("the page refers to something outside the kiosk:\n%s", body)
	}
	for _, asset := range []string{"/kiosk.css", "/kiosk.js"} {
		if code, b := get(t, tm.url+asset); code != 200 || len(b) < 100 {
			t.Errorf("GET %s = %d, %d bytes", asset, code, len(b))
		}
	}

	ev := openStream(t, tm.url)
	var st StatusView
	ev.next(t, "status", &st)
	if st.Kind != "offline" || st.Queue != 0 {
		t.Errorf("first status = %+v, want offline, empty queue", st)
	}

	fb := tm.tap("AA0000000001")
	var v TapView
	ev.next(t, "tap", &v)
	hm := time.Now().In(tm.screen.cfg.Location).Format("15:04")
	want := TapView{Seq: fb.Seq, Kind: kindOK, Icon: "check", Title: "Välkommen", TitleEN: "Welcome", Name: "Åsa Öberg",
		Employer: "Bygg & Betong AB", Detail: "Incheckad kl. " + hm, DetailEN: "Checked in at " + hm, Time: hm,
		ShowMillis: DefaultShowFor.Milliseconds()}
	if diff := cmp.Diff(want, v, cmpIgnoreAt); diff != "" {
		t.Errorf("tap event (-want +got):\n%s", diff)
	}
	ev.next(t, "status", &st)
	if st.Queue != 1 || !strings.Contains(st.Text, "1 i kö") {
		t.Errorf("status after the tap = %+v, want 1 queued", st)
	}

	// Again at once: a repeat, recorded but counted once.
	tm.tap("AA0000000001")
	ev.next(t, "tap", &v)
	if v.Kind != kindNeutral || v.Title != "Redan registrerad" {
		t.Errorf("repeat = %+v", v)
	}
	// A blocked card: red, with the reason, and still recorded.
	tm.tap("CC0000000003")
	ev.next(t, "tap", &v)
	if v.Kind != kindRefused || v.Icon != "cross" || v.Title != "Kort spärrat hos ID06" || v.TitleEN != "Card blocked by ID06" ||
		!strings.HasPrefix(v.Detail, "Stämplingen är sparad") {
		t.Errorf("blocked card = %+v", v)
	}
	// Not a card at all: not recorded, and the screen says so.
	tm.tap("")
	ev.next(t, "tap", &v)
	if v.Kind != kindError || v.Detail != "Stämplingen är INTE registrerad." {
		t.Errorf("unreadable card = %+v", v)
	}

	// The network comes back: the status follows within StatusEvery.
	tm.link.set(uplink.State{Connected: true, LastAck: time.Now()})
	for st.Kind == "offline" {
		ev.next(t, "status", &st)
	}
	if st.Kind != "syncing" || st.Queue != 3 || !st.Online {
		t.Errorf("status online = %+v, want syncing 3", st)
	}

	// A page opened now gets the tap still on screen first.
	_, body = get(t, tm.url+"/")
	if !strings.Contains(body, "Stämplingen är INTE registrerad.") || !strings.Contains(body, `class="panel error"`) {
		t.Errorf("page during an answer lacks it:\n%s", body)
	}
}

var cmpIgnoreAt = cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".At" }, cmp.Ignore())

func TestStatusView(t *testing.T) {
	loc := time.FixedZone("CET", 3600)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, loc)
	for _, tc := range []struct {
		online, full bool
		queue        uint64
		ack          time.Time
		kind, text   string
	}{
		{true, false, 0, now, "online", "Ansluten – allt är skickat"},
		{true, false, 5, now, "syncing", "Ansluten – skickar 5 stämplingar"},
		{false, false, 12, now.Add(-80 * time.Minute), "offline", "Ingen nätverksanslutning. Stämplingar sparas i terminalen (12 i kö). Senast synkad 10:40."},
		{false, false, 12, now.Add(-24 * time.Hour), "offline", "Ingen nätverksanslutning. Stämplingar sparas i terminalen (12 i kö). Senast synkad 2026-11-19 12:00."},
		{false, false, 0, time.Time{}, "offline", "Ingen nätverksanslutning. Stämplingar sparas i terminalen (0 i kö). Inte synkad sedan start."},
		{false, true, 500000, now, "full", "Terminalens minne är fullt – nya stämplingar registreras inte. Kontakta arbetsledningen."},
	} {
		v := statusView(tc.online, tc.full, tc.queue, tc.ack, now, loc)
		if v.Kind != tc.kind || v.Text != tc.text || v.TextEN == "" || v.Icon == "" {
			t.Errorf("statusView(%v, %v, %d) = %+v, want %s %q", tc.online, tc.full, tc.queue, v, tc.kind, tc.text)
		}
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:7080", "192.168.1.5:7080", ":7080"} {
		if _, err := Listen(addr); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Listen(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
	tm := startTerminal(t, nil)
	req, _ := http.NewRequest("GET", tm.url+"/", nil)
	req.Host = "kiosk.attacker.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Errorf("GET / with a foreign Host = %d, want 421", resp.StatusCode)
	}
}

func TestInspectMounted(t *testing.T) {
	tm := startTerminal(t, func(*terminal) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "inspect "+r.URL.Path) })
	})
	if code, body := get(t, tm.url+"/inspect/"); code != 200 || body != "inspect /inspect/" {
		t.Errorf("GET /inspect/ = %d %q", code, body)
	}
	if _, body := get(t, tm.url+"/"); !strings.Contains(body, `href="/inspect/"`) {
		t.Error("the page has no link to the inspection pages")
	}
}

func TestRunEndsWithOpenStreams(t *testing.T) {
	dir := t.TempDir()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	s := New(Config{Outbox: ob})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, ln) }()
	ev := openStream(t, "http://"+ln.Addr().String())
	var st StatusView
	ev.next(t, "status", &st)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
	if _, err := io.ReadAll(ev.body); err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Logf("stream after Run ended: %v", err)
	}
}
