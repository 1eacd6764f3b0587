package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// grantCodeChars is the length of an inspector code: 8 characters of
// codeAlphabet, 40 bits, read out or typed from the site manager's phone.
// Guessing is held off by DefaultRedeemLimit and the grant's short life.
const grantCodeChars = 8

// NewGrant asks for an inspector grant.
type NewGrant struct {
	SiteID int64
	// TTL is how long the grant lasts; 0 means Options.GrantTTL, and more
	// than MaxGrantTTL is refused.
	TTL time.Duration
	// MaxUses is how many inspector sessions it may open; 0 means
	// Options.GrantMaxUses.
	MaxUses int
}

// Grant is read-only access to one site for an inspection (kontrollbesök).
type Grant struct {
	ID        int64
	SiteID    int64
	OrgID     int64 // the site's owner
	CreatedBy int64 // the user who granted it
	CreatedAt time.Time
	ExpiresAt time.Time
	MaxUses   int
	Uses      int
	RevokedAt *time.Time
}

// IssuedGrant is a Grant with its secrets, returned once by CreateGrant.
type IssuedGrant struct {
	Grant
	// LinkToken goes into the link the site manager sends or shows as a QR
	// code (the web layer builds the URL).
	LinkToken string
	// Code is the short code, grouped "ABCD-EFGH", for reading out.
	Code string
}

// CreateGrant lets an inspector read one site for a while: by must be
// allowed ActGrantInspector there (a manager of the site or an org admin of
// its owner). The creation is audit-logged with the granting user.
func (s *Store) CreateGrant(ctx context.Context, by Principal, g NewGrant) (IssuedGrant, error) {
	if g.TTL == 0 {
		g.TTL = s.o.GrantTTL
	}
	if g.MaxUses == 0 {
		g.MaxUses = s.o.GrantMaxUses
	}
	switch {
	case g.TTL < time.Minute || g.TTL > MaxGrantTTL:
		return IssuedGrant{}, fmt.Errorf("%w: an inspector grant lasts from a minute to %s", ErrInvalid, MaxGrantTTL)
	case g.MaxUses < 1 || g.MaxUses > 100:
		return IssuedGrant{}, fmt.Errorf("%w: an inspector grant opens 1-100 sessions", ErrInvalid)
	}
	site, err := s.Site(ctx, g.SiteID)
	if err != nil {
		return IssuedGrant{}, err
	}
	if by.UserID == 0 || !Allowed(by, site, ActGrantInspector) {
		return IssuedGrant{}, ErrForbidden
	}
	var out IssuedGrant
	for attempt := 0; ; attempt++ {
		out, err = s.insertGrant(ctx, by, site, g)
		// A code collides with an old grant's about once in a million
		// grants: draw again.
		if err == nil || !isUniqueViolation(err) || attempt == 3 {
			break
		}
	}
	if err != nil {
		return IssuedGrant{}, fmt.Errorf("account: create grant: %w", err)
	}
	return out, nil
}

