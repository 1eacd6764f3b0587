package account

import (
	"net/url"
	"testing"
	"time"
)

// rfcSecret is the SHA-1 seed of RFC 6238 appendix B.
var rfcSecret = []byte("12345678901234567890")

func TestTOTPVectors(t *testing.T) {
	// RFC 6238 appendix B, SHA-1 rows; the 6-digit code is the last six
	// digits of the 8-digit one (both are the same number modulo 10^d).
	for _, tc := range []struct {
		unix  int64
		eight string
		six   string
	}{
		{59, "94287082", "287082"},
		{1111111109, "07081804", "081804"},
		{1111111111, "14050471", "050471"},
		{1234567890, "89005924", "005924"},
		{2000000000, "69279037", "279037"},
		{20000000000, "65353130", "353130"},
	} {
		step := totpStep(time.Unix(tc.unix, 0))
		if got := hotp(rfcSecret, uint64(step), 8); got != tc.eight {
			t.Errorf("hotp(T=%d, 8 digits) = %s, want %s", tc.unix, got, tc.eight)
		}
		if got := hotp(rfcSecret, uint64(step), TOTPDigits); got != tc.six {
			t.Errorf("hotp(T=%d, 6 digits) = %s, want %s", tc.unix, got, tc.six)
		}
		if s, ok := matchTOTP(rfcSecret, tc.six, time.Unix(tc.unix, 0), -1); !ok || s != step {
			t.Errorf("matchTOTP(%s at T=%d) = %d, %v; want %d, true", tc.six, tc.unix, s, ok, step)
		}
	}
}

func TestMatchTOTPWindowAndReplay(t *testing.T) {
	now := time.Unix(1234567890, 0)
	cur := totpStep(now)
	code := func(step int64) string { return hotp(rfcSecret, uint64(step), TOTPDigits) }
	for _, tc := range []struct {
		name     string
		code     string
		lastStep int64
		want     int64
		ok       bool
	}{
		{"current", code(cur), -1, cur, true},
		{"one step early", code(cur - 1), -1, cur - 1, true},
		{"one step late", code(cur + 1), -1, cur + 1, true},
		{"two steps early", code(cur - 2), -1, 0, false},
		{"two steps late", code(cur + 2), -1, 0, false},
		{"spaces typed", code(cur)[:3] + " " + code(cur)[3:], -1, cur, true},
		{"replayed", code(cur), cur, 0, false},
		{"older than last used", code(cur - 1), cur, 0, false},
		{"newer than last used", code(cur + 1), cur, cur + 1, true},
		{"wrong", "000000", -1, 0, false},
		{"too short", code(cur)[:5], -1, 0, false},
		{"empty", "", -1, 0, false},
	} {
		if tc.name == "wrong" && (code(cur-1) == "000000" || code(cur) == "000000" || code(cur+1) == "000000") {
			continue
		}
		s, ok := matchTOTP(rfcSecret, tc.code, now, tc.lastStep)
		if ok != tc.ok || s != tc.want {
			t.Errorf("%s: matchTOTP(%q, last %d) = %d, %v; want %d, %v", tc.name, tc.code, tc.lastStep, s, ok, tc.want, tc.ok)
		}
	}
}

func TestTOTPURI(t *testing.T) {
	u, err := url.Parse(totpURI("Liggare", "anna@bygg.se", rfcSecret))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Scheme != "otpauth" || u.Host != "totp" || u.Path != "/Liggare:anna@bygg.se" ||
		q.Get("secret") != "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ" || q.Get("issuer") != "Liggare" ||
		q.Get("digits") != "6" || q.Get("period") != "30" || q.Get("algorithm") != "SHA1" {
		t.Errorf("totpURI = %s", u)
	}
}
