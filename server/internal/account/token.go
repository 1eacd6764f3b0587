package account

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
)

// tokenBytes is the entropy of session, pending-login and grant link
// tokens: 256 bits. Such tokens need no slow hash: a SHA-256 of a 256-bit
// random value cannot be reversed by guessing.
const tokenBytes = 32

// codeAlphabet leaves out the characters people confuse when reading from
// a screen: 0 and O, 1 and I. 32 symbols, 5 bits each.
const codeAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// newToken returns a random URL-safe token and its SHA-256.
func newToken() (string, []byte, error) {
	var raw [tokenBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", nil, fmt.Errorf("account: random token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	return tok, hashToken(tok), nil
}

// hashToken is the stored form of a token or code.
func hashToken(tok string) []byte {
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

// newCode returns n random characters of codeAlphabet, without modulo bias
// (rand.Text's approach: rejection of out-of-range bytes).
func newCode(n int) (string, error) {
	var b strings.Builder
	buf := make([]byte, 2*n)
	for b.Len() < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("account: random code: %w", err)
		}
		for _, c := range buf {
			// The largest multiple of len(codeAlphabet) below 256.
			if int(c) >= 256-256%len(codeAlphabet) {
				continue
			}
			b.WriteByte(codeAlphabet[int(c)%len(codeAlphabet)])
			if b.Len() == n {
				break
			}
		}
	}
	return b.String(), nil
}

// canonicalCode upper-cases a code typed by a person and drops the
// separators and spaces it may have been shown or typed with.
func canonicalCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// groupCode writes a code in groups of four for reading: "ABCD-EFGH".
func groupCode(code string) string {
	var parts []string
	for len(code) > 4 {
		parts = append(parts, code[:4])
		code = code[4:]
	}
	return strings.Join(append(parts, code), "-")
}
