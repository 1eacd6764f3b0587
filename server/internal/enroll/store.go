package enroll

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/auth"
	"github.com/liggare/liggare/server/internal/idnum"
)

// Code lifetimes.
const (
	DefaultTTL = 24 * time.Hour
	MinTTL     = time.Minute
	MaxTTL     = 30 * 24 * time.Hour
)

// Audit actions written by this package.
const (
	ActionCodeCreate = "terminal.enrollment_code.create"
	ActionEnroll     = "terminal.enroll"
	ActionRotate     = "terminal.credential.rotate"
	ActionRevoke     = "terminal.revoke"
)

// Errors. Each maps to one ErrorResponse code.
var (
	ErrCodeInvalid   = errors.New("enroll: enrollment code unknown")
	ErrCodeUsed      = errors.New("enroll: enrollment code already used")
	ErrCodeExpired   = errors.New("enroll: enrollment code expired")
	ErrSignature     = errors.New("enroll: signature does not verify with the terminal's key")
	ErrTerminalID    = errors.New("enroll: the code is for another terminal id")
	ErrTerminalTaken = errors.New("enroll: terminal id belongs to a site of another organisation")
	ErrNoKey         = errors.New("enroll: the terminal has no key (it was not enrolled with a code): enroll it again")
	// ErrInvalid is wrapped for bad input to CreateCode; the message says
	// what.
	ErrInvalid = errors.New("enroll: invalid input")
	// ErrSiteNotFound: no such site (for this organisation).
	ErrSiteNotFound = errors.New("enroll: site not found")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

var directions = map[string]bool{"in": true, "out": true, "toggle": true}

// Store keeps enrollment codes and terminal keys in PostgreSQL.
type Store struct {
	pool      *pgxpool.Pool
	terminals *auth.Terminals
	// Now is the clock codes are created and checked by; tests replace it.
	Now func() time.Time
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool, terminals *auth.Terminals) *Store {
	return &Store{pool: pool, terminals: terminals, Now: time.Now}
}

// CodeRequest asks for an enrollment code.
type CodeRequest struct {
	// SiteIdent is the site's identifikationsnummer.
	SiteIdent string
	// OrgID, when non-zero, is the organisation of the person asking: the
	// site must be one of its own (the web UI). The CLI is the operator's
	// and passes zero.
	OrgID int64
	// TerminalID, when set, is the only terminal id the code enrolls.
	TerminalID string
	// Direction is the reader's mode: in, out or toggle (default toggle).
	Direction string
	// TTL is how long the code may be used (default DefaultTTL).
	TTL time.Duration
	// CreatedBy names who asked, for the audit log ("cli:root",
	// a user's e-mail).
	CreatedBy string
}

// Code is a created enrollment code.
type Code struct {
	ID int64
	// Code is the canonical code, shown once; FormatCode prints it.
	Code       string
	SiteID     int64
	SiteIdent  string
	TerminalID string
	Direction  string
	ExpiresAt  time.Time
}

// CreateCode creates an enrollment code and records it in the audit log.
func (s *Store) CreateCode(ctx context.Context, r CodeRequest) (Code, error) {
	site, err := idnum.ParseSiteID(r.SiteIdent)
	if err != nil {
		return Code{}, invalid("site: %v", err)
	}
	if r.Direction == "" {
		r.Direction = "toggle"
	}
	if !directions[r.Direction] {
		return Code{}, invalid("direction %q: want in, out or toggle", r.Direction)
	}
	if r.TTL == 0 {
		r.TTL = DefaultTTL
	}
	if r.TTL < MinTTL || r.TTL > MaxTTL {
		return Code{}, invalid("lifetime %v: want %v to %v", r.TTL, MinTTL, MaxTTL)
	}
	if r.TerminalID != "" && !auth.ValidTerminalID(r.TerminalID) {
		return Code{}, invalid("terminal id %q: want 1-64 of A-Z a-z 0-9 _ -", r.TerminalID)
	}
	if strings.TrimSpace(r.CreatedBy) == "" {
		return Code{}, invalid("no author")
	}
	now := s.Now()
	for attempt := 0; ; attempt++ {
		out, err := s.createCode(ctx, r, site, now)
		// A new code equal to one ever issued is astronomically rare; the
		// UNIQUE constraint catches it, and a fresh draw fixes it.
		if isUnique(err) && attempt < 3 {
			continue
		}
		return out, err
	}
}

func (s *Store) createCode(ctx context.Context, r CodeRequest, site idnum.SiteID, now time.Time) (Code, error) {
	code, err := newCode()
	if err != nil {
		return Code{}, err
	}
	sum := sha256.Sum256([]byte(code))
	out := Code{Code: code, SiteIdent: site.String(), TerminalID: r.TerminalID, Direction: r.Direction,
		ExpiresAt: now.Add(r.TTL)}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var orgID int64
		var ended *time.Time
		err := tx.QueryRow(ctx, `SELECT site_id, org_id, ended_at FROM sites WHERE site_ident = $1`, site.String()).
			Scan(&out.SiteID, &orgID, &ended)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && r.OrgID != 0 && orgID != r.OrgID) {
			return fmt.Errorf("%w: %s", ErrSiteNotFound, site)
		}
		if err != nil {
			return err
		}
		if ended != nil && !ended.After(now) {
			return invalid("site %s ended on %s", site, ended.Format(time.DateOnly))
		}
		if r.TerminalID != "" {
			if err := checkTenant(ctx, tx, r.TerminalID, orgID); err != nil {
				return err
			}
		}
		if err := tx.QueryRow(ctx, `
			INSERT INTO enrollment_codes (code_sha256, site_id, terminal_id, direction, created_at, created_by, expires_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING code_id`,
			sum[:], out.SiteID, nullString(r.TerminalID), r.Direction, now, r.CreatedBy, out.ExpiresAt).Scan(&out.ID); err != nil {
			return err
		}
		detail := map[string]any{"code_id": out.ID, "direction": r.Direction, "expires_at": out.ExpiresAt.UTC().Format(time.RFC3339)}
		if r.TerminalID != "" {
			detail["terminal_id"] = r.TerminalID
		}
		return audit.Record(ctx, tx, audit.Entry{Actor: r.CreatedBy, ActorOrgID: r.OrgID, Action: ActionCodeCreate,
			OrgID: orgID, SiteID: out.SiteID, Detail: detail})
	})
	if err != nil {
		return Code{}, wrap("create code", err)
	}
	return out, nil
}

