// Package auth checks who is calling: terminals by their credential today,
// people by password and second factor later.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrUnauthorized is returned for an unknown, malformed or revoked
// credential. It deliberately does not say which.
var ErrUnauthorized = errors.New("auth: credential unknown or revoked")

// validTerminalID is the shape of a terminal id; it is also a CHECK in SQL.
var validTerminalID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidTerminalID reports whether id may name a terminal.
func ValidTerminalID(id string) bool { return validTerminalID.MatchString(id) }

// secretBytes is the entropy of a terminal secret: 256 bits.
const secretBytes = 32

// Terminals stores terminals and their credentials.
type Terminals struct {
	pool *pgxpool.Pool
}

// NewTerminals returns a Terminals backed by pool.
func NewTerminals(pool *pgxpool.Pool) *Terminals { return &Terminals{pool: pool} }

// Create registers a terminal if it does not exist and issues it a new
// credential, returned once as "<terminal-id>.<secret>". Only a hash of the
// secret is stored.
func (t *Terminals) Create(ctx context.Context, terminalID string) (string, error) {
	if !ValidTerminalID(terminalID) {
		return "", fmt.Errorf("auth: terminal id %q: want 1-64 of A-Z a-z 0-9 _ -", terminalID)
	}
	var raw [secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("auth: new secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ($1) ON CONFLICT DO NOTHING`, terminalID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO terminal_credentials (terminal_id, secret_sha256) VALUES ($1, $2)`, terminalID, sum[:])
		return err
	})
	if err != nil {
		return "", fmt.Errorf("auth: create terminal credential: %w", err)
	}
	return terminalID + "." + secret, nil
}

// Revoke revokes every active credential of the terminal and reports how many
// it revoked.
func (t *Terminals) Revoke(ctx context.Context, terminalID string) (int64, error) {
	tag, err := t.pool.Exec(ctx,
		`UPDATE terminal_credentials SET revoked_at = now() WHERE terminal_id = $1 AND revoked_at IS NULL`, terminalID)
	if err != nil {
		return 0, fmt.Errorf("auth: revoke terminal: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Authenticate checks a "<terminal-id>.<secret>" credential and returns the
// terminal id it belongs to and the credential's id (for Active), or
// ErrUnauthorized.
func (t *Terminals) Authenticate(ctx context.Context, credential string) (string, int64, error) {
	id, secret, ok := strings.Cut(credential, ".")
	if !ok || !ValidTerminalID(id) || secret == "" || len(secret) > 128 {
		return "", 0, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(secret))
	var stored []byte
	var credID int64
	err := t.pool.QueryRow(ctx, `
		SELECT credential_id, secret_sha256 FROM terminal_credentials
		WHERE secret_sha256 = $1 AND terminal_id = $2 AND revoked_at IS NULL`, sum[:], id).Scan(&credID, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, ErrUnauthorized
	}
	if err != nil {
		return "", 0, fmt.Errorf("auth: authenticate terminal: %w", err)
	}
	// The lookup is by hash already; compare anyway so a future change of the
	// query cannot quietly turn this into a prefix or partial match.
	if subtle.ConstantTimeCompare(stored, sum[:]) != 1 {
		return "", 0, ErrUnauthorized
	}
	return id, credID, nil
}

// Active reports whether a credential is still valid: a connected terminal
// whose credential was revoked is disconnected at the next check.
func (t *Terminals) Active(ctx context.Context, credentialID int64) (bool, error) {
	var active bool
	err := t.pool.QueryRow(ctx, `
		SELECT revoked_at IS NULL FROM terminal_credentials WHERE credential_id = $1`, credentialID).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("auth: check credential: %w", err)
	}
	return active, nil
}

// BearerToken extracts the credential from an "Authorization: Bearer X"
// header value.
func BearerToken(header string) (string, bool) {
	const prefix = "Bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(header[len(prefix):]), true
}
