package osdp

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestCRC16CheckValue(t *testing.T) {
	// CRC-16/AUG-CCITT: polynomial 0x1021, initial value 0x1D0F.
	if got := CRC16([]byte("123456789")); got != 0xE5CC {
		t.Errorf("CRC16(%q) = %#04x, want 0xe5cc", "123456789", got)
	}
}

// TestAnnexEChecks checks the CRC and checksum examples of the OSDP
// specification's Annex E (as quoted by libosdp's
// tests/unit-tests/test-sc-sia-vectors.c).
func TestAnnexEChecks(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want uint16
	}{
		{"53 7F 0D 00 04 6E 00 80 25 00 00", 0x386E},
		{"53 00 09 00 04 61 00", 0x66C0},
	} {
		if got := CRC16(unhex(t, tc.msg)); got != tc.want {
			t.Errorf("CRC16(%s) = %#04x, want %#04x", tc.msg, got, tc.want)
		}
	}
	for _, tc := range []struct {
		msg  string
		want byte
	}{
		{"53 7F 0C 00 00 6E 00 80 25 00 00", 0x0F},
		{"53 00 08 00 00 61 00", 0x44},
	} {
		if got := Checksum(unhex(t, tc.msg)); got != tc.want {
			t.Errorf("Checksum(%s) = %#02x, want %#02x", tc.msg, got, tc.want)
		}
	}
}

var frameOpts = cmp.Options{cmpopts.IgnoreFields(Frame{}, "Raw", "At"), cmpopts.EquateEmpty()}

func TestFrameRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Frame
		wire string // golden bytes, when known
	}{
		{"osdp_ID, Annex E", Frame{Addr: 0, Seq: 0, Code: CmdID, Data: []byte{0}}, "53 00 09 00 04 61 00 C0 66"},
		{"osdp_ID with checksum, Annex E", Frame{Addr: 0, Seq: 0, Checksum: true, Code: CmdID, Data: []byte{0}}, "53 00 08 00 00 61 00 44"},
		{"poll", Frame{Addr: 1, Seq: 2, Code: CmdPOLL}, ""},
		{"reply", Frame{Addr: 0x7E, Reply: true, Seq: 3, Code: ReplyRAW, Data: RawCard{Bits: 32, Data: []byte{1, 2, 3, 4}}.Marshal()}, ""},
		{"challenge", Frame{Addr: 5, Seq: 1, SCB: []byte{SCS11, 1}, Code: CmdCHLNG, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}, ""},
		{"with MAC", Frame{Addr: 5, Seq: 1, SCB: []byte{SCS15}, Code: CmdPOLL, MAC: []byte{9, 8, 7, 6}}, ""},
		{"broadcast", Frame{Addr: BroadcastAddr, Seq: 0, Code: CmdID, Data: []byte{0}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.f.Append(nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wire != "" && !bytes.Equal(b, unhex(t, tc.wire)) {
				t.Errorf("Append(%+v) = % X, want %s", tc.f, b, tc.wire)
			}
			if len(b) != tc.f.Len() {
				t.Errorf("Len() = %d, encoded %d bytes", tc.f.Len(), len(b))
			}
			got, n, err := Parse(b)
			if err != nil || n != len(b) {
				t.Fatalf("Parse(%x) = %d, %v", b, n, err)
			}
			if diff := cmp.Diff(tc.f, got, frameOpts); diff != "" {
				t.Errorf("Parse(%x) (-want +got):\n%s", b, diff)
			}
		})
	}
}

func TestAppendRefuses(t *testing.T) {
	for _, f := range []Frame{
		{Addr: 0x80, Code: CmdPOLL},
		{Seq: 4, Code: CmdPOLL},
		{SCB: []byte{SCS15}, Code: CmdPOLL},      // MAC missing
		{Code: CmdPOLL, MAC: []byte{1, 2, 3, 4}}, // MAC without a security block
		{Code: CmdMFG, Data: make([]byte, MaxPacket)},
	} {
		if b, err := f.Append(nil); err == nil {
			t.Errorf("Append(%+v) = %x, want an error", f, b)
		}
	}
}

