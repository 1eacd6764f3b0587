package live

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Channel is the PostgreSQL notification channel of ledger changes.
const Channel = "liggare_ledger"

// MaxPayload bounds one notification's payload: PostgreSQL refuses 8000
// bytes and more.
const MaxPayload = 7900

// Defaults for Options.
const (
	DefaultCoalesce     = 100 * time.Millisecond
	DefaultReconnectMin = 100 * time.Millisecond
	DefaultReconnectMax = 5 * time.Second
)

// Log keys.
const (
	logErr   = "err"
	logSites = "sites"
	logWait  = "retry_in"
)

// Options configure a Hub. Zero fields take the defaults.
type Options struct {
	// Channel is the notification channel [Channel].
	Channel string
	// Coalesce is how long changes are gathered before they are sent
	// [DefaultCoalesce]; it is also the most it delays one.
	Coalesce time.Duration
	// ReconnectMin and ReconnectMax bound the backoff of the listening
	// connection [DefaultReconnectMin, DefaultReconnectMax].
	ReconnectMin, ReconnectMax time.Duration
	// Logger receives connection failures [discard].
	Logger *slog.Logger
	// OnClients, when set, is called with the number of subscribers each
	// time it changes (a gauge of live browsers for metrics). It is called
	// with the hub's lock held: it must be quick and must not call the hub.
	OnClients func(int)
}

// Hub fans ledger changes out to the subscribers of this process, and
// through LISTEN/NOTIFY to those of every other replica.
type Hub struct {
	pool *pgxpool.Pool
	o    Options

	kick chan struct{}

	mu        sync.Mutex
	pending   map[int64]struct{}
	subs      map[int64]map[*Subscription]struct{}
	clients   int
	listening chan struct{} // closed once the first LISTEN is in place
	listenSet bool
}

// New returns a Hub publishing and listening through pool; a nil pool
// keeps everything in this process. Call Run to start it.
func New(pool *pgxpool.Pool, o Options) *Hub {
	if o.Channel == "" {
		o.Channel = Channel
	}
	if o.Coalesce <= 0 {
		o.Coalesce = DefaultCoalesce
	}
	if o.ReconnectMin <= 0 {
		o.ReconnectMin = DefaultReconnectMin
	}
	if o.ReconnectMax < o.ReconnectMin {
		o.ReconnectMax = max(DefaultReconnectMax, o.ReconnectMin)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Hub{
		pool:      pool,
		o:         o,
		kick:      make(chan struct{}, 1),
		pending:   make(map[int64]struct{}),
		subs:      make(map[int64]map[*Subscription]struct{}),
		listening: make(chan struct{}),
	}
	if pool == nil {
		h.markListening()
	}
	return h
}

// Publish reports that the ledger of sites changed. It never blocks: the
// ids are sent with the next coalesced notification. It fits
// ledger.ReconcilerOptions.OnChange.
func (h *Hub) Publish(sites []int64) {
	if len(sites) == 0 {
		return
	}
	h.mu.Lock()
	for _, s := range sites {
		if s > 0 {
			h.pending[s] = struct{}{}
		}
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// Subscription receives a signal on C when its site's ledger changed.
type Subscription struct {
	// C has room for one signal; further changes before it is read are
	// dropped as duplicates.
	C    <-chan struct{}
	c    chan struct{}
	site int64
	hub  *Hub
	once sync.Once
}

// Subscribe follows site. Close the subscription when done.
func (h *Hub) Subscribe(site int64) *Subscription {
	c := make(chan struct{}, 1)
	s := &Subscription{C: c, c: c, site: site, hub: h}
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.subs[site]
	if m == nil {
		m = make(map[*Subscription]struct{})
		h.subs[site] = m
	}
	m[s] = struct{}{}
	h.clients++
	if h.o.OnClients != nil {
		h.o.OnClients(h.clients)
	}
	return s
}

// Close ends the subscription; calling it again does nothing.
func (s *Subscription) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		if m := h.subs[s.site]; m != nil {
			delete(m, s)
			if len(m) == 0 {
				delete(h.subs, s.site)
			}
		}
		h.clients--
		if h.o.OnClients != nil {
			h.o.OnClients(h.clients)
		}
	})
}

