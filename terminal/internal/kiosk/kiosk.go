package kiosk

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
	_ "time/tzdata" // a kiosk image without zoneinfo still shows Stockholm time

	"github.com/liggare/liggare/terminal/internal/agent"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// Defaults of Config.
const (
	// DefaultShowFor is how long a tap's answer stays on the screen.
	DefaultShowFor = 8 * time.Second
	// DefaultStatusEvery is how often the link and queue are looked at.
	DefaultStatusEvery = time.Second
	// heartbeat keeps an idle event stream open through anything that
	// times out quiet connections, and lets the page see a dead agent.
	heartbeat = 15 * time.Second
	// subscriberQueue is how many events may wait for one page; a page
	// that falls further behind is dropped and reconnects.
	subscriberQueue = 32
	// maxSubscribers bounds the pages connected at once (one kiosk browser,
	// a technician's second one).
	maxSubscribers = 16
)

// Log keys.
const (
	logErr  = "err"
	logAddr = "addr"
)

//go:embed assets
var assetFS embed.FS

var page = template.Must(template.New("index.html").ParseFS(assetFS, "assets/index.html"))

// Config configures a Screen. Outbox is required.
type Config struct {
	// Outbox gives the queue depth: taps not yet acknowledged.
	Outbox *outbox.Outbox
	// Link is the uplink's state (uplink.Uplink.State); nil: always offline.
	Link func() uplink.State
	// TerminalID is shown small in the footer, for the technician.
	TerminalID string
	// Inspect, when set, is served under /inspect/ (package inspect).
	Inspect http.Handler
	// Location is the time zone of the times shown (Europe/Stockholm).
	Location    *time.Location
	ShowFor     time.Duration
	StatusEvery time.Duration
	Logger      *slog.Logger
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Screen is the kiosk screen: a page on a loopback port for a full-screen
// browser, told of every tap (Show) and of the link's state, live over
// server-sent events.
type Screen struct {
	cfg Config
	mux *http.ServeMux

	mu     sync.Mutex
	last   *TapView
	lastAt time.Time
	status StatusView
	subs   map[chan event]struct{}
}

type event struct {
	name string
	data []byte
}

// New returns a Screen.
func New(cfg Config) *Screen {
	if cfg.Location == nil {
		loc, err := time.LoadLocation("Europe/Stockholm")
		if err != nil {
			panic(err) // time/tzdata is linked in
		}
		cfg.Location = loc
	}
	if cfg.ShowFor <= 0 {
		cfg.ShowFor = DefaultShowFor
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = DefaultStatusEvery
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Screen{cfg: cfg, mux: http.NewServeMux(), subs: make(map[chan event]struct{})}
	s.status = s.readStatus()
	static, _ := fs.Sub(assetFS, "assets")
	s.mux.HandleFunc("GET /{$}", s.index)
	s.mux.HandleFunc("GET /events", s.events)
	s.mux.HandleFunc("GET /state", s.state)
	s.mux.Handle("GET /kiosk.css", http.FileServerFS(static))
	s.mux.Handle("GET /kiosk.js", http.FileServerFS(static))
	if cfg.Inspect != nil {
		s.mux.Handle("/inspect/", cfg.Inspect)
		s.mux.Handle("/inspect", cfg.Inspect)
	}
	return s
}

// Show puts a tap on the screen: the agent's Observe calls it, with the
// direction the tap journal derived ("in", "out", "repeat" or ""). It never
// blocks: a page too slow to take the event is dropped and reconnects.
func (s *Screen) Show(o agent.Observation, dir string) {
	v := tapView(o, dir, s.cfg.Location, s.cfg.ShowFor)
	data, err := json.Marshal(v)
	if err != nil {
		s.cfg.Logger.Error("kiosk_event_failed", logErr, err)
		return
	}
	s.mu.Lock()
	s.last, s.lastAt = &v, s.cfg.Now()
	s.publish(event{"tap", data})
	s.mu.Unlock()
	s.refreshStatus() // the queue grew
}

// refreshStatus sends the status to the pages if it changed.
func (s *Screen) refreshStatus() {
	st := s.readStatus()
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == s.status {
		return
	}
	s.status = st
	data, err := json.Marshal(st)
	if err != nil {
		return
	}
	s.publish(event{"status", data})
}

func (s *Screen) readStatus() StatusView {
	var link uplink.State
	if s.cfg.Link != nil {
		link = s.cfg.Link()
	}
	st := s.cfg.Outbox.Stats()
	return statusView(link.Connected, st.Full, st.Depth, link.LastAck, s.cfg.Now(), s.cfg.Location)
}

// publish hands ev to every page; s.mu is held.
func (s *Screen) publish(ev event) {
	for ch := range s.subs {
		select {
		case ch <- ev:
		default:
			delete(s.subs, ch)
			close(ch)
		}
	}
}

func (s *Screen) subscribe() (chan event, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.subs) >= maxSubscribers {
		return nil, false
	}
	ch := make(chan event, subscriberQueue)
	s.subs[ch] = struct{}{}
	return ch, true
}

func (s *Screen) unsubscribe(ch chan event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.subs[ch]; ok {
		delete(s.subs, ch)
		close(ch)
	}
}

// current returns the status and the tap still on screen, if any, with
// the time it has left.
func (s *Screen) current() (StatusView, *TapView) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return s.status, nil
	}
	left := s.cfg.ShowFor - s.cfg.Now().Sub(s.lastAt)
	if left <= 0 {
		return s.status, nil
	}
	v := *s.last
	v.ShowMillis = left.Milliseconds()
	return s.status, &v
}

