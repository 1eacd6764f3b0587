package pii

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// KeySize is the size in bytes of every key: AES-256 and the HMAC-SHA256
// index key.
const KeySize = 32

// IndexSize is the size in bytes of a blind index value.
const IndexSize = sha256.Size

// Overhead is how many bytes longer a ciphertext is than its plaintext: key
// id, nonce and tag.
const Overhead = 1 + 12 + 16

// indexDomain separates this index from any other HMAC under the same key.
const indexDomain = "liggare/pnr/v1\x00"

// redacted is what a Keys prints as, whatever the verb.
const redacted = "pii.Keys{redacted}"

// ErrInvalidKey is wrapped by errors for configuration that does not yield
// usable keys: bad base64, wrong length, a malformed or repeating keyring,
// the same key used twice, or a Keys that was not loaded.
var ErrInvalidKey = errors.New("invalid key")

// ErrUnknownKeyID is wrapped by Open's error for a ciphertext sealed with a
// key that is not in the keyring: a key dropped before every row was
// re-sealed, or a database from another installation.
var ErrUnknownKeyID = errors.New("ciphertext's key is not in the keyring")

// ErrDecrypt is wrapped by Open's error for a ciphertext that does not
// authenticate: truncated, tampered with, copied from another row (other
// aad), or sealed under another key with the same id.
var ErrDecrypt = errors.New("ciphertext does not authenticate")

// Keys holds the encryption keyring and the blind index key. It is immutable
// and safe for concurrent use. Build it with LoadKeys or NewTestKeys; the
// zero value has no keys and every method fails or panics on it.
type Keys struct {
	r *ring // behind a pointer so that printing an enclosing struct shows no bytes
}

type ring struct {
	current byte
	aeads   [256]cipher.AEAD // by key id; nil where there is no key
	index   [KeySize]byte
}

// LoadKeys builds Keys from configuration. encKeys is one base64 key (id 1)
// or a keyring "ID:KEY,ID:KEY,..." with ids 1–255, the first entry being the
// current key used by Seal. indexKey is the base64 HMAC key of the blind
// index. Every key is 32 bytes in standard base64 (with padding); white
// space around keys and entries is ignored, so a key file may end in a
// newline. The index key must differ from every encryption key.
//
// Errors wrap ErrInvalidKey and never contain key material.
func LoadKeys(encKeys, indexKey string) (*Keys, error) {
	r := new(ring)
	seen := make(map[[KeySize]byte]int)
	entries := strings.Split(strings.TrimSpace(encKeys), ",")
	for i, e := range entries {
		e = strings.TrimSpace(e)
		id := 1
		if idText, b64, ok := strings.Cut(e, ":"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(idText))
			if err != nil || n < 1 || n > 255 {
				return nil, fmt.Errorf("pii: encryption keyring entry %d: %w: want ID:KEY with ID 1-255", i+1, ErrInvalidKey)
			}
			id, e = n, strings.TrimSpace(b64)
		} else if len(entries) > 1 {
			return nil, fmt.Errorf("pii: encryption keyring entry %d: %w: a keyring of several keys needs ID:KEY entries", i+1, ErrInvalidKey)
		}
		key, err := decodeKey(e)
		if err != nil {
			return nil, fmt.Errorf("pii: encryption key %d: %w", id, err)
		}
		if r.aeads[id] != nil {
			return nil, fmt.Errorf("pii: encryption key %d: %w: id given twice", id, ErrInvalidKey)
		}
		if other, ok := seen[key]; ok {
			return nil, fmt.Errorf("pii: encryption key %d: %w: same key as id %d", id, ErrInvalidKey, other)
		}
		seen[key] = id
		block, err := aes.NewCipher(key[:])
		if err != nil {
			return nil, fmt.Errorf("pii: encryption key %d: %w", id, err)
		}
		r.aeads[id], err = cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("pii: encryption key %d: %w", id, err)
		}
		if i == 0 {
			r.current = byte(id)
		}
	}
	key, err := decodeKey(strings.TrimSpace(indexKey))
	if err != nil {
		return nil, fmt.Errorf("pii: index key: %w", err)
	}
	if id, ok := seen[key]; ok {
		return nil, fmt.Errorf("pii: index key: %w: same key as encryption key %d", ErrInvalidKey, id)
	}
	r.index = key
	return &Keys{r: r}, nil
}

// decodeKey decodes one base64 key of KeySize bytes.
func decodeKey(b64 string) ([KeySize]byte, error) {
	var key [KeySize]byte
	if b64 == "" {
		return key, fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		// base64's error names a position, never the data.
		return key, fmt.Errorf("%w: not standard base64: %v", ErrInvalidKey, err)
	}
	if len(b) != KeySize {
		return key, fmt.Errorf("%w: want %d bytes, got %d", ErrInvalidKey, KeySize, len(b))
	}
	copy(key[:], b)
	clear(b)
	return key, nil
}

