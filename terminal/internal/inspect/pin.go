package inspect

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// PIN rules and the hash's parameters. A PIN is short, so the hash alone
// would not stop a guesser with the file; the throttle stops one at the
// kiosk, and the file (root's, 0600) is not on the kiosk screen.
const (
	MinPINLength = 4
	MaxPINLength = 64
	// argon2id, as OWASP recommends for passwords (m=19 MiB, t=2, p=1):
	// about 50 ms on a kiosk's ARM board.
	pinMemoryKiB = 19 * 1024
	pinTime      = 2
	pinThreads   = 1
	pinKeyLen    = 32
	pinSaltLen   = 16
)

// Throttle: after FreeAttempts wrong PINs, each further attempt must wait,
// doubling from BaseDelay to MaxDelay. A delay, not a lockout, so that a
// stranger pressing keys cannot lock the inspector out for good; a right
// PIN resets it.
const (
	FreeAttempts = 3
	BaseDelay    = 2 * time.Second
	MaxDelay     = 5 * time.Minute
)

var (
	// ErrWrongPIN: the PIN does not match.
	ErrWrongPIN = errors.New("inspect: wrong PIN")
	// ErrNoPIN: no PIN hash is configured, so inspection is off.
	ErrNoPIN = errors.New("inspect: no site PIN configured")
	// ErrBadPINHash: the configured hash is not one HashPIN made.
	ErrBadPINHash = errors.New("inspect: malformed PIN hash")
)

// ThrottledError refuses an attempt made too soon after wrong PINs.
type ThrottledError struct{ RetryAfter time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("inspect: too many wrong PINs, try again in %v", e.RetryAfter.Round(time.Second))
}

// HashPIN returns the hash of a site PIN to configure on the terminal
// (--inspect-pin-hash or the file --inspect-pin-file names): argon2id in
// the PHC string format, $argon2id$v=19$m=19456,t=2,p=1$salt$key.
func HashPIN(pin string) (string, error) {
	if err := checkPIN(pin); err != nil {
		return "", err
	}
	salt := make([]byte, pinSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("inspect: hash PIN: %w", err)
	}
	key := argon2.IDKey([]byte(pin), salt, pinTime, pinMemoryKiB, pinThreads, pinKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, pinMemoryKiB, pinTime, pinThreads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func checkPIN(pin string) error {
	if n := utf8.RuneCountInString(pin); n < MinPINLength || n > MaxPINLength {
		return fmt.Errorf("inspect: a PIN has %d-%d characters", MinPINLength, MaxPINLength)
	}
	return nil
}

type pinHash struct {
	m, t uint32
	p    uint8
	salt []byte
	key  []byte
}

func parsePINHash(s string) (pinHash, error) {
	parts := strings.Split(strings.TrimSpace(s), "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return pinHash{}, ErrBadPINHash
	}
	var h pinHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.m, &h.t, &h.p); err != nil ||
		h.m < 8 || h.m > 1<<20 || h.t < 1 || h.t > 16 || h.p < 1 {
		return pinHash{}, ErrBadPINHash
	}
	var err error
	b64 := base64.RawStdEncoding
	if h.salt, err = b64.DecodeString(parts[4]); err != nil || len(h.salt) < 8 {
		return pinHash{}, ErrBadPINHash
	}
	if h.key, err = b64.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return pinHash{}, ErrBadPINHash
	}
	return h, nil
}

// Guard checks site PINs and throttles wrong ones. Attempts are checked one
// at a time, so parallel guesses gain nothing.
type Guard struct {
	hash pinHash
	set  bool
	now  func() time.Time

	mu       sync.Mutex
	failures int
	notUntil time.Time
}

// NewGuard returns a Guard for a hash HashPIN made; an empty hash gives a
// Guard that refuses everything with ErrNoPIN.
func NewGuard(hash string, now func() time.Time) (*Guard, error) {
	if now == nil {
		now = time.Now
	}
	g := &Guard{now: now}
	if strings.TrimSpace(hash) == "" {
		return g, nil
	}
	h, err := parsePINHash(hash)
	if err != nil {
		return nil, err
	}
	g.hash, g.set = h, true
	return g, nil
}

// Enabled reports whether a PIN is configured.
func (g *Guard) Enabled() bool { return g.set }

// Check returns nil for the right PIN, ErrWrongPIN for a wrong one, and a
// *ThrottledError for an attempt made before the last wrong one's delay
// ran out (the PIN is then not even looked at).
func (g *Guard) Check(pin string) error {
	if !g.set {
		return ErrNoPIN
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if wait := g.notUntil.Sub(now); wait > 0 {
		return &ThrottledError{RetryAfter: wait}
	}
	ok := false
	if checkPIN(pin) == nil {
		key := argon2.IDKey([]byte(pin), g.hash.salt, g.hash.t, g.hash.m, g.hash.p, uint32(len(g.hash.key)))
		ok = subtle.ConstantTimeCompare(key, g.hash.key) == 1
	}
	if ok {
		g.failures, g.notUntil = 0, time.Time{}
		return nil
	}
	g.failures++
	if over := g.failures - FreeAttempts; over > 0 {
		delay := BaseDelay << min(over-1, 20)
		g.notUntil = now.Add(min(delay, MaxDelay))
	}
	return ErrWrongPIN
}