func (s *Store) insertGrant(ctx context.Context, by Principal, site Site, g NewGrant) (IssuedGrant, error) {
	link, linkSum, err := newToken()
	if err != nil {
		return IssuedGrant{}, err
	}
	code, err := newCode(grantCodeChars)
	if err != nil {
		return IssuedGrant{}, err
	}
	now := s.now()
	out := IssuedGrant{
		Grant: Grant{SiteID: site.ID, OrgID: site.Owner, CreatedBy: by.UserID, CreatedAt: now,
			ExpiresAt: now.Add(g.TTL), MaxUses: g.MaxUses},
		LinkToken: link, Code: groupCode(code),
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO inspector_grants (site_id, org_id, created_by, created_at, expires_at, link_sha256, code_sha256, max_uses)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING grant_id`,
			site.ID, site.Owner, by.UserID, now, out.ExpiresAt, linkSum, hashToken(code), g.MaxUses).Scan(&out.ID)
		if err != nil {
			return err
		}
		return record(ctx, tx, by, ActionInspectorGrant, []int64{site.Owner}, site.ID, map[string]any{
			"grant_id": out.ID, "granted_by": by.UserID, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339), "max_uses": g.MaxUses,
		})
	})
	return out, err
}

// RedeemGrant opens an inspector session from a grant's link token or code
// (either; a code in any case, with or without its hyphen), from remoteIP.
// The session reads only the grant's site and ends with the grant at the
// latest. The redemption is audit-logged with the granting user. Errors:
// *ThrottledError after too many failures from the address;
// ErrGrantInvalid for anything unknown, expired, revoked or used up.
func (s *Store) RedeemGrant(ctx context.Context, secret, remoteIP string) (string, Session, error) {
	ip := keyFor(s.o.RedeemLimit, ipSubject(remoteIP))
	if err := s.reserve(ctx, ip); err != nil {
		return "", Session{}, err
	}
	column, sum := "link_sha256", hashToken(secret)
	if c := canonicalCode(secret); len(c) == grantCodeChars {
		column, sum = "code_sha256", hashToken(c)
	}
	var tok string
	var sess Session
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var g Grant
		err := tx.QueryRow(ctx, `
			SELECT grant_id, site_id, org_id, created_by, expires_at, max_uses, uses, revoked_at
			FROM inspector_grants WHERE `+column+` = $1 FOR UPDATE`, sum).
			Scan(&g.ID, &g.SiteID, &g.OrgID, &g.CreatedBy, &g.ExpiresAt, &g.MaxUses, &g.Uses, &g.RevokedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrGrantInvalid
		}
		if err != nil {
			return err
		}
		now := s.now()
		if g.RevokedAt != nil || !g.ExpiresAt.After(now) || g.Uses >= g.MaxUses {
			return ErrGrantInvalid
		}
		if _, err := tx.Exec(ctx, `UPDATE inspector_grants SET uses = uses + 1 WHERE grant_id = $1`, g.ID); err != nil {
			return err
		}
		if tok, sess, err = s.insertSession(ctx, tx, 0, g.ID, earlier(g.ExpiresAt, now.Add(s.o.AbsoluteTimeout))); err != nil {
			return err
		}
		if err := s.succeed(ctx, tx, nil, []throttleKey{ip}); err != nil {
			return err
		}
		by := Principal{Inspector: &InspectorScope{GrantID: g.ID}}
		return record(ctx, tx, by, ActionInspectorRedeem, []int64{g.OrgID}, g.SiteID, map[string]any{
			"grant_id": g.ID, "granted_by": g.CreatedBy, "session_id": sess.ID, "use": g.Uses + 1, "ip": auditIP(remoteIP),
		})
	})
	if errors.Is(err, ErrGrantInvalid) {
		return "", Session{}, ErrGrantInvalid
	}
	if err != nil {
		return "", Session{}, fmt.Errorf("account: redeem grant: %w", err)
	}
	return tok, sess, nil
}

// RevokeGrant ends a grant and every session opened with it. by must be
// allowed ActGrantInspector at the grant's site.
func (s *Store) RevokeGrant(ctx context.Context, by Principal, grantID int64) error {
	var siteID int64
	err := s.pool.QueryRow(ctx, `SELECT site_id FROM inspector_grants WHERE grant_id = $1`, grantID).Scan(&siteID)
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("account: revoke grant: %w", err)
	}
	site, err := s.Site(ctx, siteID)
	if err != nil {
		return err
	}
	if by.UserID == 0 || !Allowed(by, site, ActGrantInspector) {
		return ErrNotFound
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		now := s.now()
		tag, err := tx.Exec(ctx, `UPDATE inspector_grants SET revoked_at = $2, revoked_by = $3 WHERE grant_id = $1 AND revoked_at IS NULL`,
			grantID, now, by.UserID)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL`, grantID, now); err != nil {
			return err
		}
		return record(ctx, tx, by, ActionInspectorRevoke, []int64{site.Owner}, site.ID, map[string]any{"grant_id": grantID})
	})
	if err != nil {
		return fmt.Errorf("account: revoke grant: %w", err)
	}
	return nil
}

// Grants lists a site's inspector grants, newest first, for the site
// manager's page. by must be allowed ActGrantInspector there.
func (s *Store) Grants(ctx context.Context, by Principal, siteID int64) ([]Grant, error) {
	site, err := s.Site(ctx, siteID)
	if err != nil {
		return nil, err
	}
	if !Allowed(by, site, ActGrantInspector) {
		return nil, ErrNotFound
	}
	rows, err := s.pool.Query(ctx, `
		SELECT grant_id, site_id, org_id, created_by, created_at, expires_at, max_uses, uses, revoked_at
		FROM inspector_grants WHERE site_id = $1 ORDER BY grant_id DESC`, siteID)
	if err != nil {
		return nil, fmt.Errorf("account: grants: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Grant, error) {
		var g Grant
		err := row.Scan(&g.ID, &g.SiteID, &g.OrgID, &g.CreatedBy, &g.CreatedAt, &g.ExpiresAt, &g.MaxUses, &g.Uses, &g.RevokedAt)
		return g, err
	})
	if err != nil {
		return nil, fmt.Errorf("account: grants: %w", err)
	}
	return out, nil
}
