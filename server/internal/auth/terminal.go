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
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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

// maxSecretLen is the longest secret Authenticate considers (an encoded
// secret is 43 characters).
const maxSecretLen = 128

// Terminals stores terminals and their credentials.
type Terminals struct {
	pool *pgxpool.Pool
	// forget is the cache's (CredentialCache), if one was made over t.
	forget atomic.Pointer[func(terminalID string)]
}

// Forget tells the credential cache over t, if any, that a transaction of
// this process that changed the terminal's credentials has committed: the
// cache then asks the database about them at once, instead of when the
// change's notification arrives a moment later. Terminals' own methods
// call it; a caller revoking inside its own transaction
// (RevokeCredentials) calls it after the commit.
func (t *Terminals) Forget(terminalID string) {
	if f := t.forget.Load(); f != nil {
		(*f)(terminalID)
	}
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
	var cred string
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ($1) ON CONFLICT DO NOTHING`, terminalID); err != nil {
			return err
		}
		var err error
		cred, _, err = IssueCredential(ctx, tx, terminalID, IssuedByCLI)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("auth: create terminal credential: %w", err)
	}
	return cred, nil
}

// How a credential was issued (terminal_credentials.issued_by).
const (
	IssuedByCLI        = "cli"
	IssuedByEnrollment = "enrollment"
	IssuedByRotation   = "rotation"
)

// IssueCredential issues a new credential to an existing terminal inside
// tx and returns it as "<terminal-id>.<secret>" with its id. Only a hash of
// the secret is stored.
func IssueCredential(ctx context.Context, tx pgx.Tx, terminalID, issuedBy string) (string, int64, error) {
	return issue(ctx, tx, terminalID, issuedBy, nil)
}

func issue(ctx context.Context, tx pgx.Tx, terminalID, issuedBy string, replaces *int64) (string, int64, error) {
	var raw [secretBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", 0, fmt.Errorf("auth: new secret: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(raw[:])
	sum := sha256.Sum256([]byte(secret))
	var id int64
	err := tx.QueryRow(ctx, `
		INSERT INTO terminal_credentials (terminal_id, secret_sha256, issued_by, replaces)
		VALUES ($1, $2, $3, $4) RETURNING credential_id`, terminalID, sum[:], issuedBy, replaces).Scan(&id)
	if err != nil {
		return "", 0, fmt.Errorf("auth: issue credential: %w", err)
	}
	if err := notifyCredentials(ctx, tx, id); err != nil {
		return "", 0, fmt.Errorf("auth: issue credential: %w", err)
	}
	return terminalID + "." + secret, id, nil
}

// Revoke revokes every active credential of the terminal and reports how many
// it revoked.
func (t *Terminals) Revoke(ctx context.Context, terminalID string) (int64, error) {
	n, err := RevokeCredentials(ctx, t.pool, terminalID)
	t.Forget(terminalID)
	return n, err
}

// Execer runs a statement: *pgxpool.Pool and pgx.Tx satisfy it.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RevokeCredentials revokes every active credential of the terminal through
// q (a pool, or the transaction of a re-enrollment) and reports how many.
// A caller with its own transaction calls Terminals.Forget after the commit.
// The one statement also announces each revoked credential on
// CredentialChannel, so that no revocation commits unannounced.
func RevokeCredentials(ctx context.Context, q Execer, terminalID string) (int64, error) {
	tag, err := q.Exec(ctx, `
		WITH revoked AS (
			UPDATE terminal_credentials SET revoked_at = now() WHERE terminal_id = $1 AND revoked_at IS NULL
			RETURNING credential_id)
		SELECT pg_notify($2, credential_id::text) FROM revoked`, terminalID, CredentialChannel)
	if err != nil {
		return 0, fmt.Errorf("auth: revoke terminal: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Rotate issues a new credential that replaces credentialID, which must be
// active. Both stay valid until the new one is first used (Authenticate or
// Confirm); then the old one is revoked, so a terminal that lost the answer
// keeps working with its old credential. Earlier rotations of the terminal
// that were never used are revoked: nobody holds their secret any more.
func (t *Terminals) Rotate(ctx context.Context, credentialID int64) (string, int64, error) {
	var cred string
	var id int64
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		var terminalID string
		err := tx.QueryRow(ctx, `
			SELECT terminal_id FROM terminal_credentials
			WHERE credential_id = $1 AND revoked_at IS NULL FOR UPDATE`, credentialID).Scan(&terminalID)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrUnauthorized
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			WITH revoked AS (
				UPDATE terminal_credentials SET revoked_at = now()
				WHERE terminal_id = $1 AND credential_id <> $2 AND revoked_at IS NULL
				  AND replaces IS NOT NULL AND confirmed_at IS NULL
				RETURNING credential_id)
			SELECT pg_notify($3, credential_id::text) FROM revoked`, terminalID, credentialID, CredentialChannel); err != nil {
			return err
		}
		cred, id, err = issue(ctx, tx, terminalID, IssuedByRotation, &credentialID)
		return err
	})
	if errors.Is(err, ErrUnauthorized) {
		return "", 0, err
	}
	if err != nil {
		return "", 0, fmt.Errorf("auth: rotate credential: %w", err)
	}
	return cred, id, nil
}