// wrap adds context to a database error and leaves the package's own
// errors as they are.
func wrap(op string, err error) error {
	for _, e := range []error{ErrCodeInvalid, ErrCodeUsed, ErrCodeExpired, ErrSignature, ErrTerminalID,
		ErrTerminalTaken, ErrNoKey, ErrInvalid, ErrSiteNotFound, auth.ErrUnauthorized} {
		if errors.Is(err, e) {
			return err
		}
	}
	return fmt.Errorf("enroll: %s: %w", op, err)
}

// checkTenant refuses a terminal id that stands, or stood, on a site of
// another organisation: a code must not hand one tenant's kiosk to another.
func checkTenant(ctx context.Context, tx pgx.Tx, terminalID string, orgID int64) error {
	var other bool
	if err := tx.QueryRow(ctx, `
		SELECT EXISTS (SELECT 1 FROM terminal_assignments ta JOIN sites s USING (site_id)
		WHERE ta.terminal_id = $1 AND s.org_id <> $2)`, terminalID, orgID).Scan(&other); err != nil {
		return err
	}
	if other {
		return ErrTerminalTaken
	}
	return nil
}

// newCode draws a code: 256 is a multiple of len(Alphabet), so masking a
// random byte keeps the characters uniform.
func newCode() (string, error) {
	var raw [CodeLength]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("enroll: new code: %w", err)
	}
	for i, b := range raw {
		raw[i] = Alphabet[int(b)%len(Alphabet)]
	}
	return string(raw[:]), nil
}

// newTerminalID names a terminal whose code and request named none.
func newTerminalID() (string, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("enroll: new terminal id: %w", err)
	}
	for i, b := range raw {
		raw[i] = Alphabet[int(b)%len(Alphabet)]
	}
	return "T-" + string(raw[:]), nil
}

