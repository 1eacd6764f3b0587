package registry

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/idnum"
	"github.com/liggare/liggare/server/internal/pii"
)

// Errors.
var (
	// ErrNotFound: no such row for this viewer (a row of another tenant is
	// reported the same way, so its existence does not leak).
	ErrNotFound = errors.New("registry: not found")
	// ErrInvalid: the input breaks a rule; the message says which.
	ErrInvalid = errors.New("registry: invalid input")
	// ErrExists: the row already exists (a card number twice, a site id).
	ErrExists = errors.New("registry: already exists")
)

// Field names the input a refusal is about, so that a user interface can
// say which of its fields to fix in its own language.
type Field string

// The fields the registry checks.
const (
	FieldOrgName         Field = "org_name"
	FieldOrgNumber       Field = "org_number"
	FieldSiteIdent       Field = "site_ident"
	FieldSiteName        Field = "site_name"
	FieldByggherreNumber Field = "byggherre_org_number"
	FieldTimeZone        Field = "time_zone"
	FieldHirer           Field = "hired_by"
	FieldPersonName      Field = "person_name"
	FieldIdentity        Field = "identity"
	FieldCardNumber      Field = "card_number"
	FieldChipUID         Field = "chip_uid"
	FieldCardStatus      Field = "card_status"
	FieldValidUntil      Field = "valid_until"
	FieldDirection       Field = "direction"
)

// InputError is a refusal of one field's value. It matches ErrInvalid
// (errors.Is) and, when the value failed a parser, that parser's error
// too, such as idnum.ErrCheckDigit. Its message is English, for logs and
// the CLI.
type InputError struct {
	Field  Field
	Reason string // English: what is wrong
	Err    error  // the parser's error, or nil
}

func (e *InputError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%v: %s: %v", ErrInvalid, e.Reason, e.Err)
	}
	return fmt.Sprintf("%v: %s", ErrInvalid, e.Reason)
}

// Unwrap makes errors.Is see ErrInvalid and the parser's error.
func (e *InputError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalid, e.Err}
	}
	return []error{ErrInvalid}
}

// invalid refuses field's value; err is the parser's error, if any.
func invalid(field Field, err error, format string, args ...any) error {
	return &InputError{Field: field, Reason: fmt.Sprintf(format, args...), Err: err}
}

// Store is the registry in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	keys *pii.Keys
	now  func() time.Time
}

// NewStore returns a Store.
func NewStore(pool *pgxpool.Pool, keys *pii.Keys) *Store {
	return &Store{pool: pool, keys: keys, now: time.Now}
}

func uniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// NewOrganisation describes a tenant to create.
type NewOrganisation struct {
	Name      string
	OrgNumber string // organisationsnummer, or a sole trader's personnummer
}

// CreateOrganisation creates a tenant. This is an operator's action, not a
// tenant's, so it takes no viewer.
func (s *Store) CreateOrganisation(ctx context.Context, o NewOrganisation) (int64, error) {
	name := strings.TrimSpace(o.Name)
	if name == "" {
		return 0, invalid(FieldOrgName, nil, "organisation name is empty")
	}
	num, err := idnum.ParseOrgNumber(o.OrgNumber, s.now())
	if err != nil {
		return 0, invalid(FieldOrgNumber, err, "organisation number")
	}
	var enc, index []byte
	shown := num.String()
	if p, ok := num.Person(); ok {
		index = s.keys.Index(p.String())
		if enc, err = s.keys.Seal([]byte(p.String()), pii.AAD("organisations.org_id_enc", hex.EncodeToString(index))); err != nil {
			return 0, fmt.Errorf("registry: create organisation: %w", err)
		}
		shown = num.Masked()
	}
	var id int64
	err = s.pool.QueryRow(ctx, `
		INSERT INTO organisations (name, org_number, org_id_enc, org_id_index) VALUES ($1, $2, $3, $4)
		RETURNING org_id`, name, shown, enc, index).Scan(&id)
	if uniqueViolation(err) {
		return 0, fmt.Errorf("%w: an organisation with number %s", ErrExists, num.Masked())
	}
	if err != nil {
		return 0, fmt.Errorf("registry: create organisation: %w", err)
	}
	return id, nil
}

