package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/pii"
)

// Audit actions written by this package.
const (
	ActionLogin              = "account.login"
	ActionUserCreate         = "account.user.create"
	ActionUserDisable        = "account.user.disable"
	ActionRoleGrant          = "account.role.grant"
	ActionRoleRevoke         = "account.role.revoke"
	ActionSiteAssign         = "account.site.assign"
	ActionSiteUnassign       = "account.site.unassign"
	ActionPasswordSet        = "account.password.set"
	ActionPasswordReset      = "account.password.reset"
	ActionTOTPEnable         = "account.totp.enable"
	ActionTOTPDisable        = "account.totp.disable"
	ActionRecoveryCodesNew   = "account.recovery_codes.new"
	ActionInspectorGrant     = "inspector.grant.create"
	ActionInspectorRedeem    = "inspector.grant.redeem"
	ActionInspectorRevoke    = "inspector.grant.revoke"
	ActionSessionsRevokedAll = "account.sessions.revoke_all"
)

// Limits on input.
const (
	MaxEmailBytes = 254
	MaxNameRunes  = 200
)

var (
	// ErrNotFound is a user, site or grant that does not exist, or that
	// the principal may not see (the two are not told apart).
	ErrNotFound = errors.New("account: not found")
	// ErrForbidden is an act the principal may not do.
	ErrForbidden = errors.New("account: not allowed")
	// ErrInvalid is wrapped for input that breaks a rule; the message says
	// which.
	ErrInvalid = errors.New("account: invalid input")
	// ErrEmailTaken is an e-mail address that already has a user.
	ErrEmailTaken = errors.New("account: e-mail address already in use")
	// ErrBadCredentials is a wrong e-mail or password. It does not say
	// which, and an unknown address costs the same time as a known one.
	ErrBadCredentials = errors.New("account: wrong e-mail or password")
	// ErrDisabled is a disabled user who gave the right password.
	ErrDisabled = errors.New("account: user disabled")
	// ErrBadCode is a wrong, reused or expired second-factor code.
	ErrBadCode = errors.New("account: wrong code")
	// ErrNoPendingLogin is a pending-login token that is unknown, expired or
	// out of attempts: start again with the password.
	ErrNoPendingLogin = errors.New("account: login expired, start again")
	// ErrTOTPEnabled is an enrolment begun while TOTP is already on.
	ErrTOTPEnabled = errors.New("account: two-step login already enabled")
	// ErrTOTPNotEnrolled is a confirmation without a begun enrolment.
	ErrTOTPNotEnrolled = errors.New("account: no two-step enrolment begun")
	// ErrNoSession is a session token that is unknown, expired (idle or
	// absolute), revoked, or whose user is disabled or grant has ended.
	ErrNoSession = errors.New("account: no valid session")
	// ErrLastAdmin is a change that would leave an organisation without an
	// enabled org admin, and so without anyone to administer it.
	ErrLastAdmin = errors.New("account: the organisation's last admin")
	// ErrGrantInvalid is an inspector link or code that is unknown,
	// expired, revoked or used up. It does not say which.
	ErrGrantInvalid = errors.New("account: inspector access unknown or expired")
)

// Options configure a Store. Zero fields take the defaults in brackets.
type Options struct {
	// Now is the clock [time.Now]. Tests inject one.
	Now func() time.Time
	// Logger receives throttling events [discard].
	Logger *slog.Logger
	// Issuer names the service in authenticator apps ["Liggare"].
	Issuer string
	// Params are argon2id's costs for new hashes [DefaultParams].
	Params Params
	// MaxConcurrentHashes bounds the argon2id hashes computed at once, and
	// so the memory of a login storm [GOMAXPROCS].
	MaxConcurrentHashes int
	// IdleTimeout ends a session not used for this long [30 min].
	IdleTimeout time.Duration
	// AbsoluteTimeout ends any session this long after login [12 h].
	AbsoluteTimeout time.Duration
	// TouchEvery is how stale last_seen may get before Session writes it,
	// saving a write per request [1 min]. Idle expiry is exact to this.
	TouchEvery time.Duration
	// PendingTimeout is how long a password login waits for its second
	// factor [5 min].
	PendingTimeout time.Duration
	// PendingAttempts is how many codes one pending login may try [5].
	PendingAttempts int
	// GrantTTL is an inspector grant's default life [8 h], at most
	// MaxGrantTTL.
	GrantTTL time.Duration
	// GrantMaxUses is how many sessions one grant may open by default [5]:
	// an inspection team, and a browser restarted.
	GrantMaxUses int
	// AccountLimit, IPLimit and RedeemLimit are the login limits
	// [DefaultAccountLimit, DefaultIPLimit, DefaultRedeemLimit].
	AccountLimit, IPLimit, RedeemLimit Limit
}

