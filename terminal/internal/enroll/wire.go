package enroll

// The wire types of enrollment, as server/internal/enroll declares them
// (the two sides cannot share an internal package). golden_test.go on both
// sides pins the signed messages to the same bytes.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Paths on the server's main listener.
const (
	EnrollPath  = "/v1/enroll"
	RotatePath  = "/v1/credentials/rotate"
	ConfirmPath = "/v1/credentials/confirm"
)

// MaxRequestBytes bounds a request body.
const MaxRequestBytes = 4 << 10

// EnrollRequest is what a kiosk posts to EnrollPath.
type EnrollRequest struct {
	// Code is the enrollment code as typed; dashes, spaces and case do not
	// matter.
	Code string `json:"code"`
	// TerminalID is the id the kiosk asks for; empty takes the code's, or
	// one the server makes up.
	TerminalID string `json:"terminal_id,omitempty"`
	// PublicKey is the terminal's Ed25519 public key (32 bytes).
	PublicKey []byte `json:"public_key"`
	// Signature is the key's signature over EnrollMessage.
	Signature    []byte `json:"signature"`
	AgentVersion string `json:"agent_version,omitempty"`
}

// EnrollResponse answers a successful EnrollRequest.
type EnrollResponse struct {
	TerminalID string `json:"terminal_id"`
	// Credential is "<terminal-id>.<secret>", shown this once.
	Credential string `json:"credential"`
	SiteIdent  string `json:"site_ident"`
	Direction  string `json:"direction"`
	// Reenrolled says the terminal id existed: its earlier credentials
	// were revoked.
	Reenrolled bool `json:"reenrolled"`
}

// RotateRequest is posted to RotatePath and ConfirmPath with the credential
// in an "Authorization: Bearer" header.
type RotateRequest struct {
	// Nonce is 16 or more random bytes.
	Nonce []byte `json:"nonce"`
	// Signature is the terminal key's signature over RotateMessage (or
	// ConfirmMessage).
	Signature []byte `json:"signature"`
}

// RotateResponse answers a RotateRequest at RotatePath.
type RotateResponse struct {
	Credential string `json:"credential"`
}

// ConfirmResponse answers a RotateRequest at ConfirmPath.
type ConfirmResponse struct {
	TerminalID string `json:"terminal_id"`
}

// ErrorResponse is the body of every refusal.
type ErrorResponse struct {
	// Code is a stable word for programs (ErrorCode*).
	Code string `json:"code"`
	// Error is a sentence for people.
	Error string `json:"error"`
}

// Stable error codes of ErrorResponse.
const (
	ErrorCodeMalformed    = "malformed"
	ErrorCodeBadCode      = "code_invalid"
	ErrorCodeUsed         = "code_used"
	ErrorCodeExpired      = "code_expired"
	ErrorCodeSignature    = "bad_signature"
	ErrorCodeTerminalID   = "terminal_id_mismatch"
	ErrorCodeTerminalUsed = "terminal_id_taken"
	ErrorCodeNoKey        = "no_terminal_key"
	ErrorCodeUnauthorized = "unauthorized"
	ErrorCodeRateLimited  = "rate_limited"
	ErrorCodeUnavailable  = "unavailable"
)

// MinNonceBytes is the shortest nonce of a RotateRequest.
const MinNonceBytes = 16

// EnrollMessage is what a terminal signs to enroll: it binds the code, the
// requested terminal id and the public key together. code must be
// normalised (NormalizeCode).
func EnrollMessage(code, terminalID string, publicKey []byte) []byte {
	return fmt.Appendf(nil, "liggare-enroll-v1\ncode=%s\nterminal_id=%s\npublic_key=%s\n",
		code, terminalID, hex.EncodeToString(publicKey))
}

// RotateMessage is what a terminal signs to rotate its credential: it binds
// the request to the credential it authenticates with, so the signature is
// worth nothing with any other credential.
func RotateMessage(terminalID, credential string, nonce []byte) []byte {
	return signedCredentialMessage("liggare-rotate-v1", terminalID, credential, nonce)
}

// ConfirmMessage is what a terminal signs to confirm a rotated credential.
func ConfirmMessage(terminalID, credential string, nonce []byte) []byte {
	return signedCredentialMessage("liggare-confirm-v1", terminalID, credential, nonce)
}

func signedCredentialMessage(purpose, terminalID, credential string, nonce []byte) []byte {
	sum := sha256.Sum256([]byte(credential))
	return fmt.Appendf(nil, "%s\nterminal_id=%s\ncredential_sha256=%s\nnonce=%s\n",
		purpose, terminalID, hex.EncodeToString(sum[:]), hex.EncodeToString(nonce))
}

// Alphabet is the characters of an enrollment code: digits and upper-case
// letters without 0, 1, I and O, which are easily mistaken for each other.
// 32 characters, so a code of CodeLength carries 50 bits.
const Alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// CodeLength is the number of characters of a code.
const CodeLength = 10

// NormalizeCode returns a typed code in canonical form: upper case, without
// dashes and spaces. It fails for a code of the wrong length or with a
// character outside Alphabet.
func NormalizeCode(typed string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r < 128 && strings.IndexByte(Alphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", fmt.Errorf("enroll: code: %q is not a code character (%s)", r, Alphabet)
		}
	}
	if b.Len() != CodeLength {
		return "", fmt.Errorf("enroll: code: %d characters, want %d", b.Len(), CodeLength)
	}
	return b.String(), nil
}

// FormatCode splits a canonical code in two halves for reading aloud:
// "ABCDE-FGHJK".
func FormatCode(code string) string {
	if len(code) != CodeLength {
		return code
	}
	return code[:CodeLength/2] + "-" + code[CodeLength/2:]
}