// OrganisationByNumber finds an organisation by its organisation number,
// or a sole trader's by the personnummer (through its keyed index), and
// returns its id and name; ErrNotFound when there is none. Organisation
// numbers are public, so this takes no viewer: an org admin putting a
// contractor on a site finds it here before creating it.
func (s *Store) OrganisationByNumber(ctx context.Context, number string) (int64, string, error) {
	num, err := idnum.ParseOrgNumber(number, s.now())
	if err != nil {
		return 0, "", invalid(FieldOrgNumber, err, "organisation number")
	}
	where, arg := "org_number = $1", any(num.String())
	if p, ok := num.Person(); ok {
		where, arg = "org_id_index = $1", s.keys.Index(p.String())
	}
	var id int64
	var name string
	err = s.pool.QueryRow(ctx, `SELECT org_id, name FROM organisations WHERE `+where, arg).Scan(&id, &name)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, "", ErrNotFound
	}
	if err != nil {
		return 0, "", fmt.Errorf("registry: organisation: %w", err)
	}
	return id, name, nil
}

// NewSite describes a construction site.
type NewSite struct {
	Ident              string // Skatteverket's identifikationsnummer
	Name               string
	Address            string
	ByggherreName      string
	ByggherreOrgNumber string
	TimeZone           string // default Europe/Stockholm
}

// CreateSite registers a site owned by viewer, which holds the byggherre's
// duties for it.
func (s *Store) CreateSite(ctx context.Context, viewer int64, n NewSite) (int64, error) {
	ident, err := idnum.ParseSiteID(n.Ident)
	if err != nil {
		return 0, invalid(FieldSiteIdent, err, "site id")
	}
	if strings.TrimSpace(n.Name) == "" {
		return 0, invalid(FieldSiteName, nil, "site name is empty")
	}
	bh, err := idnum.ParseOrgNumber(n.ByggherreOrgNumber, s.now())
	if err != nil {
		return 0, invalid(FieldByggherreNumber, err, "byggherre's organisation number")
	}
	tz := n.TimeZone
	if tz == "" {
		tz = "Europe/Stockholm"
	}
	if _, err := time.LoadLocation(tz); err != nil {
		return 0, invalid(FieldTimeZone, err, "time zone %q", tz)
	}
	var id int64
	err = s.pool.QueryRow(ctx, `
		INSERT INTO sites (org_id, site_ident, name, address, time_zone, byggherre_name, byggherre_org_number)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING site_id`,
		viewer, ident.String(), strings.TrimSpace(n.Name), strings.TrimSpace(n.Address), tz,
		strings.TrimSpace(n.ByggherreName), bh.Masked()).Scan(&id)
	if uniqueViolation(err) {
		return 0, fmt.Errorf("%w: site %s is registered already", ErrExists, ident)
	}
	if err != nil {
		return 0, fmt.Errorf("registry: create site: %w", err)
	}
	return id, nil
}

