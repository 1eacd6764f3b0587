// Package uplink is the terminal end of the sync protocol: it keeps a
// websocket session to the server, uploads the outbox and keeps the card
// cache current.
//
// A session starts with Hello; the server's Welcome says which sequences it
// already holds, and upload resumes right after them. Up to MaxInFlight
// batches are sent without waiting; each Ack carries the highest sequence the
// server holds contiguously, and the outbox drops everything up to it (design
// invariant 2: the terminal drops a tap only after the server committed it).
// Any failure ends the session; the next one starts after an exponential
// backoff with jitter, so that thousands of kiosks coming back after a
// regional outage do not reconnect in lockstep.
//
// With a card cache (Config.Cards) the terminal speaks protocol version 2:
// its Hello carries the cache's cursor, and the server follows the Welcome
// with CardUpdates. The reader goroutine hands each one to the session's
// writer, which applies it to the cache (one fsync'd transaction) and only
// then answers CardAck; an update the cache cannot store ends the session
// unacknowledged, so the server sends it again next time. Without a cache
// the terminal offers version 1 and gets no card data.
package uplink

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/outbox"
)

// Defaults for Config.
const (
	DefaultMaxBatchTaps = 1024
	// maxResends bounds resends that do not move the server's cursor.
	maxResends            = 3
	DefaultMaxInFlight    = 8
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultPingInterval   = syncproto.PingInterval
	DefaultPongWait       = syncproto.PeerTimeout
	DefaultWriteTimeout   = 10 * time.Second
	DefaultAckTimeout     = 60 * time.Second
	DefaultStatusInterval = 30 * time.Second
)

// versionCards is the first protocol version that carries card data. A
// terminal without a card cache offers the version before it.
const versionCards = 2

// Log keys.
const (
	logErr     = "err"
	logBackoff = "backoff"
	logCursor  = "cursor"
	logCards   = "cards"
)

// ErrUnauthorized is returned by a session the server refused at the upgrade
// for a bad credential.
var ErrUnauthorized = errors.New("uplink: server refused the credential")

// Config configures an Uplink. Zero durations and limits take the defaults.
type Config struct {
	// URL of the server's sync endpoint, ws:// or wss://.
	URL string
	// Credential is "<terminal-id>.<secret>".
	Credential string
	// LoadCredential, when set, is called before each connection for the
	// current credential, so that a credential rotated on disk is used
	// without a restart. It must name the same terminal as Credential.
	LoadCredential func() (string, error)
	// TLS, when set, configures wss:// connections (a private CA, say).
	TLS          *tls.Config
	AgentVersion string
	MaxBatchTaps int
	MaxInFlight  int
	MinBackoff   time.Duration
	MaxBackoff   time.Duration
	PingInterval time.Duration
	PongWait     time.Duration
	WriteTimeout time.Duration
	// AckTimeout ends a session whose oldest batch in flight has waited
	// this long: the connection is dead or the server is stuck.
	AckTimeout     time.Duration
	StatusInterval time.Duration
	Logger         *slog.Logger
	// ReaderState, when set, reports the card reader's state for Status.
	ReaderState func() string
	// Cards, when set, is the card cache the server's CardUpdates are
	// applied to; the terminal then speaks protocol version 2. When nil it
	// offers version 1 and receives no card data.
	Cards *cardcache.Cache
	// OnAck, when set, is called with the highest sequence the server holds
	// contiguously each time the outbox has dropped the taps up to it (after
	// a Welcome and after Acks), from the session's goroutine: it must not
	// block. The load generator measures ack latency with it.
	OnAck func(through uint64)
}

// Clock reads the terminal's clocks.
type Clock interface {
	Now() syncproto.Clock
}

// State is what the uplink knows about its link, for the kiosk screen and
// the terminal's health endpoint.
type State struct {
	Connected    bool
	LastAck      time.Time
	LastError    string
	AckedThrough uint64
	// ClockOffset is the server clock minus the terminal's, as measured by
	// the server at the last Hello.
	ClockOffset time.Duration
	// LastCardUpdate is when the last CardUpdate was applied to the card
	// cache, zero if none since the agent started.
	LastCardUpdate time.Time
}

// Uplink uploads an outbox.
type Uplink struct {
	cfg        Config
	terminalID string
	ob         *outbox.Outbox
	clock      Clock

	mu    sync.Mutex
	state State
}

// acked reports the outbox's new acknowledged sequence to Config.OnAck.
func (u *Uplink) acked(through uint64) {
	if u.cfg.OnAck != nil {
		u.cfg.OnAck(through)
	}
}