func TestParseErrors(t *testing.T) {
	good, _ := (&Frame{Addr: 1, Reply: true, Code: ReplyACK}).Append(nil)
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	for _, tc := range []struct {
		name string
		in   []byte
		n    int
		want error
	}{
		{"empty", nil, 0, ErrShort},
		{"header only", good[:4], 0, ErrShort},
		{"partial", good[:len(good)-1], 0, ErrShort},
		{"noise", []byte{1, 2, 3, SOM, 1}, 3, ErrNoSOM},
		{"too long", []byte{SOM, 1, 0xFF, 0xFF, 4, 0}, 1, ErrLength},
		{"too short", []byte{SOM, 1, 3, 0, 4, 0}, 1, ErrLength},
		{"bad control", []byte{SOM, 1, 8, 0, 0x44, 0x60, 0, 0}, 1, ErrLength},
		{"bad CRC", badCRC, 1, ErrChecksum},
	} {
		_, n, err := Parse(tc.in)
		if !errors.Is(err, tc.want) || n != tc.n {
			t.Errorf("%s: Parse(%x) = %d, %v; want %d, %v", tc.name, tc.in, n, err, tc.n, tc.want)
		}
	}
	// A security block longer than the packet: good CRC, bad structure.
	b := []byte{SOM, 0x81, 0, 0, ctrlCRC | ctrlSCB, 9, SCS16, ReplyACK}
	b[2] = byte(len(b) + 2)
	b = appendCheck(b, 0, false)
	if _, n, err := Parse(b); !errors.Is(err, ErrFormat) || n != len(b) {
		t.Errorf("Parse(%x) = %d, %v; want %d, ErrFormat", b, n, err, len(b))
	}
}

// TestFrameReaderResync feeds good packets mixed with noise, a packet with
// a bad CRC, a truncated packet and a stray SOM, one byte at a time, and
// expects exactly the good packets back.
func TestFrameReaderResync(t *testing.T) {
	var stream []byte
	var want []Frame
	add := func(f Frame) {
		b, err := f.Append(nil)
		if err != nil {
			t.Fatal(err)
		}
		stream = append(stream, b...)
		want = append(want, f)
	}
	bad := func(f Frame, mangle func([]byte) []byte) {
		b, _ := f.Append(nil)
		stream = append(stream, mangle(b)...)
	}
	stream = append(stream, 0xFF, 0x00, 0x12)
	add(Frame{Addr: 1, Reply: true, Seq: 1, Code: ReplyACK})
	stream = append(stream, SOM, SOM, 0x99, SOM, 0x01) // stray SOMs with junk lengths
	add(Frame{Addr: 1, Reply: true, Seq: 2, Code: ReplyPDID, Data: DefaultPDIDForTest().Marshal()})
	bad(Frame{Addr: 1, Reply: true, Seq: 3, Code: ReplyACK}, func(b []byte) []byte { b[len(b)-2] ^= 0xFF; return b })
	add(Frame{Addr: 1, Reply: true, Seq: 3, Code: ReplyACK})
	bad(Frame{Addr: 1, Reply: true, Seq: 1, Code: ReplyRAW, Data: []byte{0, 0, 8, 0, SOM}}, func(b []byte) []byte { return b[:7] })
	add(Frame{Addr: 1, Reply: true, Seq: 1, Code: ReplyRAW, Data: []byte{0, 0, 8, 0, SOM}})
	add(Frame{Addr: 2, Reply: true, Seq: 2, Checksum: true, Code: ReplyACK})

	fr := NewFrameReader(&oneByteReader{r: bytes.NewReader(stream)})
	var got []Frame
	for {
		f, err := fr.ReadFrame()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrChecksum) || errors.Is(err, ErrFormat) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, f)
	}
	if diff := cmp.Diff(want, got, frameOpts); diff != "" {
		t.Errorf("frames (-want +got):\n%s", diff)
	}
	if fr.BadChecks < 1 || fr.Skipped == 0 {
		t.Errorf("BadChecks = %d, Skipped = %d; want both counted", fr.BadChecks, fr.Skipped)
	}
}

// TestFrameReaderGap: a stray SOM with a large length must not swallow the
// packets arriving after a pause.
func TestFrameReaderGap(t *testing.T) {
	good, _ := (&Frame{Addr: 1, Reply: true, Code: ReplyACK}).Append(nil)
	chunks := [][]byte{{SOM, 0x81, 0x00, 0x01, 0x04}, good}
	now := time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)
	fr := NewFrameReader(&chunkReader{chunks: chunks})
	fr.Gap = 50 * time.Millisecond
	fr.Now = func() time.Time {
		now = now.Add(time.Second) // every read comes after a long pause
		return now
	}
	f, err := fr.ReadFrame()
	if err != nil || f.Code != ReplyACK {
		t.Fatalf("ReadFrame = %+v, %v; want the ACK", f, err)
	}
}