// AddContractor puts a contractor on a site the viewer owns. hiredBy is the
// organisation that hired it: the owner (0) or a contractor already on the
// site, which records the chain of who hired whom.
func (s *Store) AddContractor(ctx context.Context, viewer, siteID, contractor, hiredBy int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := ownsSite(ctx, tx, viewer, siteID); err != nil {
			return err
		}
		if hiredBy != 0 && hiredBy != viewer {
			// FOR SHARE: the hirer cannot be removed (RemoveContractor)
			// until this contractor is on the site and counted.
			rows, err := tx.Query(ctx, `
				SELECT 1 FROM site_contractors WHERE site_id = $1 AND org_id = $2 AND removed_at IS NULL FOR SHARE`,
				siteID, hiredBy)
			if err != nil {
				return fmt.Errorf("registry: add contractor: %w", err)
			}
			ok := rows.Next()
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("registry: add contractor: %w", err)
			}
			if !ok {
				return invalid(FieldHirer, nil, "the hiring organisation is not on the site")
			}
		}
		var hb *int64
		if hiredBy != 0 && hiredBy != viewer {
			hb = &hiredBy
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO site_contractors (site_id, org_id, hired_by_org_id) VALUES ($1, $2, $3)
			ON CONFLICT (site_id, org_id) DO UPDATE SET removed_at = NULL`, siteID, contractor, hb)
		if err != nil {
			return fmt.Errorf("registry: add contractor: %w", err)
		}
		return nil
	})
}

// ErrHiredOthers: a contractor cannot leave a site while companies it
// hired are still on it.
var ErrHiredOthers = errors.New("registry: the contractor has hired companies still on the site")

// RemoveContractor takes a contractor off a site the viewer owns, from
// now on: its cards are no longer sent to the site's kiosks. Nothing of the
// ledger goes: the contractor stays in the site's chain, marked removed,
// and its people's periods stay as they are. Adding it again puts it back.
// A contractor that hired companies still on the site is refused
// (ErrHiredOthers): they are removed first, or the chain would name a
// hirer that is gone.
func (s *Store) RemoveContractor(ctx context.Context, viewer, siteID, contractor int64) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := ownsSite(ctx, tx, viewer, siteID); err != nil {
			return err
		}
		// Locked first, so that a contractor it hires meanwhile
		// (AddContractor holds this row FOR SHARE) is counted below.
		// The count is a statement of its own: it must see them in a
		// snapshot taken after the lock was granted.
		var one, hired int
		err := tx.QueryRow(ctx, `
			SELECT 1 FROM site_contractors WHERE site_id = $1 AND org_id = $2 AND removed_at IS NULL FOR UPDATE`,
			siteID, contractor).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err == nil {
			err = tx.QueryRow(ctx, `
				SELECT count(*) FROM site_contractors WHERE site_id = $1 AND hired_by_org_id = $2 AND removed_at IS NULL`,
				siteID, contractor).Scan(&hired)
		}
		if err != nil {
			return fmt.Errorf("registry: remove contractor: %w", err)
		}
		if hired > 0 {
			return fmt.Errorf("%w (%d)", ErrHiredOthers, hired)
		}
		if _, err := tx.Exec(ctx, `UPDATE site_contractors SET removed_at = now() WHERE site_id = $1 AND org_id = $2`,
			siteID, contractor); err != nil {
			return fmt.Errorf("registry: remove contractor: %w", err)
		}
		return nil
	})
}

func ownsSite(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, viewer, siteID int64) error {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sites WHERE site_id = $1 AND org_id = $2)`, siteID, viewer).Scan(&ok); err != nil {
		return fmt.Errorf("registry: %w", err)
	}
	if !ok {
		return ErrNotFound
	}
	return nil
}

// Identity is a parsed identity number of a person.
type Identity struct {
	kind      string // personnummer, samordningsnummer, foreign
	canonical string // what is sealed and indexed
	masked    string
	country   string
}

// ParseIdentity parses a Swedish personnummer or samordningsnummer, or, with
// a country code other than SE, a foreign identity number.
func ParseIdentity(number, country string, now time.Time) (Identity, error) {
	country = strings.ToUpper(strings.TrimSpace(country))
	if country != "" && country != "SE" {
		f, err := idnum.ParseForeignID(country, number)
		if err != nil {
			return Identity{}, err
		}
		masked := f.Number
		if len(masked) > 4 {
			masked = strings.Repeat("*", len(masked)-4) + masked[len(masked)-4:]
		}
		return Identity{kind: "foreign", canonical: f.String(), masked: f.Country + " " + masked, country: f.Country}, nil
	}
	p, err := idnum.ParsePersonNumber(number, now)
	if err != nil {
		return Identity{}, err
	}
	kind := "personnummer"
	if p.Kind() == idnum.Samordningsnummer {
		kind = "samordningsnummer"
	}
	return Identity{kind: kind, canonical: p.String(), masked: p.Masked()}, nil
}

// NewPerson describes a worker.
type NewPerson struct {
	Name     string
	IDNumber string
	Country  string // "" or "SE" for Swedish numbers
}

// AddPerson registers a worker of the viewer (their employer), or returns
// the existing person with the same identity number. The name is updated.
func (s *Store) AddPerson(ctx context.Context, viewer int64, n NewPerson) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		id, err = s.addPerson(ctx, tx, viewer, n)
		return err
	})
	return id, err
}

