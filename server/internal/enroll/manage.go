package enroll

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/audit"
)

// ActionCodeCancel is an enrollment code cancelled before it was used.
const ActionCodeCancel = "terminal.enrollment_code.cancel"

// MaxOutstandingCodes bounds the codes OutstandingCodes lists: a site
// needs a handful; more is a mistake worth cleaning up, not a page to
// scroll.
const MaxOutstandingCodes = 200

// ErrCodeNotFound: no enrollment code with that id at that site.
var ErrCodeNotFound = errors.New("enroll: no such enrollment code at the site")

// CodeInfo is an enrollment code as a list shows it: never the code
// itself, which is kept only as a hash.
type CodeInfo struct {
	ID         int64
	SiteID     int64
	TerminalID string // "" when the installer may choose
	Direction  string
	CreatedAt  time.Time
	CreatedBy  string
	ExpiresAt  time.Time
}

// OutstandingCodes lists the site's codes that can still be used at now
// (not used, not expired, not cancelled), newest first.
func (s *Store) OutstandingCodes(ctx context.Context, siteID int64, now time.Time) ([]CodeInfo, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT code_id, site_id, coalesce(terminal_id, ''), direction, created_at, created_by, expires_at
		FROM enrollment_codes
		WHERE site_id = $1 AND used_at IS NULL AND expires_at > $2
		ORDER BY code_id DESC LIMIT $3`, siteID, now, MaxOutstandingCodes)
	if err != nil {
		return nil, fmt.Errorf("enroll: outstanding codes: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[CodeInfo])
	if err != nil {
		return nil, fmt.Errorf("enroll: outstanding codes: %w", err)
	}
	return out, nil
}

// CancelCode makes an unused code of the site unusable from now on and
// records who did it; orgID is the organisation the actor acts for. The
// code's row is kept (as every code's is): cancelling ends its lifetime
// now, so the kiosk that tries it later is told it has expired. Cancelling
// a code that is already used or expired changes nothing and is not an
// error; a code of another site is ErrCodeNotFound.
func (s *Store) CancelCode(ctx context.Context, siteID, codeID int64, actor string, orgID int64) error {
	now := s.Now()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner int64
		var outstanding bool
		err := tx.QueryRow(ctx, `
			SELECT s.org_id, c.used_at IS NULL AND c.expires_at > $3
			FROM enrollment_codes c JOIN sites s USING (site_id)
			WHERE c.code_id = $1 AND c.site_id = $2
			FOR UPDATE OF c`, codeID, siteID, now).Scan(&owner, &outstanding)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrCodeNotFound
		}
		if err != nil {
			return err
		}
		if !outstanding {
			return nil
		}
		// expires_at > created_at is a CHECK: a code cancelled in the
		// microsecond it was made ends one microsecond later.
		if _, err := tx.Exec(ctx, `
			UPDATE enrollment_codes SET expires_at = greatest($2, created_at + interval '1 microsecond')
			WHERE code_id = $1`, codeID, now); err != nil {
			return err
		}
		return audit.Record(ctx, tx, audit.Entry{Actor: actor, ActorOrgID: orgID, Action: ActionCodeCancel,
			OrgID: owner, SiteID: siteID, Detail: map[string]any{"code_id": codeID}})
	})
	if errors.Is(err, ErrCodeNotFound) {
		return err
	}
	if err != nil {
		return fmt.Errorf("enroll: cancel code: %w", err)
	}
	return nil
}

// CredentialState is what is known about a terminal's credentials, without
// any secret.
type CredentialState struct {
	// Active counts the credentials the server accepts now; two during a
	// rotation, none for a revoked terminal.
	Active int
	// RotationPending: a rotated credential is issued and not yet used, so
	// the one it replaces still works.
	RotationPending bool
	// IssuedAt and IssuedBy (auth.IssuedBy*) describe the newest active
	// credential; zero when none is active.
	IssuedAt time.Time
	IssuedBy string
	// RevokedAt is when the newest credential was revoked, for a terminal
	// with none active; nil otherwise.
	RevokedAt *time.Time
	// HasKey: the terminal holds an enrolled key (it can rotate by
	// itself); terminals given a credential by the CLI have none.
	HasKey bool
}

// Credentials returns the credential state of each terminal named.
// Terminals without any credential are missing from the map.
func (s *Store) Credentials(ctx context.Context, terminalIDs []string) (map[string]CredentialState, error) {
	out := make(map[string]CredentialState, len(terminalIDs))
	if len(terminalIDs) == 0 {
		return out, nil
	}
	rows, err := s.pool.Query(ctx, `
		SELECT c.terminal_id,
		       count(*) FILTER (WHERE c.revoked_at IS NULL),
		       bool_or(c.revoked_at IS NULL AND c.replaces IS NOT NULL AND c.confirmed_at IS NULL),
		       max(c.created_at) FILTER (WHERE c.revoked_at IS NULL),
		       (array_agg(c.issued_by ORDER BY c.credential_id DESC) FILTER (WHERE c.revoked_at IS NULL))[1],
		       max(c.revoked_at),
		       EXISTS (SELECT 1 FROM terminal_keys k WHERE k.terminal_id = c.terminal_id AND k.revoked_at IS NULL)
		FROM terminal_credentials c
		WHERE c.terminal_id = ANY($1)
		GROUP BY c.terminal_id`, terminalIDs)
	if err != nil {
		return nil, fmt.Errorf("enroll: credentials: %w", err)
	}
	var id string
	var st CredentialState
	var issuedAt, revokedAt *time.Time
	var issuedBy *string
	_, err = pgx.ForEachRow(rows, []any{&id, &st.Active, &st.RotationPending, &issuedAt, &issuedBy, &revokedAt, &st.HasKey}, func() error {
		c := st
		if issuedAt != nil {
			c.IssuedAt = *issuedAt
		}
		if issuedBy != nil {
			c.IssuedBy = *issuedBy
		}
		if c.Active == 0 && revokedAt != nil {
			t := *revokedAt
			c.RevokedAt = &t
		}
		out[id] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("enroll: credentials: %w", err)
	}
	return out, nil
}