// Redeem enrolls a terminal with a code (see the package documentation).
func (s *Store) Redeem(ctx context.Context, req EnrollRequest) (EnrollResponse, error) {
	code, err := NormalizeCode(req.Code)
	if err != nil {
		return EnrollResponse{}, ErrCodeInvalid
	}
	if req.TerminalID != "" && !auth.ValidTerminalID(req.TerminalID) {
		return EnrollResponse{}, invalid("terminal id %q: want 1-64 of A-Z a-z 0-9 _ -", req.TerminalID)
	}
	if len(req.PublicKey) != ed25519.PublicKeySize ||
		!ed25519.Verify(req.PublicKey, EnrollMessage(code, req.TerminalID, req.PublicKey), req.Signature) {
		return EnrollResponse{}, ErrSignature
	}
	sum := sha256.Sum256([]byte(code))
	now := s.Now()
	var resp EnrollResponse
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var codeID, siteID, orgID int64
		var codeTerminal *string
		var direction, createdBy string
		var expires time.Time
		var used *time.Time
		err := tx.QueryRow(ctx, `
			SELECT c.code_id, c.site_id, s.org_id, s.site_ident, c.terminal_id, c.direction, c.created_by, c.expires_at, c.used_at
			FROM enrollment_codes c JOIN sites s USING (site_id)
			WHERE c.code_sha256 = $1
			FOR UPDATE OF c`, sum[:]).
			Scan(&codeID, &siteID, &orgID, &resp.SiteIdent, &codeTerminal, &direction, &createdBy, &expires, &used)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return ErrCodeInvalid
		case err != nil:
			return err
		case used != nil:
			return ErrCodeUsed
		case !now.Before(expires):
			return ErrCodeExpired
		}
		id := req.TerminalID
		if codeTerminal != nil {
			if id != "" && id != *codeTerminal {
				return fmt.Errorf("%w (%s, not %s)", ErrTerminalID, *codeTerminal, id)
			}
			id = *codeTerminal
		}
		if id == "" {
			if id, err = newTerminalID(); err != nil {
				return err
			}
		}
		if err := checkTenant(ctx, tx, id, orgID); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ($1) ON CONFLICT DO NOTHING`, id)
		if err != nil {
			return err
		}
		resp.Reenrolled = tag.RowsAffected() == 0
		revoked, err := auth.RevokeCredentials(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE terminal_keys SET revoked_at = $2 WHERE terminal_id = $1 AND revoked_at IS NULL`, id, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO terminal_keys (terminal_id, public_key, created_at) VALUES ($1, $2, $3)`,
			id, req.PublicKey, now); err != nil {
			return err
		}
		if resp.Credential, _, err = auth.IssueCredential(ctx, tx, id, auth.IssuedByEnrollment); err != nil {
			return err
		}
		// From now on the terminal stands on the code's site; taps made
		// before (buffered while it was revoked, say) keep the assignment
		// in force when they were made.
		if _, err := tx.Exec(ctx, `
			INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
			VALUES ($1, $2, $3, $4, $5)`, id, now, siteID, direction, fmt.Sprintf("enrollment:%d", codeID)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE enrollment_codes SET used_at = $2, used_by = $3 WHERE code_id = $1`,
			codeID, now, id); err != nil {
			return err
		}
		resp.TerminalID, resp.Direction = id, direction
		return audit.Record(ctx, tx, audit.Entry{Actor: "terminal:" + id, Action: ActionEnroll, OrgID: orgID, SiteID: siteID,
			Detail: map[string]any{"terminal_id": id, "code_id": codeID, "code_created_by": createdBy, "direction": direction,
				"reenrolled": resp.Reenrolled, "revoked_credentials": revoked, "agent_version": req.AgentVersion}})
	})
	if err != nil {
		return EnrollResponse{}, wrap("redeem", err)
	}
	if resp.Reenrolled {
		s.terminals.Forget(resp.TerminalID) // its old credentials were revoked
	}
	return resp, nil
}