// ServeHTTP serves the screen to this machine's own browser only: a Host
// other than loopback (DNS rebinding) is refused.
func (s *Screen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		http.Error(w, "Fel värdnamn / wrong host", http.StatusMisdirectedRequest)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func loopbackHost(host string) bool {
	if hp, _, err := net.SplitHostPort(host); err == nil {
		host = hp
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type pageData struct {
	Status     StatusView
	Tap        *TapView
	TerminalID string
	Inspect    bool
}

func (s *Screen) index(w http.ResponseWriter, r *http.Request) {
	st, tap := s.current()
	var buf bytes.Buffer
	if err := page.Execute(&buf, pageData{Status: st, Tap: tap, TerminalID: s.cfg.TerminalID, Inspect: s.cfg.Inspect != nil}); err != nil {
		s.cfg.Logger.Error("kiosk_page_failed", logErr, err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
	w.Write(buf.Bytes())
}

// state answers the screen's state as JSON, for a technician's curl.
func (s *Screen) state(w http.ResponseWriter, r *http.Request) {
	st, tap := s.current()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(struct {
		Status StatusView `json:"status"`
		Tap    *TapView   `json:"tap"`
	}{st, tap})
}

// events streams "status" and "tap" events to the page: the current state
// first, then every change.
func (s *Screen) events(w http.ResponseWriter, r *http.Request) {
	ch, ok := s.subscribe()
	if !ok {
		http.Error(w, "too many screens", http.StatusServiceUnavailable)
		return
	}
	defer s.unsubscribe(ch)
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	st, tap := s.current()
	fmt.Fprint(w, "retry: 1000\n\n")
	writeEvent(w, "status", st)
	if tap != nil {
		writeEvent(w, "tap", tap)
	}
	if err := rc.Flush(); err != nil {
		return
	}
	tick := time.NewTicker(heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return // too slow: the page reconnects and gets the state anew
			}
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.name, ev.data)
		case <-tick.C:
			fmt.Fprint(w, ": ping\n\n")
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

func writeEvent(w http.ResponseWriter, name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		return
	}
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, data)
}

// ErrNotLoopback is returned by Listen for an address other machines could
// reach: the screen and the inspection pages are for this kiosk only.
var ErrNotLoopback = errors.New("kiosk: listen address must be loopback (127.0.0.1, [::1] or localhost)")

// Listen opens the screen's listener on a loopback address.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("kiosk: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("kiosk: %w", err)
	}
	return ln, nil
}

// Run serves the screen on ln and watches the link and the queue until ctx
// ends.
func (s *Screen) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }, // ends the event streams
		ErrorLog:    slog.NewLogLogger(s.cfg.Logger.Handler(), slog.LevelWarn)}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(s.cfg.StatusEvery)
		defer tick.Stop()
		for {
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
				s.refreshStatus()
			}
		}
	}()
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	s.cfg.Logger.Info("kiosk_listening", logAddr, ln.Addr().String())
	err := srv.Serve(ln)
	cancel()
	<-done
	if !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("kiosk: %w", err)
	}
	return nil
}
