package enroll

import (
	"github.com/liggare/liggare/syncproto"

	"crypto/ed25519"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The server verifies these exact bytes (server/internal/enroll has the
// same test).
func TestSignedMessagesGolden(t *testing.T) {
	pub := make([]byte, 32)
	for i := range pub {
		pub[i] = byte(i)
	}
	nonce := []byte{0xde, 0xad, 0xbe, 0xef}
	for _, tc := range []struct{ got, want string }{
		{string(syncproto.EnrollMessage("ABCDE23456", "gate-1", pub)),
			"liggare-enroll-v1\ncode=ABCDE23456\nterminal_id=gate-1\npublic_key=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"},
		{string(syncproto.CredentialRotateMessage("gate-1", "gate-1.secret", nonce)),
			"liggare-rotate-v1\nterminal_id=gate-1\ncredential_sha256=816b460c0a5c4b6485a467cb702243dac7a3f928c3faafb907742bf37fb5adb7\nnonce=deadbeef\n"},
		{string(syncproto.CredentialConfirmMessage("gate-1", "gate-1.secret", nonce)),
			"liggare-confirm-v1\nterminal_id=gate-1\ncredential_sha256=816b460c0a5c4b6485a467cb702243dac7a3f928c3faafb907742bf37fb5adb7\nnonce=deadbeef\n"},
	} {
		if tc.got != tc.want {
			t.Errorf("signed message = %q, want %q", tc.got, tc.want)
		}
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "credential")
	for _, content := range []string{"a.1\n", "a.2\n"} {
		if err := WriteFileAtomic(path, []byte(content), FileMode); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != content {
			t.Fatalf("ReadFile = %q, %v; want %q", b, err, content)
		}
		fi, _ := os.Stat(path)
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("mode %v, want 0600", fi.Mode().Perm())
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("%d files left in the directory, want 1 (no temporary files)", len(entries))
	}
	if err := WriteFileAtomic(filepath.Join(dir, "missing", "x"), nil, FileMode); err == nil {
		t.Errorf("WriteFileAtomic into a missing directory succeeded")
	}
}

func TestKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "credential.key")
	k1, created, err := LoadOrCreateKey(path)
	if err != nil || !created {
		t.Fatalf("LoadOrCreateKey = %v, created %v", err, created)
	}
	os.Chmod(path, 0o644)
	k2, created, err := LoadOrCreateKey(path)
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("second LoadOrCreateKey: created %v, same %v, %v", created, k1.Equal(k2), err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode %v, want 0600 (tightened)", fi.Mode().Perm())
	}
	os.WriteFile(path, []byte("not a key"), 0o600)
	if _, _, err := LoadOrCreateKey(path); err == nil {
		t.Errorf("LoadOrCreateKey(garbage) succeeded: a broken key must not be replaced silently")
	}
}

func TestBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"ws://127.0.0.1:8080/v1/sync":      "http://127.0.0.1:8080",
		"wss://liggare.example.se/v1/sync": "https://liggare.example.se",
		"https://liggare.example.se:8443":  "https://liggare.example.se:8443",
		"ftp://x":                          "",
		"ws:///v1/sync":                    "",
	} {
		got, err := BaseURL(in)
		if got != want || (want == "") != (err != nil) {
			t.Errorf("BaseURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// fakeServer answers enrollment as the server does, checking the
// signature; the real server is tested end to end in server/internal/daemon.
func fakeServer(t *testing.T, status int, answer any) (*httptest.Server, *syncproto.EnrollRequest) {
	t.Helper()
	var got syncproto.EnrollRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != syncproto.EnrollPath {
			http.NotFound(w, r)
			return
		}
		json.NewDecoder(r.Body).Decode(&got)
		if !ed25519.Verify(got.PublicKey, syncproto.EnrollMessage(got.Code, got.TerminalID, got.PublicKey), got.Signature) {
			status, answer = http.StatusForbidden, syncproto.EnrollErrorResponse{Code: syncproto.EnrollErrorSignature, Error: "bad"}
		}
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(answer)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

func TestEnroll(t *testing.T) {
	dir := t.TempDir()
	cred := filepath.Join(dir, "credential")
	srv, got := fakeServer(t, http.StatusOK, syncproto.EnrollResponse{TerminalID: "gate-1", Credential: "gate-1.s3cret", SiteIdent: "1A2B3C4D5E6F7", Direction: "in"})
	o := Options{Server: strings.Replace(srv.URL, "http", "ws", 1) + "/v1/sync", CredentialPath: cred}
	res, err := Enroll(t.Context(), o, "abcde-23456", "")
	if err != nil {
		t.Fatal(err)
	}
	if got.Code != "ABCDE23456" || res.TerminalID != "gate-1" || !res.KeyCreated {
		t.Errorf("sent code %q; result %+v", got.Code, res)
	}
	if c, err := ReadCredential(cred); err != nil || c != "gate-1.s3cret" {
		t.Errorf("credential file = %q, %v", c, err)
	}
	// Enrolling again asks for the same terminal id by itself, and
	// refuses another: the outbox's taps belong to gate-1.
	if _, err := Enroll(t.Context(), o, "abcde-23456", ""); err != nil || got.TerminalID != "gate-1" {
		t.Errorf("re-enroll sent terminal id %q, %v", got.TerminalID, err)
	}
	if _, err := Enroll(t.Context(), o, "abcde-23456", "gate-2"); err == nil || !strings.Contains(err.Error(), "belong") {
		t.Errorf("Enroll as another terminal = %v, want a refusal", err)
	}
}

func TestEnrollRefused(t *testing.T) {
	dir := t.TempDir()
	srv, _ := fakeServer(t, http.StatusGone, syncproto.EnrollErrorResponse{Code: syncproto.EnrollErrorExpired, Error: "enrollment code expired: ask the site manager for a new one"})
	o := Options{Server: srv.URL, CredentialPath: filepath.Join(dir, "credential")}
	_, err := Enroll(t.Context(), o, "ABCDE23456", "")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != syncproto.EnrollErrorExpired || se.Status != http.StatusGone {
		t.Fatalf("Enroll = %v, want a ServerError %s", err, syncproto.EnrollErrorExpired)
	}
	if _, err := os.Stat(o.CredentialPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused enrollment wrote a credential file")
	}
	if _, err := Enroll(t.Context(), o, "ABC", ""); err == nil {
		t.Errorf("Enroll with a malformed code reached the server")
	}
}