// GenerateKeyB64 returns a new random 32-byte key in standard base64, for
// either place in LoadKeys.
func GenerateKeyB64() string {
	b := make([]byte, KeySize)
	rand.Read(b) // never fails since Go 1.24
	return base64.StdEncoding.EncodeToString(b)
}

// NewTestKeys returns Keys with a random encryption key (id 1) and a random
// index key, for tests and demos. Nothing sealed with them can be opened
// after the process ends.
func NewTestKeys() *Keys {
	k, err := LoadKeys(GenerateKeyB64(), GenerateKeyB64())
	if err != nil {
		panic("pii: NewTestKeys: " + err.Error()) // random keys are always valid
	}
	return k
}

// CurrentKeyID returns the id of the key Seal uses.
func (k *Keys) CurrentKeyID() byte { return k.r.current }

// KeyIDOf returns the id of the key a ciphertext was sealed with, without
// opening it, to find the rows a rotation must re-seal. The error wraps
// ErrDecrypt when the ciphertext is too short to be one.
func KeyIDOf(ciphertext []byte) (byte, error) {
	if len(ciphertext) < Overhead || ciphertext[0] == 0 {
		return 0, fmt.Errorf("pii: %w: not a ciphertext (%d bytes)", ErrDecrypt, len(ciphertext))
	}
	return ciphertext[0], nil
}

// Seal encrypts plaintext with the current key, bound to aad (see AAD), and
// returns keyID || nonce || ciphertext || tag, Overhead bytes longer than
// plaintext. It fails only for Keys that were not loaded.
func (k *Keys) Seal(plaintext, aad []byte) ([]byte, error) {
	if k == nil || k.r == nil {
		return nil, fmt.Errorf("pii: seal: %w: keys not loaded", ErrInvalidKey)
	}
	id := k.r.current
	out := make([]byte, 1, Overhead+len(plaintext))
	out[0] = id
	return k.r.aeads[id].Seal(out, nil, plaintext, associated(id, aad)), nil
}

// Open decrypts a ciphertext made by Seal with the same aad, with whichever
// key of the keyring its first byte names. The error wraps ErrUnknownKeyID
// when that key is not loaded and ErrDecrypt for anything else.
func (k *Keys) Open(ciphertext, aad []byte) ([]byte, error) {
	if k == nil || k.r == nil {
		return nil, fmt.Errorf("pii: open: %w: keys not loaded", ErrInvalidKey)
	}
	id, err := KeyIDOf(ciphertext)
	if err != nil {
		return nil, err
	}
	aead := k.r.aeads[id]
	if aead == nil {
		return nil, fmt.Errorf("pii: open: key id %d: %w", id, ErrUnknownKeyID)
	}
	plaintext, err := aead.Open(nil, nil, ciphertext[1:], associated(id, aad))
	if err != nil {
		return nil, fmt.Errorf("pii: open: %w: wrong row (aad), tampered, or another key with id %d", ErrDecrypt, id)
	}
	return plaintext, nil
}

// associated is the GCM associated data: the key id, then the caller's aad.
// The key id has a fixed size, so the two cannot run into each other.
func associated(id byte, aad []byte) []byte {
	ad := make([]byte, 0, 1+len(aad))
	return append(append(ad, id), aad...)
}

// Index returns the blind index of a canonical identity number:
// HMAC-SHA256 under the index key over "liggare/pnr/v1\x00" || canonical,
// IndexSize bytes. Equal inputs give equal indexes under one index key and
// unrelated ones under another. Pass only canonical forms (package idnum's
// String methods), or lookups miss.
func (k *Keys) Index(canonical string) []byte {
	mac := hmac.New(sha256.New, k.r.index[:])
	mac.Write([]byte(indexDomain))
	mac.Write([]byte(canonical))
	return mac.Sum(nil)
}

// AAD builds associated data for Seal and Open from the parts that name a
// ciphertext's place, for instance AAD("workers.pnr", tenantID, workerID).
// Each part is prefixed with its length, so ("ab", "c") and ("a", "bc")
// give different results.
func AAD(parts ...string) []byte {
	n := 0
	for _, p := range parts {
		n += binary.MaxVarintLen64 + len(p)
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// String returns "pii.Keys{redacted}": keys are never printed.
func (Keys) String() string { return redacted }

// GoString returns "pii.Keys{redacted}", for %#v.
func (Keys) GoString() string { return redacted }

// Format implements fmt.Formatter so that every verb, %x and %d included,
// prints "pii.Keys{redacted}".
func (Keys) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// LogValue implements slog.LogValuer: keys are logged as
// "pii.Keys{redacted}".
func (Keys) LogValue() slog.Value { return slog.StringValue(redacted) }