// MaxGrantTTL is the longest an inspector grant may last.
const MaxGrantTTL = 24 * time.Hour

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Issuer == "" {
		o.Issuer = "Liggare"
	}
	if o.Params == (Params{}) {
		o.Params = DefaultParams
	}
	if o.MaxConcurrentHashes <= 0 {
		o.MaxConcurrentHashes = runtime.GOMAXPROCS(0)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.IdleTimeout, 30*time.Minute)
	def(&o.AbsoluteTimeout, 12*time.Hour)
	def(&o.TouchEvery, time.Minute)
	def(&o.PendingTimeout, 5*time.Minute)
	def(&o.GrantTTL, 8*time.Hour)
	if o.GrantTTL > MaxGrantTTL {
		o.GrantTTL = MaxGrantTTL
	}
	if o.PendingAttempts <= 0 {
		o.PendingAttempts = 5
	}
	if o.GrantMaxUses <= 0 {
		o.GrantMaxUses = 5
	}
	if o.AccountLimit == (Limit{}) {
		o.AccountLimit = DefaultAccountLimit
	}
	if o.IPLimit == (Limit{}) {
		o.IPLimit = DefaultIPLimit
	}
	if o.RedeemLimit == (Limit{}) {
		o.RedeemLimit = DefaultRedeemLimit
	}
}

// Store keeps users, memberships, sessions and inspector grants in
// PostgreSQL. It is safe for concurrent use, and several replicas may share
// one database.
type Store struct {
	pool *pgxpool.Pool
	keys *pii.Keys
	o    Options
	// hashes bounds concurrent argon2id computations.
	hashes chan struct{}
	// dummyHash is verified against for unknown users, so that they cost
	// what known ones do.
	dummyHash func() string
}

// NewStore returns a Store. keys seal TOTP secrets.
func NewStore(pool *pgxpool.Pool, keys *pii.Keys, o Options) *Store {
	o.defaults()
	s := &Store{pool: pool, keys: keys, o: o, hashes: make(chan struct{}, o.MaxConcurrentHashes)}
	s.dummyHash = sync.OnceValue(func() string {
		h, err := hashPassword("dummy password for unknown users", o.Params)
		if err != nil {
			panic(err) // crypto/rand failing is not recoverable
		}
		return h
	})
	return s
}

// now is the injected clock at PostgreSQL's precision.
func (s *Store) now() time.Time { return s.o.Now().Truncate(time.Microsecond) }

// hash computes an argon2id hash within the concurrency bound.
func (s *Store) hash(ctx context.Context, pw string) (string, error) {
	if err := s.acquire(ctx); err != nil {
		return "", err
	}
	defer s.release()
	return hashPassword(pw, s.o.Params)
}

// verify checks a password within the concurrency bound.
func (s *Store) verify(ctx context.Context, pw, encoded string) (bool, Params, error) {
	if err := s.acquire(ctx); err != nil {
		return false, Params{}, err
	}
	defer s.release()
	return verifyPassword(pw, encoded)
}

func (s *Store) acquire(ctx context.Context) error {
	select {
	case s.hashes <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("account: waiting to hash: %w", ctx.Err())
	}
}

func (s *Store) release() { <-s.hashes }

// User is a person who logs in.
type User struct {
	ID                 int64
	Email              string
	Name               string
	HasPassword        bool
	MustChangePassword bool
	TOTPEnabled        bool
	CreatedAt          time.Time
	DisabledAt         *time.Time
}

// Member is a user with their roles in one organisation.
type Member struct {
	User
	Roles        []Role
	ManagedSites []int64
}

