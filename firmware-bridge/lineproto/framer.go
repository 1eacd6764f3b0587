package lineproto

import (
	"fmt"
	"strings"
)

// Framing is how frames are delimited on the wire.
type Framing uint8

// Framings.
const (
	// FrameAuto: a line ends at CR or LF, whichever comes; blank lines are
	// ignored. Fits any line reader.
	FrameAuto Framing = iota
	// FrameCR: a line ends at CR.
	FrameCR
	// FrameLF: a line ends at LF.
	FrameLF
	// FrameCRLF: a line ends at CR LF; a lone CR or LF inside is garbage.
	FrameCRLF
	// FrameSTX: a frame is the bytes between STX (0x02) and ETX (0x03);
	// anything between frames is noise.
	FrameSTX
)

// Control bytes of FrameSTX.
const (
	STX = 0x02
	ETX = 0x03
)

var framingNames = map[Framing]string{
	FrameAuto: "auto", FrameCR: "cr", FrameLF: "lf", FrameCRLF: "crlf", FrameSTX: "stx",
}

// String returns the name ParseFraming accepts.
func (f Framing) String() string {
	if s, ok := framingNames[f]; ok {
		return s
	}
	return fmt.Sprintf("Framing(%d)", uint8(f))
}

// ParseFraming returns the Framing named s ("auto", "cr", "lf", "crlf",
// "stx"; any case).
func ParseFraming(s string) (Framing, error) {
	for f, name := range framingNames {
		if strings.EqualFold(s, name) {
			return f, nil
		}
	}
	return 0, fmt.Errorf("lineproto: unknown framing %q (want auto, cr, lf, crlf or stx)", s)
}

// eventKind is what the framer found.
type eventKind uint8

const (
	evLine      eventKind = iota + 1 // a whole frame
	evOverlong                       // a frame longer than MaxLineLen, discarded
	evTruncated                      // a partial frame, discarded
	evNoise                          // a run of bytes outside STX/ETX frames
)

type event struct {
	kind eventKind
	line []byte // evLine only; owned by the receiver
}

// framer splits a byte stream into frames. It is fed byte by byte, so how
// the stream is chunked never changes what it finds.
type framer struct {
	framing Framing
	buf     []byte
	over    bool // the frame passed MaxLineLen; discard to its end
	in      bool // FrameSTX: inside a frame
	cr      bool // FrameCRLF: a CR is pending
	noise   bool // FrameSTX: inside a noise run
	events  []event
}

func newFramer(f Framing) *framer {
	return &framer{framing: f, buf: make([]byte, 0, MaxLineLen)}
}

// feed consumes p and returns the events it completed, valid until the
// next call.
func (f *framer) feed(p []byte) []event {
	f.events = f.events[:0]
	for _, c := range p {
		f.byte(c)
	}
	return f.events
}

// gap ends whatever is in progress: the line fell silent for a whole read
// timeout, or the port went away. Returns the events, as feed does.
func (f *framer) gap() []event {
	f.events = f.events[:0]
	switch {
	case f.over:
		f.emit(evOverlong, nil)
	case len(f.buf) > 0 || f.in:
		f.emit(evTruncated, nil)
	}
	f.reset()
	f.in, f.noise = false, false
	return f.events
}

func (f *framer) byte(c byte) {
	switch f.framing {
	case FrameCR:
		f.lineByte(c, c == '\r')
	case FrameLF:
		f.lineByte(c, c == '\n')
	case FrameCRLF:
		if f.cr {
			f.cr = false
			if c == '\n' {
				f.end()
				return
			}
			f.add('\r')
		}
		if c == '\r' {
			f.cr = true
			return
		}
		f.add(c)
	case FrameSTX:
		f.stxByte(c)
	default:
		f.lineByte(c, c == '\r' || c == '\n')
	}
}

func (f *framer) lineByte(c byte, terminator bool) {
	if terminator {
		f.end()
		return
	}
	f.add(c)
}

func (f *framer) stxByte(c byte) {
	switch {
	case c == STX:
		if f.in {
			// A new frame starts before the last one ended.
			if f.over {
				f.emit(evOverlong, nil)
			} else {
				f.emit(evTruncated, nil)
			}
		}
		f.reset()
		f.in, f.noise = true, false
	case !f.in:
		if !isBlank(c) && !f.noise {
			f.noise = true
			f.emit(evNoise, nil)
		}
	case c == ETX:
		f.end()
		f.in = false
	default:
		f.add(c)
	}
}

func (f *framer) add(c byte) {
	if f.over {
		return
	}
	if len(f.buf) >= MaxLineLen {
		f.over = true
		f.buf = f.buf[:0]
		return
	}
	f.buf = append(f.buf, c)
}

// end closes the current frame.
func (f *framer) end() {
	switch {
	case f.over:
		f.emit(evOverlong, nil)
	case len(trimBlanks(f.buf)) > 0:
		f.emit(evLine, append([]byte(nil), f.buf...))
	}
	f.reset()
}

func (f *framer) reset() {
	f.buf = f.buf[:0]
	f.over, f.cr = false, false
}

func (f *framer) emit(k eventKind, line []byte) {
	f.events = append(f.events, event{kind: k, line: line})
}
