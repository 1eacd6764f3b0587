package webclient

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// reopenPause is how long a Follower waits before opening a stream again
// after one ended or its server was away.
const reopenPause = 50 * time.Millisecond

// Follower holds a site page's event stream open, as the page's
// EventSource does, opening it again whenever the server comes back, and
// counts the "change" events; Fragment fetches what the page fetches on
// each of them.
type Follower struct {
	name string
	base func() string // the server's URL, "" while it is away
	site int64
	web  *Client

	changes atomic.Int64
	signal  chan struct{} // room for one: a change event came
	open    atomic.Bool   // a stream is open (its preamble was read)
	opened  atomic.Int64  // streams opened

	mu  sync.Mutex
	err error // the first refusal of a stream, which a signed-in page never gets
}

// NewFollower returns a follower of site's page on the server whose base
// URL base returns ("" while it is away), signed in as web; name names the
// server in errors.
func NewFollower(name string, base func() string, site int64, web *Client) *Follower {
	return &Follower{name: name, base: base, site: site, web: web, signal: make(chan struct{}, 1)}
}

// Name is the server's name given to NewFollower.
func (f *Follower) Name() string { return f.name }

// Site is the site followed.
func (f *Follower) Site() int64 { return f.site }

// Changes counts the change events read.
func (f *Follower) Changes() int64 { return f.changes.Load() }

// Opened counts the streams opened.
func (f *Follower) Opened() int64 { return f.opened.Load() }

// IsOpen reports whether a stream is open: its preamble was read, so the
// server has subscribed it to the site's changes.
func (f *Follower) IsOpen() bool { return f.open.Load() }

// Signal receives after change events: one value however many came since
// the last receive.
func (f *Follower) Signal() <-chan struct{} { return f.signal }

// Run follows until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	for ctx.Err() == nil {
		if base := f.base(); base != "" {
			f.stream(ctx, base)
		}
		t := time.NewTimer(reopenPause) // the server is down or restarting
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
}

func (f *Follower) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

// Failure returns the first refusal of a stream or expiry of the session,
// or nil.
func (f *Follower) Failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// stream reads one event stream until it ends.
func (f *Follower) stream(ctx context.Context, base string) {
	resp, err := f.web.Request(ctx, "GET", fmt.Sprintf("%s/sites/%d/events", base, f.site), nil)
	if err != nil {
		return // the server went away
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		f.fail(fmt.Errorf("%s: event stream answered %s", f.name, resp.Status))
		return
	}
	defer f.open.Store(false)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		switch line := sc.Text(); {
		case line == ": live":
			// Written after the stream subscribed to the site's changes.
			f.opened.Add(1)
			f.open.Store(true)
		case line == "event: change":
			f.changes.Add(1)
			select {
			case f.signal <- struct{}{}:
			default:
			}
		case strings.HasPrefix(line, "event: expired"):
			f.fail(fmt.Errorf("%s: the session expired", f.name))
		}
	}
}

// Fragment fetches the live part of the site page, as the page does on
// each change event.
func (f *Follower) Fragment(ctx context.Context) (string, error) {
	base := f.base()
	if base == "" {
		return "", fmt.Errorf("%s is down", f.name)
	}
	return f.web.Page(ctx, "GET", fmt.Sprintf("%s/sites/%d/onsite", base, f.site), nil, http.StatusOK, "")
}
