package account

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Session is a logged-in browser: a user's, or an inspector's through a
// grant. The token that names it lives only in the cookie.
type Session struct {
	ID int64
	// UserID is the user, 0 for an inspector session.
	UserID int64
	// GrantID is the inspector grant, 0 for a user session.
	GrantID   int64
	CreatedAt time.Time
	LastSeen  time.Time
	// ExpiresAt is the absolute end; IdleExpiresAt the end if unused.
	ExpiresAt     time.Time
	IdleExpiresAt time.Time
	csrf          []byte
}

// NewSession opens a session for a user whose Login is complete, and
// returns the token for the cookie (shown once; only its SHA-256 is
// stored). A new token at every login prevents session fixation.
func (s *Store) NewSession(ctx context.Context, userID int64) (string, Session, error) {
	var tok string
	var sess Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var disabled *time.Time
		err := tx.QueryRow(ctx, `SELECT disabled_at FROM users WHERE user_id = $1`, userID).Scan(&disabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if disabled != nil {
			return ErrDisabled
		}
		now := s.now()
		tok, sess, err = s.insertSession(ctx, tx, userID, 0, now.Add(s.o.AbsoluteTimeout))
		return err
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("account: new session: %w", err)
	}
	return tok, sess, nil
}

// insertSession adds a session of a user or a grant ending at expires.
func (s *Store) insertSession(ctx context.Context, tx pgx.Tx, userID, grantID int64, expires time.Time) (string, Session, error) {
	tok, sum, err := newToken()
	if err != nil {
		return "", Session{}, err
	}
	csrf := make([]byte, tokenBytes)
	if _, err := rand.Read(csrf); err != nil {
		return "", Session{}, fmt.Errorf("account: csrf secret: %w", err)
	}
	now := s.now()
	sess := Session{UserID: userID, GrantID: grantID, CreatedAt: now, LastSeen: now, ExpiresAt: expires, csrf: csrf}
	sess.IdleExpiresAt = s.idleEnd(sess)
	err = tx.QueryRow(ctx, `
		INSERT INTO sessions (token_sha256, user_id, grant_id, csrf_secret, created_at, last_seen_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING session_id`,
		sum, nullID(userID), nullID(grantID), csrf, now, expires).Scan(&sess.ID)
	if err != nil {
		return "", Session{}, err
	}
	return tok, sess, nil
}

