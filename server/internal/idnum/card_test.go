package idnum

import (
	"bytes"
	"errors"
	"testing"
)

func TestParseCardNumber(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{in: "AB0123456789", want: "AB0123456789"},
		{in: "AB-0123-456789", want: "AB0123456789"},
		{in: "ab-0123456789", want: "AB0123456789"},
		{in: " AB 0123 456 789\n", want: "AB0123456789"},
		{in: "A-B-0-1-2-3-4-5-6-7-8-9", want: "AB0123456789"},
		{in: "", err: ErrFormat},
		{in: "AB012345678", err: ErrFormat},
		{in: "AB01234567890", err: ErrFormat},
		{in: "A10123456789", err: ErrFormat},
		{in: "ABC123456789", err: ErrFormat},
		{in: "AB012345678X", err: ErrFormat},
		{in: "AB_0123456789", err: ErrFormat},
		{in: "ÅB0123456789", err: ErrFormat},
		{in: "0123456789AB", err: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			c, err := ParseCardNumber(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !c.IsZero() {
					t.Fatalf("ParseCardNumber(%q) = %v, %v; want error %v", tt.in, c, err, tt.err)
				}
				checkErr(t, tt.in, err)
				return
			}
			if err != nil || c.String() != tt.want || c.Supplier() != tt.want[:2] {
				t.Fatalf("ParseCardNumber(%q) = %v (supplier %q), %v; want %s", tt.in, c, c.Supplier(), err, tt.want)
			}
			if q, err := ParseCardNumber(c.String()); err != nil || q != c {
				t.Errorf("ParseCardNumber(%s) = %v, %v; want %v", c, q, err, c)
			}
		})
	}
	if var0 := (CardNumber{}); !var0.IsZero() || var0.String() != "" || var0.Supplier() != "" {
		t.Errorf("zero CardNumber: IsZero %v, String %q", var0.IsZero(), var0.String())
	}
}

func TestParseChipUID(t *testing.T) {
	tests := []struct {
		in   string
		want string
		err  error
	}{
		{in: "DEADBEEF", want: "DEADBEEF"},
		{in: "de:ad:be:ef", want: "DEADBEEF"},
		{in: "04:A2:2B:1A:6F:5C:80", want: "04A22B1A6F5C80"},
		{in: "04-a2-2b-1a-6f-5c-80", want: "04A22B1A6F5C80"},
		{in: " 04 A2 2B 1A 6F 5C 80\r\n", want: "04A22B1A6F5C80"},
		{in: "0102030405060708090A", want: "0102030405060708090A"},
		{in: "0", err: ErrFormat},
		{in: "", err: ErrFormat},
		{in: "DEADBE", err: ErrFormat},
		{in: "DEADBEEF00", err: ErrFormat},
		{in: "DEADBEE", err: ErrFormat},
		{in: "0xDEADBEEF", err: ErrFormat},
		{in: "GEADBEEF", err: ErrFormat},
		{in: "DE_AD_BE_EF", err: ErrFormat},
		{in: "0102030405060708090A0B", err: ErrFormat},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := ParseChipUID(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) || !u.IsZero() {
					t.Fatalf("ParseChipUID(%q) = %v, %v; want error %v", tt.in, u, err, tt.err)
				}
				checkErr(t, tt.in, err)
				return
			}
			if err != nil || u.String() != tt.want {
				t.Fatalf("ParseChipUID(%q) = %v, %v; want %s", tt.in, u, err, tt.want)
			}
			if q, err := ParseChipUID(u.String()); err != nil || q != u {
				t.Errorf("ParseChipUID(%s) = %v, %v; want %v", u, q, err, u)
			}
			if q, err := ChipUIDFromBytes(u.Bytes()); err != nil || q != u {
				t.Errorf("ChipUIDFromBytes(%X) = %v, %v; want %v", u.Bytes(), q, err, u)
			}
		})
	}
	if _, err := ChipUIDFromBytes([]byte{1, 2, 3}); !errors.Is(err, ErrFormat) {
		t.Errorf("ChipUIDFromBytes(010203) = %v, want %v", err, ErrFormat)
	}
	if var0 := (ChipUID{}); !var0.IsZero() || var0.String() != "" || var0.Bytes() != nil {
		t.Errorf("zero ChipUID: IsZero %v, String %q, Bytes %x", var0.IsZero(), var0.String(), var0.Bytes())
	}
}

func FuzzParseCardNumber(f *testing.F) {
	for _, s := range []string{"AB0123456789", "AB-0123-456789", "ab 0123 456 789", "A10123456789", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCardNumber(s)
		if err != nil {
			checkErr(t, s, err)
			return
		}
		if v := c.String(); len(v) != 12 || !allDigits(v[2:]) || c.Supplier() != v[:2] {
			t.Fatalf("ParseCardNumber(%q).String() = %q", s, v)
		}
		if q, err := ParseCardNumber(c.String()); err != nil || q != c {
			t.Fatalf("ParseCardNumber(%s) = %v, %v; want the value itself", c, q, err)
		}
	})
}

func FuzzParseChipUID(f *testing.F) {
	for _, s := range []string{"DEADBEEF", "04:A2:2B:1A:6F:5C:80", "0102030405060708090a", "0x01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseChipUID(s)
		if err != nil {
			checkErr(t, s, err)
			return
		}
		b := u.Bytes()
		if n := len(b); n != 4 && n != 7 && n != 10 {
			t.Fatalf("ParseChipUID(%q) = %v of %d bytes", s, u, n)
		}
		if q, err := ParseChipUID(u.String()); err != nil || q != u {
			t.Fatalf("ParseChipUID(%s) = %v, %v; want the value itself", u, q, err)
		}
		if q, err := ChipUIDFromBytes(b); err != nil || q != u {
			t.Fatalf("ChipUIDFromBytes(%X) = %v, %v; want %v", b, q, err, u)
		}
		b[0] ^= 0xff
		if bytes.Equal(u.Bytes(), b) {
			t.Fatalf("ChipUID.Bytes() shares memory with the value")
		}
	})
}