// CanonicalEmail trims and lower-cases an e-mail address and checks its
// shape (one @, something on each side, no spaces, at most MaxEmailBytes).
// The error wraps ErrInvalid.
func CanonicalEmail(email string) (string, error) {
	e := strings.ToLower(strings.TrimSpace(email))
	local, domain, ok := strings.Cut(e, "@")
	switch {
	case !ok || local == "" || domain == "" || strings.Contains(domain, "@"):
		return "", fmt.Errorf("%w: %q is not an e-mail address", ErrInvalid, email)
	case len(e) > MaxEmailBytes || !utf8.ValidString(e):
		return "", fmt.Errorf("%w: e-mail address too long", ErrInvalid)
	case strings.IndexFunc(e, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) >= 0:
		return "", fmt.Errorf("%w: e-mail address with spaces", ErrInvalid)
	}
	return e, nil
}

func cleanName(name string) (string, error) {
	n := strings.TrimSpace(name)
	if n == "" || utf8.RuneCountInString(n) > MaxNameRunes || !utf8.ValidString(n) {
		return "", fmt.Errorf("%w: a name of 1-%d characters is required", ErrInvalid, MaxNameRunes)
	}
	return n, nil
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// record writes an audit entry for each organisation in orgs (one entry
// with no organisation when orgs is empty).
func record(ctx context.Context, tx pgx.Tx, by Principal, action string, orgs []int64, site int64, detail map[string]any) error {
	if len(orgs) == 0 {
		orgs = []int64{0}
	}
	for _, org := range orgs {
		// The actor acted for org if it holds a role there; a system job
		// or an inspector acts for no tenant.
		actorOrg := int64(0)
		if len(by.Roles[org]) > 0 && by.Inspector == nil {
			actorOrg = org
		}
		if err := audit.Record(ctx, tx, audit.Entry{
			Actor: by.Actor(), ActorOrgID: actorOrg, Action: action, OrgID: org, SiteID: site, Detail: detail,
		}); err != nil {
			return err
		}
	}
	return nil
}

// userOrgs lists the organisations a user has roles in.
func userOrgs(ctx context.Context, q pgx.Tx, userID int64) ([]int64, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT org_id FROM memberships WHERE user_id = $1 AND org_id IS NOT NULL ORDER BY org_id`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int64])
}

// mayAdminister reports whether by may change user's account (password
// reset, second factor off, disable): the user itself, a system job, or an
// org admin of every organisation the user belongs to, so that an admin of
// one tenant cannot take over someone who also works for another.
func mayAdminister(ctx context.Context, tx pgx.Tx, by Principal, userID int64) (bool, error) {
	if by.Inspector != nil {
		return false, nil
	}
	if by.System != "" || (by.UserID != 0 && by.UserID == userID) {
		return true, nil
	}
	orgs, err := userOrgs(ctx, tx, userID)
	if err != nil {
		return false, err
	}
	var operator bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1 AND role = 'operator')`, userID).Scan(&operator); err != nil {
		return false, err
	}
	if len(orgs) == 0 || operator {
		return false, nil
	}
	for _, org := range orgs {
		if !by.Has(org, RoleOrgAdmin) {
			return false, nil
		}
	}
	return true, nil
}

// CreateUser adds a user without a password (SetPassword or ResetPassword
// gives one) and without roles (GrantRole). by must administer some
// organisation, or be a system job; the user is not visible to anyone until
// it has a role.
func (s *Store) CreateUser(ctx context.Context, by Principal, email, name string) (User, error) {
	if by.System == "" && !slices.ContainsFunc(by.ActingOrgs(), func(org int64) bool { return by.Has(org, RoleOrgAdmin) }) {
		return User{}, ErrForbidden
	}
	var u User
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		u, err = s.createUser(ctx, tx, by, email, name)
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("account: create user: %w", err)
	}
	return u, nil
}

func (s *Store) createUser(ctx context.Context, tx pgx.Tx, by Principal, email, name string) (User, error) {
	e, err := CanonicalEmail(email)
	if err != nil {
		return User{}, err
	}
	n, err := cleanName(name)
	if err != nil {
		return User{}, err
	}
	u := User{Email: e, Name: n}
	err = tx.QueryRow(ctx, `INSERT INTO users (email, name, created_at) VALUES ($1, $2, $3) RETURNING user_id, created_at`,
		e, n, s.now()).Scan(&u.ID, &u.CreatedAt)
	if isUniqueViolation(err) {
		return User{}, ErrEmailTaken
	}
	if err != nil {
		return User{}, err
	}
	// Written for each organisation the creator administers, so that its
	// admins see who added accounts.
	var orgs []int64
	for _, org := range by.ActingOrgs() {
		if by.Has(org, RoleOrgAdmin) {
			orgs = append(orgs, org)
		}
	}
	return u, record(ctx, tx, by, ActionUserCreate, orgs, 0, map[string]any{"user_id": u.ID})
}