func (s *Store) addPerson(ctx context.Context, tx pgx.Tx, viewer int64, n NewPerson) (int64, error) {
	name := strings.TrimSpace(n.Name)
	if name == "" || len(name) > 200 {
		return 0, invalid(FieldPersonName, nil, "name must be 1-200 bytes")
	}
	ident, err := ParseIdentity(n.IDNumber, n.Country, s.now())
	if err != nil {
		return 0, invalid(FieldIdentity, err, "identity number")
	}
	index := s.keys.Index(ident.canonical)
	enc, err := s.keys.Seal([]byte(ident.canonical), personAAD(viewer, index))
	if err != nil {
		return 0, fmt.Errorf("registry: add person: %w", err)
	}
	var id int64
	err = tx.QueryRow(ctx, `
		INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked, id_country)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (org_id, id_index) DO UPDATE SET name = excluded.name
		RETURNING person_id`,
		viewer, name, ident.kind, enc, index, ident.masked, nullString(ident.country)).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("registry: add person: %w", err)
	}
	return id, nil
}

func personAAD(org int64, index []byte) []byte {
	return pii.AAD("persons.id_enc", strconv.FormatInt(org, 10), hex.EncodeToString(index))
}

// Person is a registered worker as the registry shows them: never with the
// full identity number (see IdentityNumber).
type Person struct {
	PersonID int64
	OrgID    int64
	Name     string
	IDKind   string
	IDMasked string
}

// FindPerson finds the viewer's worker with an identity number, through the
// blind index, without decrypting anything.
func (s *Store) FindPerson(ctx context.Context, viewer int64, number, country string) (Person, error) {
	ident, err := ParseIdentity(number, country, s.now())
	if err != nil {
		return Person{}, invalid(FieldIdentity, err, "identity number")
	}
	var p Person
	err = s.pool.QueryRow(ctx, `
		SELECT person_id, org_id, name, id_kind, id_masked FROM persons
		WHERE org_id = $1 AND id_index = $2 AND anonymised_at IS NULL`, viewer, s.keys.Index(ident.canonical)).
		Scan(&p.PersonID, &p.OrgID, &p.Name, &p.IDKind, &p.IDMasked)
	if errors.Is(err, pgx.ErrNoRows) {
		return Person{}, ErrNotFound
	}
	if err != nil {
		return Person{}, fmt.Errorf("registry: find person: %w", err)
	}
	return p, nil
}

// IdentityNumber decrypts a person's full identity number. Only views that
// need it (the inspector's, exports for Skatteverket) call this, and they
// record the read in the audit log. The viewer must employ the person or own
// a site where the person's employer works.
func (s *Store) IdentityNumber(ctx context.Context, viewer, personID int64) (string, error) {
	var org int64
	var enc, index []byte
	err := s.pool.QueryRow(ctx, `
		SELECT p.org_id, p.id_enc, p.id_index FROM persons p
		WHERE p.person_id = $1 AND p.anonymised_at IS NULL AND (p.org_id = $2 OR EXISTS (
			SELECT 1 FROM site_contractors sc JOIN sites s USING (site_id)
			WHERE sc.org_id = p.org_id AND s.org_id = $2))`, personID, viewer).Scan(&org, &enc, &index)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("registry: identity number: %w", err)
	}
	plain, err := s.keys.Open(enc, personAAD(org, index))
	if err != nil {
		return "", fmt.Errorf("registry: identity number of person %d: %w", personID, err)
	}
	return string(plain), nil
}

// Card statuses, as ID06 reports them.
const (
	CardActive       = "active"
	CardBlockedID06  = "blocked_id06"
	CardTerminated   = "terminated"
	CardExpired      = "expired"
	CardNotActivated = "not_activated"
)

var cardStatuses = map[string]bool{CardActive: true, CardBlockedID06: true, CardTerminated: true, CardExpired: true, CardNotActivated: true}

// NewCard describes an ID06 card of one of the viewer's workers.
type NewCard struct {
	CardNumber string
	ChipUIDs   []string
	PersonID   int64
	Status     string // default active
	ValidFrom  time.Time
	ValidUntil time.Time
}

// AddCard registers a card of one of the viewer's workers.
func (s *Store) AddCard(ctx context.Context, viewer int64, c NewCard) (int64, error) {
	var id int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		id, err = s.addCard(ctx, tx, viewer, c)
		return err
	})
	return id, err
}