// New returns an Uplink for the outbox.
func New(cfg Config, ob *outbox.Outbox, clock Clock) (*Uplink, error) {
	id, _, ok := strings.Cut(cfg.Credential, ".")
	if !ok || id == "" {
		return nil, errors.New("uplink: credential must be <terminal-id>.<secret>")
	}
	if cfg.URL == "" {
		return nil, errors.New("uplink: no server URL")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.MinBackoff, DefaultMinBackoff)
	def(&cfg.MaxBackoff, DefaultMaxBackoff)
	def(&cfg.PingInterval, DefaultPingInterval)
	def(&cfg.PongWait, DefaultPongWait)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.AckTimeout, DefaultAckTimeout)
	def(&cfg.StatusInterval, DefaultStatusInterval)
	// Zero MaxBatchTaps takes the server's offer (Welcome.MaxBatchTaps).
	if cfg.MaxBatchTaps < 0 || cfg.MaxBatchTaps > syncproto.MaxBatchTaps {
		cfg.MaxBatchTaps = DefaultMaxBatchTaps
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Uplink{cfg: cfg, terminalID: id, ob: ob, clock: clock}, nil
}

// State returns a snapshot of the link's state.
func (u *Uplink) State() State {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.state
}

func (u *Uplink) update(f func(*State)) {
	u.mu.Lock()
	f(&u.state)
	u.mu.Unlock()
}

// Run keeps sessions going until ctx ends.
func (u *Uplink) Run(ctx context.Context) error {
	backoff := u.cfg.MinBackoff
	for {
		progressed, err := u.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		u.update(func(s *State) { s.Connected = false; s.LastError = err.Error() })
		if progressed {
			backoff = u.cfg.MinBackoff
		}
		// Full jitter between half and all of the backoff.
		wait := backoff/2 + rand.N(backoff/2+1)
		u.cfg.Logger.Warn("uplink_session_ended", logErr, err, logBackoff, wait)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		backoff = min(backoff*2, u.cfg.MaxBackoff)
		if errors.Is(err, ErrUnauthorized) {
			backoff = u.cfg.MaxBackoff
		}
	}
}

