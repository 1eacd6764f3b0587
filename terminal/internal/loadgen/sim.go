package loadgen

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/clock"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

// Limits of a SimTerminal's sessions: the uplink's defaults, so that the
// server sees the same traffic from both kinds of terminal.
const (
	simMaxBatchTaps = uplink.DefaultMaxBatchTaps
	simMaxInFlight  = uplink.DefaultMaxInFlight
	simMinBackoff   = uplink.DefaultMinBackoff
	simMaxBackoff   = uplink.DefaultMaxBackoff
	simAckTimeout   = uplink.DefaultAckTimeout
	simWriteTimeout = uplink.DefaultWriteTimeout
	// simReadBuffer and simWriteBuffer size the client side of the
	// websocket: the reader sees Welcome and Acks, the writer Batches.
	simReadBuffer  = 4 << 10
	simWriteBuffer = 64 << 10
	// simProtocolVersion is what a terminal without a card cache offers
	// (as the uplink does without one): no card data comes back.
	simProtocolVersion = 1
)

// SimTerminal is a lighter simulated terminal for fleets larger than one
// process can hold as Terminals: a Terminal keeps two files open (its bbolt
// outbox and its websocket), and this machine's hard limit of 20 000 open
// files per process stops that short of 10 000 terminals. A SimTerminal
// keeps its taps in memory, so recording one is not an fsync, and it sends
// no Status messages; everything the server sees is otherwise the real
// thing: a real websocket, the real syncproto Hello, Batches pipelined up
// to the uplink's window, the server's Acks, pings answered, reconnection
// with the uplink's backoff. A tap is "durable" when Append returns.
type SimTerminal struct {
	ackTracker
	// ID is the terminal id the server knows it by.
	ID string

	cred  string
	url   string
	clock *clock.Clock
	epoch int64

	mu        sync.Mutex
	taps      []syncproto.Tap // recorded and not acknowledged, in Seq order
	lastSeq   uint64
	lastErr   string
	notify    chan struct{} // capacity 1: taps were recorded
	connected atomic.Bool
	runner    runner
}

func (e *Env) newSimTerminal(id, credential string) (*SimTerminal, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("loadgen: terminal %s: epoch: %w", id, err)
	}
	return &SimTerminal{ID: id, cred: credential, url: e.ReplicaSyncURL(e.nextReplica()), clock: e.clock,
		epoch: int64(binary.BigEndian.Uint64(b[:])>>1) | 1, notify: make(chan struct{}, 1)}, nil
}

// Tap returns the i-th synthetic tap of the terminal (see Terminal.Tap).
func (t *SimTerminal) Tap(i int) syncproto.Tap { return syntheticTap(t.clock, t.card(i)) }

// Append records the taps in memory, giving each the next sequence number.
func (t *SimTerminal) Append(_ context.Context, taps ...syncproto.Tap) ([]syncproto.Tap, error) {
	t.mu.Lock()
	stored := make([]syncproto.Tap, len(taps))
	for i, tap := range taps {
		t.lastSeq++
		tap.Seq = t.lastSeq
		stored[i] = tap
	}
	t.taps = append(t.taps, stored...)
	t.mu.Unlock()
	t.durable(stored, time.Now())
	select {
	case t.notify <- struct{}{}:
	default:
	}
	return stored, nil
}

// Start runs sessions, reconnecting with backoff, until Stop or Close.
func (t *SimTerminal) Start() { t.runner.start(t.run) }

// Stop ends the session and waits for it; recorded taps stay.
func (t *SimTerminal) Stop() { t.runner.stop() }

// Close stops the terminal. Later calls do nothing.
func (t *SimTerminal) Close() error {
	t.runner.close()
	return nil
}

// Connected reports whether the terminal has been welcomed and its session
// is up.
func (t *SimTerminal) Connected() bool { return t.connected.Load() }

// Drained reports whether every tap recorded has been acknowledged.
func (t *SimTerminal) Drained() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.taps) == 0
}

