package idnum

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// refNow is the reference date of the table tests and fuzzers: 15 March
// 2026, in Swedish winter time.
var refNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.FixedZone("CET", 3600))

var sentinels = []error{ErrFormat, ErrCheckDigit, ErrDate}

// checkErr fails t unless err wraps exactly one sentinel and, once the
// separators people type are removed from its text, holds no run of more
// than eight digits: errors are logged, and an identity number must never be.
func checkErr(t testing.TB, input string, err error) {
	t.Helper()
	n := 0
	for _, s := range sentinels {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("error for %q wraps %d sentinels, want 1: %v", input, n, err)
	}
	text := dropSeparators(err.Error(), "-+ :/.")
	run := 0
	for i := 0; i < len(text); i++ {
		if text[i] >= '0' && text[i] <= '9' {
			run++
			if run > 8 {
				t.Fatalf("error for %q holds more than 8 digits in a row: %v", input, err)
			}
		} else {
			run = 0
		}
	}
}

// withCheck appends the Luhn check digit to nine digits, computed apart from
// luhnValid: weights 2,1,2,... from the left, digit sums of the products.
func withCheck(nine string) string {
	if len(nine) != 9 {
		panic("withCheck: want 9 digits")
	}
	sum := 0
	for i, c := range nine {
		p := int(c-'0') * (2 - i%2)
		sum += p/10 + p%10
	}
	return nine + string(rune('0'+(10-sum%10)%10))
}

// pnr formats nine digits YYMMDDNNN with their check digit as YYMMDD<sep>NNNC.
func pnr(nine, sep string) string {
	t := withCheck(nine)
	return t[:6] + sep + t[6:]
}

func TestLuhn(t *testing.T) {
	for _, s := range []string{"8112189876", "1212121212", "7010632391", "5560160680", "2021005489", "0"} {
		if !luhnValid(s) {
			t.Errorf("luhnValid(%q) = false, want true", s)
		}
		if got := withCheck(s[:len(s)-1] + strings.Repeat("0", 10-len(s))); len(s) == 10 && got != s {
			t.Errorf("withCheck(%q) = %q, want %q", s[:9], got, s)
		}
	}
	for _, s := range []string{"8112189875", "1212121213", "5560160681", "1"} {
		if luhnValid(s) {
			t.Errorf("luhnValid(%q) = true, want false", s)
		}
	}
}
