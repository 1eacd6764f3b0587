package account

import (
	"net/url"
	"testing"
	"time"

	"github.com/liggare/liggare/internal/totp"
)

// rfcSecret is the SHA-1 seed of RFC 6238 appendix B.
var rfcSecret = []byte("12345678901234567890")

// TestTOTPVectors checks that the codes of RFC 6238 appendix B (its SHA-1
// rows, last six digits; the shared totp package checks the codes
// themselves) are accepted at their times.
func TestTOTPVectors(t *testing.T) {
	for _, tc := range []struct {
		unix int64
		six  string
	}{
		{59, "287082"}, {1111111109, "081804"}, {1111111111, "050471"},
		{1234567890, "005924"}, {2000000000, "279037"}, {20000000000, "353130"},
	} {
		step := totp.Counter(time.Unix(tc.unix, 0))
		if s, ok := matchTOTP(rfcSecret, tc.six, time.Unix(tc.unix, 0), -1); !ok || s != step {
			t.Errorf("matchTOTP(%s at T=%d) = %d, %v; want %d, true", tc.six, tc.unix, s, ok, step)
		}
	}
}

func TestMatchTOTPWindowAndReplay(t *testing.T) {
	now := time.Unix(1234567890, 0)
	cur := totp.Counter(now)
	code := func(step int64) string { return totp.HOTP(rfcSecret, uint64(step), TOTPDigits) }
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
