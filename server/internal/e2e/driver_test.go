package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Bounds for one tap on the feed. A terminal that takes longer to answer
// a tap it is alive for is hung, not slow.
const (
	tapTimeout     = 30 * time.Second
	connectTimeout = time.Minute
)

// driver presents cards to one terminal's feed reader, one at a time, like a
// queue of workers at a kiosk, and remembers what the terminal answered.
// Card ids are unique: "<terminal>-<n>".
type driver struct {
	term *terminal
	// pause, if set, returns how long to wait before the next tap.
	pause func() time.Duration
	// card, if set, chooses the card of each tap, and a card may then be
	// presented again; otherwise every card is new: "<terminal>-<n>".
	card func() string

	conn net.Conn
	rd   *bufio.Reader
	next int

	mu      sync.Mutex
	made    map[string]uint64 // card id -> seq, for every tap answered "ok <seq>"
	bySeq   map[uint64]string // seq -> card id, for every tap answered "ok <seq>"
	maybe   map[string]bool   // cards sent whose answer was lost: stored at most once
	lastSeq uint64            // the highest seq answered "ok"
	// epochMayChange: the terminal may move to a new store epoch while
	// this driver taps (an outbox restored from an older copy rebases),
	// so a confirmed seq may start again from a lower number.
	epochMayChange bool
	order          []string      // made cards in the order they were made
	busy           time.Duration // time spent waiting for answers, for the log
}

func newDriver(tm *terminal) *driver {
	return &driver{term: tm, made: make(map[string]uint64), bySeq: make(map[uint64]string), maybe: make(map[string]bool)}
}

// tap presents one new card and waits for the answer. When the terminal
// dies before answering, the card is a "maybe" and tap returns nil: the
// next call reconnects to the feed once the terminal is back.
func (d *driver) tap(ctx context.Context) error {
	if d.conn == nil {
		if err := d.connect(ctx); err != nil {
			return err
		}
	}
	d.next++
	card := fmt.Sprintf("%s-%06d", d.term.id, d.next)
	if d.card != nil {
		card = d.card()
	}
	began := time.Now()
	defer func() {
		d.mu.Lock()
		d.busy += time.Since(began)
		d.mu.Unlock()
	}()
	d.conn.SetDeadline(time.Now().Add(tapTimeout))
	_, err := io.WriteString(d.conn, card+"\n")
	var line string
	if err == nil {
		line, err = d.rd.ReadString('\n')
	}
	if err != nil {
		d.mu.Lock()
		d.maybe[card] = true
		d.mu.Unlock()
		d.conn.Close()
		d.conn = nil
		if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
			return fmt.Errorf("terminal %s: no answer to %s within %v", d.term.id, card, tapTimeout)
		}
		return nil
	}
	answer, ok := strings.CutPrefix(strings.TrimSpace(line), "ok ")
	if !ok {
		d.mu.Lock()
		d.maybe[card] = true
		d.mu.Unlock()
		return fmt.Errorf("terminal %s answered %s with %q, want \"ok <seq>\"", d.term.id, card, line)
	}
	seq, err := strconv.ParseUint(answer, 10, 64)
	if err != nil {
		return fmt.Errorf("terminal %s answered %s with %q: %v", d.term.id, card, line, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if seq <= d.lastSeq && !d.epochMayChange {
		return fmt.Errorf("terminal %s confirmed %s as seq %d after seq %d: sequences must increase", d.term.id, card, seq, d.lastSeq)
	}
	d.made[card] = seq
	d.bySeq[seq] = card
	d.order = append(d.order, card)
	d.lastSeq = seq
	return nil
}

// connect dials the feed until the terminal (perhaps restarting) accepts.
func (d *driver) connect(ctx context.Context) error {
	return waitFor(ctx, connectTimeout, "the feed of terminal "+d.term.id, func() (bool, error) {
		c, err := net.DialTimeout("tcp", d.term.feedAddr, time.Second)
		if err == nil {
			d.conn, d.rd = c, bufio.NewReader(c)
			return true, nil
		}
		return false, d.term.exitedOnItsOwn()
	})
}

// tapUntil taps until done reports true, pausing between taps as d.pause
// says.
func (d *driver) tapUntil(ctx context.Context, done func() bool) error {
	defer d.close()
	for !done() {
		if err := d.tap(ctx); err != nil {
			return err
		}
		if p := d.pause; p != nil {
			if err := sleep(ctx, p()); err != nil {
				return err
			}
		}
	}
	return nil
}

// tapN makes n taps the terminal confirms (a terminal killed meanwhile
// makes maybes besides) and returns their cards in order.
func (d *driver) tapN(ctx context.Context, n int) ([]string, error) {
	start := d.madeCount()
	err := d.tapUntil(ctx, func() bool { return d.madeCount() >= start+n })
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.order[start:]...), err
}

func (d *driver) close() {
	if d.conn != nil {
		d.conn.Close()
		d.conn = nil
	}
}

// madeCount is the number of taps the terminal confirmed.
func (d *driver) madeCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.order)
}

func (d *driver) lastMadeSeq() uint64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastSeq
}

// crowd returns a pause function for a kiosk with a queue: pauses
// uniformly random up to max, and now and then a burst of 20 to 80 taps
// without a pause (a shift arriving), which the uplink sends as several
// batches at once.
func crowd(r *rand.Rand, max time.Duration) func() time.Duration {
	burst := 0
	return func() time.Duration {
		if burst > 0 {
			burst--
			return 0
		}
		if r.IntN(100) == 0 {
			burst = 20 + r.IntN(61)
		}
		return time.Duration(r.Int64N(int64(max) + 1))
	}
}
