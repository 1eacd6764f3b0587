package osdp

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMessagesRoundTrip(t *testing.T) {
	id := DefaultPDIDForTest()
	gotID, err := ParsePDID(id.Marshal())
	if err != nil || gotID != id {
		t.Errorf("ParsePDID(Marshal(%+v)) = %+v, %v", id, gotID, err)
	}
	if got, want := id.String(), "OSDP vendor 0A0B0C model 2 version 1 serial 00BC614E firmware 1.2.3"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}

	caps := Capabilities{{CapCommSecurity, 1, 1}, {CapLED, 1, 2}}
	gotCaps, err := ParsePDCAP(caps.Marshal())
	if err != nil || !cmp.Equal(gotCaps, caps) || !gotCaps.SecureChannel() {
		t.Errorf("ParsePDCAP(Marshal(%v)) = %v, %v", caps, gotCaps, err)
	}
	if (Capabilities{{CapCommSecurity, 0, 0}}).SecureChannel() {
		t.Error("SecureChannel() with compliance 0")
	}

	raw := RawCard{Reader: 1, Format: FormatWiegand, Bits: 26, Data: []byte{1, 2, 3, 0xC0}}
	gotRaw, err := ParseRAW(raw.Marshal())
	if err != nil || !cmp.Equal(gotRaw, raw) {
		t.Errorf("ParseRAW(Marshal(%+v)) = %+v, %v", raw, gotRaw, err)
	}

	fmtCard := FormattedCard{Reader: 0, Direction: 1, Text: "AB-0123-456789"}
	gotFmt, err := ParseFMT(fmtCard.Marshal())
	if err != nil || gotFmt != fmtCard {
		t.Errorf("ParseFMT(Marshal(%+v)) = %+v, %v", fmtCard, gotFmt, err)
	}

	led := LED{Reader: 0, Number: 1, Temporary: LEDState{LEDTempSet, 3, 4, Green, Black}, Timer: 0x1234,
		Permanent: LEDState{LEDPermSet, 1, 0, Blue, Black}}
	b := led.Marshal()
	if len(b) != ledLen {
		t.Fatalf("LED record of %d bytes", len(b))
	}
	gotLEDs, err := ParseLED(append(b, b...))
	if err != nil || !cmp.Equal(gotLEDs, []LED{led, led}) {
		t.Errorf("ParseLED = %+v, %v", gotLEDs, err)
	}

	buz := Buzzer{Reader: 0, Tone: ToneDefault, OnTime: 2, OffTime: 2, Count: 3}
	if got, err := ParseBUZ(buz.Marshal()); err != nil || got != buz {
		t.Errorf("ParseBUZ(Marshal(%+v)) = %+v, %v", buz, got, err)
	}

	k := DefaultKey()
	if got, err := ParseKeySet(KeySetData(k)); err != nil || got != k {
		t.Errorf("ParseKeySet(KeySetData) failed: %v", err)
	}
	if r, err := ParseNAK([]byte{4}); err != nil || r != NAKSequence {
		t.Errorf("ParseNAK(04) = %v, %v", r, err)
	}
}

func TestMessagesRefuse(t *testing.T) {
	for name, parse := range map[string]func([]byte) error{
		"PDID 11":       func(b []byte) error { _, err := ParsePDID(b[:11]); return err },
		"PDCAP 4":       func(b []byte) error { _, err := ParsePDCAP(b[:4]); return err },
		"RAW bits":      func([]byte) error { _, err := ParseRAW([]byte{0, 0, 9, 0, 1}); return err },
		"RAW 0 bits":    func([]byte) error { _, err := ParseRAW([]byte{0, 0, 0, 0}); return err },
		"FMT length":    func([]byte) error { _, err := ParseFMT([]byte{0, 0, 5, 'A'}); return err },
		"FMT control":   func([]byte) error { _, err := ParseFMT([]byte{0, 0, 1, 0x07}); return err },
		"LED 13":        func(b []byte) error { _, err := ParseLED(b[:13]); return err },
		"LED empty":     func([]byte) error { _, err := ParseLED(nil); return err },
		"BUZ 4":         func(b []byte) error { _, err := ParseBUZ(b[:4]); return err },
		"KEYSET type":   func([]byte) error { _, err := ParseKeySet(append([]byte{2, 16}, make([]byte, 16)...)); return err },
		"NAK empty":     func([]byte) error { _, err := ParseNAK(nil); return err },
		"card text bad": func([]byte) error { _, _, err := cardText("hello!"); return err },
	} {
		if err := parse(make([]byte, 32)); !errors.Is(err, ErrData) {
			t.Errorf("%s: error %v, want ErrData", name, err)
		}
	}
}

