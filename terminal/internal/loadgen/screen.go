package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/liggare/liggare/internal/webclient"
	"github.com/liggare/liggare/syncproto"
)

// DefaultScreenGrace is how long a ScreenWatch waits, after the last tap
// was acknowledged, for the pages to show the taps they have not shown
// yet; a tap not shown by then is a miss.
const DefaultScreenGrace = 10 * time.Second

// screenPoll is how often Settle and WaitOpen look.
const screenPoll = 10 * time.Millisecond

// ScreenWatch measures tap-to-screen latency on a sample of a Customer's
// sites: the admin's signed-in session holds each sampled site's page
// open, reading its event stream and fetching its live fragment on each
// change event, as the page in a browser does; a tap is shown when a
// fragment fetched so contains its person's name. Its latency runs from
// the moment the tap was durable on the terminal until that fragment had
// arrived.
type ScreenWatch struct {
	sites []*siteWatch
}

// siteWatch is one followed site.
type siteWatch struct {
	follower *webclient.Follower
	people   map[string]string // card -> name

	mu        sync.Mutex
	pending   []screenTap // recorded, not shown yet
	shown     []screenTap // with lat set
	fetches   int
	fetchErrs int
	lastErr   error
}

// screenTap is a tap on a followed site.
type screenTap struct {
	name    string
	at      time.Time // durable on the terminal
	offline bool      // recorded while the terminal had no network
	lat     time.Duration
}

// NewScreenWatch follows n of the customer's sites, spread evenly over its
// list (all of them if n is larger), and starts watching the taps of their
// terminals. Call it before the terminals record taps; Run follows the
// pages.
func NewScreenWatch(c *Customer, n int) *ScreenWatch {
	n = min(n, len(c.Sites))
	w := &ScreenWatch{}
	for i := range n {
		site := c.Sites[i*len(c.Sites)/n]
		sw := &siteWatch{people: site.People,
			follower: webclient.NewFollower("server", func() string { return c.base }, site.ID, c.Web)}
		for _, m := range site.Terminals {
			m.tracker().onDurable = sw.recorded
		}
		w.sites = append(w.sites, sw)
	}
	return w
}

// recorded starts measuring the taps of people of the site.
func (s *siteWatch) recorded(taps []syncproto.Tap, at time.Time, offline bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range taps {
		if name, ok := s.people[t.CardID]; ok {
			s.pending = append(s.pending, screenTap{name: name, at: at, offline: offline})
		}
	}
}

// Run follows every watched page until ctx ends.
func (w *ScreenWatch) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, s := range w.sites {
		wg.Go(func() { s.follower.Run(ctx) })
		wg.Go(func() { s.refresh(ctx) })
	}
	wg.Wait()
}

// Failure returns the refusals of event streams so far (a signed-in page
// never gets one), or nil.
func (w *ScreenWatch) Failure() error {
	var errs []error
	for _, s := range w.sites {
		if err := s.follower.Failure(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// refresh fetches the fragment after each change event, as the page does,
// and marks the taps whose person it shows.
func (s *siteWatch) refresh(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.follower.Signal():
		}
		page, err := s.follower.Fragment(ctx)
		now := time.Now()
		s.mu.Lock()
		s.fetches++
		if err != nil {
			if ctx.Err() == nil {
				s.fetchErrs++
				s.lastErr = err
			}
			s.mu.Unlock()
			continue
		}
		left := s.pending[:0]
		for _, t := range s.pending {
			if strings.Contains(page, t.name) {
				t.lat = now.Sub(t.at)
				s.shown = append(s.shown, t)
			} else {
				left = append(left, t)
			}
		}
		s.pending = left
		s.mu.Unlock()
	}
}

// WaitOpen waits until every watched page has its event stream open.
func (w *ScreenWatch) WaitOpen(ctx context.Context) error {
	for {
		if err := w.Failure(); err != nil {
			return fmt.Errorf("loadgen: screen: %w", err)
		}
		open := 0
		for _, s := range w.sites {
			if s.follower.IsOpen() {
				open++
			}
		}
		if open == len(w.sites) {
			return nil
		}
		if !sleepUntil(ctx, time.Now().Add(screenPoll)) {
			return fmt.Errorf("loadgen: screen: %d of %d event streams open: %w", open, len(w.sites), ctx.Err())
		}
	}
}

// Settle waits until every tap watched has been shown, or grace has
// passed, or ctx ends.
func (w *ScreenWatch) Settle(ctx context.Context, grace time.Duration) {
	until := time.Now().Add(grace)
	for time.Now().Before(until) && w.pendingCount() > 0 {
		if !sleepUntil(ctx, time.Now().Add(screenPoll)) {
			return
		}
	}
}

func (w *ScreenWatch) pendingCount() int {
	n := 0
	for _, s := range w.sites {
		s.mu.Lock()
		n += len(s.pending)
		s.mu.Unlock()
	}
	return n
}

// ScreenResult is what a ScreenWatch measured.
type ScreenResult struct {
	// Sites is how many site pages were followed.
	Sites int
	// Shown taps appeared on their page; Missed taps did not (by the end
	// of the grace after the last acknowledgement).
	Shown, Missed int
	// Latencies of the shown taps, and of those recorded while their
	// terminal had its network.
	Latencies, Online []time.Duration
	// Fetches of the fragment, and how many failed, with the last error.
	Fetches, FetchErrors int
	LastFetchError       error
}

// Result returns what was measured so far.
func (w *ScreenWatch) Result() ScreenResult {
	r := ScreenResult{Sites: len(w.sites)}
	for _, s := range w.sites {
		s.mu.Lock()
		r.Shown += len(s.shown)
		r.Missed += len(s.pending)
		for _, t := range s.shown {
			r.Latencies = append(r.Latencies, t.lat)
			if !t.offline {
				r.Online = append(r.Online, t.lat)
			}
		}
		r.Fetches += s.fetches
		r.FetchErrors += s.fetchErrs
		if s.lastErr != nil {
			r.LastFetchError = s.lastErr
		}
		s.mu.Unlock()
	}
	return r
}
