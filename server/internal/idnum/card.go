package idnum

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// CardNumber is the number printed on an ID06 card: two letters naming the
// card supplier, then ten digits. The zero value is no card (IsZero).
//
// The printed layout (where the hyphens sit) is unconfirmed, so only the
// letters and digits count: "AB-0123-456789", "ab 0123456789" and
// "AB0123456789" are the same card.
type CardNumber struct {
	n string // canonical: two upper-case letters, ten digits
}

// ParseCardNumber parses an ID06 card number, dropping hyphens and spaces
// wherever they are and upper-casing the supplier letters. The error wraps
// ErrFormat and does not contain the input.
func ParseCardNumber(s string) (CardNumber, error) {
	s = dropSeparators(strings.TrimSpace(s), "- ")
	if len(s) != 12 {
		return CardNumber{}, fmt.Errorf("idnum: ID06 card number: %w: want two letters and ten digits (got %d characters without separators)", ErrFormat, utf8.RuneCountInString(s))
	}
	letters := asciiUpper(s[:2])
	for i := 0; i < 2; i++ {
		if letters[i] < 'A' || letters[i] > 'Z' {
			return CardNumber{}, fmt.Errorf("idnum: ID06 card number: %w: want two letters A-Z first", ErrFormat)
		}
	}
	if !allDigits(s[2:]) {
		return CardNumber{}, fmt.Errorf("idnum: ID06 card number: %w: want ten digits after the letters", ErrFormat)
	}
	return CardNumber{n: letters + s[2:]}, nil
}

// IsZero reports whether c is the zero value, not a card.
func (c CardNumber) IsZero() bool { return c.n == "" }

// String returns the canonical form, two upper-case letters and ten digits
// without separators ("AB0123456789"), or "" for the zero value.
func (c CardNumber) String() string { return c.n }

// Supplier returns the two letters naming the card supplier.
func (c CardNumber) Supplier() string {
	if c.n == "" {
		return ""
	}
	return c.n[:2]
}

// ChipUID is the serial number (UID, also called CSN) of an ISO/IEC 14443-A
// chip: 4, 7 or 10 bytes. Most site readers identify an ID06 card by it
// alone. The zero value is no UID (IsZero).
type ChipUID struct {
	hex string // canonical: upper-case hex, no separators
}

// chipUIDSizes are the UID sizes ISO/IEC 14443-3 defines: single, double and
// triple size.
var chipUIDSizes = []int{4, 7, 10}

// ParseChipUID parses a chip UID written in hex, as readers print it, with
// ':', '-' or ' ' between digits anywhere ("04:A2:2B:1A:6F:5C:80",
// "04a22b1a6f5c80"). The error wraps ErrFormat.
func ParseChipUID(s string) (ChipUID, error) {
	s = dropSeparators(strings.TrimSpace(s), ":- ")
	b, err := hex.DecodeString(s)
	if err != nil {
		return ChipUID{}, fmt.Errorf("idnum: chip UID: %w: want hex digits", ErrFormat)
	}
	if !slices.Contains(chipUIDSizes, len(b)) {
		return ChipUID{}, fmt.Errorf("idnum: chip UID: %w: want 4, 7 or 10 bytes (got %d)", ErrFormat, len(b))
	}
	return ChipUID{hex: asciiUpper(s)}, nil
}

// ChipUIDFromBytes returns the UID a reader delivered as raw bytes. The
// error wraps ErrFormat when the length is not 4, 7 or 10.
func ChipUIDFromBytes(b []byte) (ChipUID, error) {
	if !slices.Contains(chipUIDSizes, len(b)) {
		return ChipUID{}, fmt.Errorf("idnum: chip UID: %w: want 4, 7 or 10 bytes (got %d)", ErrFormat, len(b))
	}
	return ChipUID{hex: strings.ToUpper(hex.EncodeToString(b))}, nil
}

// IsZero reports whether u is the zero value, not a UID.
func (u ChipUID) IsZero() bool { return u.hex == "" }

// String returns the canonical form: upper-case hex without separators
// ("04A22B1A6F5C80"), or "" for the zero value.
func (u ChipUID) String() string { return u.hex }

// Bytes returns the UID's bytes in a new slice (nil for the zero value).
func (u ChipUID) Bytes() []byte {
	if u.hex == "" {
		return nil
	}
	b, _ := hex.DecodeString(u.hex) // valid by construction
	return b
}

// dropSeparators returns s without any of the bytes in seps.
func dropSeparators(s, seps string) string {
	return strings.Map(func(r rune) rune {
		if strings.ContainsRune(seps, r) {
			return -1
		}
		return r
	}, s)
}
