package enroll

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileMode is the mode of the credential and key files: they are secrets.
const FileMode fs.FileMode = 0o600

// KeyPath is where the terminal's key lives: beside its credential.
func KeyPath(credentialPath string) string { return credentialPath + ".key" }

// WriteFileAtomic replaces path with data, mode perm, so that a crash or a
// power cut at any moment leaves either the old file or the new one, whole:
// the data goes to a temporary file in the same directory, is synced, and
// is renamed over path; then the directory is synced so the rename itself
// is durable.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("enroll: write %s: %w", path, err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	// CreateTemp makes the file 0600 already; Chmod states the intent and
	// covers any other perm.
	if err := tmp.Chmod(perm); err != nil {
		return fmt.Errorf("enroll: write %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("enroll: write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("enroll: write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("enroll: write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("enroll: write %s: %w", path, err)
	}
	done = true
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("enroll: sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("enroll: sync %s: %w", dir, err)
	}
	return nil
}

// ReadCredential reads a credential file: "<terminal-id>.<secret>".
func ReadCredential(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("enroll: credential: %w", err)
	}
	cred := strings.TrimSpace(string(b))
	if id, secret, ok := strings.Cut(cred, "."); !ok || id == "" || secret == "" {
		return "", fmt.Errorf("enroll: credential file %s does not hold <terminal-id>.<secret>", path)
	}
	return cred, nil
}

// TerminalID is the terminal id part of a credential.
func TerminalID(credential string) string {
	id, _, _ := strings.Cut(credential, ".")
	return id
}

// LoadKey reads the terminal's private key (PKCS #8, PEM).
func LoadKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("enroll: key: %w", err)
	}
	block, _ := pem.Decode(b)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("enroll: key file %s holds no PEM PRIVATE KEY", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("enroll: key file %s: %w", path, err)
	}
	key, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("enroll: key file %s holds a %T, want Ed25519", path, k)
	}
	return key, nil
}

// LoadOrCreateKey returns the terminal's key at path, creating one (mode
// 0600, written atomically) if there is none. created says which.
func LoadOrCreateKey(path string) (key ed25519.PrivateKey, created bool, err error) {
	key, err = LoadKey(path)
	if err == nil {
		// Tighten a key file someone loosened.
		if fi, serr := os.Stat(path); serr == nil && fi.Mode().Perm() != FileMode {
			if err := os.Chmod(path, FileMode); err != nil {
				return nil, false, fmt.Errorf("enroll: key: %w", err)
			}
		}
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, key, err = ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("enroll: new key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, false, fmt.Errorf("enroll: new key: %w", err)
	}
	if err := WriteFileAtomic(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), FileMode); err != nil {
		return nil, false, err
	}
	return key, true, nil
}
