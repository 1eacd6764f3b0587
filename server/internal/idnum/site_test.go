package idnum

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSiteID(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{in: "ABC1234567890", want: "ABC1234567890"},
		{in: "  abc1234567890\n", want: "ABC1234567890"},
		{in: "0000000000000", want: "0000000000000"},
		{in: "ZZZZZZZZZZZZZ", want: "ZZZZZZZZZZZZZ"},
		{in: "", err: ErrFormat},
		{in: "ABC123456789", err: ErrFormat},
		{in: "ABC12345678901", err: ErrFormat},
		{in: "ABC-234567890", err: ErrFormat},
		{in: "ABC 234567890", err: ErrFormat},
		{in: "ÅBC123456789", err: ErrFormat},
		{in: "ſBC123456789X", err: ErrFormat},
		{in: "ABC12345678\x00", err: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			id, err := ParseSiteID(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !id.IsZero() {
					t.Fatalf("ParseSiteID(%q) = %v, %v; want error %v", tt.in, id, err, tt.err)
				}
				checkErr(t, tt.in, err)
				return
			}
			if err != nil || id.String() != tt.want {
				t.Fatalf("ParseSiteID(%q) = %v, %v; want %s", tt.in, id, err, tt.want)
			}
			if q, err := ParseSiteID(id.String()); err != nil || q != id {
				t.Errorf("ParseSiteID(%s) = %v, %v; want %v", id, q, err, id)
			}
		})
	}
	if var0 := (SiteID{}); !var0.IsZero() || var0.String() != "" {
		t.Errorf("zero SiteID: IsZero %v, String %q", var0.IsZero(), var0.String())
	}
}

func FuzzParseSiteID(f *testing.F) {
	for _, s := range []string{"ABC1234567890", " abc1234567890 ", "ABC123", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseSiteID(s)
		if err != nil {
			checkErr(t, s, err)
			return
		}
		if c := id.String(); len(c) != 13 || strings.ToUpper(c) != c {
			t.Fatalf("ParseSiteID(%q).String() = %q", s, c)
		}
		if q, err := ParseSiteID(id.String()); err != nil || q != id {
			t.Fatalf("ParseSiteID(%s) = %v, %v; want the value itself", id, q, err)
		}
	})
}
