// Package syncserver is the server end of the sync protocol: the websocket
// endpoint terminals connect to. It is the only server package that imports
// gorilla/websocket.
//
// Each connection has exactly two goroutines, started after the HTTP handler
// has returned (so the handler's stack and buffers are freed while the
// connection idles): a reader that decodes messages and hands batches to the
// ingest Committer, and a writer that sends Welcome, Acks, pings and the final
// Error. At most MaxInFlight batches of a connection wait for their commit;
// the reader stops reading until one is answered, which pushes back on the
// terminal through TCP.
package syncserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/downlink"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/syncproto"
)

// Path is where terminals connect.
const Path = syncproto.SyncPath

// Defaults for Config.
const (
	DefaultPingInterval = syncproto.PingInterval
	DefaultPongWait     = syncproto.PeerTimeout
	DefaultHelloTimeout = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxInFlight  = 8
	DefaultMaxBatchTaps = 2048
	DefaultCardInterval = 2 * time.Second
	// readBufferSize is small on purpose: idle connections dominate memory,
	// and gorilla reads larger messages straight through it.
	readBufferSize  = 512
	writeBufferSize = 16 << 10
)

// Log keys.
const (
	logTerminal = "terminal_id"
	logRemote   = "remote"
	logErr      = "err"
	logCode     = "code"
)

// Config configures a Server.
type Config struct {
	Terminals    *auth.Terminals
	Store        *ingest.Store
	Committer    *ingest.Committer
	Logger       *slog.Logger
	PingInterval time.Duration
	PongWait     time.Duration
	HelloTimeout time.Duration
	WriteTimeout time.Duration
	MaxInFlight  int
	MaxBatchTaps int
	// TrustedSkew is passed to each ingest.Session.
	TrustedSkew time.Duration
	// Cards, when set, sends card data to version 2 terminals.
	Cards *downlink.Feed
	// CardInterval is how often an idle connection checks for card data
	// to send (default DefaultCardInterval).
	CardInterval time.Duration
}

// Server accepts terminal connections.
type Server struct {
	cfg      Config
	upgrader websocket.Upgrader
	draining atomic.Bool

	mu    sync.Mutex
	conns map[*conn]struct{}
	wg    sync.WaitGroup
}

// New returns a Server. Zero durations and limits take the defaults.
func New(cfg Config) *Server {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.PongWait <= 0 {
		cfg.PongWait = DefaultPongWait
	}
	if cfg.HelloTimeout <= 0 {
		cfg.HelloTimeout = DefaultHelloTimeout
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = DefaultMaxInFlight
	}
	if cfg.MaxBatchTaps <= 0 || cfg.MaxBatchTaps > syncproto.MaxBatchTaps {
		cfg.MaxBatchTaps = DefaultMaxBatchTaps
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CardInterval <= 0 {
		cfg.CardInterval = DefaultCardInterval
	}
	return &Server{
		cfg: cfg,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  readBufferSize,
			WriteBufferSize: writeBufferSize,
			WriteBufferPool: &sync.Pool{},
			// Terminals are not browsers; there is no origin to check.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		conns: make(map[*conn]struct{}),
	}
}

// Connections reports how many terminals are connected.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ServeHTTP authenticates the terminal and upgrades to a websocket.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	token, ok := auth.BearerToken(r.Header.Get("Authorization"))
	if !ok {
		http.Error(w, "unauthorized: missing bearer credential", http.StatusUnauthorized)
		return
	}
	terminalID, err := s.cfg.Terminals.Authenticate(r.Context(), token)
	if errors.Is(err, auth.ErrUnauthorized) {
		s.cfg.Logger.Warn("sync_auth_refused", logRemote, r.RemoteAddr)
		http.Error(w, "unauthorized: credential unknown or revoked", http.StatusUnauthorized)
		return
	}
	if err != nil {
		s.cfg.Logger.Error("sync_auth_failed", logRemote, r.RemoteAddr, logErr, err)
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered with an HTTP error
	}
	ws.SetReadLimit(syncproto.MaxMessageBytes)
	c := &conn{
		s:          s,
		ws:         ws,
		terminalID: terminalID,
		out:        make(chan []byte, s.cfg.MaxInFlight+2),
		slots:      make(chan struct{}, s.cfg.MaxInFlight),
		done:       make(chan struct{}),
		drain:      make(chan struct{}),
		cardWake:   make(chan struct{}, 1),
		logger:     s.cfg.Logger.With(logTerminal, terminalID),
	}
	s.mu.Lock()
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	s.wg.Add(2)
	go c.readLoop()
	go c.writeLoop()
}

// Shutdown stops accepting batches, lets every connection finish the batches
// it has in flight and send their Acks, tells each terminal to reconnect
// (ErrorCodeShutdown) and waits for the connections to close or ctx to end.
// The Committer must keep running until Shutdown returns.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.mu.Lock()
	for c := range s.conns {
		c.startDrain()
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() { s.wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.ws.Close()
		}
		s.mu.Unlock()
		return fmt.Errorf("syncserver: shutdown: %w", ctx.Err())
	}
}

