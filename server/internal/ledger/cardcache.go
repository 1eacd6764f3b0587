package ledger

import (
	"context"
	"fmt"
	"sync"

	"github.com/jackc/pgx/v5"
)

// cardAt is a card id tapped at a site: the unit of card resolution.
type cardAt struct {
	site int64
	card string
}

// maxCachedCards bounds a cardCache; past it, the cache starts afresh.
// Each entry is about 100 bytes.
const maxCachedCards = 1 << 20

// cardCache keeps the answers of resolveCards across reconcile steps,
// tagged with the registry version they were read at (registry_version,
// migration 0009). Every transaction that changes the tables card
// resolution reads adds one to the version at commit, so answers read at
// version n are exactly what a query would answer in any snapshot that
// sees version n: a step that reads n with its taps may use them, and
// resolves the rest with a query that reads the version too. The ledger
// stays the same function of taps, corrections and registry as without
// the cache; only the queries go.
type cardCache struct {
	mu      sync.Mutex
	version int64
	person  map[cardAt]int64 // 0: nobody (an unknown card, or one of several people)
	org     map[int64]int64  // a resolved person's employer
}

func newCardCache() *cardCache {
	return &cardCache{person: make(map[cardAt]int64), org: make(map[int64]int64)}
}

// resolve returns the person behind each (site, card id) of taps, and the
// employers of those people, as the registry stands at version (read in
// the statement that took the taps) or later.
func (c *cardCache) resolve(ctx context.Context, tx pgx.Tx, taps []newTap, version int64) (map[cardAt]int64, map[int64]int64, error) {
	seen := make(map[cardAt]bool, len(taps))
	var keys []cardAt
	for _, nt := range taps {
		if !nt.hasSite {
			continue
		}
		k := cardAt{nt.site, nt.card}
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	persons := make(map[cardAt]int64, len(keys))
	orgs := make(map[int64]int64, len(keys))
	for {
		misses := c.lookup(keys, version, persons, orgs)
		if len(misses) == 0 {
			return persons, orgs, nil
		}
		got, gotOrgs, at, err := resolveCards(ctx, tx, misses)
		if err != nil {
			return nil, nil, err
		}
		c.store(at, got, gotOrgs)
		if at == version {
			for k, p := range got {
				if p != 0 {
					persons[k], orgs[p] = p, gotOrgs[p]
				}
			}
			return persons, orgs, nil
		}
		// The registry changed after the taps were taken: answer every
		// card at the newer version, not some at each.
		version = at
		clear(persons)
		clear(orgs)
	}
}

// lookup adds the cached answers at version to persons and orgs, and
// returns the keys it has none for.
func (c *cardCache) lookup(keys []cardAt, version int64, persons map[cardAt]int64, orgs map[int64]int64) []cardAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return keys
	}
	var misses []cardAt
	for _, k := range keys {
		p, ok := c.person[k]
		if !ok {
			misses = append(misses, k)
			continue
		}
		if p != 0 {
			persons[k], orgs[p] = p, c.org[p]
		}
	}
	return misses
}

// store keeps answers read at version, unless the cache already holds
// answers of a later one.
func (c *cardCache) store(version int64, persons map[cardAt]int64, orgs map[int64]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case version < c.version:
		return
	case version > c.version || len(c.person)+len(persons) > maxCachedCards:
		clear(c.person)
		clear(c.org)
		c.version = version
	}
	for k, p := range persons {
		c.person[k] = p
		if p != 0 {
			c.org[p] = orgs[p]
		}
	}
}

// resolveCards finds the person behind each (site, card id), and the
// person's employer: a card of the site's owner or of a contractor on the
// site, by ID06 number or chip UID, or a manager's assign_card correction,
// which wins (the latest, if there are several). A card id matching several
// people, or none, gets 0, for a person to sort out. It also returns the
// registry version its snapshot saw.
func resolveCards(ctx context.Context, tx pgx.Tx, keys []cardAt) (map[cardAt]int64, map[int64]int64, int64, error) {
	sites := make([]int64, len(keys))
	cards := make([]string, len(keys))
	for i, k := range keys {
		sites[i], cards[i] = k.site, k.card
	}
	rows, err := tx.Query(ctx, `
		WITH q AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS q(site_id, card_ident)),
		allowed AS (
			SELECT q.site_id, q.card_ident, s.org_id FROM q JOIN sites s USING (site_id)
			UNION
			SELECT q.site_id, q.card_ident, sc.org_id FROM q JOIN site_contractors sc USING (site_id)),
		found AS (
			SELECT a.site_id, a.card_ident, c.person_id, 0::bigint AS correction_id
			FROM allowed a JOIN cards c ON c.org_id = a.org_id AND c.card_number = a.card_ident
			UNION ALL
			SELECT a.site_id, a.card_ident, c.person_id, 0
			FROM allowed a JOIN card_chips ch ON ch.org_id = a.org_id AND ch.chip_uid = a.card_ident
			JOIN cards c ON c.card_id = ch.card_id
			UNION ALL
			SELECT q.site_id, q.card_ident, co.person_id, co.correction_id
			FROM q JOIN corrections co ON co.site_id = q.site_id AND co.kind = 'assign_card'
			     AND co.card_ident = q.card_ident
			WHERE NOT EXISTS (SELECT 1 FROM corrections w WHERE w.withdraws = co.correction_id)),
		hit AS (
			SELECT f.site_id, f.card_ident, f.person_id, f.correction_id, p.org_id
			FROM found f JOIN persons p ON p.person_id = f.person_id)
		SELECT v.n, h.site_id, h.card_ident, h.person_id, h.correction_id, h.org_id
		FROM registry_version v LEFT JOIN hit h ON true`, sites, cards)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("resolve cards: %w", err)
	}
	defer rows.Close()
	const ambiguous = -1
	out := make(map[cardAt]int64, len(keys))
	orgs := make(map[int64]int64, len(keys))
	fromRegistry := make(map[cardAt]int64, len(keys)) // the person, or ambiguous
	corrected := make(map[cardAt]int64)               // the latest assign_card
	var version int64
	for rows.Next() {
		var site, person, corr, org *int64
		var card *string
		if err := rows.Scan(&version, &site, &card, &person, &corr, &org); err != nil {
			return nil, nil, 0, fmt.Errorf("resolve cards: %w", err)
		}
		if site == nil {
			continue // no card found: the version alone
		}
		k := cardAt{*site, *card}
		orgs[*person] = *org
		if *corr != 0 {
			if *corr > corrected[k] {
				corrected[k], out[k] = *corr, *person
			}
			continue
		}
		p := *person
		if q, ok := fromRegistry[k]; ok && q != p {
			p = ambiguous
		}
		fromRegistry[k] = p
	}
	if err := rows.Err(); err != nil {
		return nil, nil, 0, fmt.Errorf("resolve cards: %w", err)
	}
	for k, p := range fromRegistry {
		if _, ok := out[k]; !ok && p != ambiguous {
			out[k] = p
		}
	}
	for _, k := range keys {
		if _, ok := out[k]; !ok {
			out[k] = 0
		}
	}
	return out, orgs, version, nil
}
