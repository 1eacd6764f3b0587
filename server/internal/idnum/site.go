package idnum

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// siteIDLen is the length of a site identifikationsnummer.
const siteIDLen = 13

// SiteID is a construction site's identifikationsnummer, which Skatteverket
// issues to the byggherre when the site is registered (SFL 7 kap. 2 a §) and
// which every ledger entry carries. The zero value is no site (IsZero).
//
// No check digit is known for it (unconfirmed), so only the shape is
// checked: a mistyped number passes, and is caught only by comparison with
// the sites registered in the system.
type SiteID struct {
	id string
}

// ParseSiteID parses a site identifikationsnummer: exactly 13 characters A–Z
// and 0–9 once surrounding white space is trimmed and letters upper-cased.
// The error wraps ErrFormat.
func ParseSiteID(s string) (SiteID, error) {
	s = asciiUpper(strings.TrimSpace(s))
	if len(s) != siteIDLen {
		return SiteID{}, fmt.Errorf("idnum: site identifikationsnummer: %w: want %d characters A-Z and 0-9 (got %d characters)", ErrFormat, siteIDLen, utf8.RuneCountInString(s))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return SiteID{}, fmt.Errorf("idnum: site identifikationsnummer: %w: character %d is not A-Z or 0-9", ErrFormat, i+1)
		}
	}
	return SiteID{id: s}, nil
}

// IsZero reports whether id is the zero value, not a site.
func (id SiteID) IsZero() bool { return id.id == "" }

// String returns the canonical form: 13 upper-case letters and digits, or
// "" for the zero value.
func (id SiteID) String() string { return id.id }
