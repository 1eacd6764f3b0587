package account

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Password rules.
const (
	// MinPasswordRunes is the shortest password accepted (characters, after
	// NFKC normalisation).
	MinPasswordRunes = 12
	// MaxPasswordBytes bounds the work one login may ask for. NIST SP
	// 800-63B asks for at least 64 characters; 1024 bytes is ample.
	MaxPasswordBytes = 1024
)

// Params are argon2id's cost parameters.
type Params struct {
	// Memory in KiB.
	Memory uint32
	// Time is the number of passes over the memory.
	Time uint32
	// Threads is the parallelism.
	Threads uint8
}

// DefaultParams is OWASP's first recommended argon2id configuration
// (m=19 MiB, t=2, p=1; Password Storage Cheat Sheet), chosen for a 2-core
// server: one hash takes some tens of milliseconds of one core and 19 MiB,
// so a login storm with hashes capped at GOMAXPROCS at a time costs under
// 40 MiB and leaves the other core serving. The 64 MiB t=3 p=4 option of
// RFC 9106 would take four times the memory and most of both cores per
// login. Stored hashes carry their parameters; a login on a hash made with
// other parameters re-hashes the password with these.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

// Limits on parameters read back from a stored hash, so that a corrupt or
// planted row cannot make one login take a gigabyte.
const (
	maxMemoryKiB = 256 * 1024
	maxTime      = 10
	saltBytes    = 16
	keyBytes     = 32
)

var (
	// ErrWeakPassword is wrapped by the errors of SetPassword and
	// CheckPassword for a password the rules refuse; the message says why,
	// in words fit to show the user.
	ErrWeakPassword = errors.New("account: password refused")
	// errBadHash is a stored hash that does not parse.
	errBadHash = errors.New("account: malformed password hash")
)

//go:embed common_passwords.txt
var commonPasswordsText string

// commonPasswords is the embedded list, lower-cased, as a set.
var commonPasswords = sync.OnceValue(func() map[string]bool {
	set := make(map[string]bool)
	sc := bufio.NewScanner(strings.NewReader(commonPasswordsText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		set[strings.ToLower(line)] = true
	}
	return set
})

// normalisePassword returns the NFKC form of a password, so that "å" typed
// as one code point or as "a" plus a combining ring gives the same hash on
// every device (NIST SP 800-63B 5.1.1.2).
func normalisePassword(pw string) string { return norm.NFKC.String(pw) }

// CheckPassword applies the password rules: at least MinPasswordRunes
// characters and at most MaxPasswordBytes bytes, valid UTF-8, not on the
// embedded list of common passwords (also with digits and punctuation
// trimmed from its ends: "Sommar2024!!" is "sommar"), not the user's e-mail
// name or the product's name, and not a run of a few characters
// ("aaaaaaaaaaaa", "abcdefghijkl"). The error wraps ErrWeakPassword.
func CheckPassword(pw, email string) error {
	if !utf8.ValidString(pw) {
		return fmt.Errorf("%w: not valid text", ErrWeakPassword)
	}
	pw = normalisePassword(pw)
	n := utf8.RuneCountInString(pw)
	switch {
	case n < MinPasswordRunes:
		return fmt.Errorf("%w: shorter than %d characters", ErrWeakPassword, MinPasswordRunes)
	case len(pw) > MaxPasswordBytes:
		return fmt.Errorf("%w: longer than %d bytes", ErrWeakPassword, MaxPasswordBytes)
	}
	lower := strings.ToLower(pw)
	base := strings.TrimFunc(lower, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
	common := commonPasswords()
	if common[lower] || common[base] || common[strings.ReplaceAll(lower, " ", "")] {
		return fmt.Errorf("%w: it is one of the most common passwords", ErrWeakPassword)
	}
	local, _, _ := strings.Cut(strings.ToLower(email), "@")
	if base == "liggare" || (len(local) >= 4 && base == local) {
		return fmt.Errorf("%w: it is your e-mail name or the product's name", ErrWeakPassword)
	}
	if simpleRun(lower) {
		return fmt.Errorf("%w: too few different characters", ErrWeakPassword)
	}
	return nil
}

// simpleRun reports a password of fewer than five distinct characters, or
// one that only counts up or down ("abcdefghijkl", "987654321098").
func simpleRun(s string) bool {
	distinct := make(map[rune]bool)
	rs := []rune(s)
	if len(rs) < 2 {
		return true
	}
	for _, r := range rs {
		distinct[r] = true
	}
	if len(distinct) < 5 {
		return true
	}
	step := func(a, b rune) rune {
		d := b - a
		if unicode.IsDigit(a) && unicode.IsDigit(b) { // 9 -> 0 continues a run
			d = (d + 10) % 10
			if d == 9 {
				d = -1
			}
		}
		return d
	}
	d0 := step(rs[0], rs[1])
	if d0 != 1 && d0 != -1 {
		return false
	}
	for i := 2; i < len(rs); i++ {
		if step(rs[i-1], rs[i]) != d0 {
			return false
		}
	}
	return true
}

// hashPassword returns the argon2id hash of pw in PHC string form:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, salt and hash in unpadded
// standard base64 (as the reference implementation writes them).
func hashPassword(pw string, p Params) (string, error) {
	salt := make([]byte, saltBytes)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("account: salt: %w", err)
	}
	key := argon2.IDKey([]byte(normalisePassword(pw)), salt, p.Time, p.Memory, p.Threads, keyBytes)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// parseHash splits a PHC argon2id string.
func parseHash(encoded string) (p Params, salt, key []byte, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	var threads uint32
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &threads); err != nil {
		return p, nil, nil, errBadHash
	}
	if p.Time < 1 || p.Time > maxTime || threads < 1 || threads > 255 || p.Memory < 8*threads || p.Memory > maxMemoryKiB {
		return p, nil, nil, errBadHash
	}
	p.Threads = uint8(threads)
	b64 := base64.RawStdEncoding
	if salt, err = b64.DecodeString(parts[4]); err != nil || len(salt) < 8 {
		return p, nil, nil, errBadHash
	}
	if key, err = b64.DecodeString(parts[5]); err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// verifyPassword reports whether pw matches the PHC hash encoded, comparing
// in constant time, and the parameters the hash was made with.
func verifyPassword(pw, encoded string) (bool, Params, error) {
	p, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, p, err
	}
	if len(pw) > MaxPasswordBytes {
		return false, p, nil
	}
	got := argon2.IDKey([]byte(normalisePassword(pw)), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, p, nil
}
