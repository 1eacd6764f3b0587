package pn532

import (
	"bytes"
	"errors"
	"fmt"
)

// Frame identifiers (TFI, UM0701 §6.2): which way an information frame
// travels.
const (
	// TFIHost marks a frame from the host controller to the PN532.
	TFIHost byte = 0xD4
	// TFIPN532 marks a frame from the PN532 to the host controller.
	TFIPN532 byte = 0xD5
)

// Frame size limits. They are checked before anything is allocated or
// waited for: a length the PN532 could never send is a broken frame, not a
// reason to buffer more.
const (
	// MaxNormalData is the most TFI+PD bytes a normal information frame
	// carries (its LEN is one byte).
	MaxNormalData = 255
	// MaxFrameData is the most TFI+PD bytes any frame may carry: the
	// PN532's 265-byte frame buffer (UM0701 §6.2, NXP AN10609; libnfc uses 264
	// bytes of PD plus the TFI). Longer extended frames are rejected.
	MaxFrameData = 265
	// MaxFrameLen is the longest frame on the wire: start code, extended
	// length (5 bytes), LCS, MaxFrameData, DCS. The preamble and postamble
	// are not counted: the parser skips them as inter-frame filler.
	MaxFrameLen = 2 + 5 + MaxFrameData + 1
)

// The fixed frames of UM0701 §6.2.
var (
	// ackFrame tells the other side its frame arrived intact; from the host
	// it also aborts the command the PN532 is running.
	ackFrame = []byte{0x00, 0x00, 0xFF, 0x00, 0xFF, 0x00}
	// nackFrame asks the other side to send its last frame again.
	nackFrame = []byte{0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00}
	// errorFrame is the PN532's "syntax error at application level": a
	// normal frame whose single body byte is 0x7F.
	errorFrame = []byte{0x00, 0x00, 0xFF, 0x01, 0xFF, 0x7F, 0x81, 0x00}
)

// errorCode is the body of the application-level error frame.
const errorCode = 0x7F

// Errors the parser reports for a frame it dropped. They are wrapped with
// the offending bytes; test with errors.Is.
var (
	// ErrLengthChecksum: LEN+LCS (or LENM+LENL+LCS) is not 0 mod 256.
	ErrLengthChecksum = errors.New("pn532: bad length checksum (LCS)")
	// ErrDataChecksum: TFI+PD+DCS is not 0 mod 256.
	ErrDataChecksum = errors.New("pn532: bad data checksum (DCS)")
	// ErrFrameLength: a length that is zero or above MaxFrameData.
	ErrFrameLength = errors.New("pn532: bad frame length")
	// ErrFrameTFI: an intact frame with an unknown frame identifier.
	ErrFrameTFI = errors.New("pn532: unknown frame identifier (TFI)")
	// ErrIncomplete: the parser needs more bytes before the next frame.
	ErrIncomplete = errors.New("pn532: incomplete frame")
)

// FrameKind tells the frames of UM0701 §6.2 apart.
type FrameKind uint8

// Frame kinds.
const (
	// KindInfo is a normal or extended information frame.
	KindInfo FrameKind = iota + 1
	// KindACK acknowledges a frame.
	KindACK
	// KindNACK asks for the last frame again.
	KindNACK
	// KindError is the PN532's application-level error frame.
	KindError
)

