// Package health serves the kiosk agent's own health on a loopback port:
// GET /healthz answers JSON that a technician (curl), a local monitoring
// agent or the kiosk screen can read without touching the outbox file,
// which the running agent holds locked.
//
// It answers 200 when the kiosk can record taps (the outbox has room, the
// reader is ok) and 503 otherwise, with the reasons in "problems". Being
// offline is not a problem: a kiosk records taps without the network
// (design invariant 9); the age of the oldest unacknowledged tap and the
// last Ack say how long it has been.
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// Path is where the health report is served.
const Path = "/healthz"

// Sources are what the report is read from. Cards and ReaderState may be
// nil.
type Sources struct {
	TerminalID   string
	AgentVersion string
	Outbox       *outbox.Outbox
	Uplink       *uplink.Uplink
	Cards        *cardcache.Cache
	ReaderState  func() string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Report is the health report, as JSON.
type Report struct {
	OK           bool   `json:"ok"`
	TerminalID   string `json:"terminal_id"`
	AgentVersion string `json:"agent_version"`
	StoreEpoch   int64  `json:"store_epoch"`
	OutboxDepth  uint64 `json:"outbox_depth"`
	OutboxFull   bool   `json:"outbox_full"`
	// OldestUnackedAgeSeconds is by the device clock, null when the outbox
	// is empty.
	OldestUnackedAgeSeconds *float64 `json:"oldest_unacked_age_seconds"`
	Connected               bool     `json:"connected"`
	// LastAck is when the server last acknowledged taps, null if never
	// since the agent started.
	LastAck      *time.Time `json:"last_ack"`
	LastError    string     `json:"last_error,omitempty"`
	AckedThrough uint64     `json:"acked_through"`
	// ClockOffsetMillis is the server clock minus this terminal's, as the
	// server measured it at the last Hello; null before the first.
	ClockOffsetMillis *int64 `json:"clock_offset_ms"`
	ReaderState       string `json:"reader_state"`
	CardCursor        uint64 `json:"card_cursor"`
	Cards             int    `json:"cards"`
	CardsLoaded       bool   `json:"cards_loaded"`
	// Problems say why OK is false.
	Problems []string `json:"problems,omitempty"`
}

// Report reads the current state.
func (s *Sources) Report() Report {
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	st := s.Outbox.Stats()
	r := Report{
		TerminalID:   s.TerminalID,
		AgentVersion: s.AgentVersion,
		StoreEpoch:   s.Outbox.Epoch(),
		OutboxDepth:  st.Depth,
		OutboxFull:   st.Full,
		ReaderState:  "none",
	}
	if st.Depth > 0 && st.OldestWallMicros != 0 {
		age := now.Sub(time.UnixMicro(st.OldestWallMicros)).Seconds()
		r.OldestUnackedAgeSeconds = &age
	}
	if s.Uplink != nil {
		u := s.Uplink.State()
		r.Connected, r.LastError, r.AckedThrough = u.Connected, u.LastError, u.AckedThrough
		if !u.LastAck.IsZero() {
			t := u.LastAck.UTC()
			r.LastAck = &t
		}
		if u.Connected || !u.LastAck.IsZero() || u.ClockOffset != 0 {
			ms := u.ClockOffset.Milliseconds()
			r.ClockOffsetMillis = &ms
		}
	}
	if s.ReaderState != nil {
		r.ReaderState = s.ReaderState()
	}
	if s.Cards != nil {
		r.CardCursor, r.Cards, r.CardsLoaded = s.Cards.Cursor(), s.Cards.Len(), s.Cards.Loaded()
	}
	if st.Full {
		r.Problems = append(r.Problems, "outbox full: new taps are refused")
	}
	if s.ReaderState != nil && r.ReaderState != "ok" {
		r.Problems = append(r.Problems, "card reader: "+r.ReaderState)
	}
	r.OK = len(r.Problems) == 0
	return r
}

// ServeHTTP answers GET /healthz.
func (s *Sources) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := s.Report()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if !rep.OK {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(rep)
}

// ErrNotLoopback is returned by Listen for an address other machines could
// reach.
var ErrNotLoopback = errors.New("health: listen address must be loopback (127.0.0.1, [::1] or localhost)")

// Listen opens the health listener on a loopback address.
func Listen(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("health: %w", err)
	}
	return ln, nil
}

// Serve serves the report on ln until ctx ends.
func Serve(ctx context.Context, ln net.Listener, s *Sources, logger *slog.Logger) error {
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn)}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("health: %w", err)
	}
	return nil
}