// Rotate issues a new credential to the terminal that authenticates with
// credential and signs RotateMessage with its key.
func (s *Store) Rotate(ctx context.Context, credential string, req RotateRequest) (RotateResponse, error) {
	id, err := s.verify(ctx, credential, req, RotateMessage)
	if err != nil {
		return RotateResponse{}, err
	}
	_, credID, err := s.terminals.Authenticate(ctx, credential)
	if err != nil {
		return RotateResponse{}, wrap("rotate", err)
	}
	cred, newID, err := s.terminals.Rotate(ctx, credID)
	if err != nil {
		return RotateResponse{}, wrap("rotate", err)
	}
	if err := s.auditTerminal(ctx, s.pool, "terminal:"+id, ActionRotate, id,
		map[string]any{"terminal_id": id, "credential_id": newID, "replaces": credID}); err != nil {
		return RotateResponse{}, wrap("rotate", err)
	}
	return RotateResponse{Credential: cred}, nil
}

// Confirm confirms a rotated credential: the one it replaced is revoked.
func (s *Store) Confirm(ctx context.Context, credential string, req RotateRequest) (ConfirmResponse, error) {
	id, err := s.verify(ctx, credential, req, ConfirmMessage)
	if err != nil {
		return ConfirmResponse{}, err
	}
	// Authenticate confirms a credential at its first use.
	if _, _, err := s.terminals.Authenticate(ctx, credential); err != nil {
		return ConfirmResponse{}, wrap("confirm", err)
	}
	return ConfirmResponse{TerminalID: id}, nil
}

// verify checks a request's signature with the key of the terminal the
// credential names, before the credential itself is looked at.
func (s *Store) verify(ctx context.Context, credential string, req RotateRequest, message func(string, string, []byte) []byte) (string, error) {
	id, _, ok := strings.Cut(credential, ".")
	if !ok || !auth.ValidTerminalID(id) {
		return "", auth.ErrUnauthorized
	}
	if len(req.Nonce) < MinNonceBytes || len(req.Nonce) > 64 {
		return "", invalid("nonce of %d bytes: want %d to 64", len(req.Nonce), MinNonceBytes)
	}
	var key []byte
	err := s.pool.QueryRow(ctx, `SELECT public_key FROM terminal_keys WHERE terminal_id = $1 AND revoked_at IS NULL`, id).Scan(&key)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNoKey
	}
	if err != nil {
		return "", fmt.Errorf("enroll: terminal key: %w", err)
	}
	if !ed25519.Verify(key, message(id, credential, req.Nonce), req.Signature) {
		return "", ErrSignature
	}
	return id, nil
}

// Revoke revokes every credential of a terminal, at once, and records who
// did it. The terminal is refused at its next connection, and a live
// connection ends at its next credential check. It reports how many
// credentials were revoked.
func (s *Store) Revoke(ctx context.Context, terminalID, actor string) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		if n, err = auth.RevokeCredentials(ctx, tx, terminalID); err != nil {
			return err
		}
		return s.auditTerminal(ctx, tx, actor, ActionRevoke, terminalID,
			map[string]any{"terminal_id": terminalID, "revoked_credentials": n})
	})
	s.terminals.Forget(terminalID)
	if err != nil {
		return 0, wrap("revoke", err)
	}
	return n, nil
}

type querier interface {
	audit.Querier
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// auditTerminal records an action about a terminal, with the site it
// stands on now (if any) and that site's organisation.
func (s *Store) auditTerminal(ctx context.Context, q querier, actor, action, terminalID string, detail map[string]any) error {
	var siteID, orgID int64
	err := q.QueryRow(ctx, `
		SELECT ta.site_id, s.org_id FROM terminal_assignments ta JOIN sites s USING (site_id)
		WHERE ta.terminal_id = $1 AND ta.valid_from <= $2
		ORDER BY ta.valid_from DESC LIMIT 1`, terminalID, s.Now()).Scan(&siteID, &orgID)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	return audit.Record(ctx, q, audit.Entry{Actor: actor, Action: action, OrgID: orgID, SiteID: siteID, Detail: detail})
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// isUnique reports a unique violation.
func isUnique(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}