// String names the kind for logs and test messages.
func (k FrameKind) String() string {
	switch k {
	case KindInfo:
		return "info"
	case KindACK:
		return "ack"
	case KindNACK:
		return "nack"
	case KindError:
		return "error"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Frame is one frame on the line. For an information frame, TFI says which
// way it travels and Data holds PD0..PDn: the command (or response) code
// followed by its parameters. The other kinds carry nothing.
type Frame struct {
	Kind FrameKind
	TFI  byte
	Data []byte
}

// CommandFrame returns an information frame from the host carrying cmd and its
// parameters.
func CommandFrame(cmd Command, params ...byte) Frame {
	return Frame{Kind: KindInfo, TFI: TFIHost, Data: append([]byte{byte(cmd)}, params...)}
}

// Code returns PD0, the command or response code of an information frame,
// and false for other kinds or an empty frame.
func (f Frame) Code() (byte, bool) {
	if f.Kind != KindInfo || len(f.Data) == 0 {
		return 0, false
	}
	return f.Data[0], true
}

// AppendTo appends the frame's wire bytes to dst: a normal frame while
// TFI+PD fit LEN's one byte, else an extended frame. It fails for an
// information frame longer than MaxFrameData.
func (f Frame) AppendTo(dst []byte) ([]byte, error) {
	switch f.Kind {
	case KindACK:
		return append(dst, ackFrame...), nil
	case KindNACK:
		return append(dst, nackFrame...), nil
	case KindError:
		return append(dst, errorFrame...), nil
	case KindInfo:
	default:
		return dst, fmt.Errorf("pn532: encode frame: unknown kind %d", f.Kind)
	}
	n := 1 + len(f.Data)
	if n > MaxFrameData {
		return dst, fmt.Errorf("pn532: encode frame: %d data bytes: %w", n, ErrFrameLength)
	}
	dst = append(dst, 0x00, 0x00, 0xFF)
	if n <= MaxNormalData {
		dst = append(dst, byte(n), -byte(n))
	} else {
		hi, lo := byte(n>>8), byte(n)
		dst = append(dst, 0xFF, 0xFF, hi, lo, -(hi + lo))
	}
	sum := f.TFI
	dst = append(dst, f.TFI)
	for _, b := range f.Data {
		sum += b
	}
	dst = append(dst, f.Data...)
	return append(dst, -sum, 0x00), nil
}

// MarshalBinary returns the frame's wire bytes (see AppendTo).
func (f Frame) MarshalBinary() ([]byte, error) {
	return f.AppendTo(nil)
}

// Parser cuts a byte stream from a serial line into frames. It skips
// anything before a start code (preambles, postambles, noise, the 0x55
// wake-up bytes), checks both checksums, and after a broken frame resumes
// the search just after that frame's start code, so a good frame hidden
// behind a corrupted header is still found. It holds at most about one
// frame's bytes (MaxFrameLen) plus the last Write. The zero value is ready
// to use; a Parser is not safe for concurrent use.
type Parser struct {
	buf []byte
	// Skipped counts bytes discarded while looking for a start code,
	// other than zeros (which are preambles and postambles).
	Skipped uint64
}

// Write appends bytes read from the line. It never fails.
func (p *Parser) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	return len(b), nil
}

// Buffered returns how many bytes wait for the rest of their frame.
func (p *Parser) Buffered() int { return len(p.buf) }

// Reset drops everything buffered.
func (p *Parser) Reset() { p.buf = p.buf[:0] }

// Abandon gives up on a frame whose rest has not come (the line went quiet
// mid-frame): it drops that frame's start code, so the next Next looks for
// a start code after it.
func (p *Parser) Abandon() {
	if i := bytes.Index(p.buf, startCode); i >= 0 {
		p.consume(i + len(startCode))
		return
	}
	p.Reset()
}

var startCode = []byte{0x00, 0xFF}

// consume drops the first n buffered bytes, keeping the buffer's storage
// from growing without bound.
func (p *Parser) consume(n int) {
	rest := len(p.buf) - n
	if rest == 0 {
		p.buf = p.buf[:0]
		return
	}
	if cap(p.buf) > 4*MaxFrameLen && rest <= MaxFrameLen {
		p.buf = append(make([]byte, 0, 2*MaxFrameLen), p.buf[n:]...)
		return
	}
	p.buf = p.buf[:copy(p.buf, p.buf[n:])]
}

// Next returns the next frame. It returns ErrIncomplete when it needs more
// bytes, and a wrapped ErrLengthChecksum, ErrDataChecksum, ErrFrameLength
// or ErrFrameTFI for a frame it dropped; call it again after either kind of
// error until ErrIncomplete. The Frame's Data is a fresh copy.
func (p *Parser) Next() (Frame, error) {
	i := bytes.Index(p.buf, startCode)
	if i < 0 {
		// Keep a trailing zero: it may be the first half of a start code.
		keep := 0
		if n := len(p.buf); n > 0 && p.buf[n-1] == 0x00 {
			keep = 1
		}
		p.countSkipped(p.buf[:len(p.buf)-keep])
		p.consume(len(p.buf) - keep)
		return Frame{}, ErrIncomplete
	}
	p.countSkipped(p.buf[:i])
	p.consume(i)
	b := p.buf // b[0:2] is the start code
	if len(b) < 4 {
		return Frame{}, ErrIncomplete
	}
	dropStart := func(err error) (Frame, error) {
		p.consume(len(startCode))
		return Frame{}, err
	}
	l, lcs := b[2], b[3]
	var n, hdr int // TFI+PD length; bytes before TFI
	switch {
	case l == 0x00 && lcs == 0xFF:
		p.consume(4)
		return Frame{Kind: KindACK}, nil
	case l == 0xFF && lcs == 0x00:
		p.consume(4)
		return Frame{Kind: KindNACK}, nil
	case l == 0xFF && lcs == 0xFF:
		if len(b) < 7 {
			return Frame{}, ErrIncomplete
		}
		hi, lo, xlcs := b[4], b[5], b[6]
		if hi+lo+xlcs != 0 {
			return dropStart(fmt.Errorf("%w: extended LEN %02x%02x LCS %02x", ErrLengthChecksum, hi, lo, xlcs))
		}
		n, hdr = int(hi)<<8|int(lo), 7
		if n == 0 || n > MaxFrameData {
			return dropStart(fmt.Errorf("%w: extended LEN %d", ErrFrameLength, n))
		}
	default:
		if l+lcs != 0 {
			return dropStart(fmt.Errorf("%w: LEN %02x LCS %02x", ErrLengthChecksum, l, lcs))
		}
		if l == 0 {
			return dropStart(fmt.Errorf("%w: LEN 0", ErrFrameLength))
		}
		n, hdr = int(l), 4
	}
	if len(b) < hdr+n+1 {
		return Frame{}, ErrIncomplete
	}
	body := b[hdr : hdr+n]
	var sum byte
	for _, c := range body {
		sum += c
	}
	if dcs := b[hdr+n]; sum+dcs != 0 {
		return dropStart(fmt.Errorf("%w: %d bytes, DCS %02x", ErrDataChecksum, n, dcs))
	}
	tfi := body[0]
	switch {
	case n == 1 && tfi == errorCode:
		p.consume(hdr + n + 1)
		return Frame{Kind: KindError}, nil
	case tfi != TFIHost && tfi != TFIPN532:
		return dropStart(fmt.Errorf("%w: %02x", ErrFrameTFI, tfi))
	}
	f := Frame{Kind: KindInfo, TFI: tfi, Data: bytes.Clone(body[1:])}
	if f.Data == nil {
		f.Data = []byte{}
	}
	p.consume(hdr + n + 1)
	return f, nil
}

func (p *Parser) countSkipped(b []byte) {
	for _, c := range b {
		if c != 0x00 {
			p.Skipped++
		}
	}
}

// IsChecksumError reports whether err is a dropped frame's bad LCS or DCS.
func IsChecksumError(err error) bool {
	return errors.Is(err, ErrLengthChecksum) || errors.Is(err, ErrDataChecksum)
}
