package syncproto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// h decodes hex written with spaces between items, for readable test cases.
func h(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// cat concatenates byte slices.
func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// env wraps body in an envelope of the given type, as Encode would but
// without checking anything, so tests can send what Encode refuses.
func env(typ uint64, body []byte) []byte {
	if typ >= 24 {
		panic("env: use a hand-written envelope for wide types")
	}
	return cat([]byte{0xa2, 0x01, byte(typ), 0x02}, body)
}

// rawBody encodes v deterministically without validating it.
func rawBody(v any) []byte {
	b, err := encMode.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// textHead is the CBOR head of a text string of n bytes.
func textHead(n uint64) []byte {
	switch {
	case n < 24:
		return []byte{0x60 | byte(n)}
	case n < 1<<8:
		return []byte{0x78, byte(n)}
	case n < 1<<16:
		return []byte{0x79, byte(n >> 8), byte(n)}
	}
	return []byte{0x7b, byte(n >> 56), byte(n >> 48), byte(n >> 40), byte(n >> 32), byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
}

// nested returns n arrays, each holding the next, the innermost empty.
func nested(n int) []byte {
	b := bytes.Repeat([]byte{0x81}, n)
	b[n-1] = 0x80
	return b
}

func helloWith(f func(*Hello)) *Hello {
	m := *golden[0].msg.(*Hello)
	f(&m)
	return &m
}

// decodeCase is one input to Decode and the sentinel error it must wrap, or
// nil and the message it must return.
type decodeCase struct {
	name string
	in   []byte
	err  error
	want Message
}

// decodeCases are shared by TestDecodeStrict and the fuzzers' seed corpus.
func decodeCases() []decodeCase {
	bigText := strings.Repeat("a", MaxTextBytes)
	var manyTaps []Tap
	for i := range MaxBatchTaps {
		manyTaps = append(manyTaps, Tap{Seq: uint64(i + 1), CardID: "04A1B2C3D4E580"})
	}
	// A body map of exactly MaxMapPairs pairs: BatchID and AckedThrough,
	// then unknown keys.
	full := []byte{0xb8, MaxMapPairs, 0x01, 0x05, 0x02, 0x06}
	for k := 3; k <= MaxMapPairs; k++ {
		full = append(full, 0x18, byte(k+20), 0x00)
	}
	helloBody := rawBody(golden[0].msg)
	// The golden Hello with one more field, key 99, as a newer terminal
	// might send: {... 99: {1: "from the future", 2: [1, 2]}}.
	helloPlus := cat([]byte{helloBody[0] + 1}, helloBody[1:], h("18 63 a2 01 6f"), []byte("from the future"), h("02 82 01 02"))

	return []decodeCase{
		// Well-formed and valid.
		{"ack minimal", env(4, h("a2 01 05 02 07")), nil, &Ack{BatchID: 5, AckedThrough: 7}},
		{"ack empty body", env(4, h("a0")), nil, &Ack{}},
		{"hello with unknown field 99", env(1, helloPlus), nil, golden[0].msg},
		{"envelope with unknown key 3", h("a3 01 04 02 a1 01 05 03 f5"), nil, &Ack{BatchID: 5}},
		{"text key is an unknown field", env(4, h("a2 01 05 61 31 06")), nil, &Ack{BatchID: 5}},
		{"unsorted keys accepted", env(4, h("a2 02 07 01 05")), nil, &Ack{BatchID: 5, AckedThrough: 7}},
		{"non-shortest integer accepted", env(4, h("a1 01 1a 00 00 00 05")), nil, &Ack{BatchID: 5}},
		{"string of MaxTextBytes", env(6, cat(h("a2 01 01 02"), textHead(MaxTextBytes), []byte(bigText))), nil, &Error{Code: 1, Message: bigText}},
		{"MaxBatchTaps taps", env(3, rawBody(&Batch{BatchID: 1, Taps: manyTaps})), nil, &Batch{BatchID: 1, Taps: manyTaps}},
		{"map of MaxMapPairs pairs", env(4, full), nil, &Ack{BatchID: 5, AckedThrough: 6}},
		{"nesting MaxNesting deep", env(4, cat(h("a1 18 63"), nested(MaxNesting-2))), nil, &Ack{}},

		// Duplicate keys.
		{"duplicate key in envelope", h("a3 01 04 01 04 02 a0"), ErrMalformed, nil},
		{"duplicate body in envelope", h("a3 01 04 02 a0 02 a0"), ErrMalformed, nil},
		{"duplicate key in body", env(4, h("a2 01 05 01 06")), ErrMalformed, nil},
		{"duplicate key in tap", env(3, h("a2 01 01 02 81 a3 01 01 02 61 41 01 02")), ErrMalformed, nil},
		{"duplicate key, second non-shortest", env(4, h("a2 01 05 18 01 06")), ErrMalformed, nil},
		{"duplicate unknown key", env(4, h("a2 18 63 01 18 63 02")), ErrMalformed, nil},
		{"duplicate key inside unknown field", env(4, h("a1 18 63 a2 01 01 01 02")), ErrMalformed, nil},
		{"duplicate text key inside unknown field", env(4, h("a1 18 63 a2 61 61 01 61 61 02")), ErrMalformed, nil},
		{"map key neither integer nor string", env(4, h("a1 f5 01")), ErrMalformed, nil},
		{"map key is an array", env(4, h("a1 80 01")), ErrMalformed, nil},

		// Indefinite lengths, tags, stray bytes.
		{"indefinite envelope map", h("bf 01 04 02 a0 ff"), ErrMalformed, nil},
		{"indefinite body map", env(4, h("bf 01 05 ff")), ErrMalformed, nil},
		{"indefinite array", env(3, h("a2 01 01 02 9f ff")), ErrMalformed, nil},
		{"indefinite text string", env(6, h("a2 01 01 02 7f 61 61 ff")), ErrMalformed, nil},
		{"indefinite byte string", env(4, h("a1 18 63 5f 41 00 ff")), ErrMalformed, nil},
		{"lone break", h("ff"), ErrMalformed, nil},
		{"reserved additional information", h("1c"), ErrMalformed, nil},
		{"two-byte simple value below 32", env(4, h("a1 18 63 f8 10")), ErrMalformed, nil},
		{"tag on a field", env(4, h("a1 01 c1 1a 00 00 00 05")), ErrMalformed, nil},
		{"self-described CBOR tag", cat(h("d9 d9 f7"), env(4, h("a0"))), ErrMalformed, nil},
		{"trailing byte", cat(env(4, h("a0")), h("00")), ErrMalformed, nil},
		{"second envelope", cat(env(4, h("a0")), env(4, h("a0"))), ErrMalformed, nil},
		{"empty input", nil, ErrMalformed, nil},
		{"truncated integer", env(4, h("a1 01 1a 00 00")), ErrMalformed, nil},
		{"truncated string", env(6, h("a2 01 01 02 65 61 62")), ErrMalformed, nil},
		{"truncated map", env(4, h("a2 01 05")), ErrMalformed, nil},
		{"invalid UTF-8", env(6, h("a2 01 01 02 62 c3 28")), ErrMalformed, nil},
		{"invalid UTF-8 in unknown field", env(4, h("a1 18 63 61 ff")), ErrMalformed, nil},
		{"surrogate half in UTF-8", env(6, h("a2 01 01 02 63 ed a0 80")), ErrMalformed, nil},

		// Limits.
		{"string over MaxTextBytes", env(6, cat(h("a2 01 01 02"), textHead(MaxTextBytes+1), []byte(bigText+"a"))), ErrTooLarge, nil},
		{"string header over MaxTextBytes, no content", env(6, cat(h("a2 01 01 02"), textHead(MaxTextBytes+1))), ErrTooLarge, nil},
		{"string header of 2^64-1 bytes", env(6, cat(h("a2 01 01 02"), textHead(1<<64-1))), ErrTooLarge, nil},
		{"byte string over MaxTextBytes", env(4, h("a1 18 63 59 04 01")), ErrTooLarge, nil},
		{"array over MaxBatchTaps", env(3, h("a2 01 01 02 99 10 01")), ErrTooLarge, nil},
		{"array header of 2^64-1", env(3, h("a2 01 01 02 9b ff ff ff ff ff ff ff ff")), ErrTooLarge, nil},
		{"map over MaxMapPairs", env(4, h("b8 41")), ErrTooLarge, nil},
		{"nesting deeper than MaxNesting", env(4, cat(h("a1 18 63"), nested(MaxNesting-1))), ErrTooLarge, nil},
		{"message over MaxMessageBytes", make([]byte, MaxMessageBytes+1), ErrTooLarge, nil},
		{"terminal id over MaxIDBytes", env(1, rawBody(helloWith(func(m *Hello) { m.TerminalID = strings.Repeat("t", MaxIDBytes+1) }))), ErrTooLarge, nil},
		{"boot id over MaxIDBytes", env(1, rawBody(helloWith(func(m *Hello) { m.Clock.BootID = strings.Repeat("b", MaxIDBytes+1) }))), ErrTooLarge, nil},
		{"alarms over MaxAlarms", env(5, rawBody(&Status{Alarms: make([]string, MaxAlarms+1)})), ErrTooLarge, nil},

		// Envelope.
		{"unknown message type", env(23, h("a0")), ErrUnknownType, nil},
		{"message type 0", env(0, h("a0")), ErrUnknownType, nil},
		{"message type 256", h("a2 01 19 01 00 02 a0"), ErrUnknownType, nil},
		{"message type 2^64-1", h("a2 01 1b ff ff ff ff ff ff ff ff 02 a0"), ErrUnknownType, nil},
		{"negative message type", h("a2 01 20 02 a0"), ErrMalformed, nil},
		{"text message type", h("a2 01 61 31 02 a0"), ErrMalformed, nil},
		{"missing type", h("a1 02 a0"), ErrMalformed, nil},
		{"missing body", h("a1 01 04"), ErrMalformed, nil},
		{"null body", env(4, h("f6")), ErrMalformed, nil},
		{"integer body", env(4, h("01")), ErrMalformed, nil},
		{"array body", env(4, h("80")), ErrMalformed, nil},
		{"envelope is an array", h("82 04 a0"), ErrMalformed, nil},
		{"envelope is an integer", h("04"), ErrMalformed, nil},

		// Fields.
		{"field of the wrong type", env(4, h("a1 01 61 35")), ErrMalformed, nil},
		{"negative into unsigned field", env(4, h("a1 01 20")), ErrMalformed, nil},
		{"float into integer field", env(4, h("a1 01 f9 3c 00")), ErrMalformed, nil},
		{"uint32 field overflow", env(2, h("a3 01 1b 00 00 00 01 00 00 00 00 04 01 05 01")), ErrMalformed, nil},
		{"int64 field overflow", env(1, rawBody(map[int]any{1: 1, 2: "t", 3: uint64(1 << 63)})), ErrMalformed, nil},
		{"byte string into text field", env(6, h("a2 01 01 02 41 61")), ErrMalformed, nil},
		{"batch with no taps", env(3, h("a2 01 01 02 80")), ErrMalformed, nil},
		{"batch without taps field", env(3, h("a1 01 01")), ErrMalformed, nil},
		{"batch with null taps", env(3, h("a2 01 01 02 f6")), ErrMalformed, nil},
		{"batch out of order", env(3, rawBody(&Batch{Taps: []Tap{{Seq: 2, CardID: "c"}, {Seq: 1, CardID: "c"}}})), ErrMalformed, nil},
		{"tap with sequence 0", env(3, rawBody(&Batch{Taps: []Tap{{Seq: 0, CardID: "c"}}})), ErrMalformed, nil},
		{"hello with empty terminal id", env(1, rawBody(helloWith(func(m *Hello) { m.TerminalID = "" }))), ErrMalformed, nil},
		{"hello with store epoch 0", env(1, rawBody(helloWith(func(m *Hello) { m.StoreEpoch = 0 }))), ErrMalformed, nil},
		{"hello with negative store epoch", env(1, rawBody(helloWith(func(m *Hello) { m.StoreEpoch = -1 }))), ErrMalformed, nil},
		{"empty hello", env(1, h("a0")), ErrMalformed, nil},
		{"welcome with protocol version 0", env(2, h("a2 04 01 05 01")), ErrMalformed, nil},
		{"welcome with max batch taps 0", env(2, h("a2 01 01 05 01")), ErrMalformed, nil},
		{"welcome with max in flight 0", env(2, h("a2 01 01 04 01")), ErrMalformed, nil},
	}
}

func TestDecodeStrict(t *testing.T) {
	for _, tc := range decodeCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Decode(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Decode(%x) = %v, %v, want error %v", short(tc.in), got, err, tc.err)
				}
				if got != nil {
					t.Errorf("Decode(%x) = %v with error %v, want nil message", short(tc.in), got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode(%x) = %v, want %v", short(tc.in), err, tc.want)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Decode(%x) mismatch (-want +got):\n%s", short(tc.in), diff)
			}
		})
	}
}

