// Package downlink sends terminals the card data their kiosks answer from
// when the network is down (syncproto CardUpdate).
//
// Every change that alters what a kiosk should answer is logged in
// card_changes by database triggers, with change ids that commit in order
// (see migration 0004). A terminal's cursor is a change id: everything at or
// below it is in its cache. A Stream follows one connected terminal: it sends
// a snapshot of every card that concerns the terminal's site (the cards of
// the site's owner and of the contractors on it) when the terminal's cache is
// empty, belongs to another site, or the site's roster changed; otherwise
// the cards changed since the cursor. One update is in flight at a time,
// and the next is sent after the terminal's CardAck.
//
// The Feed polls the head of the change log once a second for the whole
// server, so an idle connection costs one atomic load per check.
package downlink

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/syncproto"
)

// Defaults.
const (
	// DefaultPollInterval is how often the Feed reads the head of the log.
	DefaultPollInterval = time.Second
	// PageCards bounds the cards in one CardUpdate; a snapshot of a larger
	// site spans several.
	PageCards = 2000
	// KeepChanges is how long the change log keeps a change. A terminal
	// away longer takes a snapshot; removed chip UIDs (personal data) are
	// not kept beyond it.
	KeepChanges = 30 * 24 * time.Hour
	// pruneEvery is how often Run prunes the log.
	pruneEvery = time.Hour
)

// Feed is the server's view of the card change log.
type Feed struct {
	pool     *pgxpool.Pool
	logger   *slog.Logger
	interval time.Duration
	head     atomic.Uint64
	location *time.Location
}

// NewFeed returns a Feed. Call Run to keep its head current.
func NewFeed(pool *pgxpool.Pool, logger *slog.Logger) *Feed {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	loc, err := time.LoadLocation("Europe/Stockholm")
	if err != nil {
		loc = time.UTC
	}
	return &Feed{pool: pool, logger: logger, interval: DefaultPollInterval, location: loc}
}

// Head returns the newest change id the Feed has seen.
func (f *Feed) Head() uint64 { return f.head.Load() }

// Refresh reads the head of the log now.
func (f *Feed) Refresh(ctx context.Context) error {
	var head int64
	if err := f.pool.QueryRow(ctx, `SELECT coalesce(max(change_id), 0) FROM card_changes`).Scan(&head); err != nil {
		return fmt.Errorf("downlink: read head: %w", err)
	}
	f.head.Store(uint64(head))
	return nil
}