// User returns a user by id.
func (s *Store) User(ctx context.Context, userID int64) (User, error) {
	return s.userWhere(ctx, "user_id = $1", userID)
}

// UserByEmail returns a user by e-mail address, in any case.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	e, err := CanonicalEmail(email)
	if err != nil {
		return User{}, err
	}
	return s.userWhere(ctx, "email = $1", e)
}

const userColumns = `user_id, email, name, password_hash IS NOT NULL, password_must_change, totp_enabled, created_at, disabled_at`

func scanUser(row pgx.Row, u *User) error {
	return row.Scan(&u.ID, &u.Email, &u.Name, &u.HasPassword, &u.MustChangePassword, &u.TOTPEnabled, &u.CreatedAt, &u.DisabledAt)
}

func (s *Store) userWhere(ctx context.Context, where string, arg any) (User, error) {
	var u User
	err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users WHERE `+where, arg), &u)
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, fmt.Errorf("account: user: %w", err)
	}
	return u, nil
}

// Members lists the users with a role in org, for its admins.
func (s *Store) Members(ctx context.Context, by Principal, org int64) ([]Member, error) {
	if !CanManageOrg(by, org) {
		return nil, ErrForbidden
	}
	rows, err := s.pool.Query(ctx, `
		SELECT `+userColumns+`,
		       array_agg(DISTINCT m.role ORDER BY m.role),
		       coalesce((SELECT array_agg(sm.site_id ORDER BY sm.site_id) FROM site_managers sm
		                 WHERE sm.user_id = u.user_id AND sm.org_id = $1), '{}')
		FROM users u JOIN memberships m USING (user_id)
		WHERE m.org_id = $1
		GROUP BY u.user_id ORDER BY u.name, u.user_id`, org)
	if err != nil {
		return nil, fmt.Errorf("account: members: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Member, error) {
		var m Member
		var roles []string
		err := row.Scan(&m.ID, &m.Email, &m.Name, &m.HasPassword, &m.MustChangePassword, &m.TOTPEnabled,
			&m.CreatedAt, &m.DisabledAt, &roles, &m.ManagedSites)
		for _, r := range roles {
			m.Roles = append(m.Roles, Role(r))
		}
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("account: members: %w", err)
	}
	return out, nil
}

// GrantRole gives user a role in org (org 0 for RoleOperator, which only a
// system job may grant). by must administer org. Granting a role the user
// already holds does nothing.
func (s *Store) GrantRole(ctx context.Context, by Principal, userID, org int64, role Role) error {
	if err := checkRoleChange(by, org, role); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return s.grantRole(ctx, tx, by, userID, org, role)
	})
	if err != nil {
		return fmt.Errorf("account: grant role: %w", err)
	}
	return nil
}

func checkRoleChange(by Principal, org int64, role Role) error {
	switch {
	case !role.Valid():
		return fmt.Errorf("%w: no role %q", ErrInvalid, role)
	case role == RoleOperator && org != 0:
		return fmt.Errorf("%w: the operator role belongs to no organisation", ErrInvalid)
	case role != RoleOperator && org <= 0:
		return fmt.Errorf("%w: role %s needs an organisation", ErrInvalid, role)
	case role == RoleOperator && (by.System == "" || by.Inspector != nil):
		return ErrForbidden
	case role != RoleOperator && !CanManageOrg(by, org):
		return ErrForbidden
	}
	return nil
}

func (s *Store) grantRole(ctx context.Context, tx pgx.Tx, by Principal, userID, org int64, role Role) error {
	tag, err := tx.Exec(ctx, `
		INSERT INTO memberships (user_id, org_id, role, granted_at, granted_by)
		SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM users WHERE user_id = $1)
		ON CONFLICT DO NOTHING`, userID, nullID(org), string(role), s.now(), by.Actor())
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1)`, userID).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return ErrNotFound
		}
		return nil // already held
	}
	return record(ctx, tx, by, ActionRoleGrant, orgList(org), 0, map[string]any{"user_id": userID, "role": string(role)})
}

