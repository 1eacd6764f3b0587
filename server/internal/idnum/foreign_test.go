package idnum

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseForeignID(t *testing.T) {
	tests := []struct {
		country, number string
		want            ForeignID
		err             error
	}{
		{country: "DE", number: "T22000129", want: ForeignID{"DE", "T22000129"}},
		{country: " de ", number: " t22000129 ", want: ForeignID{"DE", "T22000129"}},
		{country: "pl", number: "ABC  123\t456", want: ForeignID{"PL", "ABC 123 456"}},
		{country: "LT", number: "39001011234", want: ForeignID{"LT", "39001011234"}},
		{country: "XK", number: "P01234567", want: ForeignID{"XK", "P01234567"}},
		{country: "EE", number: "3-9001-011", want: ForeignID{"EE", "3-9001-011"}},
		{country: "FI", number: "1", want: ForeignID{"FI", "1"}},
		{country: "FI", number: strings.Repeat("A", 40), want: ForeignID{"FI", strings.Repeat("A", 40)}},
		{country: "FI", number: strings.Repeat("A", 41), err: ErrFormat},
		{country: "XX", number: "123", err: ErrFormat},
		{country: "EU", number: "123", err: ErrFormat},
		{country: "", number: "123", err: ErrFormat},
		{country: "D", number: "123", err: ErrFormat},
		{country: "DEU", number: "123", err: ErrFormat},
		{country: "DE", number: "", err: ErrFormat},
		{country: "DE", number: "   ", err: ErrFormat},
		{country: "DE", number: "ÄB12", err: ErrFormat},
		{country: "DE", number: "ſ123", err: ErrFormat},
		{country: "DE", number: "A/B", err: ErrFormat},
		{country: "DE", number: "A_B", err: ErrFormat},
		{country: "ſE", number: "1", err: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.country+"/"+tt.number, func(t *testing.T) {
			f, err := ParseForeignID(tt.country, tt.number)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ParseForeignID(%q, %q) = %v, %v; want error %v", tt.country, tt.number, f, err, tt.err)
				}
				checkErr(t, tt.number, err)
				return
			}
			if err != nil || f != tt.want {
				t.Fatalf("ParseForeignID(%q, %q) = %v, %v; want %v", tt.country, tt.number, f, err, tt.want)
			}
			if err := f.Validate(); err != nil {
				t.Errorf("%v.Validate() = %v, want nil", f, err)
			}
		})
	}
}

func TestForeignIDValidate(t *testing.T) {
	for _, f := range []ForeignID{{"de", "T1"}, {"DE", "t1"}, {"DE", " T1"}, {"DE", "T1 "}, {"DE", "T  1"}, {}} {
		if err := f.Validate(); !errors.Is(err, ErrFormat) {
			t.Errorf("%#v.Validate() = %v, want %v", f, err, ErrFormat)
		}
	}
	if got, want := (ForeignID{"DE", "T22000129"}).String(), "DE:T22000129"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func TestCountryCodes(t *testing.T) {
	if !slices.IsSorted(countryCodes) || len(slices.Compact(slices.Clone(countryCodes))) != len(countryCodes) {
		t.Fatal("countryCodes must be sorted and without repeats")
	}
	if len(countryCodes) != 250 {
		t.Errorf("len(countryCodes) = %d, want 249 ISO codes and XK", len(countryCodes))
	}
	for _, cc := range countryCodes {
		if len(cc) != 2 || cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z' {
			t.Errorf("country code %q is not two letters A-Z", cc)
		}
	}
	for _, cc := range []string{"SE", "NO", "FI", "DK", "PL", "LT", "LV", "EE", "DE", "RO", "BG", "UA", "BA", "RS", "XK", "GB", "SS", "BQ"} {
		if !isCountry(cc) {
			t.Errorf("isCountry(%q) = false, want true", cc)
		}
	}
	for _, cc := range []string{"UK", "EU", "YU", "AN", "CS", "ZZ", "se", ""} {
		if isCountry(cc) {
			t.Errorf("isCountry(%q) = true, want false", cc)
		}
	}
}

func FuzzParseForeignID(f *testing.F) {
	f.Add("DE", "T22000129")
	f.Add(" pl ", "abc  123")
	f.Add("XX", "1")
	f.Add("SE", "")
	f.Fuzz(func(t *testing.T, country, number string) {
		id, err := ParseForeignID(country, number)
		if err != nil {
			checkErr(t, number, err)
			return
		}
		if err := id.Validate(); err != nil {
			t.Fatalf("ParseForeignID(%q, %q) = %v, whose Validate() = %v", country, number, id, err)
		}
		q, err := ParseForeignID(id.Country, id.Number)
		if err != nil || q != id {
			t.Fatalf("ParseForeignID(%q, %q) = %v, %v; want the value itself", id.Country, id.Number, q, err)
		}
	})
}