// TestFrameReaderLookahead: a stray SOM with a large length is followed at
// once (no pause) by a good packet, which is not swallowed.
func TestFrameReaderLookahead(t *testing.T) {
	good, _ := (&Frame{Addr: 1, Reply: true, Code: ReplyACK}).Append(nil)
	in := append([]byte{SOM, 0x81, 0x00, 0x01, 0x04, 0x12}, good...)
	f, err := NewFrameReader(bytes.NewReader(in)).ReadFrame()
	if err != nil || f.Code != ReplyACK {
		t.Fatalf("ReadFrame = %+v, %v; want the ACK", f, err)
	}
}

func DefaultPDIDForTest() PDID {
	return PDID{VendorCode: [3]byte{0x0A, 0x0B, 0x0C}, Model: 2, Version: 1, Serial: 12345678, Firmware: [3]byte{1, 2, 3}}
}

type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	return o.r.Read(b[:1])
}

type chunkReader struct{ chunks [][]byte }

func (c *chunkReader) Read(b []byte) (int, error) {
	if len(c.chunks) == 0 {
		return 0, io.EOF
	}
	n := copy(b, c.chunks[0])
	c.chunks[0] = c.chunks[0][n:]
	if len(c.chunks[0]) == 0 {
		c.chunks = c.chunks[1:]
	}
	return n, nil
}

func FuzzParse(f *testing.F) {
	for _, fr := range []Frame{
		{Addr: 0, Code: CmdID, Data: []byte{0}},
		{Addr: 1, Reply: true, Seq: 1, Code: ReplyRAW, Data: RawCard{Bits: 56, Data: make([]byte, 7)}.Marshal()},
		{Addr: 1, Seq: 2, SCB: []byte{SCS17}, Code: CmdLED, Data: make([]byte, 16), MAC: []byte{1, 2, 3, 4}},
		{Addr: 1, Seq: 3, Checksum: true, SCB: []byte{SCS11, 0}, Code: CmdCHLNG, Data: make([]byte, 8)},
	} {
		b, _ := fr.Append(nil)
		f.Add(b)
		f.Add(append([]byte{0xFF, SOM}, b...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, n, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrShort) && (n < 1 || n > len(b)) {
				t.Fatalf("Parse(%x) = n %d with %v: must drop at least one byte", b, n, err)
			}
			return
		}
		if n < MinPacket || n > MaxPacket || n > len(b) {
			t.Fatalf("Parse(%x) consumed %d", b, n)
		}
		// What parses re-encodes to the same bytes.
		again, err := fr.Append(nil)
		if err != nil {
			t.Fatalf("Append(Parse(%x)) = %v", b, err)
		}
		if b[4]&0x80 == 0 && !bytes.Equal(again, b[:n]) {
			// (Control bit 7 is ignored, so such packets re-encode without it.)
			t.Fatalf("Append(Parse(%x)) = %x", b[:n], again)
		}
		if fr2, _, err := Parse(again); err != nil || !cmp.Equal(fr, fr2, frameOpts) {
			t.Fatalf("Parse(Append(Parse(%x))) = %+v, %v; want %+v", b[:n], fr2, err, fr)
		}
		// And the stream reader finds the same packet.
		if got, err := NewFrameReader(bytes.NewReader(b)).ReadFrame(); err != nil || !bytes.Equal(got.Raw, b[:n]) {
			t.Fatalf("ReadFrame(%x) = %x, %v", b, got.Raw, err)
		}
	})
}

// FuzzFrameReader feeds a stream in chunks of a fuzzed size: the reader
// must end, and every packet it returns must be a good one.
func FuzzFrameReader(f *testing.F) {
	good, _ := (&Frame{Addr: 1, Reply: true, Code: ReplyACK}).Append(nil)
	f.Add(append([]byte{SOM, 0x81, 0x00, 0x01, 0x04, 0x12}, good...), byte(3))
	f.Add(append(append([]byte{0xFF}, good...), good[:5]...), byte(1))
	f.Fuzz(func(t *testing.T, stream []byte, chunk byte) {
		var chunks [][]byte
		size := int(chunk%32) + 1
		for len(stream) > 0 {
			n := min(size, len(stream))
			chunks = append(chunks, stream[:n])
			stream = stream[n:]
		}
		fr := NewFrameReader(&chunkReader{chunks: chunks})
		for range 10000 {
			f, err := fr.ReadFrame()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				continue
			}
			if g, n, err := Parse(f.Raw); err != nil || n != len(f.Raw) || !cmp.Equal(f, g, frameOpts) {
				t.Fatalf("ReadFrame returned %x, which does not parse back: %v", f.Raw, err)
			}
		}
		t.Fatal("ReadFrame did not reach the end of the stream")
	})
}
