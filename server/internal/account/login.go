package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/pii"
)

// RecoveryCodes is how many recovery codes a user gets at a time.
const RecoveryCodes = 10

// recoveryCodeChars is a recovery code's length: 16 characters of
// codeAlphabet, 80 bits, so that a SHA-256 of it is as safe to store as a
// slow hash of a password.
const recoveryCodeChars = 16

// Login is the outcome of a step of logging in.
type Login struct {
	// UserID is the user once the login is complete, and 0 while a second
	// factor is due. Only then may the web layer call NewSession.
	UserID int64
	// Pending, while a second factor is due, is the token to pass to
	// VerifyTOTP or UseRecoveryCode (keep it in a short-lived cookie, not a
	// URL). It is valid for Options.PendingTimeout.
	Pending string
	// MustChangePassword asks the web layer to have the user choose a new
	// password (SetPassword) before anything else.
	MustChangePassword bool
	// TOTPEnrolmentDue is true for a complete login of a user without a
	// second factor: the web layer sends the user to enrol (BeginTOTP),
	// since the product promises two-step login.
	TOTPEnrolmentDue bool
	// RecoveryCodesLeft is set after UseRecoveryCode.
	RecoveryCodesLeft int
}

// Complete reports whether the user is logged in.
func (l Login) Complete() bool { return l.UserID != 0 && l.Pending == "" }

func totpAAD(userID int64) []byte { return pii.AAD("users.totp_secret", itoa(userID)) }

