package cardcache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/outbox"
)

func openCache(t testing.TB, path string) *Cache {
	t.Helper()
	c, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func apply(t testing.TB, c *Cache, u *syncproto.CardUpdate) {
	t.Helper()
	if err := c.Apply(u); err != nil {
		t.Fatalf("Apply(cursor %d, reset %v, final %v): %v", u.Cursor, u.Reset, u.Final, err)
	}
}

func card(id, status string) syncproto.CardInfo {
	return syncproto.CardInfo{CardID: id, Name: "Namn " + id, Employer: "Bygg AB", Status: status}
}

// contents returns what Lookup says about each id: its status, or "-".
func contents(c *Cache, ids ...string) map[string]string {
	m := make(map[string]string, len(ids))
	for _, id := range ids {
		if ci, ok := c.Lookup(id); ok {
			m[id] = ci.Status
		} else {
			m[id] = "-"
		}
	}
	return m
}

func TestApplySnapshotThenChanges(t *testing.T) {
	c := openCache(t, filepath.Join(t.TempDir(), "cards.db"))
	if c.Cursor() != 0 || c.Len() != 0 || c.Loaded() {
		t.Fatalf("new cache: cursor %d, len %d, loaded %v; want 0, 0, false", c.Cursor(), c.Len(), c.Loaded())
	}
	ids := []string{"AA0000000001", "AA0000000002", "04A1B2C3", "AA0000000003"}

	apply(t, c, &syncproto.CardUpdate{Cursor: 10, Reset: true, Cards: []syncproto.CardInfo{
		card(ids[0], syncproto.CardActive), card(ids[1], syncproto.CardBlockedID06),
	}})
	if c.Cursor() != 0 || c.Loaded() || c.Len() != 0 {
		t.Errorf("after page 1: cursor %d, loaded %v, len %d; want 0, false, 0 (snapshot incomplete)", c.Cursor(), c.Loaded(), c.Len())
	}
	if _, ok := c.Lookup(ids[0]); ok {
		t.Errorf("Lookup(%s) found a card of an incomplete snapshot", ids[0])
	}
	apply(t, c, &syncproto.CardUpdate{Cursor: 10, Final: true, Cards: []syncproto.CardInfo{
		card(ids[2], syncproto.CardActive),
	}})
	if c.Cursor() != 10 || !c.Loaded() || c.Len() != 3 {
		t.Errorf("after Final: cursor %d, loaded %v, len %d; want 10, true, 3", c.Cursor(), c.Loaded(), c.Len())
	}
	got, ok := c.Lookup(ids[1])
	if want := card(ids[1], syncproto.CardBlockedID06); !ok || got != want {
		t.Errorf("Lookup(%s) = %+v, %v; want %+v, true", ids[1], got, ok, want)
	}

	// A change set in two pages: the first leaves the cursor alone.
	apply(t, c, &syncproto.CardUpdate{Cursor: 14, Cards: []syncproto.CardInfo{
		card(ids[0], syncproto.CardBlockedSite), {CardID: ids[1], Removed: true},
	}})
	if c.Cursor() != 10 {
		t.Errorf("after a change page without Final: cursor %d, want 10 (unchanged)", c.Cursor())
	}
	apply(t, c, &syncproto.CardUpdate{Cursor: 14, Final: true, Cards: []syncproto.CardInfo{
		card(ids[3], syncproto.CardNotActivated), {CardID: "never-seen", Removed: true},
	}})
	want := map[string]string{ids[0]: "blocked_site", ids[1]: "-", ids[2]: "active", ids[3]: "not_activated"}
	if diff := cmp.Diff(want, contents(c, ids...)); diff != "" {
		t.Errorf("contents after the change set (-want +got):\n%s", diff)
	}
	if c.Cursor() != 14 || c.Len() != 3 {
		t.Errorf("after the change set: cursor %d, len %d; want 14, 3", c.Cursor(), c.Len())
	}

	// A new snapshot replaces everything, but only once it is complete.
	apply(t, c, &syncproto.CardUpdate{Cursor: 20, Reset: true, Cards: []syncproto.CardInfo{card(ids[1], syncproto.CardActive)}})
	if c.Cursor() != 0 {
		t.Errorf("during a new snapshot: cursor %d, want 0", c.Cursor())
	}
	if diff := cmp.Diff(want, contents(c, ids...)); diff != "" {
		t.Errorf("during a new snapshot the kiosk must answer from the old one (-want +got):\n%s", diff)
	}
	apply(t, c, &syncproto.CardUpdate{Cursor: 20, Final: true, Cards: []syncproto.CardInfo{card(ids[2], syncproto.CardExpired)}})
	want = map[string]string{ids[0]: "-", ids[1]: "active", ids[2]: "expired", ids[3]: "-"}
	if diff := cmp.Diff(want, contents(c, ids...)); diff != "" {
		t.Errorf("after the new snapshot (-want +got):\n%s", diff)
	}
	if c.Cursor() != 20 || c.Len() != 2 {
		t.Errorf("after the new snapshot: cursor %d, len %d; want 20, 2", c.Cursor(), c.Len())
	}

	// A single-page snapshot, empty: the site has no cards any more.
	apply(t, c, &syncproto.CardUpdate{Cursor: 21, Reset: true, Final: true})
	if c.Cursor() != 21 || c.Len() != 0 || !c.Loaded() {
		t.Errorf("after an empty snapshot: cursor %d, len %d, loaded %v; want 21, 0, true", c.Cursor(), c.Len(), c.Loaded())
	}
}

func TestCursorRule(t *testing.T) {
	// Each case starts from a cache at cursor 5 and applies the updates.
	for _, tc := range []struct {
		name    string
		updates []syncproto.CardUpdate
		want    uint64
	}{
		{"reset page", []syncproto.CardUpdate{{Cursor: 9, Reset: true}}, 0},
		{"reset and more pages", []syncproto.CardUpdate{{Cursor: 9, Reset: true}, {Cursor: 9}}, 0},
		{"complete snapshot", []syncproto.CardUpdate{{Cursor: 9, Reset: true}, {Cursor: 9, Final: true}}, 9},
		{"single-page snapshot", []syncproto.CardUpdate{{Cursor: 9, Reset: true, Final: true}}, 9},
		{"change page", []syncproto.CardUpdate{{Cursor: 7}}, 5},
		{"complete change set", []syncproto.CardUpdate{{Cursor: 7}, {Cursor: 7, Final: true}}, 7},
		{"final change", []syncproto.CardUpdate{{Cursor: 8, Final: true}}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "cards.db")
			c := openCache(t, path)
			apply(t, c, &syncproto.CardUpdate{Cursor: 5, Reset: true, Final: true, Cards: []syncproto.CardInfo{card("AA1", "active")}})
			for i := range tc.updates {
				u := tc.updates[i]
				u.Cards = []syncproto.CardInfo{card(fmt.Sprintf("BB%d", i), "active")}
				apply(t, c, &u)
			}
			if got := c.Cursor(); got != tc.want {
				t.Errorf("Cursor() = %d, want %d", got, tc.want)
			}
			// The rule holds on disk, not only in memory.
			c.Close()
			if got := openCache(t, path).Cursor(); got != tc.want {
				t.Errorf("Cursor() after reopening = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cards.db")
	c := openCache(t, path)
	apply(t, c, &syncproto.CardUpdate{Cursor: 3, Reset: true, Final: true, Cards: []syncproto.CardInfo{
		card("AA1", "active"), card("AA2", "terminated"),
	}})
	// A new snapshot interrupted after its first page (the terminal lost
	// power): reopened, the kiosk still answers from the old snapshot and
	// the Hello asks for a fresh one.
	apply(t, c, &syncproto.CardUpdate{Cursor: 8, Reset: true, Cards: []syncproto.CardInfo{card("AA3", "active")}})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, path)
	want := map[string]string{"AA1": "active", "AA2": "terminated", "AA3": "-"}
	if diff := cmp.Diff(want, contents(c, "AA1", "AA2", "AA3")); diff != "" {
		t.Errorf("reopened mid-snapshot (-want +got):\n%s", diff)
	}
	if c.Cursor() != 0 || c.Len() != 2 || !c.Loaded() {
		t.Errorf("reopened mid-snapshot: cursor %d, len %d, loaded %v; want 0, 2, true", c.Cursor(), c.Len(), c.Loaded())
	}
	// The next session's snapshot starts over.
	apply(t, c, &syncproto.CardUpdate{Cursor: 9, Reset: true, Cards: []syncproto.CardInfo{card("AA4", "active")}})
	apply(t, c, &syncproto.CardUpdate{Cursor: 9, Final: true, Cards: []syncproto.CardInfo{card("AA2", "terminated")}})
	c.Close()
	c = openCache(t, path)
	want = map[string]string{"AA1": "-", "AA2": "terminated", "AA3": "-", "AA4": "active"}
	if diff := cmp.Diff(want, contents(c, "AA1", "AA2", "AA3", "AA4")); diff != "" {
		t.Errorf("reopened after the snapshot (-want +got):\n%s", diff)
	}
	got, _ := c.Lookup("AA2")
	if want := card("AA2", "terminated"); got != want {
		t.Errorf("Lookup(AA2) = %+v, want %+v", got, want)
	}
	if c.Cursor() != 9 || c.Len() != 2 {
		t.Errorf("reopened: cursor %d, len %d; want 9, 2", c.Cursor(), c.Len())
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
}

func TestApplyRefusesInvalidUpdate(t *testing.T) {
	c := openCache(t, filepath.Join(t.TempDir(), "cards.db"))
	apply(t, c, &syncproto.CardUpdate{Cursor: 3, Reset: true, Final: true, Cards: []syncproto.CardInfo{card("AA1", "active")}})
	for _, u := range []*syncproto.CardUpdate{
		nil,
		{Cursor: 4, Final: true, Cards: []syncproto.CardInfo{card("AA2", "active"), {CardID: ""}}},
		{Cursor: 4, Final: true, Cards: []syncproto.CardInfo{card(string(make([]byte, syncproto.MaxIDBytes+1)), "active")}},
	} {
		if err := c.Apply(u); err == nil {
			t.Errorf("Apply(%+v) = nil, want an error", u)
		}
	}
	if c.Cursor() != 3 || c.Len() != 1 {
		t.Errorf("after refused updates: cursor %d, len %d; want 3, 1", c.Cursor(), c.Len())
	}
	if _, ok := c.Lookup("AA2"); ok {
		t.Error("a card of a refused update was stored")
	}
}

func TestApplyAfterCloseFails(t *testing.T) {
	c := openCache(t, filepath.Join(t.TempDir(), "cards.db"))
	apply(t, c, &syncproto.CardUpdate{Cursor: 3, Reset: true, Final: true, Cards: []syncproto.CardInfo{card("AA1", "active")}})
	c.Close()
	if err := c.Apply(&syncproto.CardUpdate{Cursor: 4, Final: true}); err == nil {
		t.Error("Apply after Close = nil, want an error")
	}
	if _, ok := c.Lookup("AA1"); ok {
		t.Error("Lookup after Close found a card")
	}
}

// TestLookupDuringApply looks cards up while snapshots and changes are
// applied. Every card is on every roster, so a lookup must never miss, and
// must see one of the statuses the card ever had.
func TestLookupDuringApply(t *testing.T) {
	c := openCache(t, filepath.Join(t.TempDir(), "cards.db"))
	const n = 300
	roster := func(status string) []syncproto.CardInfo {
		cards := make([]syncproto.CardInfo, n)
		for i := range cards {
			cards[i] = card(fmt.Sprintf("AA%010d", i), status)
		}
		return cards
	}
	apply(t, c, &syncproto.CardUpdate{Cursor: 1, Reset: true, Final: true, Cards: roster("active")})

	var stop atomic.Bool
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 4 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				id := fmt.Sprintf("AA%010d", (i*7+g)%n)
				ci, ok := c.Lookup(id)
				if !ok || (ci.Status != "active" && ci.Status != "blocked_site") || ci.CardID != id {
					errs <- fmt.Errorf("Lookup(%s) = %+v, %v during Apply", id, ci, ok)
					return
				}
			}
		})
	}
	cursor := uint64(1)
	for round := range 20 {
		status := []string{"active", "blocked_site"}[round%2]
		cards := roster(status)
		if round%3 == 0 {
			// A snapshot in three pages.
			cursor++
			for p := range 3 {
				apply(t, c, &syncproto.CardUpdate{Cursor: cursor, Reset: p == 0, Final: p == 2, Cards: cards[p*n/3 : (p+1)*n/3]})
			}
		} else {
			cursor++
			apply(t, c, &syncproto.CardUpdate{Cursor: cursor, Final: true, Cards: cards[:n/2]})
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if c.Cursor() != cursor || c.Len() != n {
		t.Errorf("cursor %d, len %d; want %d, %d", c.Cursor(), c.Len(), cursor, n)
	}
}

func TestOpenMovesUnreadableFileAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cards.db")
	garbage := make([]byte, 16<<10)
	for i := range garbage {
		garbage[i] = byte(i*31 + 7)
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	c := openCache(t, path)
	if c.Cursor() != 0 || c.Len() != 0 || c.Loaded() {
		t.Errorf("cache replacing a broken file: cursor %d, len %d, loaded %v; want empty", c.Cursor(), c.Len(), c.Loaded())
	}
	kept, err := os.ReadFile(path + ".corrupt")
	if err != nil || string(kept) != string(garbage) {
		t.Errorf("the broken file was not kept as %s.corrupt: %v", path, err)
	}
	apply(t, c, &syncproto.CardUpdate{Cursor: 1, Reset: true, Final: true, Cards: []syncproto.CardInfo{card("AA1", "active")}})
}

func TestOpenResetsOtherFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cards.db")
	c := openCache(t, path)
	apply(t, c, &syncproto.CardUpdate{Cursor: 3, Reset: true, Final: true, Cards: []syncproto.CardInfo{card("AA1", "active")}})
	c.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, u64(99)) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c = openCache(t, path)
	if c.Cursor() != 0 || c.Len() != 0 || c.Loaded() {
		t.Errorf("cache of format 99 reopened: cursor %d, len %d, loaded %v; want emptied", c.Cursor(), c.Len(), c.Loaded())
	}
	if _, ok := c.Lookup("AA1"); ok {
		t.Error("Lookup found a card of the old format")
	}
}

func TestOpenRefusesOutboxFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	ob, err := outbox.Open(path, outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ob.Close()
	before, _ := os.ReadFile(path)
	c, err := Open(path, Options{})
	if !errors.Is(err, ErrNotCache) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("Open(outbox file) = %v, want ErrNotCache", err)
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Error("Open changed a file that is not a card cache")
	}
}

func TestOpenLockedFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cards.db")
	openCache(t, path)
	if c, err := Open(path, Options{}); err == nil {
		c.Close()
		t.Fatal("second Open of a file in use = nil error, want a lock error")
	}
}

func BenchmarkLookup(b *testing.B) {
	c := openCache(b, filepath.Join(b.TempDir(), "cards.db"))
	cards := make([]syncproto.CardInfo, 4000)
	for i := range cards {
		cards[i] = card(fmt.Sprintf("AA%010d", i), "active")
	}
	apply(b, c, &syncproto.CardUpdate{Cursor: 1, Reset: true, Final: true, Cards: cards})
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok := c.Lookup(cards[i%len(cards)].CardID); !ok {
			b.Fatal("miss")
		}
	}
}
