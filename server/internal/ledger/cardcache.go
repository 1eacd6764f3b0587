package ledger

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/liggare/liggare/server/internal/pgarray"
)

// cardAt is a card id tapped at a site: the unit of card resolution.
type cardAt struct {
	site int64
	card string
}

// maxCachedCards bounds a cardCache; past it, the cache starts afresh.
// Each entry is about 100 bytes. maxCachedTerminals bounds the terminals
// whose assignments it holds, in the same way.
const (
	maxCachedCards     = 1 << 20
	maxCachedTerminals = 1 << 16
)

// cardCache keeps the answers of resolveCards across reconcile steps,
// tagged with the registry version they were read at (registry_version,
// migration 0009). Every transaction that changes the tables card
// resolution reads adds one to the version at commit, so answers read at
// version n are exactly what a query would answer in any snapshot that
// sees version n: a step that reads n with its taps may use them, and
// resolves the rest with a query that reads the version too. The ledger
// stays the same function of taps, corrections and registry as without
// the cache; only the queries go.
//
// It keeps each terminal's assignments (migration 0012) in the same way.
type cardCache struct {
	mu      sync.Mutex
	version int64
	person  map[cardAt]int64 // 0: nobody (an unknown card, or one of several people)
	org     map[int64]int64  // a resolved person's employer
	// assigned holds terminals' assignments, oldest first; none for a
	// terminal that has none.
	assigned map[string][]assignment
}

// assignment is a terminal's site and reader mode from a moment on.
type assignment struct {
	from time.Time
	site int64
	mode string
}

func newCardCache() *cardCache {
	return &cardCache{person: make(map[cardAt]int64), org: make(map[int64]int64), assigned: make(map[string][]assignment)}
}

// assignTaps sets the site and reader mode of each tap: its terminal's
// assignment at its event time (the latest from at or before it), as the
// registry stands at version or later. It returns the version it used.
func (c *cardCache) assignTaps(ctx context.Context, tx pgx.Tx, taps []newTap, version int64) (int64, error) {
	var terminals []string
	for i, nt := range taps {
		if i == 0 || nt.id.Terminal != taps[i-1].id.Terminal { // taps come in runs of a terminal
			terminals = append(terminals, nt.id.Terminal)
		}
	}
	slices.Sort(terminals)
	terminals = slices.Compact(terminals)
	got := make(map[string][]assignment, len(terminals))
	for {
		misses := c.lookupAssignments(terminals, version, got)
		if len(misses) == 0 {
			break
		}
		read, at, err := readAssignments(ctx, tx, misses)
		if err != nil {
			return 0, err
		}
		c.storeAssignments(at, read)
		if at == version {
			for t, as := range read {
				got[t] = as
			}
			break
		}
		// The registry changed after the taps were taken: read every
		// terminal at the newer version.
		version = at
		clear(got)
	}
	for i := range taps {
		nt := &taps[i]
		as := got[nt.id.Terminal]
		// The first assignment from after the tap; the one before it holds.
		j, _ := slices.BinarySearchFunc(as, nt.at, func(a assignment, at time.Time) int {
			if a.from.After(at) {
				return 1
			}
			return -1
		})
		nt.site, nt.hasSite, nt.mode = 0, false, ""
		if j > 0 {
			nt.site, nt.hasSite, nt.mode = as[j-1].site, true, as[j-1].mode
		}
	}
	return version, nil
}

// lookupAssignments adds the cached assignments at version to got, and
// returns the terminals it has none for.
func (c *cardCache) lookupAssignments(terminals []string, version int64, got map[string][]assignment) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.version != version {
		return terminals
	}
	var misses []string
	for _, t := range terminals {
		as, ok := c.assigned[t]
		if !ok {
			misses = append(misses, t)
			continue
		}
		got[t] = as
	}
	return misses
}

// storeAssignments keeps assignments read at version, unless the cache
// already holds answers of a later one.
func (c *cardCache) storeAssignments(version int64, read map[string][]assignment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.admit(version, len(c.assigned)+len(read) > maxCachedTerminals, func() { clear(c.assigned) }) {
		return
	}
	for t, as := range read {
		c.assigned[t] = as
	}
}