// RevokeRole takes a role from user in org. Revoking RoleSiteManager also
// removes the sites the user managed for org. The user's sessions are
// revoked, so that nothing runs on with the old rights.
func (s *Store) RevokeRole(ctx context.Context, by Principal, userID, org int64, role Role) error {
	if err := checkRoleChange(by, org, role); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM memberships WHERE user_id = $1 AND coalesce(org_id, 0) = $2 AND role = $3`,
			userID, org, string(role))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if role == RoleOrgAdmin {
			if err := keepAnAdmin(ctx, tx, org); err != nil {
				return err
			}
		}
		if role == RoleSiteManager {
			if _, err := tx.Exec(ctx, `DELETE FROM site_managers WHERE user_id = $1 AND org_id = $2`, userID, org); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, s.now()); err != nil {
			return err
		}
		return record(ctx, tx, by, ActionRoleRevoke, orgList(org), 0, map[string]any{"user_id": userID, "role": string(role)})
	})
	if err != nil {
		return fmt.Errorf("account: revoke role: %w", err)
	}
	return nil
}

// keepAnAdmin refuses, with ErrLastAdmin, a change that has left org
// without an enabled org admin. Every admin seat of org is locked first,
// so that two admins revoking each other at once cannot both pass: the
// second waits for the first and then sees its seat gone.
func keepAnAdmin(ctx context.Context, tx pgx.Tx, org int64) error {
	rows, err := tx.Query(ctx, `
		SELECT u.disabled_at IS NULL FROM memberships m JOIN users u USING (user_id)
		WHERE m.org_id = $1 AND m.role = 'org_admin' FOR UPDATE OF m`, org)
	if err != nil {
		return err
	}
	enabled, err := pgx.CollectRows(rows, pgx.RowTo[bool])
	if err != nil {
		return err
	}
	if !slices.Contains(enabled, true) {
		return ErrLastAdmin
	}
	return nil
}

// AssignSite makes user a manager of site. The user must hold
// RoleSiteManager for the site's owner, and by must administer the owner.
func (s *Store) AssignSite(ctx context.Context, by Principal, userID, siteID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner int64
		err := tx.QueryRow(ctx, `SELECT org_id FROM sites WHERE site_id = $1`, siteID).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !CanManageOrg(by, owner) {
			return ErrForbidden
		}
		var isManager bool
		err = tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM memberships WHERE user_id = $1 AND org_id = $2 AND role = 'site_manager')`,
			userID, owner).Scan(&isManager)
		if err != nil {
			return err
		}
		if !isManager {
			return fmt.Errorf("%w: the user is not a site manager of the site's organisation", ErrInvalid)
		}
		tag, err := tx.Exec(ctx, `
			INSERT INTO site_managers (user_id, site_id, org_id, granted_at, granted_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT DO NOTHING`, userID, siteID, owner, s.now(), by.Actor())
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return record(ctx, tx, by, ActionSiteAssign, []int64{owner}, siteID, map[string]any{"user_id": userID})
	})
	if err != nil {
		return fmt.Errorf("account: assign site: %w", err)
	}
	return nil
}

// UnassignSite ends user's management of site.
func (s *Store) UnassignSite(ctx context.Context, by Principal, userID, siteID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var owner int64
		err := tx.QueryRow(ctx, `SELECT org_id FROM site_managers WHERE user_id = $1 AND site_id = $2`, userID, siteID).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if !CanManageOrg(by, owner) {
			return ErrForbidden
		}
		if _, err := tx.Exec(ctx, `DELETE FROM site_managers WHERE user_id = $1 AND site_id = $2`, userID, siteID); err != nil {
			return err
		}
		return record(ctx, tx, by, ActionSiteUnassign, []int64{owner}, siteID, map[string]any{"user_id": userID})
	})
	if err != nil {
		return fmt.Errorf("account: unassign site: %w", err)
	}
	return nil
}

// DisableUser stops user from logging in and ends its sessions. by must
// administer every organisation the user belongs to (see ResetPassword).
func (s *Store) DisableUser(ctx context.Context, by Principal, userID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := mayAdminister(ctx, tx, by, userID)
		if err != nil {
			return err
		}
		if !ok || by.UserID == userID {
			return ErrForbidden
		}
		now := s.now()
		tag, err := tx.Exec(ctx, `UPDATE users SET disabled_at = $2 WHERE user_id = $1 AND disabled_at IS NULL`, userID, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, now); err != nil {
			return err
		}
		orgs, err := userOrgs(ctx, tx, userID)
		if err != nil {
			return err
		}
		return record(ctx, tx, by, ActionUserDisable, orgs, 0, map[string]any{"user_id": userID})
	})
	if err != nil {
		return fmt.Errorf("account: disable user: %w", err)
	}
	return nil
}

