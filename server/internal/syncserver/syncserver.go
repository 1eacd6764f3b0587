// Package syncserver is the server end of the sync protocol: the websocket
// endpoint terminals connect to. It is the only server package that imports
// gorilla/websocket.
//
// Memory per idle connection is what lets one server carry a region's
// terminals, so a connection is built to cost little while it waits, and
// also while it waits to be let in: ten thousand terminals may dial at the
// same moment. The credential is checked from memory (auth.CredentialCache)
// and the websocket upgraded at once, so the HTTP handler's goroutine
// exits at once. A short-lived goroutine reads the Hello; the connection
// then waits in the admission queue as a plain struct, and a few admission
// workers (AdmissionWorkers) open the sessions in the database and send
// the Welcomes, instead of ten thousand goroutines each blocked deep in a
// call chain with a grown stack. What stays is one reader goroutine,
// blocked in a read with a small buffer, and timers for pings and
// card-data checks. A writer goroutine exists only
// while there is something to send: Acks of committed batches, pings, card
// updates, the final Error. It is started when the first item is queued and
// exits when the queue is empty, so there is never more than one writer.
//
// At most MaxInFlight batches of a connection wait for their commit; the
// reader stops reading until one is answered, which pushes back on the
// terminal through TCP.
package syncserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
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
	// DefaultAdmissionWorkers is how many sessions are opened in the
	// database at once (Config.AdmissionWorkers). A few keep PostgreSQL
	// busy; more only wait for the pool, which the committer needs too.
	DefaultAdmissionWorkers = 8
	// admitBatch is how many queued sessions one admission worker opens
	// in one transaction (ingest.Store.OpenSessions): one commit, one
	// fsync, for many Welcomes.
	admitBatch = 64
	// burstAdmissions and burstQuiet define a burst of admissions (a
	// reconnection storm): at least burstAdmissions sessions opened
	// without the queue staying empty for burstQuiet. A burst leaves
	// behind a heap grown for it (each upgrade drops net/http's buffers,
	// about 12 KiB), which the Go runtime keeps until its next collection
	// and returns slowly after it; after a burst, the server collects and
	// returns that memory at once (debug.FreeOSMemory: one full
	// collection).
	burstAdmissions = 1000
	burstQuiet      = time.Second
	// DefaultCredentialRecheck bounds how long a revoked terminal stays
	// connected.
	DefaultCredentialRecheck = time.Minute
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
	Terminals *auth.Terminals
	// Credentials, when set, checks credentials from memory instead of
	// Terminals.
	Credentials *auth.CredentialCache
	// AdmissionWorkers is how many sessions are opened at once (default
	// DefaultAdmissionWorkers). The admission queue in front of them holds
	// one small struct per connection waiting for its Welcome; it is
	// bounded by the connections the process may hold (its open-file
	// limit).
	AdmissionWorkers int
	Store            *ingest.Store
	Committer        *ingest.Committer
	Logger           *slog.Logger
	PingInterval     time.Duration
	PongWait         time.Duration
	HelloTimeout     time.Duration
	WriteTimeout     time.Duration
	MaxInFlight      int
	MaxBatchTaps     int
	// TrustedSkew is passed to each ingest.Session.
	TrustedSkew time.Duration
	// Cards, when set, sends card data to version 2 terminals.
	Cards *downlink.Feed
	// CardInterval is how often an idle connection checks for card data
	// to send (default DefaultCardInterval).
	CardInterval time.Duration
	// CredentialRecheck is how often a connection checks that its
	// credential was not revoked (default DefaultCredentialRecheck).
	CredentialRecheck time.Duration
	// Observer, when set, is told about traffic (for metrics).
	Observer *Observer
}

// Observer receives events for metrics. Any field may be nil. The functions
// run on connection goroutines and must return quickly.
type Observer struct {
	// Report is called with what a terminal says about itself: at the
	// Hello (prev nil), at each Status, and when the connection ends (cur
	// nil), so that gauges over connected terminals can be kept exactly.
	Report func(prev, cur *TerminalReport)
	// BatchReceived is called for each batch read, with its tap count.
	BatchReceived func(taps int)
	// Acked is called when the Ack of a batch of taps is queued, latency
	// after the batch was read.
	Acked func(ack *syncproto.Ack, taps int, latency time.Duration)
}