// Describe returns the terminal's id and state.
func (t *SimTerminal) Describe() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return fmt.Sprintf("%s: %d taps unacknowledged of %d, connected %v, last error %q",
		t.ID, len(t.taps), t.lastSeq, t.connected.Load(), t.lastErr)
}

// run keeps a session up until ctx ends, with the uplink's backoff: full
// jitter between half and all of it, doubling up to the maximum, back to
// the minimum after a session that was welcomed.
func (t *SimTerminal) run(ctx context.Context) {
	backoff := simMinBackoff
	for {
		welcomed, err := t.session(ctx)
		t.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		t.failed(err)
		t.mu.Lock()
		t.lastErr = err.Error()
		t.mu.Unlock()
		if welcomed {
			backoff = simMinBackoff
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + mrand.N(backoff/2+1)):
		}
		backoff = min(backoff*2, simMaxBackoff)
	}
}

// pending returns up to max recorded taps after sequence after.
func (t *SimTerminal) pending(after uint64, max int) []syncproto.Tap {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := 0
	if len(t.taps) > 0 && after >= t.taps[0].Seq {
		i = min(int(after-t.taps[0].Seq+1), len(t.taps))
	}
	return append([]syncproto.Tap(nil), t.taps[i:min(i+max, len(t.taps))]...)
}

// drop forgets the taps the server acknowledged.
func (t *SimTerminal) drop(through uint64) {
	t.mu.Lock()
	n := 0
	for n < len(t.taps) && t.taps[n].Seq <= through {
		n++
	}
	t.taps = t.taps[n:]
	t.mu.Unlock()
	t.acked(through)
}

// session runs one connection; welcomed reports whether the server
// welcomed it.
func (t *SimTerminal) session(ctx context.Context) (welcomed bool, err error) {
	dialer := websocket.Dialer{HandshakeTimeout: simWriteTimeout, ReadBufferSize: simReadBuffer, WriteBufferSize: simWriteBuffer}
	ws, resp, err := dialer.DialContext(ctx, t.url, http.Header{"Authorization": {"Bearer " + t.cred}})
	if err != nil {
		if resp != nil {
			return false, fmt.Errorf("dial: %s: %w", resp.Status, err)
		}
		return false, fmt.Errorf("dial: %w", err)
	}
	defer ws.Close()
	ws.SetReadLimit(syncproto.MaxMessageBytes)
	write := func(m syncproto.Message) error {
		b, err := syncproto.Encode(m)
		if err != nil {
			return err
		}
		ws.SetWriteDeadline(time.Now().Add(simWriteTimeout))
		return ws.WriteMessage(websocket.BinaryMessage, b)
	}
	t.mu.Lock()
	acked := t.lastSeq - uint64(len(t.taps))
	hello := &syncproto.Hello{ProtocolVersion: simProtocolVersion, TerminalID: t.ID, StoreEpoch: t.epoch,
		AgentVersion: "loadgen-sim", Clock: t.clock.Now(), OutboxDepth: uint64(len(t.taps)), OutboxAcked: acked}
	t.mu.Unlock()
	if err := write(hello); err != nil {
		return false, err
	}
	ws.SetReadDeadline(time.Now().Add(uplink.DefaultPongWait))
	m, err := readMessage(ws)
	if err != nil {
		return false, err
	}
	welcome, ok := m.(*syncproto.Welcome)
	if !ok {
		return false, fmt.Errorf("got %s, want Welcome", m.MsgType())
	}
	ws.SetReadDeadline(time.Time{})
	t.drop(welcome.AckedThrough)
	t.connected.Store(true)
	t.sessionUp()
	maxBatch := min(int(welcome.MaxBatchTaps), syncproto.MaxBatchTaps, simMaxBatchTaps)
	window := min(max(int(welcome.MaxInFlight), 1), simMaxInFlight)

	acks := make(chan *syncproto.Ack, window)
	readErr := make(chan error, 1)
	quit := make(chan struct{})
	readDone := make(chan struct{})
	go func() { // reading also answers the server's pings
		defer close(readDone)
		for {
			m, err := readMessage(ws)
			if err != nil {
				readErr <- err
				return
			}
			ack, ok := m.(*syncproto.Ack)
			if !ok {
				readErr <- fmt.Errorf("unexpected %s", m.MsgType())
				return
			}
			select {
			case acks <- ack:
			case <-quit:
				return
			}
		}
	}()
	defer func() { close(quit); ws.Close(); <-readDone }()

	acked = max(acked, welcome.AckedThrough)
	sent := acked
	var batchID uint64
	inflight := 0
	ackTimer := time.NewTimer(simAckTimeout)
	defer ackTimer.Stop()
	for {
		for inflight < window {
			taps := t.pending(sent, maxBatch)
			if len(taps) == 0 {
				break
			}
			batchID++
			if err := write(&syncproto.Batch{BatchID: batchID, Taps: taps}); err != nil {
				return true, err
			}
			if inflight == 0 {
				ackTimer.Reset(simAckTimeout)
			}
			inflight++
			sent = taps[len(taps)-1].Seq
		}
		select {
		case <-ctx.Done():
			ws.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseGoingAway, "terminal stopping"), time.Now().Add(time.Second))
			return true, ctx.Err()
		case err := <-readErr:
			return true, err
		case <-ackTimer.C:
			if inflight > 0 {
				return true, errors.New("no Ack within the ack timeout")
			}
		case ack := <-acks:
			inflight--
			ackTimer.Reset(simAckTimeout)
			if ack.AckedThrough > acked {
				acked = ack.AckedThrough
				t.drop(acked)
			}
			if inflight == 0 && sent > acked {
				sent = acked // the server's cursor stopped short: resend from it
			}
		case <-t.notify:
		}
	}
}

