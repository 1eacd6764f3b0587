package ledger

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// localeDatabase returns a migrated database collated by the C.UTF-8
// locale, as a cluster made with a distribution's defaults has (the test
// clusters are collated C).
func localeDatabase(t *testing.T) *pgxpool.Pool {
	t.Helper()
	admin := pgtest.NewEmpty(t)
	name := fmt.Sprintf("locale_%d", time.Now().UnixNano())
	exec(t, admin, `CREATE DATABASE `+name+` LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0`)
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP DATABASE `+name+` WITH (FORCE)`) })
	cfg := admin.Config().Copy()
	cfg.ConnConfig.Database = name
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := db.Migrate(t.Context(), pool, nil); err != nil {
		t.Fatal(err)
	}
	return pool
}

// In a database collated by a locale, terminal and card ids still compare
// byte by byte (migration 0016), and the ledger comes out as in a C one:
// taps by ID06 number, chip UID and an unknown card, reconciled, the
// unknown card assigned by a correction, and the tap picker.
func TestLedgerInALocaleCollatedDatabase(t *testing.T) {
	locale := localeDatabase(t)
	var notC []string
	if err := locale.QueryRow(context.Background(), `
		SELECT coalesce(array_agg(c.relname || '.' || a.attname), '{}') FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		WHERE c.relname IN ('taps', 'tap_marks', 'reconcile_inbox', 'cards', 'card_chips', 'terminal_assignments')
		  AND a.attname IN ('terminal_id', 'card_id', 'card_ident', 'card_ids', 'card_number', 'chip_uid')
		  AND a.attcollation NOT IN (0, 'pg_catalog."C"'::regcollation)`).Scan(&notC); err != nil {
		t.Fatal(err)
	}
	if len(notC) != 0 {
		t.Errorf("identifier columns not collated C: %v", notC)
	}
	run := func(pool *pgxpool.Pool) (periods [][]string, taps []TapRow) {
		f := newFixture(t, pool)
		s := NewStore(pool, Rules{})
		f.upload(t,
			tapSpec{"TOG", "AA0000000001", "2026-11-20 07:00:00"},
			tapSpec{"TOG", "04FFEEDDCCBBAA", "2026-11-20 07:01:00"},
			tapSpec{"IN", "ÖÄ0000000009", "2026-11-20 07:02:00"},
			tapSpec{"TOG", "AA0000000001", "2026-11-20 16:00:00"},
			tapSpec{"OUT", "04FFEEDDCCBBAA", "2026-11-20 16:01:00"},
			tapSpec{"OUT", "ÖÄ0000000009", "2026-11-20 16:02:00"})
		r := NewReconciler(pool, ReconcilerOptions{})
		drain(t, r)
		correct(t, s, f.owner, Correction{Kind: AssignCard, SiteID: f.site, PersonID: f.anna, CardIdent: "ÖÄ0000000009", Reason: "nytt kort"})
		drain(t, r)
		for _, p := range []int64{f.anna, f.bertil} {
			periods = append(periods, f.periods(t, f.site, p))
		}
		taps, err := s.Taps(context.Background(), f.owner, TapQuery{SiteID: f.site,
			From: sthlm("2026-11-20 00:00:00"), To: sthlm("2026-11-21 00:00:00")})
		if err != nil {
			t.Fatal(err)
		}
		return periods, taps
	}
	wantPeriods, wantTaps := run(pgtest.New(t))
	gotPeriods, gotTaps := run(locale)
	if diff := cmp.Diff(wantPeriods, gotPeriods); diff != "" {
		t.Errorf("periods (-C +locale):\n%s", diff)
	}
	if diff := cmp.Diff(wantTaps, gotTaps, cmpopts.IgnoreFields(TapRow{}, "ReceivedAt")); diff != "" {
		t.Errorf("taps (-C +locale):\n%s", diff)
	}
	if len(wantTaps) != 6 {
		t.Errorf("%d taps listed, want 6", len(wantTaps))
	}
}
