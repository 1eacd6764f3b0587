package idnum

import (
	"fmt"
	"slices"
	"strings"
)

// maxForeignNumber is the longest foreign identity number accepted, in
// characters.
const maxForeignNumber = 40

// ForeignID is a foreign identity number, used for a worker who has neither
// personnummer nor samordningsnummer, or for a foreign business without a
// Swedish organisation number. ParseForeignID returns it in canonical form,
// and Validate checks that a value built otherwise is in it; two ForeignID
// values name the same identity exactly when they are ==.
type ForeignID struct {
	// Country is the issuing country, an ISO 3166-1 alpha-2 code in upper
	// case ("DE", "PL"); "XK" (Kosovo) is accepted too.
	Country string
	// Number is 1–40 characters: upper-case letters A–Z, digits, hyphens and
	// single spaces, with no space at either end.
	Number string
}

// ParseForeignID validates a foreign identity and returns it in canonical
// form: the country code trimmed and upper-cased; the number trimmed,
// upper-cased (ASCII letters only) and with runs of white space made one
// space. Upper-casing is what makes
// two spellings of one passport number meet in the blind index (package
// pii); identity documents do not tell case apart.
//
// Only ASCII letters are accepted: the ledger's numbers use digits (and
// foreign documents Latin letters), and anything else would make the
// canonical form depend on Unicode case rules.
//
// The error wraps ErrFormat and does not contain the number.
func ParseForeignID(country, number string) (ForeignID, error) {
	f := ForeignID{
		Country: asciiUpper(strings.TrimSpace(country)),
		Number:  strings.Join(strings.Fields(asciiUpper(number)), " "),
	}
	if err := f.Validate(); err != nil {
		return ForeignID{}, err
	}
	return f, nil
}

// Validate reports whether f is a foreign identity in the canonical form
// ParseForeignID returns. The error wraps ErrFormat.
func (f ForeignID) Validate() error {
	if !isCountry(f.Country) {
		return fmt.Errorf("idnum: foreign identity: %w: country must be an ISO 3166-1 alpha-2 code", ErrFormat)
	}
	n := f.Number
	if n == "" || len(n) > maxForeignNumber {
		return fmt.Errorf("idnum: foreign identity: %w: number must be 1-%d characters (got %d)", ErrFormat, maxForeignNumber, len(n))
	}
	if n[0] == ' ' || n[len(n)-1] == ' ' || strings.Contains(n, "  ") {
		return fmt.Errorf("idnum: foreign identity: %w: number has spaces at its ends or in a row", ErrFormat)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == ' ') {
			return fmt.Errorf("idnum: foreign identity: %w: number may hold only A-Z, 0-9, '-' and ' ' (character %d)", ErrFormat, i+1)
		}
	}
	return nil
}

// String returns "CC:NUMBER", for instance "DE:T22000129". The colon keeps it
// apart from every other identifier's canonical form, so one blind index can
// hold them all.
func (f ForeignID) String() string { return f.Country + ":" + f.Number }

// isCountry reports whether cc is an ISO 3166-1 alpha-2 code.
func isCountry(cc string) bool {
	_, ok := slices.BinarySearch(countryCodes, cc)
	return ok
}

// countryCodes are the officially assigned ISO 3166-1 alpha-2 codes (249,
// the same set as tzdata's iso3166.tab) plus XK, the user-assigned code that
// Kosovo's passports and identity cards carry: workers from Kosovo are common
// on Swedish sites. Sorted for binary search.
var countryCodes = []string{
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX", "AZ",
	"BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ", "BR", "BS", "BT", "BV", "BW", "BY", "BZ",
	"CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK", "CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ",
	"DE", "DJ", "DK", "DM", "DO", "DZ",
	"EC", "EE", "EG", "EH", "ER", "ES", "ET",
	"FI", "FJ", "FK", "FM", "FO", "FR",
	"GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS", "GT", "GU", "GW", "GY",
	"HK", "HM", "HN", "HR", "HT", "HU",
	"ID", "IE", "IL", "IM", "IN", "IO", "IQ", "IR", "IS", "IT",
	"JE", "JM", "JO", "JP",
	"KE", "KG", "KH", "KI", "KM", "KN", "KP", "KR", "KW", "KY", "KZ",
	"LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV", "LY",
	"MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ", "MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ",
	"NA", "NC", "NE", "NF", "NG", "NI", "NL", "NO", "NP", "NR", "NU", "NZ",
	"OM",
	"PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM", "PN", "PR", "PS", "PT", "PW", "PY",
	"QA",
	"RE", "RO", "RS", "RU", "RW",
	"SA", "SB", "SC", "SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV", "SX", "SY", "SZ",
	"TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR", "TT", "TV", "TW", "TZ",
	"UA", "UG", "UM", "US", "UY", "UZ",
	"VA", "VC", "VE", "VG", "VI", "VN", "VU",
	"WF", "WS",
	"XK",
	"YE", "YT",
	"ZA", "ZM", "ZW",
}