// session runs one connection. progressed reports whether the server
// welcomed us, which resets the backoff.
func (u *Uplink) session(ctx context.Context) (progressed bool, err error) {
	dialer := websocket.Dialer{
		HandshakeTimeout: u.cfg.WriteTimeout,
		ReadBufferSize:   4096,
		WriteBufferSize:  64 << 10,
		TLSClientConfig:  u.cfg.TLS,
	}
	cred := u.cfg.Credential
	if u.cfg.LoadCredential != nil {
		if cred, err = u.cfg.LoadCredential(); err != nil {
			return false, fmt.Errorf("uplink: credential: %w", err)
		}
		if id, _, _ := strings.Cut(cred, "."); id != u.terminalID {
			return false, fmt.Errorf("uplink: credential now names terminal %q, not %q: restart the agent", id, u.terminalID)
		}
	}
	header := http.Header{"Authorization": {"Bearer " + cred}}
	ws, resp, err := dialer.DialContext(ctx, u.cfg.URL, header)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return false, ErrUnauthorized
		}
		return false, fmt.Errorf("uplink: dial: %w", err)
	}
	defer ws.Close()
	ws.SetReadLimit(syncproto.MaxMessageBytes)

	stats := u.ob.Stats()
	hello := &syncproto.Hello{
		ProtocolVersion: versionCards - 1,
		TerminalID:      u.terminalID,
		StoreEpoch:      u.ob.Epoch(),
		AgentVersion:    u.cfg.AgentVersion,
		Clock:           u.clock.Now(),
		OutboxDepth:     uint64(stats.Depth),
		OutboxAcked:     stats.AckedThrough,
	}
	if u.cfg.Cards != nil {
		hello.ProtocolVersion = syncproto.ProtocolVersion
		hello.CardCursor = u.cfg.Cards.Cursor()
	}
	if err := u.write(ws, hello); err != nil {
		return false, err
	}
	ws.SetReadDeadline(time.Now().Add(u.cfg.PongWait))
	m, err := read(ws)
	if err != nil {
		return false, err
	}
	welcome, ok := m.(*syncproto.Welcome)
	if !ok {
		return false, fmt.Errorf("uplink: got %s, want Welcome", m.MsgType())
	}
	if _, err := syncproto.Negotiate(welcome.ProtocolVersion); err != nil || welcome.ProtocolVersion > hello.ProtocolVersion {
		return false, fmt.Errorf("uplink: server chose protocol version %d, this terminal speaks %d to %d",
			welcome.ProtocolVersion, syncproto.MinProtocolVersion, hello.ProtocolVersion)
	}
	// Card data only flows in version 2 sessions, and only to a cache.
	cardsOn := welcome.ProtocolVersion >= versionCards && u.cfg.Cards != nil
	if welcome.AckedThrough < stats.AckedThrough {
		// The server holds less than it acknowledged before (restored from
		// an old backup) and did not take OutboxAcked into account (an older
		// server). The taps in between are gone from this outbox.
		u.cfg.Logger.Error("uplink_server_behind", "server_acked", welcome.AckedThrough, "outbox_acked", stats.AckedThrough)
	}
	if last := u.ob.Stats().LastSeq; welcome.AckedThrough > last {
		// The server holds sequences of this epoch this outbox never made:
		// the outbox is an older copy of itself. Its pending taps must not
		// be sent under identities the server holds with other content, nor
		// dropped: move them to a new epoch and start again.
		epoch, n, err := u.ob.Rebase()
		if err != nil {
			return false, fmt.Errorf("uplink: %w", err)
		}
		u.cfg.Logger.Error("uplink_outbox_behind_server", "server_acked", welcome.AckedThrough, "last_seq", last,
			"new_epoch", epoch, "moved", n)
		return true, fmt.Errorf("uplink: outbox behind the server (an older copy): %d taps moved to a new epoch", n)
	}
	if _, err := u.ob.Ack(welcome.AckedThrough); err != nil {
		return true, fmt.Errorf("uplink: %w", err)
	}
	u.acked(welcome.AckedThrough)
	maxBatch := min(int(welcome.MaxBatchTaps), syncproto.MaxBatchTaps)
	if u.cfg.MaxBatchTaps > 0 {
		maxBatch = min(maxBatch, u.cfg.MaxBatchTaps)
	}
	if maxBatch <= 0 {
		maxBatch = DefaultMaxBatchTaps
	}
	window := u.cfg.MaxInFlight
	if welcome.MaxInFlight > 0 {
		window = min(window, int(welcome.MaxInFlight))
	}
	u.update(func(s *State) {
		s.Connected = true
		s.LastError = ""
		s.AckedThrough = max(s.AckedThrough, welcome.AckedThrough)
		s.ClockOffset = time.Duration(welcome.ClockOffsetMicros) * time.Microsecond
	})
	u.cfg.Logger.Info("uplink_session_open", "acked_through", welcome.AckedThrough, "outbox_depth", stats.Depth,
		"protocol_version", welcome.ProtocolVersion, "card_cursor", hello.CardCursor)

	// The reader goroutine owns reads; this goroutine owns writes (pings and
	// pongs go through WriteControl, which may be called concurrently), and
	// the card cache: a CardUpdate is applied here, then acknowledged.
	acks := make(chan *syncproto.Ack, window)
	// The server sends one CardUpdate at a time; a second before the
	// first's CardAck waits in the reader.
	cardUpdates := make(chan *syncproto.CardUpdate, 1)
	readErr := make(chan error, 1)
	readDone := make(chan struct{})
	quit := make(chan struct{}) // closed when this goroutine returns
	ws.SetPingHandler(func(data string) error {
		ws.SetReadDeadline(time.Now().Add(u.cfg.PongWait))
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(u.cfg.WriteTimeout))
	})
	ws.SetPongHandler(func(string) error {
		return ws.SetReadDeadline(time.Now().Add(u.cfg.PongWait))
	})
	go func() {
		defer close(readDone)
		for {
			ws.SetReadDeadline(time.Now().Add(u.cfg.PongWait))
			m, err := read(ws)
			if err != nil {
				readErr <- err
				return
			}
			switch m := m.(type) {
			case *syncproto.Ack:
				select {
				case acks <- m:
				case <-quit:
					return
				}
			case *syncproto.CardUpdate:
				if !cardsOn {
					readErr <- fmt.Errorf("uplink: unexpected %s in a version %d session without a card cache",
						m.MsgType(), welcome.ProtocolVersion)
					return
				}
				select {
				case cardUpdates <- m:
				case <-quit:
					return
				}
			default:
				readErr <- fmt.Errorf("uplink: unexpected %s", m.MsgType())
				return
			}
		}
	}()
	defer func() { close(quit); ws.Close(); <-readDone }()

	acked := welcome.AckedThrough
	var stuckAt uint64 // the cursor resends were last needed at
	var stuck int      // resends in a row that did not move it
	sent := welcome.AckedThrough
	var nextID uint64
	inflight := make(map[uint64]time.Time, window)
	ping := time.NewTicker(u.cfg.PingInterval)
	defer ping.Stop()
	status := time.NewTicker(u.cfg.StatusInterval)
	defer status.Stop()
	ackCheck := time.NewTicker(max(u.cfg.AckTimeout/4, 100*time.Millisecond))
	defer ackCheck.Stop()
	if err := u.sendStatus(ws); err != nil {
		return true, err
	}
	for {
		for len(inflight) < window {
			taps, err := u.ob.Pending(sent, maxBatch)
			if err != nil {
				return true, fmt.Errorf("uplink: %w", err)
			}
			if len(taps) == 0 {
				break
			}
			nextID++
			if err := u.write(ws, &syncproto.Batch{BatchID: nextID, Taps: taps}); err != nil {
				return true, err
			}
			inflight[nextID] = time.Now()
			sent = taps[len(taps)-1].Seq
		}
		select {
		case <-ctx.Done():
			ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "terminal stopping"),
				time.Now().Add(time.Second))
			return true, ctx.Err()
		case err := <-readErr:
			return true, err
		case ack := <-acks:
			// Take every Ack that is already here, then compact once.
			for more := true; more; {
				delete(inflight, ack.BatchID)
				acked = max(acked, ack.AckedThrough)
				for _, r := range ack.Rejected {
					u.cfg.Logger.Warn("uplink_tap_rejected", "seq", r.Seq, "code", r.Code.String(), "reason", r.Reason)
				}
				select {
				case ack = <-acks:
				default:
					more = false
				}
			}
			if _, err := u.ob.Ack(acked); err != nil {
				return true, fmt.Errorf("uplink: %w", err)
			}
			u.acked(acked)
			u.update(func(s *State) { s.LastAck = time.Now(); s.AckedThrough = acked })
			if len(inflight) == 0 && sent > acked {
				// Every batch is answered but the server's contiguous
				// cursor stopped short: resend from it. If that does not
				// move it, something is wrong on the server: end the
				// session and back off rather than loop.
				if acked == stuckAt {
					stuck++
				} else {
					stuckAt, stuck = acked, 1
				}
				if stuck > maxResends {
					return true, fmt.Errorf("uplink: server cursor stuck at %d after %d resends", acked, maxResends)
				}
				sent = acked
			}
		case cu := <-cardUpdates:
			if err := u.applyCards(ws, cu); err != nil {
				return true, err
			}
		case <-u.ob.Notify():
		case <-ping.C:
			if err := ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(u.cfg.WriteTimeout)); err != nil {
				return true, fmt.Errorf("uplink: ping: %w", err)
			}
		case <-status.C:
			if err := u.sendStatus(ws); err != nil {
				return true, err
			}
		case <-ackCheck.C:
			for _, at := range inflight {
				if time.Since(at) > u.cfg.AckTimeout {
					return true, fmt.Errorf("uplink: no Ack for %v", u.cfg.AckTimeout)
				}
			}
		}
	}
}