// readMessage reads and decodes one message.
func readMessage(ws *websocket.Conn) (syncproto.Message, error) {
	_, data, err := ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	return syncproto.Decode(data)
}

// Terminal kinds for AddMembers.
const (
	// KindOutbox is a Terminal: a real bbolt outbox and a real uplink.
	KindOutbox = "outbox"
	// KindSim is a SimTerminal: the real protocol, taps in memory.
	KindSim = "sim"
)

// KindDescription says what a kind of terminal is, for reports.
func KindDescription(kind string) string {
	if kind == KindSim {
		return "sim: real websocket + real syncproto (Hello, pipelined Batches, Acks, pings), taps in memory (no fsync, no Status)"
	}
	return "outbox: real bbolt outbox (fsync per commit) + real uplink over a real websocket"
}

// AddMembers registers n new terminals of the kind with "liggare-server
// terminal add" (at no site) and returns them, not started. They are
// closed by Close, or earlier by their Close.
func (e *Env) AddMembers(ctx context.Context, n int, kind string) ([]Member, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	prefix := "lg"
	if kind == KindSim {
		prefix = "sim"
	}
	ids := e.NewIDs(prefix, n)
	creds, err := e.Credentials(ctx, ids)
	if err != nil {
		return nil, err
	}
	return e.OpenMembers(kind, ids, creds)
}

func checkKind(kind string) error {
	if kind != KindOutbox && kind != KindSim {
		return fmt.Errorf("loadgen: unknown terminal kind %q (want %s or %s)", kind, KindOutbox, KindSim)
	}
	return nil
}

// OpenMembers returns terminals of the kind, not started, for ids with
// their credentials (from Credentials or from enrollment). They are closed
// by Close, or earlier by their Close.
func (e *Env) OpenMembers(kind string, ids, creds []string) ([]Member, error) {
	if err := checkKind(kind); err != nil {
		return nil, err
	}
	members := make([]Member, 0, len(ids))
	if kind == KindOutbox {
		terms, err := e.openTerminals(ids, creds)
		if err != nil {
			return nil, err
		}
		for _, t := range terms {
			members = append(members, t)
		}
		return members, nil
	}
	for i, id := range ids {
		s, err := e.newSimTerminal(id, creds[i])
		if err != nil {
			return nil, err
		}
		members = append(members, s)
	}
	if err := e.keep(members); err != nil {
		return nil, err
	}
	return members, nil
}
