package pn532

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// goldenFrames are byte sequences from UM0701 §6.2 and the PN532's own
// answers as captured by libnfc users: they pin the encoding of both
// checksums.
var goldenFrames = []struct {
	name string
	wire string
	f    Frame
}{
	{"GetFirmwareVersion", "00 00 FF 02 FE D4 02 2A 00", Frame{Kind: KindInfo, TFI: TFIHost, Data: []byte{0x02}}},
	{"GetFirmwareVersion response v1.6", "00 00 FF 06 FA D5 03 32 01 06 07 E8 00",
		Frame{Kind: KindInfo, TFI: TFIPN532, Data: []byte{0x03, 0x32, 0x01, 0x06, 0x07}}},
	{"SAMConfiguration normal", "00 00 FF 03 FD D4 14 01 17 00", Frame{Kind: KindInfo, TFI: TFIHost, Data: []byte{0x14, 0x01}}},
	{"SAMConfiguration normal, timeout, IRQ", "00 00 FF 05 FB D4 14 01 14 01 02 00",
		Frame{Kind: KindInfo, TFI: TFIHost, Data: []byte{0x14, 0x01, 0x14, 0x01}}},
	{"SAMConfiguration response", "00 00 FF 02 FE D5 15 16 00", Frame{Kind: KindInfo, TFI: TFIPN532, Data: []byte{0x15}}},
	{"InListPassiveTarget 1 type A", "00 00 FF 04 FC D4 4A 01 00 E1 00",
		Frame{Kind: KindInfo, TFI: TFIHost, Data: []byte{0x4A, 0x01, 0x00}}},
	{"InListPassiveTarget no card", "00 00 FF 03 FD D5 4B 00 E0 00", Frame{Kind: KindInfo, TFI: TFIPN532, Data: []byte{0x4B, 0x00}}},
	{"ACK", "00 00 FF 00 FF 00", Frame{Kind: KindACK}},
	{"NACK", "00 00 FF FF 00 00", Frame{Kind: KindNACK}},
	{"error", "00 00 FF 01 FF 7F 81 00", Frame{Kind: KindError}},
}

func TestGoldenFrames(t *testing.T) {
	for _, tc := range goldenFrames {
		t.Run(tc.name, func(t *testing.T) {
			wire := unhex(t, tc.wire)
			got, err := tc.f.MarshalBinary()
			if err != nil || !bytes.Equal(got, wire) {
				t.Errorf("Encode(%v) = % X, %v, want % X", tc.f, got, err, wire)
			}
			var p Parser
			p.Write(wire)
			f, err := p.Next()
			if err != nil {
				t.Fatalf("Next(% X) error %v", wire, err)
			}
			if diff := cmp.Diff(normal(tc.f), normal(f)); diff != "" {
				t.Errorf("Next(% X) (-want +got):\n%s", wire, diff)
			}
			if _, err := p.Next(); !errors.Is(err, ErrIncomplete) {
				t.Errorf("Next after the frame = %v, want ErrIncomplete", err)
			}
		})
	}
}

// normal maps an empty Data to nil for comparison.
func normal(f Frame) Frame {
	if len(f.Data) == 0 {
		f.Data = nil
	}
	return f
}

func TestRoundTripSizes(t *testing.T) {
	for _, n := range []int{0, 1, 2, 253, 254, 255, 256, 264} {
		data := make([]byte, n)
		for i := range data {
			data[i] = byte(i * 7)
		}
		for _, tfi := range []byte{TFIHost, TFIPN532} {
			f := Frame{Kind: KindInfo, TFI: tfi, Data: data}
			wire, err := f.MarshalBinary()
			if err != nil {
				t.Fatalf("Encode(%d bytes) error %v", n, err)
			}
			extended := 1+n > MaxNormalData
			if got := wire[3] == 0xFF && wire[4] == 0xFF; got != extended {
				t.Errorf("Encode(%d bytes) extended = %v, want %v", n, got, extended)
			}
			var p Parser
			p.Write(wire)
			got, err := p.Next()
			if err != nil || got.TFI != tfi || !bytes.Equal(got.Data, data) {
				t.Errorf("Next(Encode(%d bytes)) = %v, %v", n, got, err)
			}
		}
	}
	if _, err := (Frame{Kind: KindInfo, TFI: TFIHost, Data: make([]byte, MaxFrameData)}).MarshalBinary(); !errors.Is(err, ErrFrameLength) {
		t.Errorf("Encode(%d bytes) error %v, want ErrFrameLength", MaxFrameData, err)
	}
}