// applyCards stores one CardUpdate durably in the card cache, then
// acknowledges it. An update that cannot be stored is not acknowledged: the
// session ends and the server sends it again in the next one.
func (u *Uplink) applyCards(ws *websocket.Conn, cu *syncproto.CardUpdate) error {
	if err := u.cfg.Cards.Apply(cu); err != nil {
		u.cfg.Logger.Error("uplink_card_update_failed", logCursor, cu.Cursor, logErr, err)
		return fmt.Errorf("uplink: %w", err)
	}
	u.update(func(s *State) { s.LastCardUpdate = time.Now() })
	if cu.Final {
		u.cfg.Logger.Info("uplink_cards_updated", logCursor, cu.Cursor, logCards, u.cfg.Cards.Len())
	}
	return u.write(ws, &syncproto.CardAck{Cursor: cu.Cursor})
}

func (u *Uplink) sendStatus(ws *websocket.Conn) error {
	st := u.ob.Stats()
	m := &syncproto.Status{
		Clock:               u.clock.Now(),
		OutboxDepth:         uint64(st.Depth),
		OldestUnackedMicros: st.OldestWallMicros,
	}
	if u.cfg.ReaderState != nil {
		m.ReaderState = u.cfg.ReaderState()
	}
	if st.Full {
		m.Alarms = append(m.Alarms, "outbox_full")
	}
	return u.write(ws, m)
}

func (u *Uplink) write(ws *websocket.Conn, m syncproto.Message) error {
	data, err := syncproto.Encode(m)
	if err != nil {
		return fmt.Errorf("uplink: %w", err)
	}
	ws.SetWriteDeadline(time.Now().Add(u.cfg.WriteTimeout))
	if err := ws.WriteMessage(websocket.BinaryMessage, data); err != nil {
		return fmt.Errorf("uplink: send %s: %w", m.MsgType(), err)
	}
	return nil
}

// read returns the next message; an Error from the server becomes the
// returned error.
func read(ws *websocket.Conn) (syncproto.Message, error) {
	typ, data, err := ws.ReadMessage()
	if err != nil {
		return nil, fmt.Errorf("uplink: read: %w", err)
	}
	if typ != websocket.BinaryMessage {
		return nil, errors.New("uplink: server sent a non-binary message")
	}
	m, err := syncproto.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("uplink: %w", err)
	}
	if e, ok := m.(*syncproto.Error); ok {
		return nil, fmt.Errorf("uplink: server: %w", e)
	}
	return m, nil
}