// SetPassword gives user a new password chosen by the user: by must be the
// user itself (the web layer has checked the current password, or the user
// is logged in with a must-change password) or a system job. The password
// must pass CheckPassword. Every session of the user is revoked; the web
// layer opens a new one for the current browser.
func (s *Store) SetPassword(ctx context.Context, by Principal, userID int64, password string) error {
	if by.Inspector != nil || (by.System == "" && (by.UserID == 0 || by.UserID != userID)) {
		return ErrForbidden
	}
	u, err := s.User(ctx, userID)
	if err != nil {
		return err
	}
	if err := CheckPassword(password, u.Email); err != nil {
		return err
	}
	h, err := s.hash(ctx, password)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return s.storePassword(ctx, tx, by, userID, h, false, ActionPasswordSet)
	})
	if err != nil {
		return fmt.Errorf("account: set password: %w", err)
	}
	return nil
}

func (s *Store) storePassword(ctx context.Context, tx pgx.Tx, by Principal, userID int64, h string, mustChange bool, action string) error {
	now := s.now()
	tag, err := tx.Exec(ctx, `
		UPDATE users SET password_hash = $2, password_must_change = $3, password_changed_at = $4 WHERE user_id = $1`,
		userID, h, mustChange, now)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, now); err != nil {
		return err
	}
	orgs, err := userOrgs(ctx, tx, userID)
	if err != nil {
		return err
	}
	return record(ctx, tx, by, action, orgs, 0, map[string]any{"user_id": userID})
}

// ResetPassword gives user a new random password, returned once, that it
// must change at its next login (User.MustChangePassword). by must be an
// org admin of every organisation the user belongs to, or a system job:
// an admin of one tenant cannot take over a user who also works for
// another. The user's sessions are revoked.
func (s *Store) ResetPassword(ctx context.Context, by Principal, userID int64) (string, error) {
	pw, err := newInitialPassword()
	if err != nil {
		return "", err
	}
	h, err := s.hash(ctx, pw)
	if err != nil {
		return "", err
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := mayAdminister(ctx, tx, by, userID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrForbidden
		}
		return s.storePassword(ctx, tx, by, userID, h, true, ActionPasswordReset)
	})
	if err != nil {
		return "", fmt.Errorf("account: reset password: %w", err)
	}
	return pw, nil
}

// newInitialPassword is 20 characters of codeAlphabet (100 bits), grouped
// for reading: "ABCD-EFGH-JKLM-NPQR-STUV".
func newInitialPassword() (string, error) {
	c, err := newCode(20)
	if err != nil {
		return "", err
	}
	return groupCode(c), nil
}

// BootstrapOrgAdmin creates the first admin of an organisation for the
// admin CLI: a new user with org_admin of orgID and a random initial
// password, returned once, that must be changed at first login. The audit
// log names the actor "system:cli".
func (s *Store) BootstrapOrgAdmin(ctx context.Context, orgID int64, email, name string) (User, string, error) {
	return s.bootstrap(ctx, orgID, RoleOrgAdmin, email, name)
}

// BootstrapOperator creates an operator for the admin CLI, like
// BootstrapOrgAdmin.
func (s *Store) BootstrapOperator(ctx context.Context, email, name string) (User, string, error) {
	return s.bootstrap(ctx, 0, RoleOperator, email, name)
}

func (s *Store) bootstrap(ctx context.Context, org int64, role Role, email, name string) (User, string, error) {
	u, pw, err := s.invite(ctx, System("cli"), org, role, email, name)
	if err != nil {
		return User{}, "", fmt.Errorf("account: bootstrap %s: %w", role, err)
	}
	return u, pw, nil
}

// InviteUser creates a user with one role in org and a random one-time
// password, returned once: the user must change it at first login and
// then enrol TOTP, as a bootstrapped admin does. by must administer org;
// the operator role is not given this way (see BootstrapOperator).
// Everything happens in one transaction, so that a failed invitation
// leaves no user behind that nobody can see.
func (s *Store) InviteUser(ctx context.Context, by Principal, org int64, role Role, email, name string) (User, string, error) {
	if err := checkRoleChange(by, org, role); err != nil {
		return User{}, "", err
	}
	if role == RoleOperator {
		return User{}, "", ErrForbidden
	}
	u, pw, err := s.invite(ctx, by, org, role, email, name)
	if err != nil {
		return User{}, "", fmt.Errorf("account: invite user: %w", err)
	}
	return u, pw, nil
}

