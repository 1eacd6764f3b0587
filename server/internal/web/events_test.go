package web

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
)

// sseClient follows an event stream over real HTTP and reports each event
// ("change", "expired") and comment (":") on its channel.
type sseClient struct {
	events chan string
	cancel func()
}

func openEvents(t testing.TB, base, path, session string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: account.CookieName, Value: session})
	req.Header.Set("Accept", "text/event-stream")
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	c := &sseClient{events: make(chan string, 1024), cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		defer resp.Body.Close()
		defer close(c.events)
		r := bufio.NewReader(resp.Body)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "event: "):
				c.events <- strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, ":"):
				c.events <- ":" + strings.TrimSpace(strings.TrimPrefix(line, ":"))
			}
		}
	}()
	return c
}

// next waits for the next event or comment named want, skipping others.
func (c *sseClient) next(t testing.TB, want string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				t.Fatalf("stream ended waiting for %q", want)
			}
			if ev == want {
				return
			}
		case <-timeout:
			t.Fatalf("no %q within %v", want, within)
		}
	}
}

func TestEventStream(t *testing.T) {
	var clients atomic.Int64
	w := newWorld(t, func(c *Config) {
		c.Heartbeat = 50 * time.Millisecond
		c.Live.OnClients = func(n int) { clients.Store(int64(n)) }
	})
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	ts := httptest.NewServer(w.srv.Handler())
	defer ts.Close()
	<-w.srv.Hub().Listening()
	tok := w.session(t, mgr)
	c := openEvents(t, ts.URL, "/sites/"+itoa(w.siteA)+"/events", tok)
	c.next(t, ":live", 5*time.Second)
	if n := clients.Load(); n != 1 {
		t.Errorf("live clients = %d, want 1", n)
	}
	c.next(t, ":heartbeat", 5*time.Second)

	// A tap at the site reaches the page through the reconciler, the hub
	// and PostgreSQL's LISTEN/NOTIFY.
	w.tap(t, "TA", "AB0000000002", w.clock.Now().Add(-time.Minute)) // Erik leaves
	w.drain(t)
	c.next(t, "change", 10*time.Second)
	// The fragment the page then fetches shows it.
	body := readBody(t, w.do(t, request{method: "GET", path: "/sites/" + itoa(w.siteA) + "/onsite", session: tok}))
	onsite, _, _ := strings.Cut(body, `id="h-attention"`)
	if strings.Contains(onsite, nameErik) {
		t.Error("Erik still on site after tapping out")
	}

	// A tap at another site is not this page's business.
	other := openEvents(t, ts.URL, "/sites/"+itoa(w.siteA)+"/events", tok)
	other.next(t, ":live", 5*time.Second)
	w.tap(t, "TC", "AB0000000003", w.clock.Now().Add(-time.Minute))
	w.drain(t)
	other.none(t, "change", 500*time.Millisecond)

	// Logging out ends the stream at the next heartbeat.
	if err := w.srv.Accounts().Revoke(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	c.next(t, "expired", 5*time.Second)
	other.next(t, "expired", 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for clients.Load() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := clients.Load(); n != 0 {
		t.Errorf("live clients = %d after the streams ended, want 0", n)
	}
}

// none asserts that no event named unwanted comes within d.
func (c *sseClient) none(t testing.TB, unwanted string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case ev, ok := <-c.events:
			if !ok {
				return
			}
			if ev == unwanted {
				t.Errorf("unexpected event %q", ev)
			}
		case <-timeout:
			return
		}
	}
}

// TestEventsEndWithServer: streams end when Run ends, so that a graceful
// shutdown does not wait for them.
func TestEventsEndWithServer(t *testing.T) {
	w := newWorld(t)
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	srv, err := New(Config{Pool: w.pool, Keys: w.keys, Now: w.clock.Now,
		Accounts: account.Options{Now: w.clock.Now, Params: cheapParams}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	c := openEvents(t, ts.URL, "/sites/"+itoa(w.siteA)+"/events", w.session(t, mgr))
	c.next(t, ":live", 5*time.Second)
	cancel()
	<-done
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-c.events:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("stream still open after Run ended")
		}
	}
}
