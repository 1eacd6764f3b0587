package ledger

import (
	"cmp"
	"slices"
	"time"
)

// Mode is how a reader decides the direction of a tap, or the direction of
// a manual event.
type Mode uint8

// Modes.
const (
	ModeIn     Mode = iota + 1 // every tap is a check-in
	ModeOut                    // every tap is a check-out
	ModeToggle                 // the person's previous taps at the site decide
)

// String returns the mode as stored in terminal_assignments.direction.
func (m Mode) String() string {
	switch m {
	case ModeIn:
		return "in"
	case ModeOut:
		return "out"
	case ModeToggle:
		return "toggle"
	}
	return "unknown"
}

// The modes' names, for *string columns (direction): one string each,
// shared, never written through.
var modeNames = [...]string{ModeIn: "in", ModeOut: "out", ModeToggle: "toggle"}

// name returns a pointer to the mode's name, or nil for 0 (or an unknown
// mode): what a nullable direction column holds. Callers must not write
// through it.
func (m Mode) name() *string {
	if m == 0 || int(m) >= len(modeNames) {
		return nil
	}
	return &modeNames[m]
}

// ParseMode parses a stored mode.
func ParseMode(s string) (Mode, bool) {
	switch s {
	case "in":
		return ModeIn, true
	case "out":
		return ModeOut, true
	case "toggle":
		return ModeToggle, true
	}
	return 0, false
}

// Mark says what derivation made of an event.
type Mark uint8

// Marks.
const (
	MarkCounted Mark = iota + 1 // paired into a period
	MarkDouble                  // a repeat within the double-tap window: kept, not paired
	MarkVoid                    // marked erroneous by a correction: kept, not paired
)

// String returns the mark as stored in tap_marks.mark (and shown by the
// tap_resolutions view).
func (m Mark) String() string {
	switch m {
	case MarkCounted:
		return "counted"
	case MarkDouble:
		return "double"
	case MarkVoid:
		return "void"
	}
	return "unknown"
}

// Event is one input of the derivation for one person at one site: a tap,
// or a manual check-in or check-out added by a correction.
type Event struct {
	// Ref identifies the event ("tap:T/E/S", "correction:N"); it also breaks
	// ties between events at the same instant, so the order is total.
	Ref string
	At  time.Time
	// Mode is the reader's mode for a tap, ModeIn or ModeOut for a manual
	// event.
	Mode   Mode
	Manual bool
	// Void: the tap was marked erroneous by a correction.
	Void bool
}

// Rules are the configurable parts of the derivation.
type Rules struct {
	// DoubleTapWindow: a tap this soon after the person's previous counted
	// tap at the site, in the same direction (or on a toggle reader), is a
	// double tap.
	DoubleTapWindow time.Duration
	// MaxOpen: a period open longer than this is never closed by a later
	// check-out: it is flagged as a missing check-out for a person to fix.
	// At most MaxManualPeriod (24 h): work_periods refuses a longer period
	// (migration 0014), which tap_resolutions_between relies on.
	MaxOpen time.Duration
}

// DefaultRules are the rules unless a site configures others.
var DefaultRules = Rules{DoubleTapWindow: 30 * time.Second, MaxOpen: 16 * time.Hour}

// Period is one derived work period.
type Period struct {
	Start, End       time.Time // zero when missing
	StartRef, EndRef string
	StartManual      bool
	EndManual        bool
	// MissingCheckout: the person checked in again while this period was
	// open. A period left open past MaxOpen is not flagged here, since that
	// depends on the moment it is read: see Overdue.
	MissingCheckout bool
	// MissingCheckin: a check-out with no open period to close.
	MissingCheckin bool
}

// Open reports whether the period has a start and no end.
func (p Period) Open() bool { return !p.Start.IsZero() && p.End.IsZero() }

// Overdue reports whether an open period has been open longer than the
// rules allow at now: a forgotten check-out to highlight.
func (p Period) Overdue(now time.Time, r Rules) bool {
	return p.Open() && (p.MissingCheckout || now.Sub(p.Start) > r.MaxOpen)
}

// Derived is the outcome of Derive: the periods in time order, and the mark
// and direction of every event, by Ref.
type Derived struct {
	Periods    []Period
	Marks      map[string]Mark
	Directions map[string]Mode
}