func (s *Store) invite(ctx context.Context, by Principal, org int64, role Role, email, name string) (User, string, error) {
	pw, err := newInitialPassword()
	if err != nil {
		return User{}, "", err
	}
	h, err := s.hash(ctx, pw)
	if err != nil {
		return User{}, "", err
	}
	var u User
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if org != 0 {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM organisations WHERE org_id = $1)`, org).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				return ErrNotFound
			}
		}
		if u, err = s.createUser(ctx, tx, by, email, name); err != nil {
			return err
		}
		if err := s.grantRole(ctx, tx, by, u.ID, org, role); err != nil {
			return err
		}
		u.HasPassword, u.MustChangePassword = true, true
		return s.storePassword(ctx, tx, by, u.ID, h, true, ActionPasswordReset)
	})
	if err != nil {
		return User{}, "", err
	}
	return u, pw, nil
}

// Site loads what authorization needs about a site (see Site).
func (s *Store) Site(ctx context.Context, siteID int64) (Site, error) {
	site := Site{ID: siteID}
	err := s.pool.QueryRow(ctx, `
		SELECT s.org_id, coalesce((SELECT array_agg(sc.org_id ORDER BY sc.org_id) FROM site_contractors sc
		                            WHERE sc.site_id = s.site_id), '{}')
		FROM sites s WHERE s.site_id = $1`, siteID).Scan(&site.Owner, &site.Contractors)
	if errors.Is(err, pgx.ErrNoRows) {
		return Site{}, ErrNotFound
	}
	if err != nil {
		return Site{}, fmt.Errorf("account: site: %w", err)
	}
	return site, nil
}

// Principal builds the principal of a session: the user's memberships and
// managed sites, or the inspector's grant.
func (s *Store) Principal(ctx context.Context, sess Session) (Principal, error) {
	if sess.GrantID != 0 {
		var sc InspectorScope
		err := s.pool.QueryRow(ctx, `SELECT grant_id, site_id, org_id, created_by, expires_at FROM inspector_grants WHERE grant_id = $1`,
			sess.GrantID).Scan(&sc.GrantID, &sc.SiteID, &sc.OrgID, &sc.GrantedBy, &sc.ExpiresAt)
		if err != nil {
			return Principal{}, fmt.Errorf("account: principal of grant: %w", err)
		}
		return Principal{Inspector: &sc}, nil
	}
	if sess.UserID == 0 {
		return Principal{}, ErrNoSession
	}
	p := Principal{UserID: sess.UserID, Roles: map[int64][]Role{}, ManagedSites: map[int64]int64{}}
	rows, err := s.pool.Query(ctx, `SELECT coalesce(org_id, 0), role FROM memberships WHERE user_id = $1 ORDER BY org_id, role`, sess.UserID)
	if err != nil {
		return Principal{}, fmt.Errorf("account: principal: %w", err)
	}
	var org int64
	var role string
	_, err = pgx.ForEachRow(rows, []any{&org, &role}, func() error {
		if Role(role) == RoleOperator {
			p.Operator = true
		} else {
			p.Roles[org] = append(p.Roles[org], Role(role))
		}
		return nil
	})
	if err != nil {
		return Principal{}, fmt.Errorf("account: principal: %w", err)
	}
	rows, err = s.pool.Query(ctx, `SELECT site_id, org_id FROM site_managers WHERE user_id = $1`, sess.UserID)
	if err != nil {
		return Principal{}, fmt.Errorf("account: principal: %w", err)
	}
	var site int64
	_, err = pgx.ForEachRow(rows, []any{&site, &org}, func() error {
		p.ManagedSites[site] = org
		return nil
	})
	if err != nil {
		return Principal{}, fmt.Errorf("account: principal: %w", err)
	}
	return p, nil
}

func nullID(id int64) *int64 {
	if id == 0 {
		return nil
	}
	return &id
}

func orgList(org int64) []int64 {
	if org == 0 {
		return nil
	}
	return []int64{org}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