// TerminalReport is what a terminal last reported about itself.
type TerminalReport struct {
	OutboxDepth uint64
	// ClockOffset is the server clock minus the terminal's.
	ClockOffset time.Duration
}

// credentials checks terminal credentials: auth.Terminals asks the
// database, auth.CredentialCache answers from memory when it can.
type credentials interface {
	Authenticate(ctx context.Context, credential string) (string, int64, error)
	Active(ctx context.Context, credentialID int64) (bool, error)
}

// Server accepts terminal connections.
type Server struct {
	cfg      Config
	creds    credentials
	upgrader websocket.Upgrader
	draining atomic.Bool

	admitMu   sync.Mutex
	admitQ    []*conn // connections whose Hello was read, waiting to be opened
	admitting int     // admission workers running
	admitted  int     // sessions admitted since the last burst ended
	burstEnd  *time.Timer

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
	if cfg.CredentialRecheck <= 0 {
		cfg.CredentialRecheck = DefaultCredentialRecheck
	}
	if cfg.AdmissionWorkers <= 0 {
		cfg.AdmissionWorkers = DefaultAdmissionWorkers
	}
	var creds credentials = cfg.Terminals
	if cfg.Credentials != nil {
		creds = cfg.Credentials
	}
	return &Server{
		cfg:   cfg,
		creds: creds,
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
	terminalID, credID, err := s.creds.Authenticate(r.Context(), token)
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
		credential: credID,
		logger:     s.cfg.Logger.With(logTerminal, terminalID),
		finalSent:  make(chan struct{}),
	}
	c.slotFreed = sync.NewCond(&c.mu)
	// Shutdown sets draining, then takes mu to drain every connection and
	// waits for wg: a connection is counted under mu, or not at all.
	s.mu.Lock()
	if s.draining.Load() {
		s.mu.Unlock()
		ws.Close() // the terminal reconnects, to another replica or later
		return
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	// The handler's goroutine ends here; a small one reads the Hello.
	go c.greet()
}

// Revoked ends at once the sessions of connections that authenticated with
// one of the given credentials (auth.CacheOptions.OnRevoke): no batch is
// taken from them any more, and those already committing are answered.
func (s *Server) Revoked(credentialIDs []int64) {
	s.mu.Lock()
	var cut []*conn
	for c := range s.conns {
		if slices.Contains(credentialIDs, c.credential) {
			cut = append(cut, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cut {
		c.revoked()
	}
}

// admit puts a connection whose Hello was read in the admission queue and
// starts a worker if fewer than AdmissionWorkers run.
func (s *Server) admit(c *conn) {
	s.admitMu.Lock()
	defer s.admitMu.Unlock()
	s.admitQ = append(s.admitQ, c)
	s.admitted++
	if s.burstEnd != nil {
		s.burstEnd.Stop()
	}
	if s.admitting < s.cfg.AdmissionWorkers {
		s.admitting++
		s.wg.Add(1)
		go s.admitLoop()
	}
}

// admitLoop opens the sessions of queued connections, in the order their
// Hellos arrived and up to admitBatch in one transaction, and exits when
// the queue is empty.
func (s *Server) admitLoop() {
	defer s.wg.Done()
	for {
		s.admitMu.Lock()
		if len(s.admitQ) == 0 {
			s.admitting--
			s.admitQ = nil // let a large backing array go
			if s.admitting == 0 && s.admitted >= burstAdmissions {
				if s.burstEnd == nil {
					s.burstEnd = time.AfterFunc(burstQuiet, s.afterBurst)
				} else {
					s.burstEnd.Reset(burstQuiet)
				}
			}
			s.admitMu.Unlock()
			return
		}
		batch := slices.Clone(s.admitQ[:min(len(s.admitQ), admitBatch)])
		clear(s.admitQ[:len(batch)])
		s.admitQ = s.admitQ[len(batch):]
		s.admitMu.Unlock()
		s.open(batch)
	}
}

// open opens the sessions of admitted connections, sends their Welcomes and
// starts their readers.
func (s *Server) open(batch []*conn) {
	var live []*conn
	var opens []*ingest.Opening
	for _, c := range batch {
		o := c.opening()
		if o == nil {
			c.closeAfterFinal()
			s.wg.Done()
			continue
		}
		live = append(live, c)
		opens = append(opens, o)
	}
	if len(opens) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HelloTimeout)
	defer cancel()
	// The upgrade trusted the credential cache, which hears of a
	// revocation by another process a moment after it commits. Ask the
	// database before any Welcome: a terminal revoked before it connected
	// stores nothing.
	creds := make([]int64, len(live))
	for i, c := range live {
		creds[i] = c.credential
	}
	revoked, err := s.cfg.Terminals.Inactive(ctx, creds)
	if err != nil {
		for _, o := range opens {
			o.Err = err
		}
	}
	var keep []*conn
	var keepOpens []*ingest.Opening
	for i, c := range live {
		if slices.Contains(revoked, c.credential) {
			c.fail(syncproto.ErrorCodeUnauthorized, "credential revoked")
			c.closeAfterFinal()
			s.wg.Done()
			continue
		}
		keep, keepOpens = append(keep, c), append(keepOpens, opens[i])
	}
	if err == nil && len(keepOpens) > 0 {
		s.cfg.Store.OpenSessions(ctx, keepOpens) // each Opening has its own answer
	}
	places := s.places(ctx, keep)
	for i, c := range keep {
		c.welcome(keepOpens[i], places)
	}
}

// places looks up in one query where the batch's card-capable terminals
// stand, for their card streams: one query per terminal would make the
// last Welcome of a batch wait for all the others'. nil when there are
// none or the lookup failed (logged; the sessions go on without cards
// until they reconnect).
func (s *Server) places(ctx context.Context, batch []*conn) map[string]downlink.Place {
	if s.cfg.Cards == nil {
		return nil
	}
	var ids []string
	for _, c := range batch {
		if c.version >= 2 {
			ids = append(ids, c.terminalID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	places, err := s.cfg.Cards.TerminalSites(ctx, ids)
	if err != nil {
		s.cfg.Logger.Error("sync_cards_failed", logErr, err)
		return nil
	}
	return places
}

// afterBurst returns the memory a burst of admissions used for a moment,
// unless admissions went on.
func (s *Server) afterBurst() {
	s.admitMu.Lock()
	quiet := s.admitting == 0 && len(s.admitQ) == 0
	if quiet {
		s.admitted = 0
	}
	s.admitMu.Unlock()
	if quiet {
		debug.FreeOSMemory()
	}
}

// greet reads the Hello, then queues the connection for admission.
func (c *conn) greet() {
	if !c.readHello() {
		c.closeAfterFinal()
		c.s.wg.Done()
		return
	}
	c.s.admit(c)
}

// welcome answers an opened session with a Welcome and starts its reader,
// or ends the connection if the session could not be opened.
func (c *conn) welcome(o *ingest.Opening, places map[string]downlink.Place) {
	if !c.handshake(o, places[c.terminalID]) {
		c.closeAfterFinal()
		c.s.wg.Done()
		return
	}
	s := c.s
	c.mu.Lock()
	if !c.closed {
		c.ping = time.AfterFunc(s.cfg.PingInterval, c.onPing)
		c.cardTimer = time.AfterFunc(s.cfg.CardInterval, c.onCardTimer)
		c.recheck = time.AfterFunc(s.cfg.CredentialRecheck, c.onRecheck)
	}
	c.mu.Unlock()
	if c.cards.Load() != nil {
		c.wakeCards()
	}
	go c.readLoop(o.Session)
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
		conns := make([]*conn, 0, len(s.conns))
		for c := range s.conns {
			conns = append(conns, c)
		}
		s.mu.Unlock()
		for _, c := range conns {
			c.abort()
		}
		return fmt.Errorf("syncserver: shutdown: %w", ctx.Err())
	}
}

type itemKind uint8

const (
	itemMessage itemKind = iota // an encoded message
	itemPing                    // a websocket ping
	itemCards                   // look for card data to send
	itemFinal                   // the final Error (if any), a close frame, then close
)

type outItem struct {
	kind itemKind
	data []byte
}

type conn struct {
	s          *Server
	ws         *websocket.Conn
	terminalID string
	credential int64 // the credential this connection authenticated with
	logger     *slog.Logger

	mu        sync.Mutex
	queue     []outItem        // what the writer must send, in order
	writing   bool             // a writer goroutine is running
	cardsDue  bool             // an itemCards is queued
	inFlight  int              // batches submitted and not yet answered
	slotFreed *sync.Cond       // signalled when inFlight drops or the connection ends
	draining  bool             // ending: no new batch is taken
	ending    *syncproto.Error // sent once draining and no batch is in flight
	closing   bool             // the final item is queued; nothing more is sent
	closed    bool             // the websocket is closed
	final     *syncproto.Error
	finalSent chan struct{} // closed once the final item is written (or abandoned)

	ping      *time.Timer
	cardTimer *time.Timer
	recheck   *time.Timer
	cards     atomic.Pointer[downlink.Stream] // set once welcomed, version >= 2
	report    *TerminalReport                 // the last one; the reader's alone

	// Set by readHello for the handshake, then dropped.
	hello         *syncproto.Hello
	helloReceived time.Time
	version       uint32
}

// observe tells the Observer of a new report (nil: the connection ended).
func (c *conn) observe(cur *TerminalReport) {
	if o := c.s.cfg.Observer; o != nil && o.Report != nil && (c.report != nil || cur != nil) {
		o.Report(c.report, cur)
	}
	c.report = cur
}

// enqueue hands an item to the writer, starting one if none runs. Items
// queued once the connection is closing are dropped, but for the final one.
func (c *conn) enqueue(it outItem) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.enqueueLocked(it)
}

func (c *conn) enqueueLocked(it outItem) {
	if c.closed || (c.closing && it.kind != itemFinal) {
		return
	}
	if it.kind == itemCards {
		if c.cardsDue {
			return
		}
		c.cardsDue = true
	}
	c.queue = append(c.queue, it)
	if !c.writing {
		c.writing = true
		c.s.wg.Add(1)
		go c.writeLoop()
	}
}

// writeLoop sends queued items and exits when the queue is empty.
func (c *conn) writeLoop() {
	defer c.s.wg.Done()
	for {
		c.mu.Lock()
		if len(c.queue) == 0 || c.closed {
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		it := c.queue[0]
		c.queue[0] = outItem{}
		c.queue = c.queue[1:]
		if it.kind == itemCards {
			c.cardsDue = false
		}
		final := c.final
		c.mu.Unlock()

		ok := true
		switch it.kind {
		case itemMessage:
			ok = c.write(it.data)
		case itemPing:
			ok = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.s.cfg.WriteTimeout)) == nil
		case itemCards:
			ok = c.pushCards()
		case itemFinal:
			closeCode := websocket.CloseNormalClosure
			if final != nil {
				if data, err := syncproto.Encode(final); err == nil {
					c.write(data)
				}
				closeCode = websocket.ClosePolicyViolation
				if final.Code == syncproto.ErrorCodeShutdown {
					closeCode = websocket.CloseServiceRestart
				}
			}
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(closeCode, ""),
				time.Now().Add(c.s.cfg.WriteTimeout))
			close(c.finalSent)
			ok = false // nothing is written after the final item
		}
		if !ok {
			c.abort()
		}
	}
}

func (c *conn) write(data []byte) bool {
	if err := c.ws.SetWriteDeadline(time.Now().Add(c.s.cfg.WriteTimeout)); err != nil {
		return false
	}
	return c.ws.WriteMessage(websocket.BinaryMessage, data) == nil
}

// send queues a message for the writer.
func (c *conn) send(m syncproto.Message) {
	data, err := syncproto.Encode(m)
	if err != nil {
		c.logger.Error("sync_encode_failed", logErr, err)
		c.fail(syncproto.ErrorCodeInternal, "server failed to encode %s", m.MsgType())
		return
	}
	c.enqueue(outItem{kind: itemMessage, data: data})
}

// fail ends the connection with an Error message to the peer: what is
// already queued is sent first, then the Error, then a close frame.
func (c *conn) fail(code syncproto.ErrorCode, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if code != syncproto.ErrorCodeShutdown {
		c.logger.Warn("sync_session_error", logCode, code.String(), logErr, msg)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(&syncproto.Error{Code: code, Message: msg})
}

func (c *conn) failLocked(e *syncproto.Error) {
	if c.closing || c.closed {
		return
	}
	c.final = e
	c.enqueueLocked(outItem{kind: itemFinal})
	c.closing = true
	c.slotFreed.Broadcast()
}

// closeAfterFinal waits (bounded) for the final item to be written, then
// closes the connection.
func (c *conn) closeAfterFinal() {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		select {
		case <-c.finalSent:
		case <-time.After(c.s.cfg.WriteTimeout):
		}
	}
	c.abort()
}

// abort closes the websocket at once and forgets the connection.
func (c *conn) abort() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.closing = true, true
	c.slotFreed.Broadcast()
	if c.ping != nil {
		c.ping.Stop()
	}
	if c.cardTimer != nil {
		c.cardTimer.Stop()
	}
	if c.recheck != nil {
		c.recheck.Stop()
	}
	c.mu.Unlock()
	c.ws.Close()
	c.s.mu.Lock()
	delete(c.s.conns, c)
	c.s.mu.Unlock()
}

func (c *conn) onPing() {
	c.enqueue(outItem{kind: itemPing})
	c.mu.Lock()
	if !c.closed {
		c.ping.Reset(c.s.cfg.PingInterval)
	}
	c.mu.Unlock()
}

func (c *conn) onCardTimer() {
	if st := c.cards.Load(); st != nil && st.Pending() {
		c.wakeCards()
	}
	c.mu.Lock()
	if !c.closed {
		c.cardTimer.Reset(c.s.cfg.CardInterval)
	}
	c.mu.Unlock()
}

func (c *conn) wakeCards() { c.enqueue(outItem{kind: itemCards}) }

// onRecheck checks that the connection's credential was not revoked since
// the terminal connected, and ends the session if it was.
func (c *conn) onRecheck() {
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
	active, err := c.s.creds.Active(ctx, c.credential)
	cancel()
	if err == nil && !active {
		c.revoked()
		return
	}
	c.mu.Lock()
	if !c.closed {
		c.recheck.Reset(c.s.cfg.CredentialRecheck)
	}
	c.mu.Unlock()
}

// pushCards sends the next card update if there is one. It runs on the
// writer goroutine.
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

// startDrain begins a graceful end: no new batches are taken, and once the
// batches in flight are answered the terminal is told to reconnect.
func (c *conn) startDrain() {
	c.endAfterInFlight(&syncproto.Error{Code: syncproto.ErrorCodeShutdown, Message: "server shutting down; reconnect"})
}

// revoked ends the session of a revoked credential: its batches from now
// on are not stored, and those already committing are answered first (their
// taps are stored; an Ack lost would only make the terminal send them
// again).
func (c *conn) revoked() {
	c.logger.Warn("sync_session_error", logCode, syncproto.ErrorCodeUnauthorized.String(), logErr, "credential revoked")
	c.endAfterInFlight(&syncproto.Error{Code: syncproto.ErrorCodeUnauthorized, Message: "credential revoked"})
}

// endAfterInFlight stops taking batches and sends e once none is in flight
// (the first reason given is the one sent).
func (c *conn) endAfterInFlight(e *syncproto.Error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.draining {
		return
	}
	c.draining, c.ending = true, e
	if c.inFlight == 0 {
		c.failLocked(e)
	}
}

func (c *conn) readLoop(sess *ingest.Session) {
	defer c.s.wg.Done()
	defer c.closeAfterFinal()
	defer c.observe(nil)
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
			if o := c.s.cfg.Observer; o != nil && o.BatchReceived != nil {
				o.BatchReceived(len(m.Taps))
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
			c.observe(&TerminalReport{OutboxDepth: m.OutboxDepth, ClockOffset: received.Sub(time.UnixMicro(m.Clock.WallMicros))})
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

// readHello reads and checks the Hello.
func (c *conn) readHello() bool {
	if err := c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.HelloTimeout)); err != nil {
		return false
	}
	m, ok := c.read()
	if !ok {
		return false
	}
	received := time.Now()
	hello, isHello := m.(*syncproto.Hello)
	switch {
	case !isHello:
		c.fail(syncproto.ErrorCodeUnexpected, "first message is %s, want Hello", m.MsgType())
		return false
	case hello.TerminalID != c.terminalID:
		c.fail(syncproto.ErrorCodeUnauthorized, "credential is for terminal %q, Hello names %q", c.terminalID, hello.TerminalID)
		return false
	}
	version, err := syncproto.Negotiate(hello.ProtocolVersion)
	if err != nil {
		c.fail(syncproto.ErrorCodeVersion, "%v", err)
		return false
	}
	c.hello, c.helloReceived, c.version = hello, received, version
	return true
}

// opening is the session to open for the Hello readHello read, or nil
// for a connection that ended while it waited for admission (a
// revocation, a shutdown).
func (c *conn) opening() *ingest.Opening {
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return nil
	}
	hello := c.hello
	return &ingest.Opening{
		Session: &ingest.Session{
			TerminalID:    c.terminalID,
			StoreEpoch:    hello.StoreEpoch,
			HelloClock:    hello.Clock,
			HelloReceived: c.helloReceived,
			TrustedSkew:   c.s.cfg.TrustedSkew,
		},
		AgentVersion: hello.AgentVersion,
		OutboxAcked:  hello.OutboxAcked,
	}
}

