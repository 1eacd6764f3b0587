package auth

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// startCache runs a cache over pool until the test ends and waits for its
// first load. Revocations it reports arrive on the returned channel.
func startCache(t *testing.T, terminals *Terminals, reload time.Duration) (*CredentialCache, <-chan []int64) {
	t.Helper()
	revoked := make(chan []int64, 16)
	c := NewCredentialCache(terminals, CacheOptions{Reload: reload, OnRevoke: func(ids []int64) { revoked <- ids }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	<-c.Loaded()
	return c, revoked
}

// waitRevoked waits until the cache reports id revoked.
func waitRevoked(t *testing.T, revoked <-chan []int64, id int64) {
	t.Helper()
	for ids := range revoked {
		if slices.Contains(ids, id) {
			return
		}
	}
}

// create issues a credential to a new terminal.
func create(t *testing.T, terminals *Terminals, id string) string {
	t.Helper()
	cred, err := terminals.Create(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// wantRefused checks that c refuses cred.
func wantRefused(t *testing.T, c *CredentialCache, cred, what string) {
	t.Helper()
	if _, _, err := c.Authenticate(context.Background(), cred); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("%s: Authenticate = %v, want ErrUnauthorized", what, err)
	}
}

func mustAuth(t *testing.T, c *CredentialCache, cred string) int64 {
	t.Helper()
	_, id, err := c.Authenticate(context.Background(), cred)
	if err != nil {
		t.Fatalf("Authenticate(%q) = %v, want success", cred, err)
	}
	return id
}

func TestCacheAnswersFromMemory(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	cred := create(t, NewTerminals(pool), "T1")
	// The cache's Terminals has a pool of its own, closed once the cache
	// is loaded: only the cache's own connection is left.
	own, err := pgxpool.NewWithConfig(ctx, pool.Config())
	if err != nil {
		t.Fatal(err)
	}
	c, _ := startCache(t, NewTerminals(own), time.Hour)
	own.Close()
	id, credID, err := c.Authenticate(ctx, cred)
	if err != nil || id != "T1" {
		t.Fatalf("Authenticate with the pool closed = %q, %v; want T1 from memory", id, err)
	}
	if ok, err := c.Active(ctx, credID); !ok || err != nil {
		t.Fatalf("Active with the pool closed = %v, %v; want true from memory", ok, err)
	}
	if _, _, err := c.Authenticate(ctx, "T1.wrong"); err == nil {
		t.Fatal("a wrong secret was accepted")
	}
}

func TestCacheRevocationTakesEffectAtOnce(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	terminals := NewTerminals(pool)
	before := create(t, terminals, "T1")
	c, revoked := startCache(t, terminals, time.Hour)
	// A credential issued after the load is announced and taken in too.
	after := create(t, terminals, "T2")
	id1 := mustAuth(t, c, before)
	id2 := mustAuth(t, c, after)

	if n, err := terminals.Revoke(ctx, "T1"); n != 1 || err != nil {
		t.Fatalf("Revoke = %d, %v", n, err)
	}
	// Revoked through the cache's own Terminals: refused at once, before
	// the notification is heard.
	wantRefused(t, c, before, "revoked in this process")
	waitRevoked(t, revoked, id1)
	wantRefused(t, c, before, "revoked credential")
	if ok, err := c.Active(ctx, id1); ok || err != nil {
		t.Errorf("revoked credential: Active = %v, %v; want false", ok, err)
	}
	mustAuth(t, c, after)

	// A revocation made without a notification (by hand in SQL) is found
	// at the next reload.
	c2, revoked2 := startCache(t, NewTerminals(pool), 20*time.Millisecond)
	mustAuth(t, c2, after)
	if _, err := pool.Exec(ctx, `UPDATE terminal_credentials SET revoked_at = now() WHERE credential_id = $1`, id2); err != nil {
		t.Fatal(err)
	}
	waitRevoked(t, revoked2, id2)
	wantRefused(t, c2, after, "credential revoked in SQL, after a reload")
}

func TestCacheFollowsRotation(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	terminals := NewTerminals(pool)
	old := create(t, terminals, "T1")
	c, revoked := startCache(t, terminals, time.Hour)
	oldID := mustAuth(t, c, old)
	rotated, newID, err := terminals.Rotate(ctx, oldID)
	if err != nil {
		t.Fatal(err)
	}
	// Both work until the new one is used; its first use revokes the old.
	mustAuth(t, c, old)
	if got := mustAuth(t, c, rotated); got != newID {
		t.Fatalf("rotated credential authenticated as %d, want %d", got, newID)
	}
	waitRevoked(t, revoked, oldID)
	wantRefused(t, c, old, "replaced credential")
	mustAuth(t, c, rotated)
}

func TestCacheRebuildsAfterLosingItsConnection(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	terminals := NewTerminals(pool)
	cred := create(t, terminals, "T1")
	c, revoked := startCache(t, terminals, time.Hour)
	id := mustAuth(t, c, cred)
	// End the cache's connection; the revocation that follows may not be
	// announced to it. The cache asks the database until it is loaded
	// again, and the new load finds the revocation.
	if _, err := pool.Exec(ctx, `
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = $1`, CacheApplicationName); err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `UPDATE terminal_credentials SET revoked_at = now() WHERE credential_id = $1`, id); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Authenticate(ctx, cred); !errors.Is(err, ErrUnauthorized) {
		// Still loaded from before: the terminate has not been seen yet.
		// The reload after the reconnection must report it.
		waitRevoked(t, revoked, id)
		if _, _, err := c.Authenticate(ctx, cred); !errors.Is(err, ErrUnauthorized) {
			t.Fatalf("after reconnecting: Authenticate = %v, want ErrUnauthorized", err)
		}
	}
}