// Authenticate checks an e-mail address and password from remoteIP (the
// client's address as the web layer trusts it). On success it returns a
// complete Login, or one with Pending set when the user has TOTP enabled.
// Errors: *ThrottledError (ErrThrottled) before anything is checked when
// the account or the address has failed too often; ErrBadCredentials for
// an unknown address or a wrong password, alike and in the same time;
// ErrDisabled for a disabled user with the right password.
func (s *Store) Authenticate(ctx context.Context, email, password, remoteIP string) (Login, error) {
	canon, err := CanonicalEmail(email)
	if err != nil {
		canon = email // still counted, against a key no user has
	}
	acct, ip := keyFor(s.o.AccountLimit, canon), keyFor(s.o.IPLimit, ipSubject(remoteIP))
	if err := s.reserve(ctx, acct, ip); err != nil {
		return Login{}, err
	}
	var (
		userID          int64
		hash            *string
		disabled        *time.Time
		totp, mustChang bool
	)
	err = s.pool.QueryRow(ctx, `SELECT user_id, password_hash, disabled_at, totp_enabled, password_must_change FROM users WHERE email = $1`,
		canon).Scan(&userID, &hash, &disabled, &totp, &mustChang)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return Login{}, fmt.Errorf("account: authenticate: %w", err)
	}
	if hash == nil {
		// Unknown user or no password: spend the time a real check takes.
		if _, _, err := s.verify(ctx, password, s.dummyHash()); err != nil {
			return Login{}, err
		}
		return Login{}, ErrBadCredentials
	}
	ok, params, err := s.verify(ctx, password, *hash)
	if err != nil {
		return Login{}, fmt.Errorf("account: authenticate user %d: %w", userID, err)
	}
	if !ok {
		return Login{}, ErrBadCredentials
	}
	if disabled != nil {
		return Login{}, ErrDisabled
	}
	var rehash string
	if params != s.o.Params {
		if rehash, err = s.hash(ctx, password); err != nil {
			return Login{}, err
		}
	}
	var out Login
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if rehash != "" {
			if _, err := tx.Exec(ctx, `UPDATE users SET password_hash = $2 WHERE user_id = $1 AND password_hash = $3`,
				userID, rehash, *hash); err != nil {
				return err
			}
		}
		if totp {
			tok, sum, err := newToken()
			if err != nil {
				return err
			}
			now := s.now()
			if _, err := tx.Exec(ctx, `
				INSERT INTO pending_logins (token_sha256, user_id, remote_ip, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
				sum, userID, auditIP(remoteIP), now, now.Add(s.o.PendingTimeout)); err != nil {
				return err
			}
			out = Login{Pending: tok, MustChangePassword: mustChang}
			// The account's counter stays until the second factor is
			// given; the address gets its attempt back.
			return s.succeed(ctx, tx, nil, []throttleKey{ip})
		}
		out = Login{UserID: userID, MustChangePassword: mustChang, TOTPEnrolmentDue: true}
		return s.completeLogin(ctx, tx, userID, "password", remoteIP, acct, ip)
	})
	if err != nil {
		return Login{}, fmt.Errorf("account: authenticate: %w", err)
	}
	return out, nil
}

// completeLogin clears the throttle of a complete login and writes its
// audit entries, one per organisation of the user.
func (s *Store) completeLogin(ctx context.Context, tx pgx.Tx, userID int64, method, remoteIP string, acct, ip throttleKey) error {
	if err := s.succeed(ctx, tx, []throttleKey{acct}, []throttleKey{ip}); err != nil {
		return err
	}
	orgs, err := userOrgs(ctx, tx, userID)
	if err != nil {
		return err
	}
	if len(orgs) == 0 {
		orgs = []int64{0} // an operator
	}
	for _, org := range orgs {
		err := audit.Record(ctx, tx, audit.Entry{
			Actor: Principal{UserID: userID}.Actor(), ActorOrgID: org, Action: ActionLogin,
			Detail: map[string]any{"method": method, "ip": auditIP(remoteIP)},
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// pendingUser finds the user of a pending login and counts an attempt on
// it; an exhausted or expired pending login is deleted.
func (s *Store) pendingUser(ctx context.Context, pending string) (userID int64, email string, mustChange bool, err error) {
	now := s.now()
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var expires time.Time
		var attempts int
		err := tx.QueryRow(ctx, `
			SELECT p.user_id, p.expires_at, p.attempts, u.email, u.password_must_change
			FROM pending_logins p JOIN users u USING (user_id)
			WHERE p.token_sha256 = $1 AND u.disabled_at IS NULL FOR UPDATE OF p`, hashToken(pending)).
			Scan(&userID, &expires, &attempts, &email, &mustChange)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNoPendingLogin
		}
		if err != nil {
			return err
		}
		if !expires.After(now) || attempts >= s.o.PendingAttempts {
			if _, err := tx.Exec(ctx, `DELETE FROM pending_logins WHERE token_sha256 = $1`, hashToken(pending)); err != nil {
				return err
			}
			return errExhausted
		}
		_, err = tx.Exec(ctx, `UPDATE pending_logins SET attempts = attempts + 1 WHERE token_sha256 = $1`, hashToken(pending))
		return err
	})
	if errors.Is(err, errExhausted) {
		return 0, "", false, ErrNoPendingLogin
	}
	if err != nil && !errors.Is(err, ErrNoPendingLogin) {
		err = fmt.Errorf("account: pending login: %w", err)
	}
	return userID, email, mustChange, err
}

// errExhausted commits the deletion of a dead pending login and is then
// reported as ErrNoPendingLogin.
var errExhausted = errors.New("pending login exhausted")

// VerifyTOTP completes a pending login with a TOTP code: RFC 6238, 30 s
// steps, 6 digits, one step of skew either way, and no code accepted for a
// step at or before the last one accepted for the user (no replay, also
// across replicas). Errors: ErrNoPendingLogin, *ThrottledError, ErrBadCode.
func (s *Store) VerifyTOTP(ctx context.Context, pending, code, remoteIP string) (Login, error) {
	userID, email, mustChange, err := s.pendingUser(ctx, pending)
	if err != nil {
		return Login{}, err
	}
	acct, ip := keyFor(s.o.AccountLimit, email), keyFor(s.o.IPLimit, ipSubject(remoteIP))
	if err := s.reserve(ctx, acct, ip); err != nil {
		return Login{}, err
	}
	var enc []byte
	var last *int64
	err = s.pool.QueryRow(ctx, `SELECT totp_secret_enc, totp_last_step FROM users WHERE user_id = $1 AND totp_enabled`,
		userID).Scan(&enc, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return Login{}, ErrBadCode
	}
	if err != nil {
		return Login{}, fmt.Errorf("account: verify totp: %w", err)
	}
	secret, err := s.keys.Open(enc, totpAAD(userID))
	if err != nil {
		return Login{}, fmt.Errorf("account: verify totp of user %d: %w", userID, err)
	}
	lastStep := int64(-1)
	if last != nil {
		lastStep = *last
	}
	step, ok := matchTOTP(secret, code, s.o.Now(), lastStep)
	if !ok {
		return Login{}, ErrBadCode
	}
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The condition makes the step check atomic: of two replicas given
		// the same code at once, one wins.
		tag, err := tx.Exec(ctx, `
			UPDATE users SET totp_last_step = $2 WHERE user_id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)`,
			userID, step)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrBadCode
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pending_logins WHERE token_sha256 = $1`, hashToken(pending)); err != nil {
			return err
		}
		return s.completeLogin(ctx, tx, userID, "totp", remoteIP, acct, ip)
	})
	if errors.Is(err, ErrBadCode) {
		return Login{}, ErrBadCode
	}
	if err != nil {
		return Login{}, fmt.Errorf("account: verify totp: %w", err)
	}
	return Login{UserID: userID, MustChangePassword: mustChange}, nil
}