// short abbreviates long inputs in failure messages.
func short(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

func TestDecodeTruncated(t *testing.T) {
	for _, g := range golden {
		data := readGolden(t, g.name)
		for n := range len(data) {
			if got, err := Decode(data[:n]); !errors.Is(err, ErrMalformed) {
				t.Errorf("Decode(%x) = %v, %v, want error %v", data[:n], got, err, ErrMalformed)
			}
		}
	}
}

// TestScanLimitsBeforeContent shows the limits are enforced from an item's
// head alone: the refused content is never read, let alone allocated, and a
// well-formed message is scanned without allocating at all.
func TestScanLimitsBeforeContent(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"text", env(6, cat(h("a2 01 01 02"), textHead(MaxTextBytes+1)))},
		{"huge text", env(6, cat(h("a2 01 01 02"), textHead(1<<62)))},
		{"bytes", env(4, h("a1 18 63 5a 7f ff ff ff"))},
		{"array", env(3, h("a2 01 01 02 9a 7f ff ff ff"))},
		{"map", env(4, h("ba 7f ff ff ff"))},
		{"nesting", env(4, cat(h("a1 18 63"), bytes.Repeat([]byte{0x81}, MaxNesting-1)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := scan(tc.in); !errors.Is(err, ErrTooLarge) {
				t.Errorf("scan(%x) = %v, want %v", tc.in, err, ErrTooLarge)
			}
			if got, err := Decode(tc.in); !errors.Is(err, ErrTooLarge) {
				t.Errorf("Decode(%x) = %v, %v, want %v", tc.in, got, err, ErrTooLarge)
			}
		})
	}
	batch := mustEncode(t, benchBatch(1024))
	if n := testing.AllocsPerRun(10, func() {
		if err := scan(batch); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("scan(1024-tap batch) made %v allocations, want 0", n)
	}
}

func mustEncode(tb testing.TB, m Message) []byte {
	tb.Helper()
	b, err := Encode(m)
	if err != nil {
		tb.Fatalf("Encode(%+v): %v", m, err)
	}
	return b
}

// roundTripMessages are the golden messages and variants with empty
// optional fields and extreme values.
func roundTripMessages() []Message {
	var ms []Message
	for _, g := range golden {
		ms = append(ms, g.msg)
	}
	return append(ms,
		&Hello{ProtocolVersion: 1, TerminalID: "t", StoreEpoch: 1},
		&Hello{ProtocolVersion: ^uint32(0), TerminalID: strings.Repeat("x", MaxIDBytes), StoreEpoch: 1<<63 - 1,
			AgentVersion: "åäö ✓", Clock: Clock{WallMicros: -1 << 63, BootID: "b", MonoNanos: 1<<63 - 1}, OutboxDepth: ^uint64(0)},
		&Welcome{ProtocolVersion: 1, MaxBatchTaps: 1, MaxInFlight: 1, ClockOffsetMicros: -3_600_000_000},
		&Batch{Taps: []Tap{{Seq: 1}}},
		&Batch{BatchID: ^uint64(0), Taps: []Tap{{Seq: MaxSeq, CardID: strings.Repeat("c", MaxIDBytes+1)}}},
		&Ack{},
		&Ack{BatchID: 9, AckedThrough: 8, Rejected: []Rejection{{Seq: 9, Code: RejectInvalid, Reason: "empty card id"}, {Seq: 10, Code: 999}}},
		&Status{},
		&Status{Alarms: make([]string, MaxAlarms)},
		&Error{},
		&Error{Code: 999, Message: strings.Repeat("é", MaxTextBytes/2)},
	)
}

func TestRoundTrip(t *testing.T) {
	for _, m := range roundTripMessages() {
		t.Run(m.MsgType().String(), func(t *testing.T) {
			b := mustEncode(t, m)
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%x) = %v, want %+v", short(b), err, m)
			}
			if diff := cmp.Diff(m, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Decode(Encode(m)) mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEncodeDeterministic(t *testing.T) {
	for _, m := range roundTripMessages() {
		t.Run(m.MsgType().String(), func(t *testing.T) {
			a, b := mustEncode(t, m), mustEncode(t, m)
			if !bytes.Equal(a, b) {
				t.Fatalf("Encode(%+v) gave two encodings:\n%x\n%x", m, a, b)
			}
			if err := checkCanonical(a); err != nil {
				t.Errorf("Encode(%+v) = %x: %v", m, short(a), err)
			}
		})
	}
}

// checkCanonical walks data and checks RFC 8949 core deterministic
// encoding: shortest heads and map keys in ascending bytewise order of their
// encodings.
func checkCanonical(data []byte) error {
	rest, err := canonicalItem(data)
	if err == nil && len(rest) != 0 {
		err = fmt.Errorf("%d trailing bytes", len(rest))
	}
	return err
}

func canonicalItem(data []byte) ([]byte, error) {
	if len(data) == 0 {
		return nil, io.ErrUnexpectedEOF
	}
	start := data
	major, arg, rest, err := head(data)
	if err != nil {
		return nil, err
	}
	if headLen := len(start) - len(rest); major != majorSimple && headLen != shortestHead(arg) {
		return nil, fmt.Errorf("head %x of %d bytes, shortest is %d", start[:headLen], headLen, shortestHead(arg))
	}
	switch major {
	case majorBytes, majorText:
		return rest[arg:], nil
	case majorArray:
		for range arg {
			if rest, err = canonicalItem(rest); err != nil {
				return nil, err
			}
		}
	case majorMap:
		var prev []byte
		for range arg {
			k := rest
			if rest, err = canonicalItem(rest); err != nil {
				return nil, err
			}
			key := k[:len(k)-len(rest)]
			if prev != nil && bytes.Compare(prev, key) >= 0 {
				return nil, fmt.Errorf("map key %x after %x", key, prev)
			}
			prev = key
			if rest, err = canonicalItem(rest); err != nil {
				return nil, err
			}
		}
	}
	return rest, nil
}

func shortestHead(arg uint64) int {
	switch {
	case arg < 24:
		return 1
	case arg < 1<<8:
		return 2
	case arg < 1<<16:
		return 3
	case arg < 1<<32:
		return 5
	}
	return 9
}

func TestEncodeRefuses(t *testing.T) {
	tooManyTaps := make([]Tap, MaxBatchTaps+1)
	for i := range tooManyTaps {
		tooManyTaps[i].Seq = uint64(i + 1)
	}
	for _, tc := range []struct {
		name string
		m    Message
		err  error
	}{
		{"nil *Ack", (*Ack)(nil), nil},
		{"nil *Hello", (*Hello)(nil), nil},
		{"invalid hello", &Hello{ProtocolVersion: 1, StoreEpoch: 1}, ErrMalformed},
		{"empty batch", &Batch{}, ErrMalformed},
		{"too many taps", &Batch{Taps: tooManyTaps}, ErrTooLarge},
		{"welcome without limits", &Welcome{ProtocolVersion: 1}, ErrMalformed},
		{"message over MaxTextBytes", &Error{Message: strings.Repeat("x", MaxTextBytes+1)}, ErrTooLarge},
		{"card id over MaxTextBytes", &Batch{Taps: []Tap{{Seq: 1, CardID: strings.Repeat("x", MaxTextBytes+1)}}}, ErrTooLarge},
		{"too many rejections", &Ack{Rejected: make([]Rejection, MaxBatchTaps+1)}, ErrTooLarge},
		{"invalid UTF-8", &Error{Message: "\xff"}, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.m)
			if err == nil || tc.err != nil && !errors.Is(err, tc.err) {
				t.Errorf("Encode(%+v) = %x, %v, want error %v", tc.m, short(b), err, tc.err)
			}
		})
	}
	if b, err := Encode(nil); err == nil {
		t.Errorf("Encode(nil) = %x, want error", b)
	}
}

func TestErrorCodeFor(t *testing.T) {
	decodeErr := func(in []byte) error {
		_, err := Decode(in)
		return err
	}
	_, versionErr := Negotiate(0)
	for _, tc := range []struct {
		err  error
		want ErrorCode
	}{
		{ErrMalformed, ErrorCodeMalformed},
		{ErrTooLarge, ErrorCodeTooLarge},
		{ErrUnknownType, ErrorCodeUnknownType},
		{ErrVersion, ErrorCodeVersion},
		{fmt.Errorf("outer: %w", ErrTooLarge), ErrorCodeTooLarge},
		{decodeErr(h("a3 01 04 01 04 02 a0")), ErrorCodeMalformed},
		{decodeErr(env(1, h("a0"))), ErrorCodeMalformed},
		{decodeErr(env(4, h("b8 41"))), ErrorCodeTooLarge},
		{decodeErr(env(23, h("a0"))), ErrorCodeUnknownType},
		{versionErr, ErrorCodeVersion},
		{io.ErrUnexpectedEOF, ErrorCodeInternal},
		{errors.New("database is down"), ErrorCodeInternal},
	} {
		if got := ErrorCodeFor(tc.err); got != tc.want {
			t.Errorf("ErrorCodeFor(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got  fmt.Stringer
		want string
	}{
		{TypeBatch, "Batch"},
		{MsgType(200), "MsgType(200)"},
		{RejectConflict, "conflict"},
		{RejectCode(9), "RejectCode(9)"},
		{ErrorCodeTooLarge, "too_large"},
		{ErrorCode(99), "ErrorCode(99)"},
	} {
		if s := tc.got.String(); s != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.got, s, tc.want)
		}
	}
	e := &Error{Code: ErrorCodeShutdown, Message: "restarting"}
	if got, want := e.Error(), "syncproto: peer error shutdown: restarting"; got != want {
		t.Errorf("(%+v).Error() = %q, want %q", e, got, want)
	}
}