// admit readies the cache for answers read at version, and reports
// whether to keep them: not when it holds answers of a later version. A
// newer version empties the cache; overflow (the part for these answers
// would grow past its bound) empties that part. The caller holds mu.
func (c *cardCache) admit(version int64, overflow bool, emptyPart func()) bool {
	switch {
	case version < c.version:
		return false
	case version > c.version:
		clear(c.person)
		clear(c.org)
		clear(c.assigned)
		c.version = version
	case overflow:
		emptyPart()
	}
	return true
}

// readAssignments reads the assignments of terminals, oldest first, and
// the registry version its snapshot saw. Every terminal asked for is in
// the answer, those without an assignment with none.
func readAssignments(ctx context.Context, tx pgx.Tx, terminals []string) (map[string][]assignment, int64, error) {
	rows, err := tx.Query(ctx, `
		SELECT v.n, a.terminal_id, a.valid_from, a.site_id, a.direction
		FROM registry_version v
		LEFT JOIN terminal_assignments a ON a.terminal_id = ANY($1)
		ORDER BY a.terminal_id, a.valid_from`, pgarray.Text(terminals))
	if err != nil {
		return nil, 0, fmt.Errorf("read terminal assignments: %w", err)
	}
	defer rows.Close()
	out := make(map[string][]assignment, len(terminals))
	for _, t := range terminals {
		out[t] = nil
	}
	var version int64
	for rows.Next() {
		var terminal, mode *string
		var from *time.Time
		var site *int64
		if err := rows.Scan(&version, &terminal, &from, &site, &mode); err != nil {
			return nil, 0, fmt.Errorf("read terminal assignments: %w", err)
		}
		if terminal != nil {
			out[*terminal] = append(out[*terminal], assignment{*from, *site, *mode})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("read terminal assignments: %w", err)
	}
	return out, version, nil
}

// resolve sets the person of each tap at a site (0 where its card id
// resolves to nobody), as the registry stands at version (read in the
// statement that took the taps) or later, and returns the employers of
// those people.
func (c *cardCache) resolve(ctx context.Context, tx pgx.Tx, taps []newTap, version int64) (map[int64]int64, error) {
	orgs := make(map[int64]int64)
	for {
		misses := c.lookup(taps, version, orgs)
		if len(misses) == 0 {
			return orgs, nil
		}
		got, gotOrgs, at, err := resolveCards(ctx, tx, misses)
		if err != nil {
			return nil, err
		}
		c.store(at, got, gotOrgs)
		if at == version {
			for i := range taps {
				nt := &taps[i]
				if p, ok := got[cardAt{nt.site, nt.card}]; ok && nt.hasSite && nt.person == 0 && p != 0 {
					nt.person, orgs[p] = p, gotOrgs[p]
				}
			}
			return orgs, nil
		}
		// The registry changed after the taps were taken: answer every
		// card at the newer version, not some at each.
		version = at
		clear(orgs)
		for i := range taps {
			taps[i].person = 0
		}
	}
}

// lookup sets the person of each tap at a site whose answer the cache
// holds at version, adds their employers to orgs, and returns the (site,
// card id)s it has no answer for, each once.
func (c *cardCache) lookup(taps []newTap, version int64, orgs map[int64]int64) []cardAt {
	c.mu.Lock()
	defer c.mu.Unlock()
	var misses []cardAt
	var missed map[cardAt]bool
	for i := range taps {
		nt := &taps[i]
		if !nt.hasSite {
			continue
		}
		k := cardAt{nt.site, nt.card}
		p, ok := c.person[k]
		if !ok || c.version != version {
			if missed == nil {
				missed = make(map[cardAt]bool)
			}
			if !missed[k] {
				missed[k] = true
				misses = append(misses, k)
			}
			continue
		}
		if p != 0 {
			nt.person, orgs[p] = p, c.org[p]
		}
	}
	return misses
}

// store keeps answers read at version, unless the cache already holds
// answers of a later one.
func (c *cardCache) store(version int64, persons map[cardAt]int64, orgs map[int64]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.admit(version, len(c.person)+len(persons) > maxCachedCards, func() { clear(c.person); clear(c.org) }) {
		return
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
		FROM registry_version v LEFT JOIN hit h ON true`, pgarray.Int8(sites), pgarray.Text(cards))
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