// UseRecoveryCode completes a pending login with one of the user's
// recovery codes, which is then used up. Errors as VerifyTOTP.
func (s *Store) UseRecoveryCode(ctx context.Context, pending, code, remoteIP string) (Login, error) {
	userID, email, mustChange, err := s.pendingUser(ctx, pending)
	if err != nil {
		return Login{}, err
	}
	acct, ip := keyFor(s.o.AccountLimit, email), keyFor(s.o.IPLimit, ipSubject(remoteIP))
	if err := s.reserve(ctx, acct, ip); err != nil {
		return Login{}, err
	}
	var left int
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			UPDATE recovery_codes SET used_at = $3 WHERE user_id = $1 AND code_sha256 = $2 AND used_at IS NULL`,
			userID, hashToken(canonicalCode(code)), s.now())
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrBadCode
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL`, userID).Scan(&left); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM pending_logins WHERE token_sha256 = $1`, hashToken(pending)); err != nil {
			return err
		}
		return s.completeLogin(ctx, tx, userID, "recovery_code", remoteIP, acct, ip)
	})
	if errors.Is(err, ErrBadCode) {
		return Login{}, ErrBadCode
	}
	if err != nil {
		return Login{}, fmt.Errorf("account: recovery code: %w", err)
	}
	return Login{UserID: userID, MustChangePassword: mustChange, RecoveryCodesLeft: left}, nil
}

// TOTPEnrolment is what a user needs to add Liggare to an authenticator
// app.
type TOTPEnrolment struct {
	// Secret is the base32 secret, for typing in by hand.
	Secret string
	// URI is the otpauth:// URI to show as a QR code.
	URI string
}

// BeginTOTP starts enrolment of by's own second factor: a new secret,
// stored sealed but not yet in force. Calling it again replaces the secret.
// ConfirmTOTP puts it in force. ErrTOTPEnabled when TOTP is already on.
func (s *Store) BeginTOTP(ctx context.Context, by Principal) (TOTPEnrolment, error) {
	if by.UserID == 0 || by.Inspector != nil {
		return TOTPEnrolment{}, ErrForbidden
	}
	secret, err := newTOTPSecret()
	if err != nil {
		return TOTPEnrolment{}, err
	}
	enc, err := s.keys.Seal(secret, totpAAD(by.UserID))
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: begin totp: %w", err)
	}
	var email string
	err = s.pool.QueryRow(ctx, `
		UPDATE users SET totp_secret_enc = $2, totp_last_step = NULL
		WHERE user_id = $1 AND NOT totp_enabled RETURNING email`, by.UserID, enc).Scan(&email)
	if errors.Is(err, pgx.ErrNoRows) {
		return TOTPEnrolment{}, ErrTOTPEnabled
	}
	if err != nil {
		return TOTPEnrolment{}, fmt.Errorf("account: begin totp: %w", err)
	}
	return TOTPEnrolment{Secret: b32.EncodeToString(secret), URI: totpURI(s.o.Issuer, email, secret)}, nil
}

// ConfirmTOTP puts by's enrolled secret in force once by shows a code
// from it, and returns the first RecoveryCodes recovery codes, shown once.
func (s *Store) ConfirmTOTP(ctx context.Context, by Principal, code string) ([]string, error) {
	if by.UserID == 0 || by.Inspector != nil {
		return nil, ErrForbidden
	}
	var codes []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var enc []byte
		var enabled bool
		err := tx.QueryRow(ctx, `SELECT totp_secret_enc, totp_enabled FROM users WHERE user_id = $1 FOR UPDATE`, by.UserID).
			Scan(&enc, &enabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrNotFound
		}
		switch {
		case err != nil:
			return err
		case enabled:
			return ErrTOTPEnabled
		case enc == nil:
			return ErrTOTPNotEnrolled
		}
		secret, err := s.keys.Open(enc, totpAAD(by.UserID))
		if err != nil {
			return err
		}
		step, ok := matchTOTP(secret, code, s.o.Now(), -1)
		if !ok {
			return ErrBadCode
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET totp_enabled = true, totp_last_step = $2 WHERE user_id = $1`, by.UserID, step); err != nil {
			return err
		}
		if codes, err = s.newRecoveryCodes(ctx, tx, by.UserID); err != nil {
			return err
		}
		orgs, err := userOrgs(ctx, tx, by.UserID)
		if err != nil {
			return err
		}
		return record(ctx, tx, by, ActionTOTPEnable, orgs, 0, map[string]any{"user_id": by.UserID})
	})
	if err != nil {
		return nil, fmt.Errorf("account: confirm totp: %w", err)
	}
	return codes, nil
}

