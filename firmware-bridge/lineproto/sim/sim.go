package sim

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/liggare/liggare/firmware-bridge/lineproto"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
)

// ErrUnplugged is returned by writes while the simulated reader is
// unplugged.
var ErrUnplugged = errors.New("sim: reader unplugged")

// Wire is how the simulated reader prints a UID.
type Wire struct {
	// Framing: FrameAuto prints CR LF, like most readers.
	Framing lineproto.Framing
	// Order: Reversed prints the UID little-endian.
	Order lineproto.Order
	// Prefix and Suffix are printed around the hex.
	Prefix, Suffix string
	// Lower prints lower-case hex.
	Lower bool
	// Sep, if not zero, is printed between bytes (' ', ':' or '-').
	Sep byte
	// Seed seeds Noise, so a test's noise is reproducible.
	Seed uint64
}

// Reader is a simulated line reader. Safe for concurrent use.
type Reader struct {
	wire Wire
	path string

	mu   sync.Mutex
	pair *ptypair.Pair // nil while unplugged
	rng  *rand.Rand
}

// New plugs in a simulated reader behind path, a symlink it creates (and
// re-points on Replug). The driver opens path.
func New(path string, w Wire) (*Reader, error) {
	r := &Reader{wire: w, path: path, rng: rand.New(rand.NewPCG(w.Seed, 0x6c696e65))}
	if err := r.Replug(); err != nil {
		return nil, err
	}
	return r, nil
}

// Path returns the stable path the driver opens.
func (r *Reader) Path() string { return r.path }

// Frame returns the bytes the reader prints for uid: the whole framed line.
func (r *Reader) Frame(uid []byte) []byte {
	b := slices.Clone(uid)
	if r.wire.Order == lineproto.Reversed {
		slices.Reverse(b)
	}
	var parts []string
	for _, c := range b {
		parts = append(parts, hex.EncodeToString([]byte{c}))
	}
	sep := ""
	if r.wire.Sep != 0 {
		sep = string(r.wire.Sep)
	}
	digits := strings.Join(parts, sep)
	if !r.wire.Lower {
		digits = strings.ToUpper(digits)
	}
	return r.frame([]byte(r.wire.Prefix + digits + r.wire.Suffix))
}

// frame wraps content in the wire's framing.
func (r *Reader) frame(content []byte) []byte {
	var out []byte
	switch r.wire.Framing {
	case lineproto.FrameCR:
		out = append(content, '\r')
	case lineproto.FrameLF:
		out = append(content, '\n')
	case lineproto.FrameSTX:
		out = append([]byte{lineproto.STX}, content...)
		out = append(out, lineproto.ETX, '\r', '\n') // many STX readers add CR LF
	default:
		out = append(content, '\r', '\n')
	}
	return out
}

// Present prints uid as a card presented to the reader would.
func (r *Reader) Present(uid []byte) error { return r.write(r.Frame(uid)) }

// Noise writes n random bytes that are neither hex digits, blanks nor
// frame delimiters: they can never form or end a frame.
func (r *Reader) Noise(n int) error {
	r.mu.Lock()
	b := make([]byte, n)
	for i := range b {
		for {
			c := byte(r.rng.UintN(256))
			if !isWireByte(c) {
				b[i] = c
				break
			}
		}
	}
	r.mu.Unlock()
	return r.write(b)
}

func isWireByte(c byte) bool {
	switch {
	case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		return true
	case c == lineproto.STX, c == lineproto.ETX, c == '\r', c == '\n', c == ' ', c == '\t',
		c == '\v', c == '\f', c == 0, c == ':', c == '-':
		return true
	}
	return false
}

// Truncate prints the first part of uid's frame and stops, as a reader
// that glitches mid-line.
func (r *Reader) Truncate(uid []byte) error {
	f := r.Frame(uid)
	return r.write(f[:len(f)/2])
}

// GarbageLine prints text as a whole frame (a banner, an error message).
func (r *Reader) GarbageLine(text string) error { return r.write(r.frame([]byte(text))) }

// Overlong prints a frame of hex digits longer than lineproto.MaxLineLen.
func (r *Reader) Overlong() error {
	return r.write(r.frame([]byte(strings.Repeat("0A", lineproto.MaxLineLen))))
}

// Write writes raw bytes, for faults the methods do not cover.
func (r *Reader) Write(b []byte) (int, error) {
	if err := r.write(b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (r *Reader) write(b []byte) error {
	r.mu.Lock()
	p := r.pair
	r.mu.Unlock()
	if p == nil {
		return ErrUnplugged
	}
	if _, err := p.Write(b); err != nil {
		return fmt.Errorf("sim: write: %w", err)
	}
	return nil
}

// ReadFeedback reads what the driver sent the reader (feedback commands),
// waiting at most timeout for the first byte.
func (r *Reader) ReadFeedback(b []byte, timeout time.Duration) (int, error) {
	r.mu.Lock()
	p := r.pair
	r.mu.Unlock()
	if p == nil {
		return 0, ErrUnplugged
	}
	if err := p.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return 0, fmt.Errorf("sim: %w", err)
	}
	n, err := p.Read(b)
	if err != nil {
		return n, fmt.Errorf("sim: read feedback: %w", err)
	}
	return n, nil
}

// Unplug pulls the reader out: the driver's port fails and, until Replug,
// the path dangles.
func (r *Reader) Unplug() error {
	r.mu.Lock()
	p := r.pair
	r.pair = nil
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	if err := p.Unplug(); err != nil {
		return fmt.Errorf("sim: unplug: %w", err)
	}
	return nil
}

// Replug plugs the reader in again: a new pseudo-terminal behind the same
// path. Frames presented from now on wait for the driver to reopen.
func (r *Reader) Replug() error {
	if err := r.Unplug(); err != nil {
		return err
	}
	p, err := ptypair.Open()
	if err != nil {
		return fmt.Errorf("sim: replug: %w", err)
	}
	if err := p.Link(r.path); err != nil {
		p.Close()
		return fmt.Errorf("sim: replug: %w", err)
	}
	r.mu.Lock()
	r.pair = p
	r.mu.Unlock()
	return nil
}

// Close unplugs the reader for good.
func (r *Reader) Close() error { return r.Unplug() }
