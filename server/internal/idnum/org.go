package idnum

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// OrgNumber identifies a contractor: either a legal entity's
// organisationsnummer or, for a sole trader (enskild näringsidkare), his
// personnummer or samordningsnummer. The zero value is no number (IsZero).
// OrgNumber values are comparable with ==.
type OrgNumber struct {
	company string       // NNNNNNNNNC for a legal entity, else ""
	person  PersonNumber // a sole trader's number, else zero
}

// orgPrefix is the century-like prefix that makes a company's number twelve
// digits long in systems that want twelve digits everywhere.
const orgPrefix = "16"

// ParseOrgNumber parses a contractor's number: an organisationsnummer
// NNNNNN-NNNC, NNNNNNNNNC, 16NNNNNNNNNC or 16NNNNNN-NNNC (third digit of the
// ten at least 2), or a sole trader's personnummer in any form
// ParsePersonNumber accepts, which it is handed to along with now. Ten-digit
// input whose third digit is 0 or 1 is read as a personnummer, since that
// digit is then the tens of a month.
//
// The error wraps ErrFormat, ErrDate or ErrCheckDigit and contains at most
// the masked form of a personnummer and no company number.
func ParseOrgNumber(s string, now time.Time) (OrgNumber, error) {
	s = strings.TrimSpace(s)
	var ten string
	switch {
	case len(s) == 12 && allDigits(s) && strings.HasPrefix(s, orgPrefix):
		ten = s[2:]
	case len(s) == 13 && strings.HasPrefix(s, orgPrefix) && s[8] == '-' && allDigits(s[:8]) && allDigits(s[9:]):
		ten = s[2:8] + s[9:]
	case len(s) == 10 && allDigits(s) && s[2] >= '2':
		ten = s
	case len(s) == 11 && s[6] == '-' && allDigits(s[:6]) && allDigits(s[7:]) && s[2] >= '2':
		ten = s[:6] + s[7:]
	case (len(s) == 10 || len(s) == 11) && s[2] >= '2' && s[2] <= '9':
		// Not a month: a company's number in the wrong shape (say, with '+').
		return OrgNumber{}, fmt.Errorf("idnum: organisationsnummer: %w: want NNNNNN-NNNC (got %d characters)", ErrFormat, utf8.RuneCountInString(s))
	default:
		if _, _, _, ok := personShape(s); !ok {
			return OrgNumber{}, fmt.Errorf("idnum: organisationsnummer: %w: want NNNNNN-NNNC, 16NNNNNNNNNC or a sole trader's personnummer (got %d characters)", ErrFormat, utf8.RuneCountInString(s))
		}
		p, err := parsePerson(s, now)
		if err != nil {
			return OrgNumber{}, fmt.Errorf("idnum: organisationsnummer of a sole trader: %w", err)
		}
		return OrgNumber{person: p}, nil
	}
	if ten[2] < '2' {
		return OrgNumber{}, fmt.Errorf("idnum: organisationsnummer: %w: third digit must be 2 or more after the %q prefix", ErrFormat, orgPrefix)
	}
	if !luhnValid(ten) {
		return OrgNumber{}, fmt.Errorf("idnum: organisationsnummer: %w", ErrCheckDigit)
	}
	return OrgNumber{company: ten}, nil
}

// OrgNumberOf returns the contractor number of a sole trader with the given
// personnummer or samordningsnummer.
func OrgNumberOf(p PersonNumber) OrgNumber { return OrgNumber{person: p} }

// IsZero reports whether o is the zero value, not a number.
func (o OrgNumber) IsZero() bool { return o.company == "" && o.person.IsZero() }

// IsPersonal reports whether o is a sole trader's personnummer or
// samordningsnummer, which is personal data and must be treated as such
// (encrypted at rest, masked outside inspector views).
func (o OrgNumber) IsPersonal() bool { return !o.person.IsZero() }

// Person returns the sole trader's number and true when IsPersonal.
func (o OrgNumber) Person() (PersonNumber, bool) { return o.person, !o.person.IsZero() }

// String returns the canonical form: NNNNNN-NNNC for a legal entity, the
// twelve-digit PersonNumber.String for a sole trader, "" for the zero value.
// ParseOrgNumber reads it back to the same value.
func (o OrgNumber) String() string {
	if o.company != "" {
		return o.company[:6] + "-" + o.company[6:]
	}
	return o.person.String()
}

// Masked returns String for a legal entity, whose number is public, and
// PersonNumber.Masked for a sole trader.
func (o OrgNumber) Masked() string {
	if o.company != "" {
		return o.String()
	}
	return o.person.Masked()
}

// LogValue implements slog.LogValuer: an OrgNumber is logged masked.
func (o OrgNumber) LogValue() slog.Value { return slog.StringValue(o.Masked()) }