// DisableTOTP turns user's second factor off and drops its recovery codes,
// for a lost phone: by is the user itself or an admin of every
// organisation it belongs to. The user's sessions are revoked.
func (s *Store) DisableTOTP(ctx context.Context, by Principal, userID int64) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		ok, err := mayAdminister(ctx, tx, by, userID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrForbidden
		}
		now := s.now()
		tag, err := tx.Exec(ctx, `
			UPDATE users SET totp_enabled = false, totp_secret_enc = NULL, totp_last_step = NULL WHERE user_id = $1`, userID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`, userID, now); err != nil {
			return err
		}
		orgs, err := userOrgs(ctx, tx, userID)
		if err != nil {
			return err
		}
		return record(ctx, tx, by, ActionTOTPDisable, orgs, 0, map[string]any{"user_id": userID})
	})
	if err != nil {
		return fmt.Errorf("account: disable totp: %w", err)
	}
	return nil
}

// NewRecoveryCodes replaces by's recovery codes with RecoveryCodes new
// ones, shown once. Only for a user with TOTP enabled.
func (s *Store) NewRecoveryCodes(ctx context.Context, by Principal) ([]string, error) {
	if by.UserID == 0 || by.Inspector != nil {
		return nil, ErrForbidden
	}
	var codes []string
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var enabled bool
		if err := tx.QueryRow(ctx, `SELECT totp_enabled FROM users WHERE user_id = $1 FOR UPDATE`, by.UserID).Scan(&enabled); err != nil {
			return err
		}
		if !enabled {
			return ErrTOTPNotEnrolled
		}
		var err error
		if codes, err = s.newRecoveryCodes(ctx, tx, by.UserID); err != nil {
			return err
		}
		orgs, err := userOrgs(ctx, tx, by.UserID)
		if err != nil {
			return err
		}
		return record(ctx, tx, by, ActionRecoveryCodesNew, orgs, 0, map[string]any{"user_id": by.UserID})
	})
	if err != nil {
		return nil, fmt.Errorf("account: new recovery codes: %w", err)
	}
	return codes, nil
}

func (s *Store) newRecoveryCodes(ctx context.Context, tx pgx.Tx, userID int64) ([]string, error) {
	if _, err := tx.Exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
		return nil, err
	}
	now := s.now()
	codes := make([]string, 0, RecoveryCodes)
	for len(codes) < RecoveryCodes {
		c, err := newCode(recoveryCodeChars)
		if err != nil {
			return nil, err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO recovery_codes (user_id, code_sha256, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			userID, hashToken(c), now)
		if err != nil {
			return nil, err
		}
		if tag.RowsAffected() == 1 {
			codes = append(codes, groupCode(c))
		}
	}
	return codes, nil
}
