package idnum

import "errors"

// ErrFormat is wrapped by every error for input of the wrong shape: wrong
// length, wrong characters, separators in the wrong place, or an unknown
// country code.
var ErrFormat = errors.New("wrong format")

// ErrCheckDigit is wrapped by errors for numbers whose Luhn check digit does
// not match: almost always a typing or reading mistake.
var ErrCheckDigit = errors.New("wrong check digit")

// ErrDate is wrapped by errors for personal identity numbers whose date does
// not exist, lies in the future or before 1800.
var ErrDate = errors.New("no such birth date")

// luhnValid reports whether the digit string s, check digit last, passes the
// Luhn algorithm (the "modulus 10" rule Skatteverket uses for personnummer
// and organisation numbers). s must hold ASCII digits only.
func luhnValid(s string) bool {
	sum := 0
	double := len(s)%2 == 0 // the rightmost digit is never doubled
	for i := 0; i < len(s); i++ {
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// allDigits reports whether s is non-empty and holds ASCII digits only.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// atoi converts a string of ASCII digits that allDigits accepted.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// asciiUpper upper-cases the ASCII letters of s and leaves every other byte
// alone. strings.ToUpper would turn some non-ASCII letters into ASCII ones
// (U+017F, long s, becomes S), letting odd input through the A–Z checks.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