// Clients reports the number of open subscriptions.
func (h *Hub) Clients() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.clients
}

// Listening is closed once the hub listens for notifications (at once
// without a pool). A change published before then may go unheard here.
func (h *Hub) Listening() <-chan struct{} { return h.listening }

func (h *Hub) markListening() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.listenSet {
		h.listenSet = true
		close(h.listening)
	}
}

// deliver signals the subscribers of sites.
func (h *Hub) deliver(sites []int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, site := range sites {
		for s := range h.subs[site] {
			select {
			case s.c <- struct{}{}:
			default: // a signal is waiting already: a duplicate
			}
		}
	}
}

// deliverAll signals every subscriber, after changes may have been missed.
func (h *Hub) deliverAll() {
	h.mu.Lock()
	sites := make([]int64, 0, len(h.subs))
	for site := range h.subs {
		sites = append(sites, site)
	}
	h.mu.Unlock()
	h.deliver(sites)
}

// Run publishes and listens until ctx ends.
func (h *Hub) Run(ctx context.Context) error {
	if h.pool == nil {
		h.publishLoop(ctx)
		return nil
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.listenLoop(ctx)
	}()
	h.publishLoop(ctx)
	wg.Wait()
	return nil
}

func (h *Hub) publishLoop(ctx context.Context) {
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.kick:
		}
		// Gather for the coalescing window from the first change.
		timer.Reset(h.o.Coalesce)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		h.mu.Lock()
		sites := make([]int64, 0, len(h.pending))
		for s := range h.pending {
			sites = append(sites, s)
		}
		clear(h.pending)
		h.mu.Unlock()
		if len(sites) == 0 {
			continue
		}
		slices.Sort(sites)
		if h.pool == nil {
			h.deliver(sites)
			continue
		}
		if err := h.notify(ctx, sites); err != nil {
			if ctx.Err() != nil {
				return
			}
			// This replica's pages at least hear of it; others resync when
			// their listener reconnects.
			h.o.Logger.Warn("live_notify_failed", logErr, err, logSites, len(sites))
			h.deliver(sites)
		}
	}
}

// Payloads cuts sites into comma-separated lists of at most max bytes each.
func Payloads(sites []int64, max int) []string {
	var out []string
	var b strings.Builder
	for _, s := range sites {
		id := strconv.FormatInt(s, 10)
		if b.Len() > 0 && b.Len()+1+len(id) > max {
			out = append(out, b.String())
			b.Reset()
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(id)
	}
	if b.Len() > 0 {
		out = append(out, b.String())
	}
	return out
}

// ParsePayload reads a payload made by Payloads, skipping what is not an id.
func ParsePayload(p string) []int64 {
	var out []int64
	for f := range strings.SplitSeq(p, ",") {
		if id, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64); err == nil && id > 0 {
			out = append(out, id)
		}
	}
	return out
}

func (h *Hub) notify(ctx context.Context, sites []int64) error {
	payloads := Payloads(sites, MaxPayload)
	_, err := h.pool.Exec(ctx, `SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p`, h.o.Channel, payloads)
	if err != nil {
		return fmt.Errorf("live: notify: %w", err)
	}
	return nil
}

func (h *Hub) listenLoop(ctx context.Context) {
	wait := h.o.ReconnectMin
	first := true
	for {
		err := h.listen(ctx, func() {
			h.markListening()
			wait = h.o.ReconnectMin
			if !first {
				h.deliverAll()
			}
			first = false
		})
		if ctx.Err() != nil {
			return
		}
		h.o.Logger.Warn("live_listen_failed", logErr, err, logWait, wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, h.o.ReconnectMax)
	}
}

// listen holds one dedicated connection listening on the channel until it
// fails or ctx ends; up is called once LISTEN is in place.
func (h *Hub) listen(ctx context.Context, up func()) error {
	conn, err := pgx.ConnectConfig(ctx, h.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fmt.Errorf("live: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{h.o.Channel}.Sanitize()); err != nil {
		return fmt.Errorf("live: listen: %w", err)
	}
	up()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("live: wait: %w", err)
		}
		if n.Channel == h.o.Channel {
			h.deliver(ParsePayload(n.Payload))
		}
	}
}
