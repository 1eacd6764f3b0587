package live

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// start runs h until the test ends and waits until it listens.
func start(t *testing.T, h *Hub) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-h.Listening():
	case <-time.After(10 * time.Second):
		t.Fatal("hub never listened")
	}
}

// expect waits for a signal on s.
func expect(t *testing.T, s *Subscription, what string) {
	t.Helper()
	select {
	case <-s.C:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: no signal", what)
	}
}

// quiet asserts that no signal is waiting on s after the hub had time to
// deliver one.
func quiet(t *testing.T, s *Subscription, what string) {
	t.Helper()
	select {
	case <-s.C:
		t.Fatalf("%s: unexpected signal", what)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestAcrossReplicas(t *testing.T) {
	pool := pgtest.New(t)
	a := New(pool, Options{Coalesce: 10 * time.Millisecond})
	b := New(pool, Options{Coalesce: 10 * time.Millisecond})
	start(t, a)
	start(t, b)

	onA, onB, other := a.Subscribe(7), b.Subscribe(7), b.Subscribe(8)
	defer onA.Close()
	defer onB.Close()
	defer other.Close()

	a.Publish([]int64{7})
	expect(t, onA, "publishing replica")
	expect(t, onB, "other replica")
	quiet(t, other, "another site")

	// Many changes of one site while nobody reads: one signal waits, the
	// rest are duplicates.
	for range 50 {
		b.Publish([]int64{7})
	}
	expect(t, onA, "after a burst")
	quiet(t, onA, "duplicates of the burst")
}

func TestLocalOnly(t *testing.T) {
	h := New(nil, Options{Coalesce: time.Millisecond})
	start(t, h)
	s := h.Subscribe(3)
	h.Publish([]int64{3, 4})
	expect(t, s, "local hub")
	s.Close()
	s.Close() // twice is fine
	if n := h.Clients(); n != 0 {
		t.Errorf("Clients() = %d after Close, want 0", n)
	}
}

func TestClientsGauge(t *testing.T) {
	var mu sync.Mutex
	var seen []int
	h := New(nil, Options{OnClients: func(n int) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, n)
	}})
	s1 := h.Subscribe(1)
	s2 := h.Subscribe(2)
	s1.Close()
	s2.Close()
	mu.Lock()
	defer mu.Unlock()
	if diff := cmp.Diff([]int{1, 2, 1, 0}, seen); diff != "" {
		t.Errorf("OnClients calls (-want +got):\n%s", diff)
	}
}

func TestPayloads(t *testing.T) {
	var sites []int64
	for i := int64(1_000_000_000); i < 1_000_000_000+3000; i++ {
		sites = append(sites, i)
	}
	ps := Payloads(sites, MaxPayload)
	if len(ps) < 2 {
		t.Fatalf("Payloads of %d ids = %d payloads, want several", len(sites), len(ps))
	}
	var back []int64
	for _, p := range ps {
		if len(p) > MaxPayload || len(p) >= 8000 {
			t.Errorf("payload of %d bytes, want < 8000", len(p))
		}
		if strings.HasPrefix(p, ",") || strings.HasSuffix(p, ",") {
			t.Errorf("payload %q has a stray comma", p[:20])
		}
		back = append(back, ParsePayload(p)...)
	}
	if diff := cmp.Diff(sites, back); diff != "" {
		t.Errorf("ParsePayload(Payloads()) (-want +got):\n%s", diff)
	}
	if got := ParsePayload("1,x,,-3, 4"); !cmp.Equal(got, []int64{1, 4}) {
		t.Errorf("ParsePayload(junk) = %v, want [1 4]", got)
	}
}

// TestLargeBatchNotifies sends more ids than fit one payload through
// PostgreSQL.
func TestLargeBatchNotifies(t *testing.T) {
	pool := pgtest.New(t)
	h := New(pool, Options{Coalesce: 10 * time.Millisecond})
	start(t, h)
	last := h.Subscribe(1_000_002_999)
	defer last.Close()
	var sites []int64
	for i := int64(1_000_000_000); i < 1_000_000_000+3000; i++ {
		sites = append(sites, i)
	}
	h.Publish(sites)
	expect(t, last, "the last id of a large batch")
}

// TestReconnect kills the listening connection: the hub connects again and
// signals every subscriber, since changes may have gone unheard.
func TestReconnect(t *testing.T) {
	pool := pgtest.New(t)
	h := New(pool, Options{Coalesce: 10 * time.Millisecond, ReconnectMin: 10 * time.Millisecond})
	start(t, h)
	s := h.Subscribe(5)
	defer s.Close()
	killListeners(t, pool)
	expect(t, s, "resync after reconnect")
	// And it hears notifications again.
	waitListening(t, pool)
	h.Publish([]int64{5})
	expect(t, s, "after reconnect")
}

func killListeners(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	waitListening(t, pool)
	if _, err := pool.Exec(context.Background(), `
		SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'`); err != nil {
		t.Fatal(err)
	}
}

// waitListening waits until some backend of the database has LISTEN as its
// last statement.
func waitListening(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var n int
		if err := pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query LIKE 'LISTEN%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no listening backend")
}
