package syncproto

import (
	"fmt"
	"math"
)

// MaxSeq is the highest sequence a tap may carry; the server keeps it as a
// signed 64-bit integer.
const MaxSeq = math.MaxInt64

func checkID(field, s string, required bool) error {
	if required && s == "" {
		return fmt.Errorf("%w: %s is empty", ErrMalformed, field)
	}
	if len(s) > MaxIDBytes {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, field, len(s), MaxIDBytes)
	}
	return nil
}

// Validate checks the Hello's fields against the protocol's rules.
func (h *Hello) Validate() error {
	// A protocol version too old (0 included) is not malformed: the peer is
	// answered ErrorCodeVersion by Negotiate, which says what it must speak.
	if err := checkID("terminal id", h.TerminalID, true); err != nil {
		return err
	}
	if h.StoreEpoch <= 0 {
		return fmt.Errorf("%w: store epoch %d, want > 0", ErrMalformed, h.StoreEpoch)
	}
	return h.Clock.Validate()
}

// Validate checks the Welcome's fields. A zero MaxBatchTaps or MaxInFlight
// would leave the terminal unable to upload anything, silently.
func (w *Welcome) Validate() error {
	if w.ProtocolVersion == 0 {
		return fmt.Errorf("%w: protocol version 0", ErrMalformed)
	}
	if w.MaxBatchTaps == 0 {
		return fmt.Errorf("%w: max batch taps 0", ErrMalformed)
	}
	if w.MaxInFlight == 0 {
		return fmt.Errorf("%w: max in flight 0", ErrMalformed)
	}
	return nil
}

// Validate checks the clock reading's fields.
func (c *Clock) Validate() error {
	return checkID("boot id", c.BootID, false)
}

// Validate checks the Batch's shape and its sequences. Per-tap content rules
// (Tap.Check: empty or over-long card id, ...) are not checked here: such a
// tap is rejected one by one and kept in the dead-letter table, so one bad
// tap never blocks the queue.
func (b *Batch) Validate() error {
	if len(b.Taps) == 0 {
		return fmt.Errorf("%w: empty batch", ErrMalformed)
	}
	if len(b.Taps) > MaxBatchTaps {
		return fmt.Errorf("%w: %d taps, limit %d", ErrTooLarge, len(b.Taps), MaxBatchTaps)
	}
	// Sequences come from the outbox, which never produces 0, a value beyond
	// MaxSeq or a batch out of order: any of these is a broken peer, not a bad
	// tap, and the identity could not even be kept.
	var prev uint64
	for _, t := range b.Taps {
		if t.Seq == 0 || t.Seq > MaxSeq {
			return fmt.Errorf("%w: sequence %d outside 1..%d", ErrMalformed, t.Seq, uint64(MaxSeq))
		}
		if t.Seq <= prev {
			return fmt.Errorf("%w: sequence %d after %d, want strictly ascending", ErrMalformed, t.Seq, prev)
		}
		prev = t.Seq
	}
	return nil
}

// Check reports why the tap cannot enter the ledger, or nil. The server calls
// it per tap and rejects the tap (RejectInvalid) with the returned reason.
func (t *Tap) Check() error {
	if t.CardID == "" {
		return fmt.Errorf("empty card id")
	}
	for _, f := range []struct{ name, v string }{
		{"card id", t.CardID}, {"boot id", t.Clock.BootID}, {"reader", t.Reader}, {"answer", t.Answer},
	} {
		if len(f.v) > MaxIDBytes {
			return fmt.Errorf("%s is %d bytes, limit %d", f.name, len(f.v), MaxIDBytes)
		}
	}
	return nil
}

// Validate checks the Status's fields.
func (s *Status) Validate() error {
	if len(s.Alarms) > MaxAlarms {
		return fmt.Errorf("%w: %d alarms, limit %d", ErrTooLarge, len(s.Alarms), MaxAlarms)
	}
	return s.Clock.Validate()
}

// Validate checks the CardUpdate's shape and every entry.
func (u *CardUpdate) Validate() error {
	if len(u.Cards) > MaxBatchTaps {
		return fmt.Errorf("%w: %d cards, limit %d", ErrTooLarge, len(u.Cards), MaxBatchTaps)
	}
	for i := range u.Cards {
		c := &u.Cards[i]
		if err := checkID("card id", c.CardID, true); err != nil {
			return err
		}
		if len(c.Name) > MaxTextBytes || len(c.Employer) > MaxTextBytes {
			return fmt.Errorf("%w: card %d: name or employer longer than %d bytes", ErrTooLarge, i, MaxTextBytes)
		}
		if err := checkID("card status", c.Status, false); err != nil {
			return err
		}
	}
	return nil
}
