package syncproto

// Enrollment and credential rotation: how a kiosk gets its credential. They
// are plain HTTPS requests with JSON bodies on the server's main listener,
// not CBOR websocket messages, but they are part of the contract between
// terminal and server, so both sides take them from here. The signed
// messages are pinned byte for byte by the golden tests of both sides.

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
)

// Paths on the server's main listener.
const (
	EnrollPath            = "/v1/enroll"
	CredentialRotatePath  = "/v1/credentials/rotate"
	CredentialConfirmPath = "/v1/credentials/confirm"
)

// MaxEnrollRequestBytes bounds a request body.
const MaxEnrollRequestBytes = 4 << 10

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

// CredentialRotateRequest is posted to CredentialRotatePath and CredentialConfirmPath with the credential
// in an "Authorization: Bearer" header.
type CredentialRotateRequest struct {
	// Nonce is 16 or more random bytes.
	Nonce []byte `json:"nonce"`
	// Signature is the terminal key's signature over CredentialRotateMessage (or
	// CredentialConfirmMessage).
	Signature []byte `json:"signature"`
}

// CredentialRotateResponse answers a CredentialRotateRequest at CredentialRotatePath.
type CredentialRotateResponse struct {
	Credential string `json:"credential"`
}

// CredentialConfirmResponse answers a CredentialRotateRequest at CredentialConfirmPath.
type CredentialConfirmResponse struct {
	TerminalID string `json:"terminal_id"`
}

// EnrollErrorResponse is the body of every refusal.
type EnrollErrorResponse struct {
	// Code is a stable word for programs (EnrollError*).
	Code string `json:"code"`
	// Error is a sentence for people.
	Error string `json:"error"`
}

// Stable error codes of EnrollErrorResponse.
const (
	EnrollErrorMalformed    = "malformed"
	EnrollErrorBadCode      = "code_invalid"
	EnrollErrorUsed         = "code_used"
	EnrollErrorExpired      = "code_expired"
	EnrollErrorSignature    = "bad_signature"
	EnrollErrorTerminalID   = "terminal_id_mismatch"
	EnrollErrorTerminalUsed = "terminal_id_taken"
	EnrollErrorNoKey        = "no_terminal_key"
	EnrollErrorUnauthorized = "unauthorized"
	EnrollErrorRateLimited  = "rate_limited"
	EnrollErrorUnavailable  = "unavailable"
)

// MinEnrollNonceBytes is the shortest nonce of a CredentialRotateRequest.
const MinEnrollNonceBytes = 16

// EnrollMessage is what a terminal signs to enroll: it binds the code, the
// requested terminal id and the public key together. code must be
// normalised (NormalizeEnrollCode).
func EnrollMessage(code, terminalID string, publicKey []byte) []byte {
	return fmt.Appendf(nil, "liggare-enroll-v1\ncode=%s\nterminal_id=%s\npublic_key=%s\n",
		code, terminalID, hex.EncodeToString(publicKey))
}

// CredentialRotateMessage is what a terminal signs to rotate its credential: it binds
// the request to the credential it authenticates with, so the signature is
// worth nothing with any other credential.
func CredentialRotateMessage(terminalID, credential string, nonce []byte) []byte {
	return signedCredentialMessage("liggare-rotate-v1", terminalID, credential, nonce)
}

// CredentialConfirmMessage is what a terminal signs to confirm a rotated credential.
func CredentialConfirmMessage(terminalID, credential string, nonce []byte) []byte {
	return signedCredentialMessage("liggare-confirm-v1", terminalID, credential, nonce)
}

func signedCredentialMessage(purpose, terminalID, credential string, nonce []byte) []byte {
	sum := sha256.Sum256([]byte(credential))
	return fmt.Appendf(nil, "%s\nterminal_id=%s\ncredential_sha256=%s\nnonce=%s\n",
		purpose, terminalID, hex.EncodeToString(sum[:]), hex.EncodeToString(nonce))
}

// EnrollCodeAlphabet is the characters of an enrollment code: digits and upper-case
// letters without 0, 1, I and O, which are easily mistaken for each other.
// 32 characters, so a code of EnrollCodeLength carries 50 bits.
const EnrollCodeAlphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"

// EnrollCodeLength is the number of characters of a code.
const EnrollCodeLength = 10

// NormalizeEnrollCode returns a typed code in canonical form: upper case, without
// dashes and spaces. It fails for a code of the wrong length or with a
// character outside EnrollCodeAlphabet.
func NormalizeEnrollCode(typed string) (string, error) {
	var b strings.Builder
	for _, r := range strings.ToUpper(typed) {
		switch {
		case r == '-' || r == ' ':
			continue
		case r < 128 && strings.IndexByte(EnrollCodeAlphabet, byte(r)) >= 0:
			b.WriteRune(r)
		default:
			return "", fmt.Errorf("enroll: code: %q is not a code character (%s)", r, EnrollCodeAlphabet)
		}
	}
	if b.Len() != EnrollCodeLength {
		return "", fmt.Errorf("enroll: code: %d characters, want %d", b.Len(), EnrollCodeLength)
	}
	return b.String(), nil
}

// FormatEnrollCode splits a canonical code in two halves for reading aloud:
// "ABCDE-FGHJK".
func FormatEnrollCode(code string) string {
	if len(code) != EnrollCodeLength {
		return code
	}
	return code[:EnrollCodeLength/2] + "-" + code[EnrollCodeLength/2:]
}