func TestExtendedGolden(t *testing.T) {
	// 00 00 FF FF FF LENM LENL LCS TFI PD... DCS 00 with 300 bytes of TFI+PD
	// would exceed the PN532's buffer; 256 (0x0100) is the smallest that
	// needs the extended form.
	data := make([]byte, 255)
	wire, err := Frame{Kind: KindInfo, TFI: TFIPN532, Data: data}.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "00 00 FF FF FF 01 00 FF D5"); !bytes.Equal(wire[:9], want) {
		t.Errorf("extended header = % X, want % X", wire[:9], want)
	}
	if dcs := wire[len(wire)-2]; dcs != 0x2B {
		t.Errorf("extended DCS = %02X, want 2B", dcs)
	}
}

func TestParserErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		wire string
		want error
	}{
		{"bad LCS", "00 00 FF 02 FD D4 02 2A 00", ErrLengthChecksum},
		{"bad DCS", "00 00 FF 02 FE D4 02 2B 00", ErrDataChecksum},
		{"bad extended LCS", "00 00 FF FF FF 01 00 FE D5", ErrLengthChecksum},
		{"extended too long", "00 00 FF FF FF 01 0A F5", ErrFrameLength},
		{"extended zero", "00 00 FF FF FF 00 00 00", ErrFrameLength},
		{"LEN 0 LCS 0", "00 00 FF 00 00 00", ErrFrameLength},
		{"unknown TFI", "00 00 FF 02 FE D6 02 28 00", ErrFrameTFI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Parser
			p.Write(unhex(t, tc.wire))
			if _, err := p.Next(); !errors.Is(err, tc.want) {
				t.Errorf("Next(%s) error %v, want %v", tc.wire, err, tc.want)
			}
			if got := IsChecksumError(tc.want); got != (tc.want == ErrLengthChecksum || tc.want == ErrDataChecksum) {
				t.Errorf("IsChecksumError(%v) = %v", tc.want, got)
			}
		})
	}
}

