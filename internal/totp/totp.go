// Package totp computes RFC 6238 time-based one-time passwords with the
// parameters every authenticator app understands (HMAC-SHA1, 30 s steps, 6
// digits). The server's account package checks codes with it, and the
// clients that sign in over HTTP (the end-to-end tests, the load
// generator) compute them with it, as an authenticator app would; it lives
// under the module's root internal/ so both trees may import it.
package totp

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"time"
)

const (
	// Step is the time step.
	Step = 30 * time.Second
	// Digits is the length of a code.
	Digits = 6
)

// Encoding is how secrets are shown to people and apps: base32 without
// padding.
var Encoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// HOTP is RFC 4226's HOTP with HMAC-SHA1 and dynamic truncation, digits
// long. RFC 6238 TOTP is HOTP(secret, Counter(t), Digits).
func HOTP(secret []byte, counter uint64, digits int) string {
	mac := hmac.New(sha1.New, secret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// Counter is the RFC 6238 time counter of t.
func Counter(t time.Time) int64 { return t.Unix() / int64(Step/time.Second) }

// Code is what an authenticator app shows at t for a base32 secret.
func Code(secret string, t time.Time) (string, error) {
	key, err := Encoding.DecodeString(secret)
	if err != nil {
		return "", fmt.Errorf("totp: secret: %w", err)
	}
	return HOTP(key, uint64(Counter(t)), Digits), nil
}
