package ledger

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/pgtest"
)

// One reconciler, whose card cache has answered for a card, follows every
// kind of registry change that alters the answer.
func TestReconcileCardCacheFollowsRegistry(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	hour := 6
	personOf := func(card string) int64 {
		t.Helper()
		hour++
		when := time.Date(2026, 11, 20, hour, 0, 0, 0, stockholm)
		f.upload(t, tapSpec{"IN", card, when.Format("2006-01-02 15:04:05")})
		drain(t, r)
		var p *int64
		if err := pool.QueryRow(context.Background(), `SELECT person_id FROM tap_resolutions WHERE event_time = $1`, when).Scan(&p); err != nil {
			t.Fatal(err)
		}
		if p == nil {
			return 0
		}
		return *p
	}
	steps := []struct {
		what, card, sql string
		want            int64
	}{
		{"an unknown card", "CC0000000003", ``, 0},
		{"the card registered", "CC0000000003", `INSERT INTO cards (org_id, card_number, person_id) VALUES (%owner, 'CC0000000003', %anna)`, f.anna},
		{"a chip added", "04C0FFEE", `INSERT INTO card_chips (org_id, chip_uid, card_id) SELECT %owner, '04C0FFEE', card_id FROM cards WHERE card_number = 'CC0000000003'`, f.anna},
		{"the card given to another", "CC0000000003", `UPDATE cards SET org_id = %sub, person_id = %bertil WHERE card_number = 'CC0000000003'`, f.bertil},
		{"the chip moved along", "04C0FFEE", `UPDATE card_chips SET org_id = %sub WHERE chip_uid = '04C0FFEE'`, f.bertil},
		{"the contractor off the site", "CC0000000003", `DELETE FROM site_contractors WHERE site_id = %site AND org_id = %sub`, 0},
		{"the contractor back", "CC0000000003", `INSERT INTO site_contractors (site_id, org_id, hired_by_org_id) VALUES (%site, %sub, %owner)`, f.bertil},
		{"the chip removed", "04C0FFEE", `DELETE FROM card_chips WHERE chip_uid = '04C0FFEE'`, 0},
	}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	ids := strings.NewReplacer("%owner", n(f.owner), "%sub", n(f.sub), "%anna", n(f.anna), "%bertil", n(f.bertil), "%site", n(f.site))
	for _, s := range steps {
		if s.sql != "" {
			exec(t, pool, ids.Replace(s.sql))
		}
		if got := personOf(s.card); got != s.want {
			t.Errorf("%s: tap of %s resolved to person %d, want %d", s.what, s.card, got, s.want)
		}
	}
	// The employer a period records follows a person who changed employer.
	exec(t, pool, `UPDATE persons SET org_id = $1 WHERE person_id = $2`, f.owner, f.bertil)
	personOf("CC0000000003") // Bertil's card is still the subcontractor's
	var org int64
	if err := pool.QueryRow(context.Background(), `
		SELECT org_id FROM work_periods WHERE person_id = $1 AND recorded_to = 'infinity'
		ORDER BY coalesce(start_at, end_at) DESC LIMIT 1`, f.bertil).Scan(&org); err != nil {
		t.Fatal(err)
	}
	if org != f.owner {
		t.Errorf("period after a change of employer has org %d, want %d", org, f.owner)
	}
}

// The registry version goes up once per transaction that changes the
// registry, at commit; TRUNCATE, which would not say so, is refused.
func TestRegistryVersionBumpsOncePerCommit(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	ctx := context.Background()
	version := func() int64 { return scalar(t, pool, `SELECT n FROM registry_version`) }
	before := version()
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, card := range []string{"EE0000000001", "EE0000000002", "EE0000000003"} {
		if _, err := tx.Exec(ctx, `INSERT INTO cards (org_id, card_number, person_id) VALUES ($1, $2, $3)`, f.owner, card, f.anna); err != nil {
			t.Fatal(err)
		}
	}
	if got := version(); got != before {
		t.Errorf("version %d before commit, want %d", got, before)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := version(); got != before+1 {
		t.Errorf("version %d after one transaction, want %d", got, before+1)
	}
	if _, err := pool.Exec(ctx, `TRUNCATE card_chips`); err == nil {
		t.Error("TRUNCATE card_chips succeeded, want refused")
	}
}

// One reconciler, whose cache holds a terminal's assignments, follows a
// kiosk moved to another site, a late tap from before the move, and a new
// kiosk that is assigned after its first tap.
func TestReconcileAssignmentCacheFollowsRegistry(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	type resolved struct {
		site *int64
		mode string
	}
	tapAt := func(terminal, when string) resolved {
		t.Helper()
		f.upload(t, tapSpec{terminal, "AA0000000001", when})
		drain(t, r)
		at, err := time.ParseInLocation("2006-01-02 15:04:05", when, stockholm)
		if err != nil {
			t.Fatal(err)
		}
		var got resolved
		if err := pool.QueryRow(context.Background(), `SELECT site_id, mode FROM tap_resolutions WHERE terminal_id = $1 AND event_time = $2`,
			terminal, at).Scan(&got.site, &got.mode); err != nil {
			t.Fatal(err)
		}
		return got
	}
	check := func(what string, got resolved, site int64, mode string) {
		t.Helper()
		if site == 0 {
			if got.site != nil {
				t.Errorf("%s: site %d, want none", what, *got.site)
			}
			return
		}
		if got.site == nil || *got.site != site || got.mode != mode {
			t.Errorf("%s: site %v mode %q, want site %d mode %q", what, got.site, got.mode, site, mode)
		}
	}
	check("before the move", tapAt("IN", "2026-11-20 07:00:00"), f.site, "in")
	exec(t, pool, `INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
		VALUES ('IN', '2026-11-20 12:00:00+01', $1, 'out', 'test')`, f.site2)
	check("after the move", tapAt("IN", "2026-11-20 13:00:00"), f.site2, "out")
	check("a late tap from before the move", tapAt("IN", "2026-11-20 08:00:00"), f.site, "in")
	exec(t, pool, `INSERT INTO terminals (terminal_id) VALUES ('NEW')`)
	check("a kiosk not yet assigned", tapAt("NEW", "2026-11-20 09:00:00"), 0, "")
	exec(t, pool, `INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
		VALUES ('NEW', '2026-01-01', $1, 'toggle', 'test')`, f.site)
	check("the kiosk assigned", tapAt("NEW", "2026-11-20 10:00:00"), f.site, "toggle")
	exec(t, pool, `UPDATE terminal_assignments SET direction = 'in' WHERE terminal_id = 'NEW'`)
	check("its mode changed by hand", tapAt("NEW", "2026-11-20 11:00:00"), f.site, "in")
}
