package account

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/audit"
)

// Limit is a named login limit: Free attempts are allowed, then every
// further one must wait Delay, doubling with each failure up to MaxDelay.
// A counter forgets its failures once none has come for Window.
type Limit struct {
	// Name appears in ThrottledError and in the stored key.
	Name     string
	Free     int
	Window   time.Duration
	Delay    time.Duration
	MaxDelay time.Duration
}

// The default limits.
var (
	// DefaultAccountLimit guards one account (by e-mail address, known or
	// not, so that it tells nothing about which exist): 5 free tries, then
	// 1, 2, 4, 8, 15, 15... minutes, forgotten after an hour of quiet. That
	// is some tens of guesses a day, while the owner who mistyped waits a
	// minute. Password and second-factor failures both count. Delays
	// rather than a hard lock, so a stranger cannot lock someone out for
	// good.
	DefaultAccountLimit = Limit{Name: "account", Free: 5, Window: time.Hour, Delay: time.Minute, MaxDelay: 15 * time.Minute}
	// DefaultIPLimit guards against one address trying many accounts: 50
	// free tries an hour, loose because site crews share mobile carriers'
	// NAT addresses. IPv6 addresses count per /64.
	DefaultIPLimit = Limit{Name: "ip", Free: 50, Window: time.Hour, Delay: time.Minute, MaxDelay: 30 * time.Minute}
	// DefaultRedeemLimit guards inspector codes (40 bits) against
	// guessing from one address: 10 free tries, then 1 minute doubling to
	// an hour.
	DefaultRedeemLimit = Limit{Name: "redeem_ip", Free: 10, Window: time.Hour, Delay: time.Minute, MaxDelay: time.Hour}
)

// ErrThrottled is wrapped by a *ThrottledError.
var ErrThrottled = errors.New("account: too many attempts")

// ThrottledError says which limit refused an attempt and when to try again.
type ThrottledError struct {
	Limit      string
	RetryAfter time.Duration
}

// Error implements error.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("account: too many attempts (%s limit), retry after %s", e.Limit, e.RetryAfter.Round(time.Second))
}

// Unwrap returns ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// throttleKey is one counter: a limit and what it counts (an address, an
// account). The stored key is a SHA-256, so the table holds no e-mail
// addresses or IP addresses.
type throttleKey struct {
	limit Limit
	key   []byte
}

func keyFor(l Limit, subject string) throttleKey {
	h := sha256.New()
	h.Write([]byte("liggare/throttle/v1\x00" + l.Name + "\x00" + subject))
	return throttleKey{limit: l, key: h.Sum(nil)}
}

// ipSubject is what an address is counted as: itself, or its /64 for IPv6.
// A "host:port" is accepted; anything unparseable counts as itself.
func ipSubject(remote string) string {
	addr, err := netip.ParseAddr(remote)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(remote)
		if err2 != nil {
			return remote
		}
		addr = ap.Addr()
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

// auditIP is the address as written to the audit log: the whole address,
// or "unknown" for something that is not one (which the audit log might
// otherwise refuse as looking like an identity number).
func auditIP(remote string) string {
	addr, err := netip.ParseAddr(remote)
	if err != nil {
		ap, err2 := netip.ParseAddrPort(remote)
		if err2 != nil {
			return "unknown"
		}
		addr = ap.Addr()
	}
	return addr.Unmap().String()
}

// lockFor is the delay after failures failures under l.
func lockFor(l Limit, failures int) time.Duration {
	if failures < l.Free {
		return 0
	}
	d := l.Delay
	for i := l.Free; i < failures && d < l.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.MaxDelay)
}

// reserve counts an attempt against every key before the attempt is
// checked, so that guesses running in parallel on several replicas cannot
// all slip past a limit: each takes its row lock in turn. It refuses with a
// *ThrottledError, counting nothing, when any key is locked. A successful
// attempt gives its reservation back with succeed.
func (s *Store) reserve(ctx context.Context, keys ...throttleKey) error {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b throttleKey) int { return bytes.Compare(a.key, b.key) }) // one lock order
	now := s.now()
	var refused *ThrottledError
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		type state struct {
			failures int
			last     time.Time
		}
		states := make([]state, len(keys))
		for i, k := range keys {
			if _, err := tx.Exec(ctx, `
				INSERT INTO login_throttle (key, failures, last_failure) VALUES ($1, 0, $2)
				ON CONFLICT (key) DO NOTHING`, k.key, now); err != nil {
				return err
			}
			var locked *time.Time
			err := tx.QueryRow(ctx, `SELECT failures, last_failure, locked_until FROM login_throttle WHERE key = $1 FOR UPDATE`,
				k.key).Scan(&states[i].failures, &states[i].last, &locked)
			if err != nil {
				return err
			}
			if locked != nil && locked.After(now) {
				if wait := locked.Sub(now); refused == nil || wait > refused.RetryAfter {
					refused = &ThrottledError{Limit: k.limit.Name, RetryAfter: wait}
				}
			}
		}
		if refused != nil {
			return nil // commit nothing but the empty rows
		}
		for i, k := range keys {
			f := states[i].failures
			if now.Sub(states[i].last) > k.limit.Window {
				f = 0
			}
			f++
			var until *time.Time
			if d := lockFor(k.limit, f); d > 0 {
				t := now.Add(d)
				until = &t
			}
			if _, err := tx.Exec(ctx, `UPDATE login_throttle SET failures = $2, last_failure = $3, locked_until = $4 WHERE key = $1`,
				k.key, f, now, until); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("account: throttle: %w", err)
	}
	if refused != nil {
		s.o.Logger.WarnContext(ctx, "login_throttled", logKeyLimit, refused.Limit, logKeyRetryAfter, refused.RetryAfter)
		return refused
	}
	return nil
}

// succeed gives back the reservation of a successful attempt: the account
// counter is cleared (its owner is in), an address counter only loses this
// one attempt, since one good login must not wipe out many bad ones. Any
// lock on it goes: reserve let this attempt through, so the only lock can
// be the one its own reservation set (or, rarely, a parallel failure's,
// which then costs one extra try, not a bypass: the count stays).
func (s *Store) succeed(ctx context.Context, q audit.Querier, clear []throttleKey, giveBack []throttleKey) error {
	for _, k := range clear {
		if _, err := q.Exec(ctx, `DELETE FROM login_throttle WHERE key = $1`, k.key); err != nil {
			return fmt.Errorf("account: throttle: %w", err)
		}
	}
	for _, k := range giveBack {
		if _, err := q.Exec(ctx, `
			UPDATE login_throttle SET failures = greatest(failures - 1, 0), locked_until = NULL
			WHERE key = $1`, k.key); err != nil {
			return fmt.Errorf("account: throttle: %w", err)
		}
	}
	return nil
}

// Log keys.
const (
	logKeyLimit      = "limit"
	logKeyRetryAfter = "retry_after"
)
