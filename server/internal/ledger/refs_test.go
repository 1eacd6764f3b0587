package ledger

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// The derived tables check their references with statement triggers
// (migrations 0008 and 0015) instead of foreign keys: the same promise,
// checked once per statement.
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

// A registry row deleted while a ledger row naming it is being written
// (migration 0015): whichever commits first, the other fails, and the
// ledger never names a row that is gone.
func TestLedgerReferencesUnderConcurrentDelete(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	person := func(name string) int64 {
		return scalar(t, pool, `INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
			VALUES ($1, $2, 'personnummer', '\x00', $3::bytea, '19800101-****') RETURNING person_id`, f.owner, name, []byte(name))
	}
	const insert = `INSERT INTO work_periods (site_id, person_id, org_id, start_at) VALUES ($1, $2, $3, now())`
	const del = `DELETE FROM persons WHERE person_id = $1`
	// waiting returns once another session waits for a lock, or the
	// statement meant to wait has finished (which the caller then sees).
	waiting := func(done <-chan error) {
		t.Helper()
		for len(done) == 0 {
			if scalar(t, pool, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`) > 0 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wantFK := func(what string, err error) {
		t.Helper()
		if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "23503" {
			t.Errorf("%s: err = %v, want foreign_key_violation (23503)", what, err)
		}
	}
	for _, c := range []struct {
		name, first, second string
	}{
		{"period written, then the person deleted", insert, del},
		{"person deleted, then a period written", del, insert},
	} {
		p := person(c.name)
		args := map[string][]any{insert: {f.site, p, f.owner}, del: {p}}
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, c.first, args[c.first]...); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := pool.Exec(ctx, c.second, args[c.second]...)
			done <- err
		}()
		waiting(done)
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		wantFK(c.name, <-done)
		if n := scalar(t, pool, `SELECT count(*) FROM work_periods w WHERE NOT EXISTS (SELECT 1 FROM persons p WHERE p.person_id = w.person_id)`); n != 0 {
			t.Errorf("%s: %d periods name a person that is gone", c.name, n)
		}
	}
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, del, person("in repeatable read"))
	if pe, ok := errors.AsType[*pgconn.PgError](err); !ok || pe.Code != "0A000" {
		t.Errorf("delete in REPEATABLE READ: err = %v, want feature_not_supported (0A000)", err)
	}
}