// parseAll feeds wire in chunks of size chunk and returns every frame and
// error until the parser wants more.
func parseAll(p *Parser, wire []byte, chunk int) (frames []Frame, errs []error) {
	for len(wire) > 0 {
		n := min(chunk, len(wire))
		p.Write(wire[:n])
		wire = wire[n:]
		for {
			f, err := p.Next()
			if errors.Is(err, ErrIncomplete) {
				break
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			frames = append(frames, f)
		}
	}
	return frames, errs
}

func TestResync(t *testing.T) {
	ack := "00 00 FF 00 FF 00"
	fw := "00 00 FF 06 FA D5 03 32 01 06 07 E8 00"
	wire := unhex(t, strings.Join([]string{
		"55 55 00 00 00 13 37 FF 00 FF", // wake-up bytes and noise with a lone start code
		ack,
		"00 00 FF 06 FA D5 03 32 01 06 07 E9 00", // bad DCS
		"00 FF 10 F0",                            // a header claiming 16 bytes...
		fw,                                       // ...swallows this frame, which is found again
		"DE AD 00 00 FF 02",                      // truncated
		ack,
	}, " "))
	for _, chunk := range []int{1, 3, 7, len(wire)} {
		var p Parser
		frames, errs := parseAll(&p, wire, chunk)
		// The truncated frame's header "00 FF 02 00" has a bad LCS; the
		// final ACK is found after it.
		var kinds []FrameKind
		for _, f := range frames {
			kinds = append(kinds, f.Kind)
		}
		want := []FrameKind{KindACK, KindInfo, KindACK}
		if diff := cmp.Diff(want, kinds); diff != "" {
			t.Errorf("chunk %d: frames (-want +got):\n%s", chunk, diff)
		}
		var checksum int
		for _, err := range errs {
			if IsChecksumError(err) {
				checksum++
			}
		}
		if checksum < 2 {
			t.Errorf("chunk %d: %d checksum errors (%v), want at least 2", chunk, checksum, errs)
		}
		if p.Buffered() > MaxFrameLen {
			t.Errorf("chunk %d: %d bytes buffered, more than MaxFrameLen", chunk, p.Buffered())
		}
	}
}

func TestAbandon(t *testing.T) {
	var p Parser
	// A header that claims 0x80 bytes, then an ACK: the ACK waits inside
	// the long frame until the line goes quiet and the frame is abandoned.
	p.Write(unhex(t, "00 00 FF 80 80 D5 01 00 00 FF 00 FF 00"))
	if _, err := p.Next(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Next = %v, want ErrIncomplete", err)
	}
	p.Abandon()
	f, err := p.Next()
	if err != nil || f.Kind != KindACK {
		t.Errorf("Next after Abandon = %v, %v, want ack", f, err)
	}
}

func FuzzParser(f *testing.F) {
	for _, g := range goldenFrames {
		f.Add(unhex(f, g.wire), uint8(1))
	}
	f.Add(unhex(f, "00 00 FF FF FF 01 00 FF D5 00"), uint8(5))
	f.Add(unhex(f, "55 55 00 00 00 FF 80 80 00 00 FF 00 FF 00"), uint8(2))
	f.Fuzz(func(t *testing.T, wire []byte, chunk uint8) {
		var p Parser
		frames, _ := parseAll(&p, wire, int(chunk)+1)
		if p.Buffered() > MaxFrameLen+int(chunk)+1 {
			t.Fatalf("%d bytes buffered, bound %d", p.Buffered(), MaxFrameLen+int(chunk)+1)
		}
		for _, fr := range frames {
			if fr.Kind == KindInfo && len(fr.Data)+1 > MaxFrameData {
				t.Fatalf("frame of %d bytes passed the limit", len(fr.Data)+1)
			}
			// Every frame found re-encodes to something that parses
			// back to the same frame.
			wire2, err := fr.MarshalBinary()
			if err != nil {
				t.Fatalf("Encode(%v) error %v", fr, err)
			}
			var q Parser
			q.Write(wire2)
			got, err := q.Next()
			if err != nil || !cmp.Equal(normal(got), normal(fr)) {
				t.Fatalf("Next(Encode(%v)) = %v, %v", fr, got, err)
			}
		}
		p.Abandon()
		for {
			if _, err := p.Next(); errors.Is(err, ErrIncomplete) {
				break
			}
		}
	})
}

func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(byte(0x02), []byte{})
	f.Add(byte(0x4B), []byte{0x01, 0x01, 0x00, 0x44, 0x20, 0x07, 1, 2, 3, 4, 5, 6, 7})
	f.Fuzz(func(t *testing.T, code byte, params []byte) {
		fr := Frame{Kind: KindInfo, TFI: TFIPN532, Data: append([]byte{code}, params...)}
		wire, err := fr.MarshalBinary()
		if len(fr.Data)+1 > MaxFrameData {
			if err == nil {
				t.Fatalf("Encode(%d bytes) succeeded", len(fr.Data)+1)
			}
			return
		}
		if err != nil {
			t.Fatalf("Encode error %v", err)
		}
		// With noise in front and a second frame behind.
		var p Parser
		p.Write(append(append([]byte{0x13, 0x00, 0xFF, 0x37}, wire...), ackFrame...))
		got, err := p.Next()
		for IsChecksumError(err) || errors.Is(err, ErrFrameLength) || errors.Is(err, ErrFrameTFI) {
			got, err = p.Next()
		}
		if err != nil || !cmp.Equal(got, fr) {
			t.Fatalf("Next(% X) = %v, %v, want %v", wire, got, err, fr)
		}
		if next, err := p.Next(); err != nil || next.Kind != KindACK {
			t.Fatalf("second frame = %v, %v, want ack", next, err)
		}
	})
}
