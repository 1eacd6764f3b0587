package account

import (
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/liggare/liggare/internal/totp"
)

// TOTP parameters (RFC 6238 with the defaults every authenticator app
// understands).
const (
	// TOTPStep is the time step.
	TOTPStep = totp.Step
	// TOTPDigits is the length of a code.
	TOTPDigits = totp.Digits
	// TOTPSkew is how many steps before and after the current one are
	// accepted, for clock drift and typing time.
	TOTPSkew = 1
	// totpSecretBytes is the secret's length: 160 bits, the HMAC-SHA1 block
	// output size RFC 4226 recommends.
	totpSecretBytes = 20
)

var b32 = totp.Encoding

// matchTOTP looks for code among the steps around now, skipping any at or
// below lastStep (already used: RFC 6238 section 5.2), and returns the step
// that matched. Every candidate is compared, in constant time.
func matchTOTP(secret []byte, code string, now time.Time, lastStep int64) (int64, bool) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != TOTPDigits {
		return 0, false
	}
	cur := totp.Counter(now)
	var found int64
	ok := false
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		if s < 0 {
			continue
		}
		match := subtle.ConstantTimeCompare([]byte(totp.HOTP(secret, uint64(s), TOTPDigits)), []byte(code)) == 1
		if match && s > lastStep && !ok {
			found, ok = s, true
		}
	}
	return found, ok
}

// newTOTPSecret returns a fresh random secret.
func newTOTPSecret() ([]byte, error) {
	secret := make([]byte, totpSecretBytes)
	if _, err := rand.Read(secret); err != nil {
		return nil, fmt.Errorf("account: totp secret: %w", err)
	}
	return secret, nil
}

// totpURI is the otpauth:// URI authenticator apps read from a QR code
// (the Key Uri Format of Google Authenticator, which the others follow).
func totpURI(issuer, account string, secret []byte) string {
	label := url.PathEscape(issuer) + ":" + url.PathEscape(account)
	q := url.Values{}
	q.Set("secret", b32.EncodeToString(secret))
	q.Set("issuer", issuer)
	q.Set("algorithm", "SHA1")
	q.Set("digits", fmt.Sprint(TOTPDigits))
	q.Set("period", fmt.Sprint(int(TOTPStep/time.Second)))
	return "otpauth://totp/" + label + "?" + q.Encode()
}