// Prune deletes changes older than keep, always keeping the newest change
// so that change ids never start over.
func (f *Feed) Prune(ctx context.Context, keep time.Duration) (int64, error) {
	tag, err := f.pool.Exec(ctx, `
		DELETE FROM card_changes WHERE changed_at < now() - $1::interval
		  AND change_id < (SELECT max(change_id) FROM card_changes)`, keep)
	if err != nil {
		return 0, fmt.Errorf("downlink: prune: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Run keeps the head current and prunes the log until ctx ends.
func (f *Feed) Run(ctx context.Context) error {
	t := time.NewTicker(f.interval)
	defer t.Stop()
	var pruned time.Time
	for {
		if err := f.Refresh(ctx); err != nil && ctx.Err() == nil {
			f.logger.Warn("downlink_poll_failed", "err", err)
		}
		if time.Since(pruned) > pruneEvery {
			pruned = time.Now()
			if n, err := f.Prune(ctx, KeepChanges); err != nil && ctx.Err() == nil {
				f.logger.Warn("downlink_prune_failed", "err", err)
			} else if n > 0 {
				f.logger.Info("downlink_pruned", "changes", n)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Place is where a terminal stands and what its card cache holds.
type Place struct {
	Site      int64 // the site it stands on now, 0 if none
	CacheSite int64 // the site whose data its card cache holds, 0 if none
}

// TerminalSites returns where each of the terminals stands, in one query:
// the sync server opens sessions in batches. A terminal it does not know
// has no entry.
func (f *Feed) TerminalSites(ctx context.Context, terminalIDs []string) (map[string]Place, error) {
	rows, err := f.pool.Query(ctx, `
		SELECT t.terminal_id,
		       coalesce((SELECT site_id FROM terminal_assignments a WHERE a.terminal_id = t.terminal_id AND a.valid_from <= now()
		                 ORDER BY a.valid_from DESC LIMIT 1), 0),
		       coalesce(t.card_site_id, 0)
		FROM terminals t WHERE t.terminal_id = ANY($1::text[])`, terminalIDs)
	if err != nil {
		return nil, fmt.Errorf("downlink: terminal sites: %w", err)
	}
	places := make(map[string]Place, len(terminalIDs))
	var id string
	var p Place
	_, err = pgx.ForEachRow(rows, []any{&id, &p.Site, &p.CacheSite}, func() error {
		places[id] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("downlink: terminal sites: %w", err)
	}
	return places, nil
}

// Stream follows one terminal's card cache.
type Stream struct {
	f        *Feed
	terminal string
	site     int64

	mu       sync.Mutex
	cursor   uint64 // what the terminal holds (acknowledged)
	snapshot bool   // the next update must be a snapshot
	inFlight uint64 // cursor of the update awaiting its CardAck, 0 if none
	pages    []*syncproto.CardUpdate
}

// NewStream starts following a terminal of site whose cache is at cursor.
// A snapshot is sent first when the cache is empty or holds another site.
func (f *Feed) NewStream(terminal string, site int64, cursor uint64, cacheSite int64) *Stream {
	return &Stream{f: f, terminal: terminal, site: site, cursor: cursor,
		snapshot: cursor == 0 || cacheSite != site}
}

// Pending reports whether Next may have something to send: cheap enough to
// call on every tick of every connection.
func (s *Stream) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inFlight == 0 && (len(s.pages) > 0 || s.snapshot || s.f.Head() > s.cursor)
}

// Acked records the terminal's CardAck.
func (s *Stream) Acked(cursor uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cursor == s.inFlight {
		s.inFlight = 0
		s.cursor = cursor
	}
}

// Next returns the next update to send, or nil when there is none (or one
// is still waiting for its CardAck). The caller must send it.
func (s *Stream) Next(ctx context.Context) (*syncproto.CardUpdate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inFlight != 0 {
		return nil, nil
	}
	if len(s.pages) == 0 && (s.snapshot || s.f.Head() > s.cursor) {
		pages, cursor, err := s.build(ctx)
		if err != nil {
			return nil, err
		}
		if len(pages) == 0 {
			s.cursor = cursor // nothing here concerns this site
			return nil, nil
		}
		s.pages = pages
		s.snapshot = false
	}
	if len(s.pages) == 0 {
		return nil, nil
	}
	u := s.pages[0]
	s.pages = s.pages[1:]
	s.inFlight = u.Cursor
	return u, nil
}

// build reads, in one consistent snapshot of the database, either every card
// of the site or the cards changed since the cursor, and pages them.
func (s *Stream) build(ctx context.Context) ([]*syncproto.CardUpdate, uint64, error) {
	var pages []*syncproto.CardUpdate
	var head uint64
	err := pgx.BeginTxFunc(ctx, s.f.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var h int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(change_id), 0) FROM card_changes`).Scan(&h); err != nil {
			return err
		}
		head = uint64(h)
		snapshot := s.snapshot
		// Changes above the cursor may have been pruned: then only a
		// snapshot brings the terminal up to date.
		var floor int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(min(change_id), 1) - 1 FROM card_changes`).Scan(&floor); err != nil {
			return err
		}
		if int64(s.cursor) < floor {
			snapshot = true
		}
		var cards []int64
		var removed []string
		if !snapshot {
			rows, err := tx.Query(ctx, `
				WITH rel AS (SELECT org_id FROM sites WHERE site_id = $1
				             UNION SELECT org_id FROM site_contractors WHERE site_id = $1)
				SELECT card_id, removed_ident, org_id IS NOT NULL AND card_id IS NULL AS org_wide,
				       site_id IS NOT NULL AND card_id IS NULL AS roster
				FROM card_changes
				WHERE change_id > $2 AND change_id <= $3
				  AND (site_id = $1 OR (site_id IS NULL AND org_id IN (SELECT org_id FROM rel)))
				ORDER BY change_id`, s.site, int64(s.cursor), h)
			if err != nil {
				return err
			}
			for rows.Next() {
				var card *int64
				var rem *string
				var orgWide, roster bool
				if err := rows.Scan(&card, &rem, &orgWide, &roster); err != nil {
					rows.Close()
					return err
				}
				switch {
				case orgWide || roster:
					snapshot = true
				case rem != nil:
					removed = append(removed, *rem)
				case card != nil:
					cards = append(cards, *card)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if !snapshot && len(cards) == 0 && len(removed) == 0 {
				return nil
			}
		}
		var infos []syncproto.CardInfo
		for _, r := range removed {
			infos = append(infos, syncproto.CardInfo{CardID: r, Removed: true})
		}
		if snapshot {
			cards = nil
		}
		got, err := s.cardInfos(ctx, tx, snapshot, cards)
		if err != nil {
			return err
		}
		infos = append(infos, got...)
		pages = paginate(infos, head, snapshot)
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("downlink: build update for %s: %w", s.terminal, err)
	}
	if len(pages) > 0 && pages[0].Reset {
		if _, err := s.f.pool.Exec(ctx, `UPDATE terminals SET card_site_id = $2 WHERE terminal_id = $1`, s.terminal, s.site); err != nil {
			return nil, 0, fmt.Errorf("downlink: %w", err)
		}
	}
	return pages, head, nil
}

// cardInfos returns the kiosk's view of the site's cards: all of them, or
// only the given ones.
func (s *Stream) cardInfos(ctx context.Context, tx pgx.Tx, all bool, only []int64) ([]syncproto.CardInfo, error) {
	if !all && len(only) == 0 {
		return nil, nil
	}
	var filter []int64
	if !all {
		filter = only
	}
	today := time.Now().In(s.f.location).Format("2006-01-02")
	rows, err := tx.Query(ctx, `
		WITH rel AS (SELECT org_id FROM sites WHERE site_id = $1
		             UNION SELECT org_id FROM site_contractors WHERE site_id = $1 AND removed_at IS NULL)
		SELECT c.card_number, coalesce(array_agg(ch.chip_uid) FILTER (WHERE ch.chip_uid IS NOT NULL), '{}'),
		       p.name, o.name, c.status,
		       c.valid_until IS NOT NULL AND c.valid_until < $3::date,
		       c.valid_from IS NOT NULL AND c.valid_from > $3::date,
		       EXISTS (SELECT 1 FROM site_card_blocks b WHERE b.site_id = $1 AND b.card_id = c.card_id AND b.lifted_at IS NULL),
		       p.anonymised_at IS NOT NULL,
		       c.org_id IN (SELECT org_id FROM rel)
		FROM cards c
		JOIN persons p ON p.person_id = c.person_id
		JOIN organisations o ON o.org_id = c.org_id
		LEFT JOIN card_chips ch ON ch.card_id = c.card_id
		WHERE CASE WHEN $2::bigint[] IS NULL THEN c.org_id IN (SELECT org_id FROM rel) ELSE c.card_id = ANY($2) END
		GROUP BY c.card_id, p.person_id, o.org_id
		ORDER BY c.card_number`, s.site, filter, today)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []syncproto.CardInfo
	for rows.Next() {
		var number, name, employer, status string
		var chips []string
		var expired, notYet, blocked, anonymised, relevant bool
		if err := rows.Scan(&number, &chips, &name, &employer, &status, &expired, &notYet, &blocked, &anonymised, &relevant); err != nil {
			return nil, err
		}
		info := syncproto.CardInfo{Name: name, Employer: employer, Status: kioskStatus(status, expired, notYet, blocked)}
		if anonymised || !relevant {
			info = syncproto.CardInfo{Removed: true}
		}
		for _, id := range append([]string{number}, chips...) {
			e := info
			e.CardID = id
			out = append(out, e)
		}
	}
	return out, rows.Err()
}

// kioskStatus decides what a kiosk says about a card at this site: a block
// by the site first, then ID06's status, then the validity dates.
func kioskStatus(status string, expired, notYet, blockedHere bool) string {
	switch {
	case blockedHere:
		return syncproto.CardBlockedSite
	case status != syncproto.CardActive:
		return status
	case expired:
		return syncproto.CardExpired
	case notYet:
		return syncproto.CardNotActivated
	}
	return syncproto.CardActive
}

// paginate cuts infos into updates of at most PageCards. Every page carries
// the final cursor; the terminal stores it only once the Final page is in
// (a snapshot's earlier pages leave its cursor at 0).
func paginate(infos []syncproto.CardInfo, cursor uint64, snapshot bool) []*syncproto.CardUpdate {
	var pages []*syncproto.CardUpdate
	for i := 0; i == 0 || i < len(infos); i += PageCards {
		page := &syncproto.CardUpdate{Cursor: cursor, Cards: infos[i:min(i+PageCards, len(infos))], Reset: snapshot && i == 0}
		pages = append(pages, page)
		if len(infos) == 0 {
			break
		}
	}
	pages[len(pages)-1].Final = true
	return pages
}