// SortEvents puts events in derivation order: by time, then by Ref.
func SortEvents(events []Event) {
	slices.SortFunc(events, func(a, b Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return cmp.Compare(a.Ref, b.Ref)
	})
}

// Derive turns one person's events at one site into work periods. It is a
// pure function of the set of events: the order they are given in does not
// matter, and neither do repeats of the same Ref.
func Derive(events []Event, r Rules) Derived {
	evs := slices.Clone(events)
	SortEvents(evs)
	evs = slices.CompactFunc(evs, func(a, b Event) bool { return a.Ref == b.Ref })
	marks := make([]Mark, len(evs))
	dirs := make([]Mode, len(evs))
	d := Derived{Periods: derive(evs, r, marks, dirs, nil), Marks: make(map[string]Mark, len(evs)), Directions: make(map[string]Mode, len(evs))}
	for i, ev := range evs {
		d.Marks[ev.Ref] = marks[i]
		if dirs[i] != 0 {
			d.Directions[ev.Ref] = dirs[i]
		}
	}
	return d
}

// derive is Derive for events in derivation order without repeats. It
// writes the mark of evs[i] to marks[i] and its direction, if it has one,
// to dirs[i], and appends the periods in time order to out.
func derive(evs []Event, r Rules, marks []Mark, dirs []Mode, out []Period) []Period {
	var open Period // the open period, when isOpen
	isOpen := false
	var last *Event // the last counted event
	var lastDir Mode
	emit := func(missingCheckout bool) {
		open.MissingCheckout = missingCheckout
		out = append(out, open)
		isOpen = false
	}
	for i := range evs {
		ev := &evs[i]
		if ev.Void {
			marks[i] = MarkVoid
			continue
		}
		// A period open past MaxOpen can no longer be closed: it stays as
		// it is (Overdue says so when it is read), whatever comes next.
		if isOpen && ev.At.Sub(open.Start) > r.MaxOpen {
			emit(false)
		}
		dir := ev.Mode
		if dir == ModeToggle {
			dir = ModeIn
			if isOpen {
				dir = ModeOut
			}
		}
		if !ev.Manual && last != nil && ev.At.Sub(last.At) <= r.DoubleTapWindow &&
			(ev.Mode == ModeToggle || dir == lastDir) {
			marks[i], dirs[i] = MarkDouble, lastDir
			continue
		}
		marks[i], dirs[i] = MarkCounted, dir
		last, lastDir = ev, dir
		switch dir {
		case ModeIn:
			if isOpen {
				emit(true) // checked in again without checking out
			}
			open, isOpen = Period{Start: ev.At, StartRef: ev.Ref, StartManual: ev.Manual}, true
		case ModeOut:
			if !isOpen {
				out = append(out, Period{End: ev.At, EndRef: ev.Ref, EndManual: ev.Manual, MissingCheckin: true})
				continue
			}
			open.End, open.EndRef, open.EndManual = ev.At, ev.Ref, ev.Manual
			emit(false)
		}
	}
	if isOpen {
		out = append(out, open)
	}
	return out
}

// Segments splits events (in derivation order) where the gap between two
// consecutive events exceeds MaxOpen+DoubleTapWindow. Derivation state never
// crosses such a gap: an open period is emitted unchanged once MaxOpen has
// passed, and no tap can be a double, so each segment derives on its own to
// exactly what it contributes to the whole (a property test holds this). This is what lets
// a late tap re-derive only the periods it touches.
func Segments(sorted []Event, r Rules) [][]Event {
	var out [][]Event
	for _, b := range segmentBounds(sorted, r, nil) {
		out = append(out, sorted[b[0]:b[1]])
	}
	return out
}

// segmentBounds appends the segments of Segments to out as [start, end)
// indexes.
func segmentBounds(sorted []Event, r Rules, out [][2]int) [][2]int {
	start := 0
	for i := 1; i < len(sorted); i++ {
		if sorted[i].At.Sub(sorted[i-1].At) > r.MaxOpen+r.DoubleTapWindow {
			out = append(out, [2]int{start, i})
			start = i
		}
	}
	if len(sorted) > 0 {
		out = append(out, [2]int{start, len(sorted)})
	}
	return out
}
