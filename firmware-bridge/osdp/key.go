package osdp

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Key is an AES-128 key: a secure channel base key (SCBK) or a session key
// derived from one. It never prints: String, GoString, every fmt verb and
// LogValue show "REDACTED", and it refuses to be marshalled as text, so a
// key cannot leak through a log line or a config dump by accident.
type Key [16]byte

// DefaultKey returns SCBK-D, the well-known key (0x30 to 0x3F) the OSDP
// specification reserves for install mode: a factory-new reader accepts it
// once so that the CP can set a key of its own with osdp_KEYSET.
func DefaultKey() Key {
	var k Key
	for i := range k {
		k[i] = 0x30 + byte(i)
	}
	return k
}

// ErrKey: a key is not 32 hexadecimal digits, or cannot be read.
var ErrKey = errors.New("osdp: bad key")

// ParseKey decodes a key written as 32 hexadecimal digits (spaces, colons
// and hyphens between them are ignored). The error never repeats the input.
func ParseKey(s string) (Key, error) {
	var k Key
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r', ':', '-':
			return -1
		}
		return r
	}, s)
	if hex.DecodedLen(len(s)) != len(k) {
		return k, fmt.Errorf("%w: want %d hexadecimal digits, got %d characters", ErrKey, 2*len(k), len(s))
	}
	if _, err := hex.Decode(k[:], []byte(s)); err != nil {
		return Key{}, fmt.Errorf("%w: not hexadecimal", ErrKey)
	}
	return k, nil
}

// ReadKeyFile reads a key written as hexadecimal digits from the file at
// path (one line; surrounding whitespace is ignored). Keeping keys in a file
// rather than on the command line keeps them out of process listings.
func ReadKeyFile(path string) (Key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Key{}, fmt.Errorf("%w: read key file: %w", ErrKey, err)
	}
	k, err := ParseKey(string(b))
	if err != nil {
		return Key{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return k, nil
}

// IsZero reports whether k is all zeros (no key configured).
func (k Key) IsZero() bool { return k == Key{} }

// String redacts the key.
func (Key) String() string { return "REDACTED" }

// GoString redacts the key for %#v.
func (Key) GoString() string { return "osdp.Key{REDACTED}" }

// Format redacts the key for every verb, %x included.
func (k Key) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		io.WriteString(f, k.GoString())
		return
	}
	io.WriteString(f, k.String())
}

// LogValue redacts the key in log/slog output.
func (Key) LogValue() slog.Value { return slog.StringValue("REDACTED") }

// MarshalText refuses: keys are configured from files, never written out.
func (Key) MarshalText() ([]byte, error) {
	return nil, fmt.Errorf("%w: keys are not marshalled", ErrKey)
}
