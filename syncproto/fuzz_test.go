package syncproto

import (
	"bytes"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// addSeeds seeds a fuzzer with the golden messages and the strict-decoding
// table cases (the small ones: the fuzzer's inputs are kept short).
func addSeeds(f *testing.F) {
	for _, g := range golden {
		f.Add(readGolden(f, g.name))
	}
	for _, tc := range decodeCases() {
		if len(tc.in) <= 4096 {
			f.Add(tc.in)
		}
	}
}

// FuzzDecode checks that Decode never panics, fails only with one of its
// sentinel errors, and that whatever it accepts survives Encode and Decode
// unchanged, with Encode at a fixed point.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if m != nil {
				t.Fatalf("Decode(%x) = %v with error %v, want nil message", data, m, err)
			}
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnknownType) {
				t.Fatalf("Decode(%x) = %v, want an error wrapping a syncproto sentinel", data, err)
			}
			return
		}
		enc, err := Encode(m)
		if err != nil {
			t.Fatalf("Decode(%x) = %+v, which Encode refuses: %v", data, m, err)
		}
		m2, err := Decode(enc)
		if err != nil {
			t.Fatalf("Decode(%x) = %v, want %+v (re-encoded from %x)", enc, err, m, data)
		}
		// Unknown fields are dropped and an empty list is omitted, so only
		// the meaning must survive, not the bytes.
		if diff := cmp.Diff(m, m2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Decode(Encode(Decode(%x))) mismatch (-first +second):\n%s", data, diff)
		}
		enc2, err := Encode(m2)
		if err != nil || !bytes.Equal(enc, enc2) {
			t.Fatalf("Encode(%+v) = %x, %v, want %x", m2, enc2, err, enc)
		}
		if err := checkCanonical(enc); err != nil {
			t.Fatalf("Encode(%+v) = %x, not deterministic: %v", m, enc, err)
		}
	})
}

// FuzzScan checks scan against the CBOR library: what scan accepts must be
// well-formed CBOR under the same options, and must never panic.
func FuzzScan(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		err := scan(data)
		if err == nil {
			if werr := decMode.Wellformed(data); werr != nil {
				t.Fatalf("scan(%x) = nil, but the CBOR library says %v", data, werr)
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("scan(%x) = %v, want an error wrapping ErrMalformed or ErrTooLarge", data, err)
		}
	})
}
