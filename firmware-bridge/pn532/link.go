package pn532

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// maxQueued bounds the frames waiting for the driver: the PN532 sends a
// frame or two per command, so a longer queue is garbage or stale replies,
// and the oldest are dropped.
const maxQueued = 64

// closeWait bounds how long closing a link waits for its read goroutine:
// serialport promises that Close ends a pending Read, and if a port breaks
// that promise the driver still shuts down.
const closeWait = 5 * time.Second

// event is one result of parsing the line: a frame with the time its last
// byte arrived, or the error for a frame that was dropped.
type event struct {
	f   Frame
	err error
	at  time.Time
}

// link is one open port: a goroutine reads it and parses frames into a
// bounded queue, which the driver's goroutine consumes with deadlines. The
// read goroutine never blocks on the driver, so a peer that writes only
// while it is read (a net.Pipe) cannot deadlock the two.
type link struct {
	port Port
	// counted is called from the read goroutine for every frame parsed or
	// dropped, so link counters do not depend on who consumes the queue.
	counted func(error)

	mu     sync.Mutex
	parser Parser
	queue  []event
	gone   error // the read error that ended the read goroutine

	notify chan struct{} // capacity 1: "the queue or gone changed"
	done   chan struct{} // closed when the read goroutine ends
}

// errPortGone wraps the error of a port that failed, so the driver knows to
// close it and open it again.
var errPortGone = errors.New("pn532: port gone")

// errTimeout reports a deadline that passed without a frame.
var errTimeout = errors.New("pn532: timeout")

func startLink(port Port, counted func(error)) *link {
	l := &link{
		port:    port,
		counted: counted,
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go l.readLoop()
	return l
}

func (l *link) readLoop() {
	defer close(l.done)
	buf := make([]byte, 512)
	for {
		n, err := l.port.Read(buf)
		if err != nil && isTimeout(err) {
			err = nil
		}
		now := time.Now()
		l.mu.Lock()
		if n > 0 {
			_, _ = l.parser.Write(buf[:n])
			l.parseLocked(now)
		}
		if err != nil {
			l.gone = err
		}
		l.mu.Unlock()
		if n > 0 || err != nil {
			l.signal()
		}
		if err != nil {
			return
		}
	}
}

// isTimeout reports a read that merely found no data: serialport's
// ErrTimeout, or a deadline on a net.Conn.
func isTimeout(err error) bool {
	if errors.Is(err, serialport.ErrTimeout) {
		return true
	}
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// parseLocked moves every complete frame (or dropped frame's error) from
// the parser to the queue.
func (l *link) parseLocked(at time.Time) {
	for {
		f, err := l.parser.Next()
		if errors.Is(err, ErrIncomplete) {
			return
		}
		l.counted(err)
		if len(l.queue) >= maxQueued {
			l.queue = append(l.queue[:0], l.queue[1:]...)
		}
		l.queue = append(l.queue, event{f: f, err: err, at: at})
	}
}

func (l *link) signal() {
	select {
	case l.notify <- struct{}{}:
	default:
	}
}

// next returns the next event, waiting until deadline. It returns
// errTimeout when the deadline passes, a wrapped errPortGone when the port
// failed, or the context's error.
func (l *link) next(ctx context.Context, deadline time.Time) (event, error) {
	for {
		l.mu.Lock()
		if len(l.queue) > 0 {
			e := l.queue[0]
			l.queue = append(l.queue[:0], l.queue[1:]...)
			l.mu.Unlock()
			return e, nil
		}
		gone := l.gone
		l.mu.Unlock()
		if gone != nil {
			return event{}, fmt.Errorf("%w: read: %w", errPortGone, gone)
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return event{}, errTimeout
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return event{}, ctx.Err()
		case <-l.notify:
			t.Stop()
		case <-t.C:
		}
	}
}

// flush drops queued frames: whatever arrived before a command was sent
// cannot answer it.
func (l *link) flush() {
	l.mu.Lock()
	l.queue = l.queue[:0]
	l.mu.Unlock()
}

// abandon gives up on a partly received frame (see Parser.Abandon) and
// queues whatever frames follow it.
func (l *link) abandon() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.parser.Buffered() == 0 {
		return
	}
	l.parser.Abandon()
	l.parseLocked(time.Now())
}

// write sends b, wrapping a failure in errPortGone.
func (l *link) write(b []byte) error {
	if _, err := l.port.Write(b); err != nil {
		return fmt.Errorf("%w: write: %w", errPortGone, err)
	}
	return nil
}

// close closes the port and waits (bounded) for the read goroutine.
func (l *link) close() error {
	err := l.port.Close()
	t := time.NewTimer(closeWait)
	defer t.Stop()
	select {
	case <-l.done:
	case <-t.C:
		return errors.Join(err, errors.New("pn532: port read did not end after close"))
	}
	if err != nil {
		return fmt.Errorf("pn532: close port: %w", err)
	}
	return nil
}
