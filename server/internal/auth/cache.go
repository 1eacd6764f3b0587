package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// CredentialChannel is the PostgreSQL notification channel on which every
// change of a terminal credential (issued, confirmed, revoked) is announced,
// one notification per credential with its id as the payload. The
// statement or transaction making the change sends it, so it is delivered
// when, and only if, the change commits.
const CredentialChannel = "liggare_credentials"

// CacheApplicationName is the application_name of a CredentialCache's
// connection, as pg_stat_activity shows it.
const CacheApplicationName = "liggare-credential-cache"

// Limits of a CredentialCache.
const (
	// DefaultCacheReload is how often a CredentialCache reads every active
	// credential again. Changes announced on CredentialChannel take effect
	// at once; the reload bounds how long one made without a notification
	// (by hand in SQL, or by an older server during an upgrade) goes
	// unseen.
	DefaultCacheReload = time.Minute
	// cacheRetryMin and cacheRetryMax bound the wait before the cache
	// connects again after losing its connection.
	cacheRetryMin = 100 * time.Millisecond
	cacheRetryMax = 5 * time.Second
)

// CacheOptions configure a CredentialCache.
type CacheOptions struct {
	Logger *slog.Logger
	// Reload is how often the whole cache is read again (default
	// DefaultCacheReload).
	Reload time.Duration
	// OnRevoke, when set, is called with the ids of credentials found no
	// longer active: announced as changed and read back revoked, or gone
	// from the cache at a reload. It runs on the cache's goroutine and must
	// return quickly.
	OnRevoke func(ids []int64)
}

// CredentialCache answers Authenticate and Active from memory, so that ten
// thousand terminals reconnecting at once do not queue for the database
// before their websocket is upgraded.
//
// It holds every active credential that is not an unconfirmed rotation
// (those go to the database, which confirms them). It is kept exact by
// notifications on CredentialChannel, read on a connection of its own: a
// changed credential is dropped from memory the moment its notification
// arrives, then read back. Until the first load, and whenever that
// connection is down (notifications may be lost), every question goes to
// the database, as without a cache.
type CredentialCache struct {
	t      *Terminals
	opts   CacheOptions
	loaded chan struct{} // closed at the first load
	once   sync.Once

	mu    sync.Mutex
	ready bool   // loaded, and listening since before the load
	gen   uint64 // bumped by every change, so a racing database answer is not kept
	bySum map[[sha256.Size]byte]cachedCredential
	byID  map[int64][sha256.Size]byte
}

type cachedCredential struct {
	terminalID string
	id         int64
}

// NewCredentialCache returns a cache over t. It answers from the database
// until Run has loaded it. Changes committed through t (or announced with
// Terminals.Forget) take effect at once; those of other processes when
// their notification arrives.
func NewCredentialCache(t *Terminals, opts CacheOptions) *CredentialCache {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Reload <= 0 {
		opts.Reload = DefaultCacheReload
	}
	c := &CredentialCache{t: t, opts: opts, loaded: make(chan struct{})}
	forget := c.forgetTerminal
	t.forget.Store(&forget)
	return c
}

// Loaded is closed once the cache has been loaded for the first time.
func (c *CredentialCache) Loaded() <-chan struct{} { return c.loaded }

// Authenticate is Terminals.Authenticate, from memory when it can.
func (c *CredentialCache) Authenticate(ctx context.Context, credential string) (string, int64, error) {
	id, secret, ok := strings.Cut(credential, ".")
	if !ok || !ValidTerminalID(id) || secret == "" || len(secret) > maxSecretLen {
		return "", 0, ErrUnauthorized
	}
	sum := sha256.Sum256([]byte(secret))
	c.mu.Lock()
	if e, ok := c.bySum[sum]; c.ready && ok && e.terminalID == id {
		c.mu.Unlock()
		return id, e.id, nil
	}
	gen, ready := c.gen, c.ready
	c.mu.Unlock()
	terminalID, credID, err := c.t.Authenticate(ctx, credential)
	if err != nil {
		return "", 0, err
	}
	c.mu.Lock()
	if ready && c.ready && c.gen == gen {
		c.put(sum, cachedCredential{terminalID: terminalID, id: credID})
	}
	c.mu.Unlock()
	return terminalID, credID, nil
}

// Active is Terminals.Active, from memory when it can.
func (c *CredentialCache) Active(ctx context.Context, credentialID int64) (bool, error) {
	c.mu.Lock()
	_, ok := c.byID[credentialID]
	ready := c.ready
	c.mu.Unlock()
	if ready && ok {
		return true, nil
	}
	return c.t.Active(ctx, credentialID)
}

// Len reports how many credentials the cache holds (0 when not ready).
func (c *CredentialCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return 0
	}
	return len(c.byID)
}

func (c *CredentialCache) put(sum [sha256.Size]byte, e cachedCredential) {
	if old, ok := c.byID[e.id]; ok && old != sum {
		delete(c.bySum, old)
	}
	c.bySum[sum] = e
	c.byID[e.id] = sum
}

func (c *CredentialCache) forget(ids []int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, id := range ids {
		if sum, ok := c.byID[id]; ok {
			delete(c.bySum, sum)
			delete(c.byID, id)
		}
	}
}

// forgetTerminal drops a terminal's credentials (Terminals.Forget).
func (c *CredentialCache) forgetTerminal(terminalID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for id, sum := range c.byID {
		if c.bySum[sum].terminalID == terminalID {
			delete(c.bySum, sum)
			delete(c.byID, id)
		}
	}
}

