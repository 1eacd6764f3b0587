// Package reader is the contract between card-reader drivers (OSDP, PN532,
// line readers) and the kiosk agent: one card presentation becomes one Read
// with one normalised card identifier, and the agent answers with a Feedback
// the driver shows on the reader (LED, beeper).
//
// Drivers own their serial port through firmware-bridge/serialport and run
// until their context ends; they survive a reader that is unplugged,
// replugged, silent or sending garbage, and report it in their State.
package reader

import (
	"context"
	"encoding/hex"
	"strings"
	"sync"
	"time"
)

// Read is one card presented to a reader.
type Read struct {
	// CardID is the normalised card identifier (see CardID).
	CardID string
	// UID is the chip's UID/CSN as the reader yielded it, if it did.
	UID []byte
	// CardNumber is the ID06 card number, if the reader yields it (some
	// OSDP readers read it from the card).
	CardNumber string
	// Reader names the reader on a terminal with several ("in", "out");
	// empty for the only one.
	Reader string
	// At is when the last byte of the card's frame arrived.
	At time.Time
}

// CardID normalises what a reader yields into one card identifier: the ID06
// card number when the reader provides one (upper case, separators
// removed), otherwise the chip UID as upper-case hex. The registry knows a
// card by both, so either finds the person.
func CardID(uid []byte, cardNumber string) string {
	if n := normaliseNumber(cardNumber); n != "" {
		return n
	}
	return strings.ToUpper(hex.EncodeToString(uid))
}

func normaliseNumber(s string) string {
	var b strings.Builder
	for _, r := range strings.ToUpper(s) {
		switch {
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Outcome is what the kiosk decided about a tap.
type Outcome uint8

// Outcomes a reader can show.
const (
	// Accepted: recorded, card valid (green, short beep).
	Accepted Outcome = iota + 1
	// Refused: recorded, but the card may not be used here (red, long
	// beep); Reason says why.
	Refused
	// RecordedOffline: recorded, card data unknown or stale (amber).
	RecordedOffline
	// NotRecorded: the tap could not be stored (red, three beeps); the
	// worker must tap again or tell the site manager.
	NotRecorded
)

// Feedback is what the reader should show for one Read.
type Feedback struct {
	Outcome Outcome
	// Reason is the machine-readable refusal ("blocked_id06", ...).
	Reason string
}

// Handler records one Read durably and returns the Feedback to show. The
// driver shows it at once: a tap is durable within milliseconds, and the
// worker is still at the reader.
type Handler func(context.Context, Read) Feedback

// State is a driver's view of its reader, for the technician's CLI and the
// terminal's Status.
type State struct {
	// Online: the reader answers (its port is open and it replies to polls).
	Online bool
	// Model describes the reader as identified ("OSDP vendor 0A0B0C model 2").
	Model string
	// Link counters since the driver started.
	Frames         uint64 // good frames received
	ChecksumErrors uint64 // frames dropped for a bad checksum or CRC
	Retries        uint64 // commands sent again
	MissedPolls    uint64 // polls without a reply
	Reopens        uint64 // times the port was opened again
	LastError      string
}

// String summarises the state in one word for Status ("ok", "offline").
func (s State) String() string {
	if s.Online {
		return "ok"
	}
	return "offline"
}

// Driver is a card reader on a serial port.
type Driver interface {
	// Run reads cards until ctx ends, calling h once per presentation and
	// showing its Feedback. It returns nil when ctx ends; it keeps going
	// through unplugs, silence and garbage.
	Run(ctx context.Context, h Handler) error
	// State returns the reader's state now.
	State() State
}

// DefaultHoldOff is how long a card held against the reader, or lifted and
// presented again at once, counts as the same presentation.
const DefaultHoldOff = 2 * time.Second

// HoldOff turns a stream of card sightings into presentations: a card seen
// again within the hold-off of its last sighting is the same presentation,
// however many times the reader reports it. Safe for concurrent use.
type HoldOff struct {
	Window time.Duration

	mu   sync.Mutex
	last map[string]time.Time
}

// Fresh reports whether a sighting of cardID at t is a new presentation,
// and records the sighting either way.
func (h *HoldOff) Fresh(cardID string, t time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last == nil {
		h.last = make(map[string]time.Time)
	}
	w := h.Window
	if w <= 0 {
		w = DefaultHoldOff
	}
	prev, seen := h.last[cardID]
	h.last[cardID] = t
	// Forget old sightings so the map stays small.
	if len(h.last) > 1024 {
		for id, at := range h.last {
			if t.Sub(at) > w {
				delete(h.last, id)
			}
		}
	}
	return !seen || t.Sub(prev) > w
}
