// Package enroll is the kiosk's side of enrollment and credential rotation
// (the server's is server/internal/enroll, whose documentation tells the
// whole exchange).
//
// Enroll creates the terminal's Ed25519 key beside its credential file (or
// keeps the one there), signs the enrollment code with it, trades the code
// for a credential and writes the credential atomically with mode 0600.
// Rotate trades the current credential, signed for by the key, for a new
// one, writes it, and then confirms it, which revokes the old one: a crash
// at any point leaves a credential on disk that the server accepts.
//
// The outbox is never touched: re-enrolling under the same terminal id
// keeps its store epoch and sequences, and its buffered taps are uploaded
// under the identities they were recorded with. Enroll refuses a terminal
// id other than the one in an existing credential file, because that
// outbox's taps belong to the old id.
package enroll

import (
	"github.com/liggare/liggare/syncproto"

	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// requestTimeout bounds one request to the server.
const requestTimeout = 30 * time.Second

// ServerError is a refusal by the server.
type ServerError struct {
	Status int
	// Code is one of the ErrorCode* words.
	Code    string
	Message string
}

// Error implements error.
func (e *ServerError) Error() string {
	return fmt.Sprintf("server refused (%d %s): %s", e.Status, e.Code, e.Message)
}

// BaseURL turns the agent's server URL (ws://host:port/v1/sync, or
// wss://) or a plain http(s)://host:port into the HTTP base URL that
// enrollment paths are appended to.
func BaseURL(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("enroll: server URL: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return "", fmt.Errorf("enroll: server URL %q: want ws://, wss://, http:// or https://", server)
	}
	if u.Host == "" {
		return "", fmt.Errorf("enroll: server URL %q has no host", server)
	}
	return u.Scheme + "://" + u.Host, nil
}

// Options are what Enroll and Rotate need.
type Options struct {
	// Server is the server's URL (see BaseURL).
	Server string
	// TLS configures https:// (a private CA, say); nil uses the system's.
	TLS *tls.Config
	// CredentialPath is the credential file; the key is at KeyPath of it.
	CredentialPath string
	AgentVersion   string
}

func (o Options) client() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = o.TLS
	return &http.Client{Transport: t, Timeout: requestTimeout}
}

// Result says what Enroll did.
type Result struct {
	syncproto.EnrollResponse
	// KeyCreated says a new key was made; otherwise the one on disk was
	// kept.
	KeyCreated bool
}

// Enroll enrolls the terminal with a code (see the package documentation).
// terminalID may be empty: the code's id, the existing credential's, or
// one the server makes up is taken.
func Enroll(ctx context.Context, o Options, code, terminalID string) (Result, error) {
	norm, err := syncproto.NormalizeEnrollCode(code)
	if err != nil {
		return Result{}, err
	}
	existing, err := ReadCredential(o.CredentialPath)
	switch {
	case err == nil:
		old := TerminalID(existing)
		if terminalID != "" && terminalID != old {
			return Result{}, fmt.Errorf("enroll: %s holds the credential of terminal %s, and the outbox's taps belong to it: "+
				"enroll as %s, or move the credential and the outbox away first", o.CredentialPath, old, old)
		}
		terminalID = old
	case !errors.Is(err, fs.ErrNotExist):
		return Result{}, err
	}
	key, created, err := LoadOrCreateKey(KeyPath(o.CredentialPath))
	if err != nil {
		return Result{}, err
	}
	pub := key.Public().(ed25519.PublicKey)
	req := syncproto.EnrollRequest{Code: norm, TerminalID: terminalID, PublicKey: pub,
		Signature: ed25519.Sign(key, syncproto.EnrollMessage(norm, terminalID, pub)), AgentVersion: o.AgentVersion}
	var resp syncproto.EnrollResponse
	if err := o.post(ctx, syncproto.EnrollPath, "", req, &resp); err != nil {
		return Result{}, err
	}
	if TerminalID(resp.Credential) != resp.TerminalID || resp.TerminalID == "" {
		return Result{}, fmt.Errorf("enroll: server answered a credential for %q as terminal %q", TerminalID(resp.Credential), resp.TerminalID)
	}
	if err := WriteFileAtomic(o.CredentialPath, []byte(resp.Credential+"\n"), FileMode); err != nil {
		return Result{}, err
	}
	return Result{EnrollResponse: resp, KeyCreated: created}, nil
}

// Rotate replaces the terminal's credential with a new one and confirms it;
// the server then revokes the old one. A running agent picks the new
// credential up at its next connection (its live one ends within the
// server's credential recheck). It returns the terminal id.
func Rotate(ctx context.Context, o Options) (string, error) {
	cred, err := ReadCredential(o.CredentialPath)
	if err != nil {
		return "", err
	}
	key, err := LoadKey(KeyPath(o.CredentialPath))
	if err != nil {
		return "", fmt.Errorf("%w (a terminal registered without enrollment has no key: enroll it with a code)", err)
	}
	id := TerminalID(cred)
	req, err := signed(key, syncproto.CredentialRotateMessage, id, cred)
	if err != nil {
		return "", err
	}
	var resp syncproto.CredentialRotateResponse
	if err := o.post(ctx, syncproto.CredentialRotatePath, cred, req, &resp); err != nil {
		return "", err
	}
	if TerminalID(resp.Credential) != id {
		return "", fmt.Errorf("enroll: server answered a credential for %q, not %q", TerminalID(resp.Credential), id)
	}
	// From here the new credential is on disk; if confirming fails, the
	// agent's next connection confirms it.
	if err := WriteFileAtomic(o.CredentialPath, []byte(resp.Credential+"\n"), FileMode); err != nil {
		return "", err
	}
	if req, err = signed(key, syncproto.CredentialConfirmMessage, id, resp.Credential); err != nil {
		return "", err
	}
	var conf syncproto.CredentialConfirmResponse
	if err := o.post(ctx, syncproto.CredentialConfirmPath, resp.Credential, req, &conf); err != nil {
		return "", fmt.Errorf("enroll: the new credential is stored but not confirmed (the agent's next connection confirms it): %w", err)
	}
	return id, nil
}

func signed(key ed25519.PrivateKey, message func(string, string, []byte) []byte, id, cred string) (syncproto.CredentialRotateRequest, error) {
	nonce := make([]byte, syncproto.MinEnrollNonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		return syncproto.CredentialRotateRequest{}, fmt.Errorf("enroll: nonce: %w", err)
	}
	return syncproto.CredentialRotateRequest{Nonce: nonce, Signature: ed25519.Sign(key, message(id, cred, nonce))}, nil
}

// post sends a JSON request and decodes the JSON answer into out.
func (o Options) post(ctx context.Context, path, credential string, in, out any) error {
	base, err := BaseURL(o.Server)
	if err != nil {
		return err
	}
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	resp, err := o.client().Do(req)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("enroll: read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e syncproto.EnrollErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Code == "" {
			return &ServerError{Status: resp.StatusCode, Code: "http", Message: strings.TrimSpace(string(data))}
		}
		return &ServerError{Status: resp.StatusCode, Code: e.Code, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("enroll: answer: %w", err)
	}
	return nil
}
