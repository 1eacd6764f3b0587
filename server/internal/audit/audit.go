package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Actions written by the packages of this module. Other packages may use
// their own names of the same form: dotted lower-case words.
const (
	// ActionIdentityRead is a person's full identity number shown to a user.
	ActionIdentityRead = "person.identity.read"
	// ActionLedgerExport is a ledger exported (to a file, or to Skatteverket).
	ActionLedgerExport = "ledger.export"
	// ActionRegisterExtract is a register extract (registerutdrag) of one
	// person, under GDPR articles 15 and 20.
	ActionRegisterExtract = "register_extract"
	// ActionRetentionAnonymise is a person anonymised after retention.
	ActionRetentionAnonymise = "retention.anonymise"
	// ActionRetentionUnknownTaps is the card ids of unknown taps at a site
	// anonymised after retention.
	ActionRetentionUnknownTaps = "retention.anonymise_unknown_taps"
	// ActionRetentionRejectedTaps is the card ids of dead-lettered and
	// conflicting taps anonymised after retention.
	ActionRetentionRejectedTaps = "retention.anonymise_rejected_taps"
)

// Limits of an entry.
const (
	// MaxActorBytes is the longest actor accepted.
	MaxActorBytes = 320
	// MaxDetailBytes is the longest detail accepted, as JSON.
	MaxDetailBytes = 8 << 10
)

var (
	// ErrInvalid is wrapped by Record's error for an entry that breaks a
	// rule (no actor, a malformed action, a detail too large); the message
	// says which.
	ErrInvalid = errors.New("audit: invalid entry")
	// ErrIdentityNumber is wrapped by Record's error for an entry whose actor
	// or detail looks as if it held an identity number. The message does not
	// repeat it.
	ErrIdentityNumber = errors.New("audit: entry looks like it holds an identity number")
)

var (
	actionForm = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$`)
	// identityLike matches ten or more digits in a row (a personnummer or
	// samordningsnummer without separator, or an organisationsnummer), and
	// numbers written with their separator: NNNNNN-NNNN, NNNNNNNN-NNNN, and
	// the + a centenarian's number has.
	identityLike = regexp.MustCompile(`[0-9]{10,}|[0-9]{6}(?:[0-9]{2})?[-+][0-9]{4}`)
)

// Entry is one row of the audit log. Zero ids mean "none".
type Entry struct {
	// ID is the entry's id, set by List; Record ignores it.
	ID int64
	// At is when the entry was written, set by the database (the start of
	// the writing transaction); Record ignores it.
	At time.Time
	// Actor is who acted: a user id or e-mail, or a system job such as
	// "system:retention".
	Actor string
	// ActorOrgID is the tenant the actor acted for; 0 for system jobs.
	ActorOrgID int64
	// Action names what was done, e.g. ActionIdentityRead.
	Action string
	// OrgID is the tenant the data belongs to (the controller).
	OrgID int64
	// SiteID is the site the data is about, if one.
	SiteID int64
	// PersonID is the person the data is about, if one.
	PersonID int64
	// Detail holds ids and counts as a JSON object; never an identity number.
	Detail map[string]any
}

// Querier runs a statement. *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy
// it; pass the transaction that does the work being logged.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// RowQuerier runs a query. *pgxpool.Pool, *pgx.Conn and pgx.Tx satisfy it.
type RowQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Record appends e to the audit log through q. The error wraps ErrInvalid
// or ErrIdentityNumber for an entry that breaks the rules above, and is
// otherwise the database's.
func Record(ctx context.Context, q Querier, e Entry) error {
	detail, err := check(e)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `
		INSERT INTO audit_log (actor, actor_org_id, action, org_id, site_id, person_id, detail)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		e.Actor, nullID(e.ActorOrgID), e.Action, nullID(e.OrgID), nullID(e.SiteID), nullID(e.PersonID), string(detail))
	if err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return nil
}

// check validates e and returns its detail as JSON.
func check(e Entry) ([]byte, error) {
	if e.Actor == "" || len(e.Actor) > MaxActorBytes {
		return nil, fmt.Errorf("%w: actor must be 1-%d bytes", ErrInvalid, MaxActorBytes)
	}
	if identityLike.MatchString(e.Actor) {
		return nil, fmt.Errorf("%w: in the actor", ErrIdentityNumber)
	}
	if !actionForm.MatchString(e.Action) {
		return nil, fmt.Errorf("%w: action %q is not dotted lower-case words", ErrInvalid, e.Action)
	}
	detail := []byte("{}")
	if len(e.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(e.Detail); err != nil {
			return nil, fmt.Errorf("%w: detail: %v", ErrInvalid, err)
		}
	}
	if len(detail) > MaxDetailBytes {
		return nil, fmt.Errorf("%w: detail is %d bytes, limit %d", ErrInvalid, len(detail), MaxDetailBytes)
	}
	if identityLike.Match(detail) {
		return nil, fmt.Errorf("%w: in the detail of %s", ErrIdentityNumber, e.Action)
	}
	return detail, nil
}

// Filter selects entries for List. Zero fields select everything.
type Filter struct {
	PersonID int64
	SiteID   int64
	Action   string
	// Actor selects one actor's entries.
	Actor string
	// Sites, when not nil, keeps only entries about one of these sites (a
	// site manager's view of the log); an empty, non-nil slice keeps none.
	Sites []int64
	// From and To bound At: From <= At < To.
	From, To time.Time
	// BeforeID, for paging, selects entries older than the one with this id.
	BeforeID int64
	// Limit is the most entries returned; 0 means all. Pages shown to users
	// should set it.
	Limit int
}

// List returns the entries viewerOrg may see that match f, newest first:
// those about its data (org_id) and those of its users (actor_org_id).
func List(ctx context.Context, q RowQuerier, viewerOrg int64, f Filter) ([]Entry, error) {
	if viewerOrg <= 0 {
		return nil, fmt.Errorf("%w: no viewer", ErrInvalid)
	}
	var limit *int
	if f.Limit > 0 {
		limit = &f.Limit
	}
	rows, err := q.Query(ctx, `
		SELECT audit_id, at, actor, coalesce(actor_org_id, 0), action, coalesce(org_id, 0),
		       coalesce(site_id, 0), coalesce(person_id, 0), detail
		FROM audit_log
		WHERE (org_id = $1 OR actor_org_id = $1)
		  AND ($2::bigint = 0 OR person_id = $2) AND ($3::bigint = 0 OR site_id = $3)
		  AND ($4::text = '' OR action = $4)
		  AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
		  AND ($7::bigint = 0 OR audit_id < $7)
		  AND ($9::text = '' OR actor = $9) AND ($10::bigint[] IS NULL OR site_id = ANY($10))
		ORDER BY audit_id DESC
		LIMIT $8`,
		viewerOrg, f.PersonID, f.SiteID, f.Action, nullTime(f.From), nullTime(f.To), f.BeforeID, limit, f.Actor, f.Sites)
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Entry, error) {
		var e Entry
		var detail []byte
		if err := row.Scan(&e.ID, &e.At, &e.Actor, &e.ActorOrgID, &e.Action, &e.OrgID, &e.SiteID, &e.PersonID, &detail); err != nil {
			return e, err
		}
		if err := json.Unmarshal(detail, &e.Detail); err != nil {
			return e, fmt.Errorf("detail of entry %d: %w", e.ID, err)
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("audit: list: %w", err)
	}
	return out, nil
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