func (c *CredentialCache) setReady(ready bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.ready = ready
	// The maps are kept while not ready, unused, so that the next load can
	// report what was revoked in between.
}

// Run keeps the cache loaded and exact until ctx ends.
func (c *CredentialCache) Run(ctx context.Context) {
	wait := cacheRetryMin
	for {
		loaded, err := c.listen(ctx)
		c.setReady(false)
		if ctx.Err() != nil {
			return
		}
		if loaded {
			wait = cacheRetryMin
		}
		c.opts.Logger.Warn("credential_cache_down", "err", err, "wait", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, cacheRetryMax)
	}
}

// listen holds one connection: LISTEN first, then the load, so that no
// change can fall between the two; then each notification and each
// periodic reload, until the connection fails or ctx ends.
func (c *CredentialCache) listen(ctx context.Context) (loaded bool, err error) {
	cfg := c.t.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = CacheApplicationName
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("auth: cache: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{CredentialChannel}.Sanitize()); err != nil {
		return false, fmt.Errorf("auth: cache: listen: %w", err)
	}
	if err := c.reload(ctx, conn); err != nil {
		return false, err
	}
	next := time.Now().Add(c.opts.Reload)
	done, cancelDone := context.WithCancel(ctx)
	cancelDone()
	for {
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return true, ctx.Err()
		case err != nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			if err := c.reload(ctx, conn); err != nil {
				return true, err
			}
			next = time.Now().Add(c.opts.Reload)
			continue
		case err != nil:
			return true, fmt.Errorf("auth: cache: wait: %w", err)
		}
		// Take every notification already received, then read them back
		// in one query.
		var ids []int64
		for n != nil {
			if id, err := strconv.ParseInt(n.Payload, 10, 64); err == nil && n.Channel == CredentialChannel {
				ids = append(ids, id)
			}
			if n, _ = conn.WaitForNotification(done); n == nil {
				break
			}
		}
		if len(ids) == 0 {
			continue
		}
		c.forget(ids)
		if err := c.refresh(ctx, conn, ids); err != nil {
			return true, err
		}
	}
}

// activeCredentials selects the credentials the cache holds: active and
// not an unconfirmed rotation.
const activeCredentials = `
	SELECT credential_id, terminal_id, secret_sha256 FROM terminal_credentials
	WHERE revoked_at IS NULL AND NOT (replaces IS NOT NULL AND confirmed_at IS NULL)`

// reload reads every active credential and replaces the cache with them.
func (c *CredentialCache) reload(ctx context.Context, conn *pgx.Conn) error {
	bySum := make(map[[sha256.Size]byte]cachedCredential)
	byID := make(map[int64][sha256.Size]byte)
	rows, err := conn.Query(ctx, activeCredentials)
	if err != nil {
		return fmt.Errorf("auth: cache: load: %w", err)
	}
	var e cachedCredential
	var sum []byte
	_, err = pgx.ForEachRow(rows, []any{&e.id, &e.terminalID, &sum}, func() error {
		if len(sum) == sha256.Size {
			bySum[[sha256.Size]byte(sum)] = e
			byID[e.id] = [sha256.Size]byte(sum)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: cache: load: %w", err)
	}
	c.mu.Lock()
	var gone []int64
	for id := range c.byID {
		if _, ok := byID[id]; !ok {
			gone = append(gone, id)
		}
	}
	c.gen++
	c.ready = true
	c.bySum, c.byID = bySum, byID
	n := len(byID)
	c.mu.Unlock()
	c.once.Do(func() { close(c.loaded) })
	c.opts.Logger.Info("credential_cache_loaded", "credentials", n)
	c.revoked(gone)
	return nil
}

// refresh reads the given credentials back after their notifications:
// those active are kept, those revoked (or gone) reported. An unconfirmed
// rotation is neither: no connection can hold one.
func (c *CredentialCache) refresh(ctx context.Context, conn *pgx.Conn, ids []int64) error {
	rows, err := conn.Query(ctx, `
		SELECT credential_id, terminal_id, secret_sha256, revoked_at IS NULL, replaces IS NOT NULL AND confirmed_at IS NULL
		FROM terminal_credentials WHERE credential_id = ANY($1)`, ids)
	if err != nil {
		return fmt.Errorf("auth: cache: refresh: %w", err)
	}
	type row struct {
		e        cachedCredential
		sum      [sha256.Size]byte
		active   bool
		rotation bool
	}
	found := make(map[int64]row, len(ids))
	var r row
	var sum []byte
	_, err = pgx.ForEachRow(rows, []any{&r.e.id, &r.e.terminalID, &sum, &r.active, &r.rotation}, func() error {
		if len(sum) == sha256.Size {
			r.sum = [sha256.Size]byte(sum)
			found[r.e.id] = r
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: cache: refresh: %w", err)
	}
	var gone []int64
	c.mu.Lock()
	for _, id := range ids {
		r, ok := found[id]
		switch {
		case !ok || !r.active:
			gone = append(gone, id)
		case !r.rotation:
			c.put(r.sum, r.e)
		}
	}
	c.mu.Unlock()
	c.revoked(gone)
	return nil
}

func (c *CredentialCache) revoked(ids []int64) {
	if len(ids) > 0 && c.opts.OnRevoke != nil {
		c.opts.OnRevoke(ids)
	}
}