func (s *Store) addCard(ctx context.Context, tx pgx.Tx, viewer int64, c NewCard) (int64, error) {
	num, err := idnum.ParseCardNumber(c.CardNumber)
	if err != nil {
		return 0, invalid(FieldCardNumber, err, "card number")
	}
	var chips []string
	for _, u := range c.ChipUIDs {
		if strings.TrimSpace(u) == "" {
			continue
		}
		uid, err := idnum.ParseChipUID(u)
		if err != nil {
			return 0, invalid(FieldChipUID, err, "chip UID")
		}
		chips = append(chips, uid.String())
	}
	status := c.Status
	if status == "" {
		status = CardActive
	}
	if !cardStatuses[status] {
		return 0, invalid(FieldCardStatus, nil, "card status %q", status)
	}
	var ok bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM persons WHERE person_id = $1 AND org_id = $2)`,
		c.PersonID, viewer).Scan(&ok); err != nil {
		return 0, fmt.Errorf("registry: add card: %w", err)
	}
	if !ok {
		return 0, ErrNotFound
	}
	var id, holder int64
	err = tx.QueryRow(ctx, `
		INSERT INTO cards (org_id, card_number, person_id, status, valid_from, valid_until)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (org_id, card_number) DO UPDATE SET status = excluded.status,
			valid_from = excluded.valid_from, valid_until = excluded.valid_until, updated_at = now()
		RETURNING card_id, person_id`,
		viewer, num.String(), c.PersonID, status, nullDate(c.ValidFrom), nullDate(c.ValidUntil)).Scan(&id, &holder)
	if err != nil {
		return 0, fmt.Errorf("registry: add card: %w", err)
	}
	if holder != c.PersonID {
		return 0, fmt.Errorf("%w: card %s belongs to another person", ErrExists, num)
	}
	for _, uid := range chips {
		var owner int64
		err := tx.QueryRow(ctx, `
			INSERT INTO card_chips (org_id, chip_uid, card_id) VALUES ($1, $2, $3)
			ON CONFLICT (org_id, chip_uid) DO UPDATE SET chip_uid = excluded.chip_uid
			RETURNING card_id`, viewer, uid, id).Scan(&owner)
		if err != nil {
			return 0, fmt.Errorf("registry: add card chip: %w", err)
		}
		if owner != id {
			return 0, fmt.Errorf("%w: chip %s belongs to another card", ErrExists, uid)
		}
	}
	return id, nil
}

// SetCardStatus records a card's status as ID06 reports it.
func (s *Store) SetCardStatus(ctx context.Context, viewer, cardID int64, status string) error {
	if !cardStatuses[status] {
		return invalid(FieldCardStatus, nil, "card status %q", status)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE cards SET status = $3, updated_at = now() WHERE card_id = $1 AND org_id = $2`,
		cardID, viewer, status)
	if err != nil {
		return fmt.Errorf("registry: set card status: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// Directions a terminal's reader can have.
var directions = map[string]bool{"in": true, "out": true, "toggle": true}

// AssignTerminal places a terminal on a site the viewer owns, with its
// reader's direction, from validFrom on. Earlier assignments stay: taps are
// placed by the assignment in force at their event time.
func (s *Store) AssignTerminal(ctx context.Context, viewer int64, terminalID string, siteID int64, direction string, validFrom time.Time, by string) error {
	if !directions[direction] {
		return invalid(FieldDirection, nil, "direction %q: want in, out or toggle", direction)
	}
	if validFrom.IsZero() {
		validFrom = s.now()
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := ownsSite(ctx, tx, viewer, siteID); err != nil {
			return err
		}
		// A terminal standing on another tenant's site cannot be taken.
		var other bool
		if err := tx.QueryRow(ctx, `
			SELECT EXISTS (SELECT 1 FROM terminal_assignments ta JOIN sites s USING (site_id)
			WHERE ta.terminal_id = $1 AND s.org_id <> $2)`, terminalID, viewer).Scan(&other); err != nil {
			return err
		}
		if other {
			return ErrNotFound
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
			VALUES ($1, $2, $3, $4, $5)`, terminalID, validFrom, siteID, direction, by)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" {
			return ErrNotFound // no such terminal
		}
		if uniqueViolation(err) {
			return fmt.Errorf("%w: an assignment from %s", ErrExists, validFrom.Format(time.RFC3339))
		}
		if err != nil {
			return fmt.Errorf("registry: assign terminal: %w", err)
		}
		return nil
	})
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullDate(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