func (s *Store) idleEnd(sess Session) time.Time {
	return earlier(sess.LastSeen.Add(s.o.IdleTimeout), sess.ExpiresAt)
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// Session returns the live session named by token and marks it used:
// last_seen moves on (the idle timeout slides) when it is older than
// Options.TouchEvery. ErrNoSession for a token that is unknown, revoked,
// idle longer than IdleTimeout, past its absolute end, of a disabled user,
// or of a revoked or expired grant.
func (s *Store) Session(ctx context.Context, token string) (Session, error) {
	if token == "" {
		return Session{}, ErrNoSession
	}
	now := s.now()
	var sess Session
	err := s.pool.QueryRow(ctx, `
		SELECT s.session_id, coalesce(s.user_id, 0), coalesce(s.grant_id, 0), s.csrf_secret,
		       s.created_at, s.last_seen_at, s.expires_at
		FROM sessions s
		LEFT JOIN users u ON u.user_id = s.user_id
		LEFT JOIN inspector_grants g ON g.grant_id = s.grant_id
		WHERE s.token_sha256 = $1 AND s.revoked_at IS NULL
		  AND s.expires_at > $2 AND s.last_seen_at > $3
		  AND (s.user_id IS NULL OR u.disabled_at IS NULL)
		  AND (s.grant_id IS NULL OR (g.revoked_at IS NULL AND g.expires_at > $2))`,
		hashToken(token), now, now.Add(-s.o.IdleTimeout)).
		Scan(&sess.ID, &sess.UserID, &sess.GrantID, &sess.csrf, &sess.CreatedAt, &sess.LastSeen, &sess.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Session{}, ErrNoSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("account: session: %w", err)
	}
	if now.Sub(sess.LastSeen) >= s.o.TouchEvery {
		if _, err := s.pool.Exec(ctx, `UPDATE sessions SET last_seen_at = $2 WHERE session_id = $1 AND last_seen_at < $2`,
			sess.ID, now); err != nil {
			return Session{}, fmt.Errorf("account: touch session: %w", err)
		}
		sess.LastSeen = now
	}
	sess.IdleExpiresAt = s.idleEnd(sess)
	return sess, nil
}

// Revoke ends the session named by token (logout). An unknown or already
// ended session is not an error.
func (s *Store) Revoke(ctx context.Context, token string) error {
	_, err := s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE token_sha256 = $1 AND revoked_at IS NULL`,
		hashToken(token), s.now())
	if err != nil {
		return fmt.Errorf("account: revoke session: %w", err)
	}
	return nil
}

// RevokeAllForUser ends every session of a user ("log out everywhere"),
// and reports how many it ended. by is the user itself, or an admin of
// every organisation it belongs to.
func (s *Store) RevokeAllForUser(ctx context.Context, by Principal, userID int64) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := mayAdminister(ctx, tx, by, userID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrForbidden
		}
		tag, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, s.now())
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		orgs, err := userOrgs(ctx, tx, userID)
		if err != nil {
			return err
		}
		return record(ctx, tx, by, ActionSessionsRevokedAll, orgs, 0, map[string]any{"user_id": userID, "sessions": n})
	})
	if err != nil {
		return 0, fmt.Errorf("account: revoke sessions: %w", err)
	}
	return n, nil
}

// CSRFToken returns a token for a form or a request header of sess
// (synchronizer token pattern: the secret is per session, stored on the
// server, and never in a cookie). Every call gives a different token, the
// secret masked with a fresh one-time pad, so that a compressed page does
// not leak it byte by byte (BREACH); all of them check.
func CSRFToken(sess Session) string {
	pad := make([]byte, len(sess.csrf))
	if _, err := rand.Read(pad); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	out := make([]byte, 2*len(pad))
	copy(out, pad)
	for i, b := range sess.csrf {
		out[len(pad)+i] = pad[i] ^ b
	}
	return base64.RawURLEncoding.EncodeToString(out)
}

// CheckCSRF reports whether token, from a form field or the CSRFHeader of
// an unsafe request (POST, PUT, PATCH, DELETE), belongs to sess. The
// comparison is constant-time.
func CheckCSRF(sess Session, token string) bool {
	if len(sess.csrf) != tokenBytes || len(token) > 4*tokenBytes {
		return false
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) != 2*tokenBytes {
		return false
	}
	got := make([]byte, tokenBytes)
	for i := range got {
		got[i] = raw[i] ^ raw[tokenBytes+i]
	}
	return subtle.ConstantTimeCompare(got, sess.csrf) == 1
}

// Cleanup deletes what has outlived its use: pending logins past their
// time, sessions ended more than a retention period ago (kept that long so
// that an incident can be traced), and throttle counters whose window and
// lock have passed. A daemon calls it every few minutes.
func (s *Store) Cleanup(ctx context.Context, sessionRetention time.Duration) error {
	now := s.now()
	maxWindow := max(s.o.AccountLimit.Window, s.o.IPLimit.Window, s.o.RedeemLimit.Window)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM pending_logins WHERE expires_at <= $1`, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
			DELETE FROM sessions WHERE least(expires_at, coalesce(revoked_at, 'infinity')) < $1`, now.Add(-sessionRetention)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
			DELETE FROM login_throttle WHERE last_failure < $1 AND (locked_until IS NULL OR locked_until < $2)`,
			now.Add(-maxWindow), now)
		return err
	})
	if err != nil {
		return fmt.Errorf("account: cleanup: %w", err)
	}
	return nil
}