type conn struct {
	s          *Server
	ws         *websocket.Conn
	terminalID string
	logger     *slog.Logger

	out   chan []byte   // encoded messages for the writer
	slots chan struct{} // one token per batch in flight

	final     atomic.Pointer[syncproto.Error] // sent by the writer before closing
	done      chan struct{}                   // closed when the connection ends
	doneOnce  sync.Once
	drain     chan struct{} // closed when the server is shutting down
	drainOnce sync.Once

	cards    atomic.Pointer[downlink.Stream] // set once welcomed, version >= 2
	cardWake chan struct{}                   // the writer should look for card data
}

func (c *conn) wakeCards() {
	select {
	case c.cardWake <- struct{}{}:
	default:
	}
}

// pushCards sends the next card update if there is one. It runs on the
// writer goroutine, the connection's only writer.
func (c *conn) pushCards() bool {
	st := c.cards.Load()
	if st == nil || !st.Pending() {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
	u, err := st.Next(ctx)
	cancel()
	if err != nil {
		c.logger.Error("sync_cards_failed", logErr, err)
		return true // try again at the next tick
	}
	if u == nil {
		return true
	}
	data, err := syncproto.Encode(u)
	if err != nil {
		c.logger.Error("sync_encode_failed", logErr, err)
		return true
	}
	return c.write(data)
}

func (c *conn) finish() {
	c.doneOnce.Do(func() { close(c.done) })
}

func (c *conn) startDrain() {
	c.drainOnce.Do(func() { close(c.drain) })
}

// fail ends the connection with an Error message to the peer.
func (c *conn) fail(code syncproto.ErrorCode, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	c.logger.Warn("sync_session_error", logCode, code.String(), logErr, msg)
	c.final.CompareAndSwap(nil, &syncproto.Error{Code: code, Message: msg})
	c.finish()
}

func (c *conn) readLoop() {
	defer c.s.wg.Done()
	defer c.finish()
	sess, ok := c.handshake()
	if !ok {
		return
	}
	c.ws.SetPongHandler(func(string) error {
		return c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.PongWait))
	})
	for {
		if err := c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.PongWait)); err != nil {
			return
		}
		m, ok := c.read()
		if !ok {
			return
		}
		received := time.Now()
		switch m := m.(type) {
		case *syncproto.Batch:
			if len(m.Taps) > c.s.cfg.MaxBatchTaps {
				c.fail(syncproto.ErrorCodeTooLarge, "batch of %d taps, limit %d", len(m.Taps), c.s.cfg.MaxBatchTaps)
				return
			}
			if !c.submit(sess, m, received) {
				return
			}
		case *syncproto.Status:
			ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
			err := c.s.cfg.Store.RecordStatus(ctx, sess, m, received)
			cancel()
			if err != nil {
				c.logger.Error("sync_status_failed", logErr, err)
			}
		case *syncproto.CardAck:
			st := c.cards.Load()
			if st == nil {
				c.fail(syncproto.ErrorCodeUnexpected, "CardAck without card data")
				return
			}
			st.Acked(m.Cursor)
			c.wakeCards()
		case *syncproto.Error:
			c.logger.Warn("sync_peer_error", logCode, m.Code.String(), logErr, m.Message)
			return
		default:
			c.fail(syncproto.ErrorCodeUnexpected, "unexpected %s during a session", m.MsgType())
			return
		}
	}
}

// read returns the next message, or false after ending the connection.
func (c *conn) read() (syncproto.Message, bool) {
	typ, data, err := c.ws.ReadMessage()
	if err != nil {
		if errors.Is(err, websocket.ErrReadLimit) {
			c.fail(syncproto.ErrorCodeTooLarge, "message larger than %d bytes", syncproto.MaxMessageBytes)
		}
		return nil, false
	}
	if typ != websocket.BinaryMessage {
		c.fail(syncproto.ErrorCodeMalformed, "text message; the protocol uses binary messages")
		return nil, false
	}
	m, err := syncproto.Decode(data)
	if err != nil {
		c.fail(syncproto.ErrorCodeFor(err), "%v", err)
		return nil, false
	}
	return m, true
}

