package inspect

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Mode is how a reader decides the direction of a tap, as the server's
// terminal assignment says (ledger.Mode): in, out, or toggle.
type Mode string

// The modes.
const (
	ModeIn     Mode = "in"
	ModeOut    Mode = "out"
	ModeToggle Mode = "toggle"
)

// Direction is what the terminal makes of a tap.
type Direction string

// The directions.
const (
	DirIn  Direction = "in"
	DirOut Direction = "out"
	// DirRepeat is a repeat within the double-tap window: recorded, not
	// counted (the server marks it "double").
	DirRepeat Direction = "repeat"
	// DirNone: the tap was not recorded, so it has no direction.
	DirNone Direction = ""
)

// Rules mirror the server's ledger.DefaultRules, which the terminal cannot
// import: a repeat within DoubleTapWindow is a double tap, and a period
// open longer than MaxOpen is no longer "present" (the server flags it as a
// missing check-out).
type Rules struct {
	DoubleTapWindow time.Duration
	MaxOpen         time.Duration
}

// DefaultRules are ledger.DefaultRules.
var DefaultRules = Rules{DoubleTapWindow: 30 * time.Second, MaxOpen: 16 * time.Hour}

// Modes gives each reader of the terminal its mode. The terminal is not
// told its assignment by the server: configure the same as the site
// manager did there (--inspect-modes).
type Modes struct {
	Default   Mode
	PerReader map[string]Mode
}

// For returns the mode of a reader.
func (m Modes) For(reader string) Mode {
	if md, ok := m.PerReader[reader]; ok {
		return md
	}
	if m.Default == "" {
		return ModeToggle
	}
	return m.Default
}

// String returns the modes as ParseModes reads them.
func (m Modes) String() string {
	def := m.Default
	if def == "" {
		def = ModeToggle
	}
	parts := []string{string(def)}
	keys := make([]string, 0, len(m.PerReader))
	for k := range m.PerReader {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		parts = append(parts, k+"="+string(m.PerReader[k]))
	}
	return strings.Join(parts, ",")
}

// ParseModes reads a mode list: a bare mode sets the default, READER=MODE
// sets one reader's. "toggle" (the default), "in", or "toggle,gate1=in,gate2=out".
func ParseModes(s string) (Modes, error) {
	m := Modes{Default: ModeToggle}
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	parse := func(v string) (Mode, error) {
		switch md := Mode(strings.TrimSpace(v)); md {
		case ModeIn, ModeOut, ModeToggle:
			return md, nil
		}
		return "", fmt.Errorf("inspect: mode %q: want in, out or toggle", v)
	}
	for _, item := range strings.Split(s, ",") {
		reader, v, per := strings.Cut(item, "=")
		if !per {
			md, err := parse(item)
			if err != nil {
				return Modes{}, err
			}
			m.Default = md
			continue
		}
		md, err := parse(v)
		if err != nil {
			return Modes{}, err
		}
		if m.PerReader == nil {
			m.PerReader = make(map[string]Mode)
		}
		m.PerReader[strings.TrimSpace(reader)] = md
	}
	return m, nil
}

// Tap is one recorded tap as the derivation sees it.
type Tap struct {
	Epoch  int64
	Seq    uint64
	CardID string
	Reader string
	At     time.Time
	Answer string
	// Name and Employer are the card holder's as the kiosk knew them when
	// the tap was made.
	Name, Employer string
	// Unsynced: still in the outbox, not yet acknowledged by the server.
	Unsynced bool
}

// Presence is one card holder the terminal's own data says is on site.
type Presence struct {
	CardID string
	// Since is the check-in that opened the period.
	Since time.Time
	// Last is the holder's last counted tap.
	Last Tap
}

// sortTaps puts taps in derivation order: by time, then by identity, like
// the server's ledger.SortEvents.
func sortTaps(taps []Tap) {
	slices.SortFunc(taps, func(a, b Tap) int {
		return cmp.Or(a.At.Compare(b.At), cmp.Compare(a.Epoch, b.Epoch), cmp.Compare(a.Seq, b.Seq))
	})
}

// Derive finds who is on site at now from taps (any order), and the
// direction of every tap, keyed by (epoch, seq). It follows the server's
// derivation (ledger.Derive) on the terminal's own taps: per card, in time
// order, a tap on an in- or out-reader has that direction; on a toggle
// reader it checks out when the holder has an open period and checks in
// otherwise, which for a day's taps is their parity (1st in, 2nd out, ...);
// a repeat within the double-tap window counts for nothing; a period open
// longer than MaxOpen lapses (the server flags it, it never closes it).
//
// It is an approximation of the server's ledger, which is authoritative:
// the terminal knows only its own taps (a check-out at another terminal of
// the site, or a correction, is unknown to it), identifies people by card
// (one person with two cards is two people), and trusts its own clock.
func Derive(taps []Tap, modes Modes, rules Rules, now time.Time) (present []Presence, dirs map[TapKey]Direction) {
	byCard := make(map[string][]Tap)
	for _, t := range taps {
		byCard[t.CardID] = append(byCard[t.CardID], t)
	}
	dirs = make(map[TapKey]Direction, len(taps))
	for card, ts := range byCard {
		sortTaps(ts)
		ts = slices.CompactFunc(ts, func(a, b Tap) bool { return a.Epoch == b.Epoch && a.Seq == b.Seq })
		var open, last time.Time
		var lastDir Direction
		var lastTap Tap
		for _, t := range ts {
			if !open.IsZero() && t.At.Sub(open) > rules.MaxOpen {
				open = time.Time{}
			}
			mode := modes.For(t.Reader)
			dir := Direction(mode)
			if mode == ModeToggle {
				dir = DirIn
				if !open.IsZero() {
					dir = DirOut
				}
			}
			if !last.IsZero() && t.At.Sub(last) <= rules.DoubleTapWindow && (mode == ModeToggle || dir == lastDir) {
				dirs[TapKey{t.Epoch, t.Seq}] = DirRepeat
				continue
			}
			dirs[TapKey{t.Epoch, t.Seq}] = dir
			last, lastDir, lastTap = t.At, dir, t
			if dir == DirIn {
				open = t.At
			} else {
				open = time.Time{}
			}
		}
		if !open.IsZero() && now.Sub(open) <= rules.MaxOpen && !open.After(now) {
			present = append(present, Presence{CardID: card, Since: open, Last: lastTap})
		}
	}
	slices.SortFunc(present, func(a, b Presence) int {
		return cmp.Or(a.Since.Compare(b.Since), strings.Compare(a.CardID, b.CardID))
	})
	return present, dirs
}

// TapKey names a tap: the outbox's store epoch and the tap's sequence.
type TapKey struct {
	Epoch int64
	Seq   uint64
}
