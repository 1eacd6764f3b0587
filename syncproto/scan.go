package syncproto

import (
	"fmt"
	"unicode/utf8"
)

// CBOR major types (RFC 8949 section 3.1).
const (
	majorUint   = 0
	majorNint   = 1
	majorBytes  = 2
	majorText   = 3
	majorArray  = 4
	majorMap    = 5
	majorTag    = 6
	majorSimple = 7
)

// scan walks the CBOR item headers of data and enforces, before the CBOR
// library allocates anything, every rule that does not depend on the message
// type: the limits on strings, arrays, maps and nesting; definite lengths
// only; no tags; valid UTF-8; map keys that are integers or strings and are
// unique in their map; no trailing bytes. It checks the whole message,
// including fields this version does not know, so that every version of the
// package accepts and refuses the same bytes. It does not allocate.
func scan(data []byte) error {
	s := scanner{msg: data}
	rest, err := s.item(data, 0)
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(rest))
	}
	return nil
}

// scanner holds the keys of the maps being walked, one row per nesting
// level, to find duplicates without allocating.
type scanner struct {
	msg  []byte
	keys [MaxNesting][MaxMapPairs]mapKey
}

// mapKey is a map key as seen by scan: an integer (major, arg) or a string
// (major, length arg, content at msg[off:off+arg]). Two keys are the same when
// they denote the same value, whatever the width of their heads.
type mapKey struct {
	arg   uint64
	off   int
	major uint8
}

// head parses the initial byte and argument of one data item.
func head(data []byte) (major uint8, arg uint64, rest []byte, err error) {
	if len(data) == 0 {
		return 0, 0, nil, fmt.Errorf("%w: truncated", ErrMalformed)
	}
	major, info := data[0]>>5, data[0]&0x1f
	data = data[1:]
	switch {
	case info < 24:
		arg = uint64(info)
	case info <= 27:
		n := 1 << (info - 24)
		if len(data) < n {
			return 0, 0, nil, fmt.Errorf("%w: truncated", ErrMalformed)
		}
		for _, b := range data[:n] {
			arg = arg<<8 | uint64(b)
		}
		data = data[n:]
	case info == 31 && major == majorSimple:
		return 0, 0, nil, fmt.Errorf("%w: break outside an indefinite-length item", ErrMalformed)
	case info == 31:
		return 0, 0, nil, fmt.Errorf("%w: indefinite length", ErrMalformed)
	default:
		return 0, 0, nil, fmt.Errorf("%w: reserved additional information %d", ErrMalformed, info)
	}
	if major == majorSimple && info == 24 && arg < 32 {
		return 0, 0, nil, fmt.Errorf("%w: simple value %d in two bytes", ErrMalformed, arg)
	}
	return major, arg, data, nil
}

// str checks a byte or text string whose head has been read and returns what
// follows it.
func str(major uint8, n uint64, data []byte) ([]byte, error) {
	if n > MaxTextBytes {
		return nil, fmt.Errorf("%w: string of %d bytes, limit %d", ErrTooLarge, n, MaxTextBytes)
	}
	if uint64(len(data)) < n {
		return nil, fmt.Errorf("%w: truncated string", ErrMalformed)
	}
	if major == majorText && !utf8.Valid(data[:n]) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrMalformed)
	}
	return data[n:], nil
}

// item checks one data item at the given nesting depth (the envelope is at
// depth 0) and returns what follows it.
func (s *scanner) item(data []byte, depth int) ([]byte, error) {
	major, arg, data, err := head(data)
	if err != nil {
		return nil, err
	}
	switch major {
	case majorUint, majorNint, majorSimple: // no content
		return data, nil
	case majorBytes, majorText:
		return str(major, arg, data)
	case majorTag:
		return nil, fmt.Errorf("%w: CBOR tags are not used by this protocol", ErrMalformed)
	}
	if depth >= MaxNesting {
		return nil, fmt.Errorf("%w: containers nested deeper than %d", ErrTooLarge, MaxNesting)
	}
	if major == majorArray {
		if arg > MaxBatchTaps {
			return nil, fmt.Errorf("%w: array of %d, limit %d", ErrTooLarge, arg, MaxBatchTaps)
		}
		for range arg {
			if data, err = s.item(data, depth+1); err != nil {
				return nil, err
			}
		}
		return data, nil
	}
	if arg > MaxMapPairs {
		return nil, fmt.Errorf("%w: map of %d pairs, limit %d", ErrTooLarge, arg, MaxMapPairs)
	}
	keys := &s.keys[depth]
	for i := range int(arg) {
		var k mapKey
		if k, data, err = s.key(data); err != nil {
			return nil, err
		}
		for _, prev := range keys[:i] {
			if s.same(prev, k) {
				return nil, fmt.Errorf("%w: duplicate map key", ErrMalformed)
			}
		}
		keys[i] = k
		if data, err = s.item(data, depth+1); err != nil {
			return nil, err
		}
	}
	return data, nil
}

// key checks one map key, which must be an integer or a string.
func (s *scanner) key(data []byte) (mapKey, []byte, error) {
	major, arg, data, err := head(data)
	if err != nil {
		return mapKey{}, nil, err
	}
	k := mapKey{major: major, arg: arg}
	switch major {
	case majorUint, majorNint:
		return k, data, nil
	case majorBytes, majorText:
		k.off = len(s.msg) - len(data)
		data, err = str(major, arg, data)
		return k, data, err
	}
	return mapKey{}, nil, fmt.Errorf("%w: map key of major type %d, want an integer or a string", ErrMalformed, major)
}

// same reports whether two keys of one map denote the same value.
func (s *scanner) same(a, b mapKey) bool {
	if a.major != b.major || a.arg != b.arg {
		return false
	}
	if a.major != majorBytes && a.major != majorText {
		return true
	}
	return string(s.msg[a.off:a.off+int(a.arg)]) == string(s.msg[b.off:b.off+int(b.arg)])
}
