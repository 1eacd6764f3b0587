package lineproto

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// MaxLineLen is the longest frame, in bytes between terminators, that is
// considered at all: a 10-byte UID with separators is 29, leaving room for
// a prefix and suffix. Longer frames are discarded whole.
const MaxLineLen = 64

// ErrBadLine is wrapped by every ParseLine failure.
var ErrBadLine = errors.New("lineproto: not a card line")

// Order is the byte order in which a reader prints the UID.
type Order uint8

// Byte orders.
const (
	// AsPrinted: the first printed byte is the UID's first byte.
	AsPrinted Order = iota
	// Reversed: the reader prints the UID little-endian.
	Reversed
)

// String returns the name ParseConfig accepts.
func (o Order) String() string {
	if o == Reversed {
		return "reverse"
	}
	return "printed"
}

// DefaultUIDLengths are the ISO/IEC 14443-A UID sizes (single, double,
// triple) in bytes.
var defaultUIDLengths = []int{4, 7, 10}

// DefaultUIDLengths returns the UID sizes used when Format.UIDLengths is
// empty: 4, 7 and 10 bytes (ISO/IEC 14443-A single, double, triple size).
func DefaultUIDLengths() []int { return slices.Clone(defaultUIDLengths) }

// Format says how a UID is printed within a frame.
type Format struct {
	Order Order
	// Prefix and Suffix are stripped (ASCII case-insensitively) when
	// present, e.g. "UID:".
	Prefix, Suffix string
	// UIDLengths are the accepted UID sizes in bytes; DefaultUIDLengths
	// when empty.
	UIDLengths []int
}

// ParseLine returns the UID in one frame's content (terminators already
// removed), in the card's byte order. Every failure wraps ErrBadLine; the
// error never quotes the line, which may be long or binary.
func (f Format) ParseLine(line []byte) ([]byte, error) {
	if len(line) > MaxLineLen {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadLine, len(line), MaxLineLen)
	}
	s := trimBlanks(line)
	if p := f.Prefix; p != "" && len(s) >= len(p) && bytes.EqualFold(s[:len(p)], []byte(p)) {
		s = trimBlanks(s[len(p):])
	}
	if x := f.Suffix; x != "" && len(s) >= len(x) && bytes.EqualFold(s[len(s)-len(x):], []byte(x)) {
		s = trimBlanks(s[:len(s)-len(x)])
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("%w: no digits", ErrBadLine)
	}
	uid, err := parseHex(s)
	if err != nil {
		return nil, err
	}
	lengths := f.UIDLengths
	if len(lengths) == 0 {
		lengths = defaultUIDLengths
	}
	if !slices.Contains(lengths, len(uid)) {
		return nil, fmt.Errorf("%w: %d-byte UID, want %v", ErrBadLine, len(uid), lengths)
	}
	if allBytes(uid, 0x00) || allBytes(uid, 0xff) {
		return nil, fmt.Errorf("%w: blank UID", ErrBadLine)
	}
	if f.Order == Reversed {
		slices.Reverse(uid)
	}
	return uid, nil
}

// parseHex reads "04A1B2" or "04:A1:B2" (one separator kind, after every
// byte but the last).
func parseHex(s []byte) ([]byte, error) {
	var sep byte
	step := 2
	if len(s) > 2 && isSep(s[2]) {
		sep, step = s[2], 3
		if (len(s)+1)%3 != 0 {
			return nil, fmt.Errorf("%w: ragged separated hex", ErrBadLine)
		}
	} else if len(s)%2 != 0 {
		return nil, fmt.Errorf("%w: odd number of hex digits", ErrBadLine)
	}
	uid := make([]byte, 0, (len(s)+1)/step)
	for i := 0; i < len(s); i += step {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: not hex", ErrBadLine)
		}
		if sep != 0 && i+2 < len(s) && s[i+2] != sep {
			return nil, fmt.Errorf("%w: mixed separators", ErrBadLine)
		}
		uid = append(uid, hi<<4|lo)
	}
	return uid, nil
}

func isSep(c byte) bool { return c == ' ' || c == ':' || c == '-' }

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// isBlank reports ASCII white space and NUL, which readers pad lines with.
func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f' || c == 0
}

func trimBlanks(s []byte) []byte {
	for len(s) > 0 && isBlank(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isBlank(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func allBytes(b []byte, v byte) bool {
	for _, c := range b {
		if c != v {
			return false
		}
	}
	return true
}
