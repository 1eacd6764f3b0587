package downlink

import (
	"context"
	"maps"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
	"github.com/liggare/liggare/syncproto"
)

type world struct {
	pool                 *pgxpool.Pool
	reg                  *registry.Store
	feed                 *Feed
	owner, sub, other    int64
	site, site2          int64
	anna, bertil, other1 int64
	bertilCard           int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	w := &world{pool: pool, reg: registry.NewStore(pool, pii.NewTestKeys()), feed: NewFeed(pool, nil)}
	must := func(id int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	w.owner = must(w.reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Bygg AB", OrgNumber: "556036-0793"}))
	w.sub = must(w.reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "El AB", OrgNumber: "556703-7485"}))
	w.other = must(w.reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Annat AB", OrgNumber: "556677-8899"}))
	site := registry.NewSite{Ident: "ABCDEFGHIJ123", Name: "Eken", ByggherreOrgNumber: "556036-0793"}
	w.site = must(w.reg.CreateSite(ctx, w.owner, site))
	site.Ident = "ZZZZZZZZZZ999"
	w.site2 = must(w.reg.CreateSite(ctx, w.other, site))
	if err := w.reg.AddContractor(ctx, w.owner, w.site, w.sub, 0); err != nil {
		t.Fatal(err)
	}
	w.anna = must(w.reg.AddPerson(ctx, w.owner, registry.NewPerson{Name: "Anna", IDNumber: "19121212-1212"}))
	w.bertil = must(w.reg.AddPerson(ctx, w.sub, registry.NewPerson{Name: "Bertil", IDNumber: "811218-9876"}))
	w.other1 = must(w.reg.AddPerson(ctx, w.other, registry.NewPerson{Name: "Olle", IDNumber: "811218-9876"}))
	must(w.reg.AddCard(ctx, w.owner, registry.NewCard{CardNumber: "AA0000000001", ChipUIDs: []string{"04A1B2C3D4E5F6"}, PersonID: w.anna}))
	w.bertilCard = must(w.reg.AddCard(ctx, w.sub, registry.NewCard{CardNumber: "BB0000000002", PersonID: w.bertil}))
	must(w.reg.AddCard(ctx, w.other, registry.NewCard{CardNumber: "OO0000000003", PersonID: w.other1}))
	if _, err := pool.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ('K1')`); err != nil {
		t.Fatal(err)
	}
	if err := w.reg.AssignTerminal(ctx, w.owner, "K1", w.site, "toggle", time.Now().Add(-time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	return w
}

// drive plays the terminal: takes every update, applies it to a map the way
// a terminal's cache does, and acknowledges it.
func drive(t *testing.T, w *world, st *Stream, cache map[string]syncproto.CardInfo) []*syncproto.CardUpdate {
	t.Helper()
	if err := w.feed.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got []*syncproto.CardUpdate
	for range 100 {
		u, err := st.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if u == nil {
			return got
		}
		if err := u.Validate(); err != nil {
			t.Fatalf("update does not validate: %v", err)
		}
		got = append(got, u)
		if u.Reset {
			clear(cache)
		}
		for _, c := range u.Cards {
			if c.Removed {
				delete(cache, c.CardID)
			} else {
				cache[c.CardID] = c
			}
		}
		st.Acked(u.Cursor)
	}
	t.Fatal("stream never ran dry")
	return nil
}

func keys(m map[string]syncproto.CardInfo) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+" "+v.Name+" "+v.Employer+" "+v.Status)
	}
	sort.Strings(out)
	return out
}

func TestTerminalSites(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	if _, err := w.pool.Exec(ctx, `INSERT INTO terminals (terminal_id, card_site_id) VALUES ('K2', $1), ('K3', NULL)`, w.site); err != nil {
		t.Fatal(err)
	}
	got, err := w.feed.TerminalSites(ctx, []string{"K1", "K2", "K3", "NOPE"})
	want := map[string]Place{"K1": {Site: w.site}, "K2": {CacheSite: w.site}, "K3": {}}
	if err != nil || !maps.Equal(got, want) {
		t.Errorf("TerminalSites = %v, %v; want %v", got, err, want)
	}
}

func TestSnapshotThenChanges(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	places, err := w.feed.TerminalSites(ctx, []string{"K1"})
	site, cacheSite := places["K1"].Site, places["K1"].CacheSite
	if err != nil || site != w.site || cacheSite != 0 {
		t.Fatalf("TerminalSites = %v, %v", places, err)
	}
	st := w.feed.NewStream("K1", site, 0, cacheSite)
	cache := map[string]syncproto.CardInfo{}
	ups := drive(t, w, st, cache)
	if len(ups) != 1 || !ups[0].Reset || !ups[0].Final {
		t.Fatalf("first updates = %+v, want one snapshot", ups)
	}
	want := []string{
		"04A1B2C3D4E5F6 Anna Bygg AB active",
		"AA0000000001 Anna Bygg AB active",
		"BB0000000002 Bertil El AB active",
	}
	if diff := cmp.Diff(want, keys(cache)); diff != "" {
		t.Errorf("cache after the snapshot (-want +got):\n%s (another tenant's card must not be there)", diff)
	}
	// The site blocks Bertil's card; ID06 blocks... nothing else changes.
	if _, err := w.pool.Exec(ctx, `INSERT INTO site_card_blocks (site_id, card_id, blocked_by, reason) VALUES ($1, $2, 'x', 'y')`, w.site, w.bertilCard); err != nil {
		t.Fatal(err)
	}
	// A change to another tenant's card concerns nobody here.
	if _, err := w.pool.Exec(ctx, `UPDATE cards SET status = 'blocked_id06' WHERE card_number = 'OO0000000003'`); err != nil {
		t.Fatal(err)
	}
	ups = drive(t, w, st, cache)
	if len(ups) != 1 || ups[0].Reset || len(ups[0].Cards) != 1 || ups[0].Cards[0].Status != syncproto.CardBlockedSite {
		t.Fatalf("after the block: %+v, want one change: Bertil blocked by the site", ups)
	}
	// A chip removed from Anna's card is forgotten.
	if _, err := w.pool.Exec(ctx, `DELETE FROM card_chips`); err != nil {
		t.Fatal(err)
	}
	drive(t, w, st, cache)
	if _, ok := cache["04A1B2C3D4E5F6"]; ok {
		t.Error("the removed chip is still in the cache")
	}
	// A roster change (a contractor leaves) sends a new snapshot.
	if _, err := w.pool.Exec(ctx, `DELETE FROM site_contractors`); err != nil {
		t.Fatal(err)
	}
	ups = drive(t, w, st, cache)
	if len(ups) == 0 || !ups[0].Reset {
		t.Fatalf("after the roster change: %+v, want a snapshot", ups)
	}
	if diff := cmp.Diff([]string{"AA0000000001 Anna Bygg AB active"}, keys(cache)); diff != "" {
		t.Errorf("cache after the roster change (-want +got):\n%s", diff)
	}
	// Nothing more to send.
	if st.Pending() {
		if u, _ := st.Next(ctx); u != nil {
			t.Errorf("unexpected update %+v", u)
		}
	}
}

func TestResumeAndPagedSnapshot(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// Enough of Anna's colleagues for three pages.
	for i := 0; i < PageCards+10; i++ {
		if _, err := w.pool.Exec(ctx, `
			WITH p AS (INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
			           VALUES ($1, 'P' || ($2::int)::text, 'personnummer', '\x00', decode(lpad(to_hex($2::int), 8, '0'), 'hex'), '-') RETURNING person_id)
			INSERT INTO cards (org_id, card_number, person_id) SELECT $1, 'CC' || lpad(($2::int)::text, 10, '0'), person_id FROM p`,
			w.owner, i); err != nil {
			t.Fatal(err)
		}
	}
	st := w.feed.NewStream("K1", w.site, 0, 0)
	cache := map[string]syncproto.CardInfo{}
	ups := drive(t, w, st, cache)
	if len(ups) != 2 || !ups[0].Reset || ups[0].Final || ups[1].Reset || !ups[1].Final {
		t.Fatalf("snapshot pages: %d, want 2 with Reset on the first and Final on the last", len(ups))
	}
	if len(cache) != PageCards+10+3 {
		t.Errorf("cache holds %d, want %d", len(cache), PageCards+13)
	}
	// A terminal coming back with its cursor and the same site gets only
	// what changed since.
	var site int64
	w.pool.QueryRow(ctx, `SELECT card_site_id FROM terminals WHERE terminal_id = 'K1'`).Scan(&site)
	if site != w.site {
		t.Fatalf("card_site_id = %d, want %d", site, w.site)
	}
	resumed := w.feed.NewStream("K1", w.site, ups[1].Cursor, site)
	if _, err := w.pool.Exec(ctx, `UPDATE cards SET status = 'expired' WHERE card_number = 'AA0000000001'`); err != nil {
		t.Fatal(err)
	}
	got := drive(t, w, resumed, cache)
	if len(got) != 1 || got[0].Reset || len(got[0].Cards) != 2 {
		t.Errorf("resumed: %+v, want one change set with the card number and its chip", got)
	}
	// The same cursor from another site's cache: a snapshot.
	moved := w.feed.NewStream("K1", w.site, ups[1].Cursor, w.site2)
	if got := drive(t, w, moved, map[string]syncproto.CardInfo{}); len(got) == 0 || !got[0].Reset {
		t.Errorf("terminal moved from another site: %+v, want a snapshot", got)
	}
}

func TestKioskStatus(t *testing.T) {
	for _, tc := range []struct {
		status                   string
		expired, notYet, blocked bool
		want                     string
	}{
		{"active", false, false, false, "active"},
		{"active", true, false, false, "expired"},
		{"active", false, true, false, "not_activated"},
		{"blocked_id06", true, false, false, "blocked_id06"},
		{"blocked_id06", false, false, true, "blocked_site"},
		{"terminated", false, false, false, "terminated"},
	} {
		if got := kioskStatus(tc.status, tc.expired, tc.notYet, tc.blocked); got != tc.want {
			t.Errorf("kioskStatus(%+v) = %s, want %s", tc, got, tc.want)
		}
	}
}

func TestPrunedChangesForceSnapshot(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	st := w.feed.NewStream("K1", w.site, 0, 0)
	cache := map[string]syncproto.CardInfo{}
	first := drive(t, w, st, cache)
	old := first[len(first)-1].Cursor
	// Two changes; the older is pruned while the terminal is away.
	for _, status := range []string{"expired", "active"} {
		if _, err := w.pool.Exec(ctx, `UPDATE cards SET status = $1 WHERE card_number = 'BB0000000002'`, status); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.pool.Exec(ctx, `UPDATE card_changes SET changed_at = now() - interval '40 days' WHERE change_id <= $1 + 1`, int64(old)); err != nil {
		t.Fatal(err)
	}
	n, err := w.feed.Prune(ctx, KeepChanges)
	if err != nil || n == 0 {
		t.Fatalf("Prune = %d, %v", n, err)
	}
	back := w.feed.NewStream("K1", w.site, old, w.site)
	ups := drive(t, w, back, cache)
	if len(ups) == 0 || !ups[0].Reset {
		t.Fatalf("terminal behind the pruned log got %+v, want a snapshot", ups)
	}
	// The newest change survives every prune, so ids never start over.
	if _, err := w.pool.Exec(ctx, `UPDATE card_changes SET changed_at = now() - interval '40 days'`); err != nil {
		t.Fatal(err)
	}
	w.feed.Prune(ctx, KeepChanges)
	var left int
	w.pool.QueryRow(ctx, `SELECT count(*) FROM card_changes`).Scan(&left)
	if left != 1 {
		t.Errorf("changes left after pruning everything old = %d, want the newest 1", left)
	}
}
