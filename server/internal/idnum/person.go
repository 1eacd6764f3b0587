package idnum

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"
)

// Kind tells a personnummer from a samordningsnummer.
type Kind uint8

const (
	// Personnummer is the identity number of a person registered in Sweden
	// (folkbokförd).
	Personnummer Kind = iota + 1
	// Samordningsnummer is the coordination number Skatteverket gives people
	// who are not, or not yet, registered in Sweden.
	Samordningsnummer
)

// String returns the Swedish name of the kind, in lower case.
func (k Kind) String() string {
	switch k {
	case Personnummer:
		return "personnummer"
	case Samordningsnummer:
		return "samordningsnummer"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// coordinationDayOffset is what Skatteverket adds to the birth day to make
// the day field of a samordningsnummer.
const coordinationDayOffset = 60

// splitDay reads the day field of a personal identity number: the real day
// of birth and whether it is a personnummer or a samordningsnummer. It is the
// only place that knows the plus-60 rule, so that a reform of the
// samordningsnummer (proposed, unconfirmed) changes this function and nothing
// else.
func splitDay(field int) (day int, kind Kind, ok bool) {
	switch {
	case field >= 1 && field <= 31:
		return field, Personnummer, true
	case field >= 1+coordinationDayOffset && field <= 31+coordinationDayOffset:
		return field - coordinationDayOffset, Samordningsnummer, true
	}
	return 0, 0, false
}

// minBirthYear is the earliest birth year accepted in the twelve-digit form.
const minBirthYear = 1800

// PersonNumber is a valid personnummer or samordningsnummer. The zero value
// is no number at all (IsZero). PersonNumber values are comparable with ==.
//
// Its String method returns the full number: never pass a PersonNumber to fmt
// or a logger expecting it to be hidden. slog calls LogValue, which masks it.
type PersonNumber struct {
	digits string // canonical YYYYMMDDNNNC, "" for the zero value
}

// ParsePersonNumber parses a personnummer or samordningsnummer written in one
// of the forms YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC, YYYYMMDDNNNC or
// YYYYMMDD-NNNC, with surrounding white space. now is the reference date for
// the century of the ten-digit forms and for refusing future birth dates;
// its calendar date in its own location is used, so pass Swedish time.
//
// The error wraps ErrFormat, ErrDate or ErrCheckDigit and contains at most
// the masked form of the number.
func ParsePersonNumber(s string, now time.Time) (PersonNumber, error) {
	p, err := parsePerson(s, now)
	if err != nil {
		return PersonNumber{}, fmt.Errorf("idnum: %w", err)
	}
	return p, nil
}

// parsePerson is ParsePersonNumber with errors not yet prefixed by the
// package name, so that ParseOrgNumber can wrap them.
func parsePerson(s string, now time.Time) (PersonNumber, error) {
	ten, year, plus, ok := personShape(strings.TrimSpace(s))
	if !ok {
		return PersonNumber{}, fmt.Errorf("personnummer: %w: want YYMMDD-NNNC, YYMMDD+NNNC, YYMMDDNNNC, YYYYMMDDNNNC or YYYYMMDD-NNNC (got %d characters)", ErrFormat, utf8.RuneCountInString(strings.TrimSpace(s)))
	}

	month := atoi(ten[2:4])
	if month < 1 || month > 12 {
		return PersonNumber{}, fmt.Errorf("personnummer: month %02d: %w", month, ErrDate)
	}
	dayField := atoi(ten[4:6])
	day, _, ok := splitDay(dayField)
	if !ok {
		return PersonNumber{}, fmt.Errorf("personnummer: day field %02d is neither a birth day (01-31) nor a coordination day (61-91): %w", dayField, ErrDate)
	}

	ty, tm, td := now.Date()
	today := civil{ty, tm, td}
	if year < 0 {
		yy := atoi(ten[:2])
		year = ty - ty%100 + yy
		if (civil{year, time.Month(month), day}).after(today) {
			year -= 100
		}
		if plus {
			year -= 100
		}
	}
	birth := civil{year, time.Month(month), day}
	switch {
	case year < minBirthYear:
		return PersonNumber{}, fmt.Errorf("personnummer: birth year %d before %d: %w", year, minBirthYear, ErrDate)
	case day > daysIn(year, time.Month(month)):
		return PersonNumber{}, fmt.Errorf("personnummer: %d-%02d has no day %02d: %w", year, month, day, ErrDate)
	case birth.after(today):
		return PersonNumber{}, fmt.Errorf("personnummer: birth date %04d-%02d-%02d is in the future: %w", year, month, day, ErrDate)
	}

	p := PersonNumber{digits: fmt.Sprintf("%02d", year/100) + ten}
	if !luhnValid(ten) {
		return PersonNumber{}, fmt.Errorf("personnummer %s: %w", p.Masked(), ErrCheckDigit)
	}
	return p, nil
}

// personShape splits a trimmed personal identity number into its ten-digit
// form YYMMDDNNNC, the year when written in full (else -1) and whether the
// separator was '+'. ok is false for any other shape.
func personShape(s string) (ten string, year int, plus bool, ok bool) {
	switch {
	case len(s) == 10 && allDigits(s):
		return s, -1, false, true
	case len(s) == 11 && (s[6] == '-' || s[6] == '+') && allDigits(s[:6]) && allDigits(s[7:]):
		return s[:6] + s[7:], -1, s[6] == '+', true
	case len(s) == 12 && allDigits(s):
		return s[2:], atoi(s[:4]), false, true
	case len(s) == 13 && s[8] == '-' && allDigits(s[:8]) && allDigits(s[9:]):
		return s[2:8] + s[9:], atoi(s[:4]), false, true
	}
	return "", -1, false, false
}

// civil is a calendar date without time zone.
type civil struct {
	y int
	m time.Month
	d int
}

func (c civil) after(o civil) bool {
	if c.y != o.y {
		return c.y > o.y
	}
	if c.m != o.m {
		return c.m > o.m
	}
	return c.d > o.d
}

// daysIn returns the number of days in month m of year y (proleptic
// Gregorian calendar, which is what Sweden has used since 1753).
func daysIn(y int, m time.Month) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// IsZero reports whether p is the zero value, not a number.
func (p PersonNumber) IsZero() bool { return p.digits == "" }

// String returns the full canonical twelve-digit form YYYYMMDDNNNC (day +60
// for a samordningsnummer): the form that is encrypted and indexed. It
// returns "" for the zero value. Show it only in inspector views and exports
// for Skatteverket; elsewhere use Masked.
func (p PersonNumber) String() string { return p.digits }

// Masked returns YYYYMMDD-****, the form shown outside inspector views and
// the only form that may appear in logs. The date part is as issued (day +60
// for a samordningsnummer). It returns "" for the zero value.
func (p PersonNumber) Masked() string {
	if p.digits == "" {
		return ""
	}
	return p.digits[:8] + "-****"
}

// LogValue implements slog.LogValuer: a PersonNumber is logged masked.
func (p PersonNumber) LogValue() slog.Value { return slog.StringValue(p.Masked()) }

// Kind reports whether p is a personnummer or a samordningsnummer; 0 for the
// zero value.
func (p PersonNumber) Kind() Kind {
	if p.digits == "" {
		return 0
	}
	_, k, _ := splitDay(atoi(p.digits[6:8]))
	return k
}

// BirthDate returns the date of birth at midnight UTC, with the real day for
// a samordningsnummer (the day field less 60). It returns the zero time for
// the zero value.
func (p PersonNumber) BirthDate() time.Time {
	if p.digits == "" {
		return time.Time{}
	}
	day, _, _ := splitDay(atoi(p.digits[6:8]))
	return time.Date(atoi(p.digits[:4]), time.Month(atoi(p.digits[4:6])), day, 0, 0, 0, 0, time.UTC)
}
