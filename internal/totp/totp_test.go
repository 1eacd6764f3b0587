package totp

import (
	"testing"
	"time"
)

// TestCode checks Code against RFC 6238's SHA-1 test vectors (appendix B),
// whose 8-digit codes end in the 6 digits an app shows.
func TestCode(t *testing.T) {
	secret := Encoding.EncodeToString([]byte("12345678901234567890"))
	for _, tc := range []struct {
		unix  int64
		eight string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		at := time.Unix(tc.unix, 0)
		got, err := Code(secret, at)
		if err != nil || got != tc.eight[2:] {
			t.Errorf("Code(T=%d) = %q, %v; want %q", tc.unix, got, err, tc.eight[2:])
		}
		if got := HOTP([]byte("12345678901234567890"), uint64(Counter(at)), 8); got != tc.eight {
			t.Errorf("HOTP(T=%d, 8 digits) = %s, want %s", tc.unix, got, tc.eight)
		}
	}
	if _, err := Code("not base32!", time.Now()); err == nil {
		t.Errorf("Code(bad secret) = nil error, want one")
	}
}