// Confirm marks a credential issued by Rotate as in use and revokes the one
// it replaced. It does nothing for a credential already confirmed or not
// issued by rotation, and reports whether it revoked one.
func (t *Terminals) Confirm(ctx context.Context, credentialID int64) (bool, error) {
	var revoked bool
	var terminalID string
	err := pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		var replaces *int64
		err := tx.QueryRow(ctx, `
			UPDATE terminal_credentials SET confirmed_at = now()
			WHERE credential_id = $1 AND replaces IS NOT NULL AND confirmed_at IS NULL AND revoked_at IS NULL
			RETURNING replaces, terminal_id`, credentialID).Scan(&replaces, &terminalID)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `
			UPDATE terminal_credentials SET revoked_at = now() WHERE credential_id = $1 AND revoked_at IS NULL`, *replaces)
		if err != nil {
			return err
		}
		revoked = tag.RowsAffected() > 0
		return notifyCredentials(ctx, tx, credentialID, *replaces)
	})
	if err != nil {
		return false, fmt.Errorf("auth: confirm credential: %w", err)
	}
	if revoked {
		t.Forget(terminalID)
	}
	return revoked, nil
}

// notifyCredentials announces changed credentials on CredentialChannel
// inside tx: the notifications are delivered when tx commits.
func notifyCredentials(ctx context.Context, tx pgx.Tx, ids ...int64) error {
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, id::text) FROM unnest($2::bigint[]) AS id`, CredentialChannel, ids); err != nil {
		return fmt.Errorf("notify: %w", err)
	}
	return nil
}

// Authenticate checks a "<terminal-id>.<secret>" credential and returns the
// terminal id it belongs to and the credential's id (for Active), or
// ErrUnauthorized.
func (t *Terminals) Authenticate(ctx context.Context, credential string) (string, int64, error) {
	id, secret, ok := strings.Cut(credential, ".")
	if !ok || !ValidTerminalID(id) || secret == "" || len(secret) > maxSecretLen {
		return "", 0, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(secret))
	var stored []byte
	var credID int64
	var pending bool
	err := t.pool.QueryRow(ctx, `
		SELECT credential_id, secret_sha256, replaces IS NOT NULL AND confirmed_at IS NULL FROM terminal_credentials
		WHERE secret_sha256 = $1 AND terminal_id = $2 AND revoked_at IS NULL`, sum[:], id).Scan(&credID, &stored, &pending)
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
	if pending {
		// The first use of a rotated credential proves the terminal stored
		// it: the one it replaces can go.
		if _, err := t.Confirm(ctx, credID); err != nil {
			return "", 0, err
		}
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

// Inactive returns those of the given credentials that are revoked or
// unknown, asking the database: a check made after a connection was
// accepted from a cache, exact whatever the cache has heard yet.
func (t *Terminals) Inactive(ctx context.Context, credentialIDs []int64) ([]int64, error) {
	rows, err := t.pool.Query(ctx, `
		SELECT u.id FROM unnest($1::bigint[]) AS u(id)
		WHERE NOT EXISTS (SELECT FROM terminal_credentials c WHERE c.credential_id = u.id AND c.revoked_at IS NULL)`,
		credentialIDs)
	if err != nil {
		return nil, fmt.Errorf("auth: check credentials: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, fmt.Errorf("auth: check credentials: %w", err)
	}
	return ids, nil
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
