package ledger

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// The derived tables check their references with statement triggers
// (migration 0008) instead of foreign keys: the same promise, checked once
// per statement.
func TestLedgerReferencesAreChecked(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	// A counted tap has no tap_marks row (the period names it); an unknown
	// card's has.
	f.upload(t, tapSpec{"IN", "AA0000000001", "2026-11-20 07:00:00"}, tapSpec{"IN", "XX9999999999", "2026-11-20 07:05:00"})
	drain(t, r)
	const missing = 999999
	for _, c := range []struct {
		name string
		sql  string
		args []any
	}{
		{"period of nobody", `INSERT INTO work_periods (site_id, person_id, org_id, start_at) VALUES ($1, $2, $3, now())`,
			[]any{f.site, missing, f.owner}},
		{"period at no site", `INSERT INTO work_periods (site_id, person_id, org_id, start_at) VALUES ($1, $2, $3, now())`,
			[]any{missing, f.anna, f.owner}},
		{"period of no employer", `INSERT INTO work_periods (site_id, person_id, org_id, start_at) VALUES ($1, $2, $3, now())`,
			[]any{f.site, f.anna, missing}},
		{"one bad row among good ones", `INSERT INTO work_periods (site_id, person_id, org_id, start_at)
			SELECT $1, p, $3, now() FROM unnest(ARRAY[$2::bigint, $4::bigint]) p`, []any{f.site, f.anna, f.owner, missing}},
		{"resolution of nobody", `INSERT INTO tap_marks (terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, mark)
			VALUES ('X', 1, 1, $1, $2, now(), 'C', 'in', 'pending')`, []any{f.site, missing}},
		{"resolution moved to nobody", `UPDATE tap_marks SET person_id = $1`, []any{missing}},
		{"resolution moved to no site", `UPDATE tap_marks SET site_id = $1`, []any{missing}},
		{"period moved to another employer", `UPDATE work_periods SET org_id = $1`, []any{f.sub}},
		{"delete a person with periods", `DELETE FROM persons WHERE person_id = $1`, []any{f.anna}},
		{"delete a site with periods", `DELETE FROM sites WHERE site_id = $1`, []any{f.site}},
		{"delete an employer with periods", `DELETE FROM organisations WHERE org_id = $1`, []any{f.owner}},
	} {
		_, err := pool.Exec(context.Background(), c.sql, c.args...)
		if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "23503" {
			t.Errorf("%s: err = %v, want foreign_key_violation (23503)", c.name, err)
		}
	}
	// A row whose references exist goes in, and unnamed registry rows may
	// still be deleted.
	exec(t, pool, `INSERT INTO work_periods (site_id, person_id, org_id, start_at) VALUES ($1, $2, $3, now())`, f.site2, f.bertil, f.sub)
	loner := scalar(t, pool, `INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
		VALUES ($1, 'Loner', 'personnummer', '\x00', '\x0a', '19800101-****') RETURNING person_id`, f.owner)
	exec(t, pool, `DELETE FROM persons WHERE person_id = $1`, loner)
}
