package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// tenants creates two organisations, a site of the first and a person of
// each, and returns their ids.
func tenants(t *testing.T, pool *pgxpool.Pool) (a, b, site, anna, bertil int64) {
	t.Helper()
	ctx := context.Background()
	scalar := func(sql string, args ...any) int64 {
		t.Helper()
		var v int64
		if err := pool.QueryRow(ctx, sql, args...).Scan(&v); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return v
	}
	a = scalar(`INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001') RETURNING org_id`)
	b = scalar(`INSERT INTO organisations (name, org_number) VALUES ('El AB', '556000-0002') RETURNING org_id`)
	site = scalar(`INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		VALUES ($1, 'ABCDEFGHIJ123', 'Kvarteret Eken', 'Storgatan 1', 'Fastighets AB', '556000-0009') RETURNING site_id`, a)
	person := func(org int64, name string) int64 {
		return scalar(`INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
			VALUES ($1, $2, 'personnummer', '\x00', $3::bytea, '19800101-****') RETURNING person_id`, org, name, []byte(name))
	}
	return a, b, site, person(a, "Anna"), person(b, "Bertil")
}

func TestRecordAndList(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	a, b, site, anna, bertil := tenants(t, pool)
	entries := []Entry{
		{Actor: "anna.admin@bygg.se", ActorOrgID: a, Action: ActionIdentityRead, OrgID: a, SiteID: site, PersonID: anna},
		// A's site manager reads B's worker on A's site: both see it.
		{Actor: "anna.admin@bygg.se", ActorOrgID: a, Action: ActionIdentityRead, OrgID: b, SiteID: site, PersonID: bertil},
		{Actor: "bo@el.se", ActorOrgID: b, Action: ActionLedgerExport, OrgID: b, Detail: map[string]any{"periods": 12}},
		{Actor: "system:retention", Action: ActionRetentionAnonymise, OrgID: b, PersonID: bertil, Detail: map[string]any{"cards": 1}},
	}
	for _, e := range entries {
		if err := Record(ctx, pool, e); err != nil {
			t.Fatalf("Record(%+v) = %v", e, err)
		}
	}
	actions := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Action+"/"+e.Actor)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		viewer int64
		f      Filter
		want   []string
	}{
		{"own data and own users", a, Filter{}, []string{"person.identity.read/anna.admin@bygg.se", "person.identity.read/anna.admin@bygg.se"}},
		{"employer sees reads by others", b, Filter{}, []string{"retention.anonymise/system:retention", "ledger.export/bo@el.se", "person.identity.read/anna.admin@bygg.se"}},
		{"by person", b, Filter{PersonID: bertil}, []string{"retention.anonymise/system:retention", "person.identity.read/anna.admin@bygg.se"}},
		{"by action", b, Filter{Action: ActionLedgerExport}, []string{"ledger.export/bo@el.se"}},
		{"by site", b, Filter{SiteID: site}, []string{"person.identity.read/anna.admin@bygg.se"}},
		{"limit", b, Filter{Limit: 1}, []string{"retention.anonymise/system:retention"}},
		{"another tenant's person", a, Filter{PersonID: bertil}, []string{"person.identity.read/anna.admin@bygg.se"}},
		{"by actor", b, Filter{Actor: "bo@el.se"}, []string{"ledger.export/bo@el.se"}},
		{"another tenant's actor", a, Filter{Actor: "bo@el.se"}, nil},
		{"within sites", b, Filter{Sites: []int64{site}}, []string{"person.identity.read/anna.admin@bygg.se"}},
		{"within no sites", b, Filter{Sites: []int64{}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := List(ctx, pool, tc.viewer, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, actions(got)); diff != "" {
				t.Errorf("List(%d, %+v) (-want +got):\n%s", tc.viewer, tc.f, diff)
			}
		})
	}

	// Paging, and the fields as stored.
	all, err := List(ctx, pool, b, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	older, err := List(ctx, pool, b, Filter{BeforeID: all[0].ID})
	if err != nil || len(older) != len(all)-1 || older[0].ID != all[1].ID {
		t.Errorf("List(BeforeID %d) = %d entries from %d, %v", all[0].ID, len(older), older[0].ID, err)
	}
	got := all[0]
	if got.At.IsZero() || got.ActorOrgID != 0 || got.OrgID != b || got.PersonID != bertil || got.SiteID != 0 ||
		!cmp.Equal(got.Detail, map[string]any{"cards": float64(1)}) {
		t.Errorf("stored entry = %+v", got)
	}
	if _, err := List(ctx, pool, 0, Filter{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("List without viewer = %v, want ErrInvalid", err)
	}
}

func TestRecordJoinsTheCallersTransaction(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	a, _, _, anna, _ := tenants(t, pool)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := Record(ctx, tx, Entry{Actor: "x@bygg.se", ActorOrgID: a, Action: ActionIdentityRead, OrgID: a, PersonID: anna}); err != nil {
		t.Fatal(err)
	}
	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := List(ctx, pool, a, Filter{}); err != nil || len(got) != 0 {
		t.Errorf("after rollback List = %v, %v; want nothing", got, err)
	}
}

func TestRecordRefuses(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	a, _, _, anna, _ := tenants(t, pool)
	ok := Entry{Actor: "x@bygg.se", ActorOrgID: a, Action: ActionIdentityRead, OrgID: a, PersonID: anna}
	for _, tc := range []struct {
		name string
		edit func(*Entry)
		want error
	}{
		{"personnummer in detail", func(e *Entry) { e.Detail = map[string]any{"number": "198112189876"} }, ErrIdentityNumber},
		{"short form", func(e *Entry) { e.Detail = map[string]any{"number": "8112189876"} }, ErrIdentityNumber},
		{"with hyphen", func(e *Entry) { e.Detail = map[string]any{"number": "811218-9876"} }, ErrIdentityNumber},
		{"long with hyphen", func(e *Entry) { e.Detail = map[string]any{"n": "19811218-9876"} }, ErrIdentityNumber},
		{"centenarian", func(e *Entry) { e.Detail = map[string]any{"n": "121212+1212"} }, ErrIdentityNumber},
		{"as a number", func(e *Entry) { e.Detail = map[string]any{"n": 8112189876} }, ErrIdentityNumber},
		{"inside text", func(e *Entry) { e.Detail = map[string]any{"note": "asked for 198112189876 today"} }, ErrIdentityNumber},
		{"in a key", func(e *Entry) { e.Detail = map[string]any{"8112189876": 1} }, ErrIdentityNumber},
		{"as actor", func(e *Entry) { e.Actor = "198112189876" }, ErrIdentityNumber},
		{"no actor", func(e *Entry) { e.Actor = "" }, ErrInvalid},
		{"bad action", func(e *Entry) { e.Action = "Read PNR" }, ErrInvalid},
		{"no action", func(e *Entry) { e.Action = "" }, ErrInvalid},
		{"huge detail", func(e *Entry) { e.Detail = map[string]any{"x": string(make([]byte, MaxDetailBytes))} }, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := ok
			tc.edit(&e)
			if err := Record(ctx, pool, e); !errors.Is(err, tc.want) {
				t.Errorf("Record = %v, want %v", err, tc.want)
			}
		})
	}
	// Ids, counts, masked numbers and times are fine.
	ok.Detail = map[string]any{"taps": 123456789, "masked": "19811218-****", "at": "2026-11-20T07:00:00Z", "card_id": 42}
	if err := Record(ctx, pool, ok); err != nil {
		t.Errorf("Record(%v) = %v", ok.Detail, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n); err != nil || n != 1 {
		t.Errorf("audit_log holds %d rows, %v; want only the good one", n, err)
	}
}

func TestAppendOnly(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	a, _, _, anna, _ := tenants(t, pool)
	if err := Record(ctx, pool, Entry{Actor: "x@bygg.se", ActorOrgID: a, Action: ActionIdentityRead, OrgID: a, PersonID: anna}); err != nil {
		t.Fatal(err)
	}
	refused := func(sql string) {
		t.Helper()
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			t.Errorf("%s = %v, want insufficient_privilege (42501)", sql, err)
		}
	}
	refused(`UPDATE audit_log SET actor = 'someone else'`)
	refused(`UPDATE audit_log SET detail = '{"hidden": true}'`)
	refused(`DELETE FROM audit_log`)
	refused(`TRUNCATE audit_log`)

	// Replica mode, which silences ordinary triggers, does not help.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			t.Logf("cannot test replica mode without superuser: %v", err)
			return nil
		}
		_, err := tx.Exec(ctx, `DELETE FROM audit_log`)
		return err
	})
	var pgErr *pgconn.PgError
	if err != nil && (!errors.As(err, &pgErr) || pgErr.Code != "42501") {
		t.Errorf("DELETE in replica mode = %v, want 42501", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log`).Scan(&n); err != nil || n != 1 {
		t.Errorf("audit_log holds %d rows, %v; want 1", n, err)
	}
}