func (c *conn) handshake() (*ingest.Session, bool) {
	if err := c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.HelloTimeout)); err != nil {
		return nil, false
	}
	m, ok := c.read()
	if !ok {
		return nil, false
	}
	received := time.Now()
	hello, isHello := m.(*syncproto.Hello)
	switch {
	case !isHello:
		c.fail(syncproto.ErrorCodeUnexpected, "first message is %s, want Hello", m.MsgType())
		return nil, false
	case hello.TerminalID != c.terminalID:
		c.fail(syncproto.ErrorCodeUnauthorized, "credential is for terminal %q, Hello names %q", c.terminalID, hello.TerminalID)
		return nil, false
	}
	version, err := syncproto.Negotiate(hello.ProtocolVersion)
	if err != nil {
		c.fail(syncproto.ErrorCodeVersion, "%v", err)
		return nil, false
	}
	sess := &ingest.Session{
		TerminalID:    c.terminalID,
		StoreEpoch:    hello.StoreEpoch,
		HelloClock:    hello.Clock,
		HelloReceived: received,
		TrustedSkew:   c.s.cfg.TrustedSkew,
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.HelloTimeout)
	acked, err := c.s.cfg.Store.OpenSession(ctx, sess, hello.AgentVersion)
	cancel()
	if err != nil {
		c.logger.Error("sync_open_session_failed", logErr, err)
		c.fail(syncproto.ErrorCodeInternal, "server cannot open the session now; retry later")
		return nil, false
	}
	c.logger.Info("sync_session_open", "store_epoch", hello.StoreEpoch, "acked_through", acked,
		"outbox_depth", hello.OutboxDepth, "agent_version", hello.AgentVersion)
	c.send(&syncproto.Welcome{
		ProtocolVersion:   version,
		ServerMicros:      time.Now().UnixMicro(),
		AckedThrough:      acked,
		MaxBatchTaps:      uint32(c.s.cfg.MaxBatchTaps),
		MaxInFlight:       uint32(c.s.cfg.MaxInFlight),
		ClockOffsetMicros: sess.ClockOffset().Microseconds(),
	})
	if feed := c.s.cfg.Cards; feed != nil && version >= 2 {
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.HelloTimeout)
		site, cacheSite, err := feed.TerminalSite(ctx, c.terminalID)
		cancel()
		if err != nil {
			c.logger.Error("sync_cards_failed", logErr, err)
		} else if site != 0 {
			c.cards.Store(feed.NewStream(c.terminalID, site, hello.CardCursor, cacheSite))
			c.wakeCards()
		}
	}
	return sess, true
}

// submit hands a batch to the committer once a slot is free. Its Ack is sent
// by the committer's callback after the commit.
// While the server drains, new batches are dropped unacknowledged (the
// terminal sends them again after reconnecting) and the reader keeps reading
// until the batches in flight are answered.
func (c *conn) submit(sess *ingest.Session, b *syncproto.Batch, received time.Time) bool {
	select {
	case <-c.drain:
		return true
	default:
	}
	select {
	case c.slots <- struct{}{}:
	case <-c.done:
		return false
	case <-c.drain:
		return true
	}
	sub := &ingest.Submission{Session: sess, Batch: b, Received: received}
	err := c.s.cfg.Committer.Submit(context.Background(), sub, func(ack *syncproto.Ack, err error) {
		defer func() { <-c.slots }()
		if err != nil {
			c.fail(syncproto.ErrorCodeInternal, "batch not stored; it will be retried")
			return
		}
		c.send(ack)
	})
	if err != nil {
		<-c.slots
		c.fail(syncproto.ErrorCodeShutdown, "server shutting down; reconnect")
		return false
	}
	return true
}

// send queues a message for the writer. The queue has room for every batch
// in flight plus the Welcome, so it never blocks.
func (c *conn) send(m syncproto.Message) {
	data, err := syncproto.Encode(m)
	if err != nil {
		c.logger.Error("sync_encode_failed", logErr, err)
		c.fail(syncproto.ErrorCodeInternal, "server failed to encode %s", m.MsgType())
		return
	}
	select {
	case c.out <- data:
	default:
		c.fail(syncproto.ErrorCodeInternal, "server send queue full")
	}
}

func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	defer func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.ws.Close()
	}()
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	cardTick := time.NewTicker(c.s.cfg.CardInterval)
	defer cardTick.Stop()
	drain := c.drain
	for {
		select {
		case <-c.cardWake:
			if !c.pushCards() {
				c.finish()
				return
			}
		case <-cardTick.C:
			if !c.pushCards() {
				c.finish()
				return
			}
		case data := <-c.out:
			if !c.write(data) {
				c.finish()
				return
			}
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
				c.finish()
				return
			}
		case <-drain:
			drain = nil
			go c.waitIdle()
		case <-c.done:
			c.flush()
			return
		}
	}
}

// waitIdle ends a draining connection once no batch is in flight.
func (c *conn) waitIdle() {
	for range cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
		case <-c.done:
			return
		}
	}
	c.fail(syncproto.ErrorCodeShutdown, "server shutting down; reconnect")
}

// flush writes what is queued (Acks of committed batches), then the final
// Error if there is one, then a close frame.
func (c *conn) flush() {
	for {
		select {
		case data := <-c.out:
			if !c.write(data) {
				return
			}
			continue
		default:
		}
		break
	}
	closeCode := websocket.CloseNormalClosure
	if e := c.final.Load(); e != nil {
		if data, err := syncproto.Encode(e); err == nil {
			c.write(data)
		}
		closeCode = websocket.ClosePolicyViolation
		if e.Code == syncproto.ErrorCodeShutdown {
			closeCode = websocket.CloseServiceRestart
		}
	}
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCode, ""),
		time.Now().Add(c.s.cfg.WriteTimeout))
}

func (c *conn) write(data []byte) bool {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
		return false
	}
	return c.ws.WriteMessage(websocket.BinaryMessage, data) == nil
}
