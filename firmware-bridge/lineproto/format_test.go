package lineproto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	uid7 := []byte{0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}
	rev7 := []byte{0xf6, 0xe5, 0xd4, 0xc3, 0xb2, 0xa1, 0x04}
	for _, tc := range []struct {
		name string
		f    Format
		line string
		want []byte // nil: ErrBadLine
	}{
		{"plain", Format{}, "04A1B2C3D4E5F6", uid7},
		{"lower", Format{}, "04a1b2c3d4e5f6", uid7},
		{"blanks", Format{}, " \t04A1B2C3D4E5F6\r\x00", uid7},
		{"colons", Format{}, "04:A1:B2:C3:D4:E5:F6", uid7},
		{"spaces", Format{}, "04 a1 b2 c3 d4 e5 f6", uid7},
		{"dashes", Format{}, "04-A1-B2-C3-D4-E5-F6", uid7},
		{"reversed", Format{Order: Reversed}, "04A1B2C3D4E5F6", rev7},
		{"4 bytes", Format{}, "DEADBEEF", []byte{0xde, 0xad, 0xbe, 0xef}},
		{"10 bytes", Format{}, "0102030405060708090A", []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"prefix", Format{Prefix: "UID:"}, "uid: 04A1B2C3D4E5F6", uid7},
		{"prefix absent", Format{Prefix: "UID:"}, "04A1B2C3D4E5F6", uid7},
		{"suffix", Format{Suffix: "OK"}, "04A1B2C3D4E5F6 ok", uid7},
		{"custom lengths", Format{UIDLengths: []int{8}}, "0011223344556677", []byte{0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77}},

		{"empty", Format{}, "", nil},
		{"prefix only", Format{Prefix: "UID:"}, "UID:", nil},
		{"odd digits", Format{}, "04A1B2C3D", nil},
		{"not hex", Format{}, "04A1B2G3", nil},
		{"text", Format{}, "ERROR ANTENNA", nil},
		{"5 bytes", Format{}, "04A1B2C3D4", nil},
		{"custom lengths refuse 7", Format{UIDLengths: []int{4}}, "04A1B2C3D4E5F6", nil},
		{"mixed separators", Format{}, "04:A1-B2:C3", nil},
		{"ragged separators", Format{}, "04:A1:B2:C3:", nil},
		{"separator then none", Format{}, "04:A1B2C3D4", nil},
		{"zeros", Format{}, "00000000", nil},
		{"ones", Format{}, "FFFFFFFF", nil},
		{"inner blank", Format{}, "04A1\nB2C3", nil},
		{"overlong", Format{}, strings.Repeat("0A", MaxLineLen), nil},
		{"prefix wrong place", Format{Prefix: "UID:"}, "04A1B2C3UID:", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.f.ParseLine([]byte(tc.line))
			if tc.want == nil {
				if !errors.Is(err, ErrBadLine) {
					t.Errorf("ParseLine(%q) = %x, %v, want ErrBadLine", tc.line, got, err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.want) {
				t.Errorf("ParseLine(%q) = %x, %v, want %x", tc.line, got, err, tc.want)
			}
		})
	}
}

func FuzzParseLine(f *testing.F) {
	for _, s := range []string{
		"04A1B2C3D4E5F6", "04:a1:b2:c3", "UID: DEADBEEF", "", "0", "04:", "04::A1",
		"ERROR", "\x00\xff", strings.Repeat("A", MaxLineLen+1), "FFFFFFFF",
	} {
		f.Add([]byte(s), false, "UID:")
	}
	f.Fuzz(func(t *testing.T, line []byte, reversed bool, prefix string) {
		fm := Format{Prefix: prefix}
		if reversed {
			fm.Order = Reversed
		}
		uid, err := fm.ParseLine(line)
		if err != nil {
			if !errors.Is(err, ErrBadLine) {
				t.Fatalf("ParseLine(%q) = %v, not ErrBadLine", line, err)
			}
			if uid != nil {
				t.Fatalf("ParseLine(%q) = %x with error %v", line, uid, err)
			}
			return
		}
		if n := len(uid); n != 4 && n != 7 && n != 10 {
			t.Fatalf("ParseLine(%q) = %d-byte UID", line, n)
		}
		if len(line) > MaxLineLen {
			t.Fatalf("ParseLine accepted a %d-byte line", len(line))
		}
		// The UID's hex appears in the line, in one order or the other.
		hexOf := func(b []byte) string { return strings.ToUpper(string(encodeHex(b))) }
		stripped := strings.NewReplacer(":", "", "-", "", " ", "").Replace(strings.ToUpper(string(line)))
		if !strings.Contains(stripped, hexOf(uid)) && !strings.Contains(stripped, hexOf(reverse(uid))) {
			t.Fatalf("ParseLine(%q) = %x, not in the line", line, uid)
		}
	})
}

func encodeHex(b []byte) []byte {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

func reverse(b []byte) []byte {
	r := make([]byte, len(b))
	for i, c := range b {
		r[len(b)-1-i] = c
	}
	return r
}