// handshake answers an opened session with a Welcome, and follows the
// card data of the site the terminal stands on (place) if it takes cards.
func (c *conn) handshake(o *ingest.Opening, place downlink.Place) bool {
	hello, version, sess, acked := c.hello, c.version, o.Session, o.Acked
	c.hello = nil
	if o.Err != nil {
		c.logger.Error("sync_open_session_failed", logErr, o.Err)
		c.fail(syncproto.ErrorCodeInternal, "server cannot open the session now; retry later")
		return false
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
	c.observe(&TerminalReport{OutboxDepth: hello.OutboxDepth, ClockOffset: sess.ClockOffset()})
	if feed := c.s.cfg.Cards; feed != nil && version >= 2 && place.Site != 0 {
		c.cards.Store(feed.NewStream(c.terminalID, place.Site, hello.CardCursor, place.CacheSite))
	}
	return true
}

// submit hands a batch to the committer once a slot is free; the Ack is
// queued by the committer's callback after the commit. While the
// connection ends (a shutdown, a revocation), new batches are dropped
// unacknowledged (the terminal sends them again after reconnecting) and the
// reader keeps reading.
func (c *conn) submit(sess *ingest.Session, b *syncproto.Batch, received time.Time) bool {
	c.mu.Lock()
	for c.inFlight >= c.s.cfg.MaxInFlight && !c.closing && !c.draining {
		c.slotFreed.Wait()
	}
	switch {
	case c.closing:
		c.mu.Unlock()
		return false
	case c.draining:
		c.mu.Unlock()
		return true
	}
	c.inFlight++
	c.mu.Unlock()
	sub := &ingest.Submission{Session: sess, Batch: b, Received: received}
	err := c.s.cfg.Committer.Submit(context.Background(), sub, func(ack *syncproto.Ack, err error) {
		if err != nil {
			c.release()
			c.fail(syncproto.ErrorCodeInternal, "batch not stored; it will be retried")
			return
		}
		c.send(ack)
		if o := c.s.cfg.Observer; o != nil && o.Acked != nil {
			o.Acked(ack, len(b.Taps), time.Since(received))
		}
		c.release()
	})
	if err != nil {
		c.release()
		c.fail(syncproto.ErrorCodeShutdown, "server shutting down; reconnect")
		return false
	}
	return true
}

// release frees a batch slot; the last answer of a draining connection
// tells the terminal to reconnect.
func (c *conn) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inFlight--
	c.slotFreed.Broadcast()
	if c.draining && c.inFlight == 0 {
		c.failLocked(c.ending)
	}
}
