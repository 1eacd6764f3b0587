package pn532

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFirmware(t *testing.T) {
	fw, err := ParseFirmware([]byte{0x32, 0x01, 0x06, 0x07})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fw.String(), "PN532 v1.6 (ISO14443A ISO14443B ISO18092)"; got != want {
		t.Errorf("Firmware.String() = %q, want %q", got, want)
	}
	if _, err := ParseFirmware([]byte{0x32}); !errors.Is(err, ErrResponse) {
		t.Errorf("ParseFirmware(32) error %v, want ErrResponse", err)
	}
}

func TestParseTargetsA(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    string
		want []TargetA
		err  bool
	}{
		{"no card", "00", []TargetA{}, false},
		// UM0701 §7.3.5's MIFARE Classic 1K example.
		{"4-byte UID", "01 01 00 04 08 04 A1 B2 C3 D4", []TargetA{{Tg: 1, ATQA: [2]byte{0x00, 0x04}, SAK: 0x08,
			UID: []byte{0xA1, 0xB2, 0xC3, 0xD4}}}, false},
		// A DESFire-like ISO/IEC 14443-4 card with a 7-byte UID and ATS.
		{"7-byte UID with ATS", "01 01 03 44 20 07 04 A1 B2 C3 D4 E5 F6 06 75 77 81 02 80", []TargetA{{Tg: 1,
			ATQA: [2]byte{0x03, 0x44}, SAK: 0x20, UID: []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6},
			ATS: []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80}}}, false},
		{"10-byte UID", "01 01 00 44 00 0A 01 02 03 04 05 06 07 08 09 0A", []TargetA{{Tg: 1, ATQA: [2]byte{0x00, 0x44},
			UID: []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}}, false},
		{"two targets", "02 01 00 04 08 04 01 02 03 04 02 00 04 20 04 05 06 07 08 02 80", []TargetA{
			{Tg: 1, ATQA: [2]byte{0x00, 0x04}, SAK: 0x08, UID: []byte{1, 2, 3, 4}},
			{Tg: 2, ATQA: [2]byte{0x00, 0x04}, SAK: 0x20, UID: []byte{5, 6, 7, 8}, ATS: []byte{0x02, 0x80}}}, false},
		{"empty", "", nil, true},
		{"three targets", "03", nil, true},
		{"UID length 5", "01 01 00 04 08 05 01 02 03 04 05", nil, true},
		{"UID cut short", "01 01 00 04 08 07 01 02 03", nil, true},
		{"ATS too long", "01 01 00 04 20 04 01 02 03 04 09 75", nil, true},
		{"ATS length 0", "01 01 00 04 20 04 01 02 03 04 00", nil, true},
		{"trailing bytes", "01 01 00 04 08 04 01 02 03 04 99", nil, true},
		{"target cut short", "01 01 00", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTargetsA(unhex(t, tc.p))
			if (err != nil) != tc.err {
				t.Fatalf("ParseTargetsA(%s) error %v, want error %v", tc.p, err, tc.err)
			}
			if err != nil {
				if !errors.Is(err, ErrResponse) {
					t.Errorf("ParseTargetsA(%s) error %v, want ErrResponse", tc.p, err)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParseTargetsA(%s) (-want +got):\n%s", tc.p, diff)
			}
			// AppendTo writes the same bytes back.
			back := []byte{byte(len(got))}
			for _, tg := range got {
				back = tg.AppendTo(back)
			}
			if diff := cmp.Diff(unhex(t, tc.p), back); diff != "" {
				t.Errorf("AppendTo(ParseTargetsA(%s)) (-want +got):\n%s", tc.p, diff)
			}
		})
	}
}

func TestRandomUID(t *testing.T) {
	if !(TargetA{UID: []byte{0x08, 1, 2, 3}}).RandomUID() {
		t.Error("RandomUID(08010203) = false")
	}
	if (TargetA{UID: []byte{0x04, 1, 2, 3, 4, 5, 6}}).RandomUID() {
		t.Error("RandomUID(04010203040506) = true")
	}
}

func TestWakeBytes(t *testing.T) {
	b := wakeBytes(115200)
	if b[0] != 0x55 || b[1] != 0x55 {
		t.Fatalf("wakeBytes starts % X, want 55 55", b[:2])
	}
	for _, c := range b[2:] {
		if c != 0 {
			t.Fatalf("wakeBytes = % X: want zeros after 55 55", b)
		}
	}
	// The zeros last at least wakeLeadTime on the line.
	if lasted := time.Duration(len(b)-2) * 10 * time.Second / 115200; lasted < wakeLeadTime {
		t.Errorf("wakeBytes(115200): zeros last %v, want at least %v", lasted, wakeLeadTime)
	}
	if n := len(wakeBytes(9600)); n != 2+3 {
		t.Errorf("len(wakeBytes(9600)) = %d, want 5", n)
	}
}

func FuzzParseTargetsA(f *testing.F) {
	f.Add([]byte{0x00})
	f.Add(unhex(f, "01 01 03 44 20 07 04 A1 B2 C3 D4 E5 F6 06 75 77 81 02 80"))
	f.Add(unhex(f, "02 01 00 04 08 04 01 02 03 04 02 00 04 20 04 05 06 07 08 02 80"))
	f.Fuzz(func(t *testing.T, p []byte) {
		ts, err := ParseTargetsA(p)
		if err != nil {
			return
		}
		back := []byte{byte(len(ts))}
		for _, tg := range ts {
			if n := len(tg.UID); n != 4 && n != 7 && n != 10 {
				t.Fatalf("UID of %d bytes accepted", n)
			}
			back = tg.AppendTo(back)
		}
		if !cmp.Equal(back, p) {
			t.Fatalf("AppendTo(ParseTargetsA(% X)) = % X", p, back)
		}
	})
}

func FuzzParseFirmware(f *testing.F) {
	f.Add([]byte{0x32, 0x01, 0x06, 0x07})
	f.Fuzz(func(t *testing.T, p []byte) {
		fw, err := ParseFirmware(p)
		if err != nil {
			return
		}
		_ = fw.String()
		if !cmp.Equal(fw.Bytes(), p) {
			t.Fatalf("ParseFirmware(% X).Bytes() = % X", p, fw.Bytes())
		}
	})
}