func TestCardText(t *testing.T) {
	for _, tc := range []struct {
		in     string
		uid    []byte
		number string
	}{
		{"AB-0123-456789", nil, "AB-0123-456789"},
		{" ab 0123456789 ", nil, "ab 0123456789"},
		{"12345678", nil, "12345678"},
		{"04A1B2C3D4E5F6", []byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6}, ""},
	} {
		uid, number, err := cardText(tc.in)
		if err != nil || !bytes.Equal(uid, tc.uid) || number != tc.number {
			t.Errorf("cardText(%q) = %x, %q, %v; want %x, %q", tc.in, uid, number, err, tc.uid, tc.number)
		}
	}
}

// FuzzReplies feeds every data decoder the same bytes: none may panic, and
// whatever decodes re-encodes to the same bytes.
func FuzzReplies(f *testing.F) {
	f.Add(DefaultPDIDForTest().Marshal())
	f.Add(Capabilities{{9, 1, 1}}.Marshal())
	f.Add(RawCard{Bits: 56, Data: make([]byte, 7)}.Marshal())
	f.Add(FormattedCard{Text: "AB0123456789"}.Marshal())
	f.Add(LED{Timer: 5}.Marshal())
	f.Add(Buzzer{Tone: 2}.Marshal())
	f.Add(KeySetData(DefaultKey()))
	f.Fuzz(func(t *testing.T, b []byte) {
		if v, err := ParsePDID(b); err == nil && !bytes.Equal(v.Marshal(), b) {
			t.Errorf("PDID %x re-encodes to %x", b, v.Marshal())
		}
		if v, err := ParsePDCAP(b); err == nil && !bytes.Equal(v.Marshal(), b) {
			t.Errorf("PDCAP %x re-encodes to %x", b, v.Marshal())
		}
		if v, err := ParseRAW(b); err == nil && !bytes.Equal(v.Marshal(), b) {
			t.Errorf("RAW %x re-encodes to %x", b, v.Marshal())
		}
		if v, err := ParseFMT(b); err == nil && !bytes.Equal(v.Marshal(), b) {
			t.Errorf("FMT %x re-encodes to %x", b, v.Marshal())
		}
		if v, err := ParseLED(b); err == nil {
			var again []byte
			for _, l := range v {
				again = append(again, l.Marshal()...)
			}
			if !bytes.Equal(again, b) {
				t.Errorf("LED %x re-encodes to %x", b, again)
			}
		}
		if v, err := ParseBUZ(b); err == nil && !bytes.Equal(v.Marshal(), b) {
			t.Errorf("BUZ %x re-encodes to %x", b, v.Marshal())
		}
		if v, err := ParseKeySet(b); err == nil && !bytes.Equal(KeySetData(v), b) {
			t.Errorf("KEYSET %x re-encodes differently", b)
		}
		_, _ = ParseNAK(b)
		for _, code := range []byte{ReplyRAW, ReplyFMT, ReplyACK} {
			uid, number, err := cardData(Frame{Code: code, Data: b})
			if err == nil && len(uid) == 0 && number == "" {
				t.Errorf("cardData(%x, %x) = no card, no error", code, b)
			}
		}
	})
}

// FuzzOpen feeds arbitrary packets to a secure session: nothing may panic,
// and nothing but a packet sealed by the peer may open.
func FuzzOpen(f *testing.F) {
	key := DefaultKey()
	rndA, rndB := [8]byte{1}, [8]byte{2}
	pd := NewSession(key, rndA, rndB)
	_ = pd.Start(pd.InitialRMAC())
	for _, fr := range []Frame{
		{Addr: 1, Reply: true, Seq: 1, Code: ReplyACK},
		{Addr: 1, Reply: true, Seq: 2, Code: ReplyRAW, Data: RawCard{Bits: 32, Data: []byte{1, 2, 3, 4}}.Marshal()},
	} {
		b, _ := pd.Seal(fr, false)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, _, err := Parse(b)
		if err != nil {
			return
		}
		cp := NewSession(key, rndA, rndB)
		if err := cp.Start(cp.InitialRMAC()); err != nil {
			t.Fatal(err)
		}
		_ = cp.Open(&fr, false)
		_ = cp.Open(&fr, true)
	})
}
