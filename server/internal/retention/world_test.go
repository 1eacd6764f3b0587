package retention

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
	"github.com/liggare/liggare/syncproto"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// world is a small installation: a builder (Bygg AB, calendar tax year)
// owning site Eken, with an electrician (El AB, tax year ending in April)
// on it; a third company (Hold AB) under legal hold, owning site Björken,
// where the electrician works too. Taps go through the real ingest and
// reconciler.
type world struct {
	t        testing.TB
	pool     *pgxpool.Pool
	keys     *pii.Keys
	reg      *registry.Store
	ingest   *ingest.Store
	ledger   *ledger.Store
	bygg     int64 // calendar tax year
	el       int64 // tax year ends in April
	hold     int64 // under legal hold
	eken     int64 // Bygg's site
	bjorken  int64 // Hold's site
	seqs     map[string]uint64
	received time.Time // receive time of the next upload
}

func exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func scalar[T any](t testing.TB, pool *pgxpool.Pool, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func must[T any](t testing.TB) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func newWorld(t testing.TB) *world {
	t.Helper()
	pool := pgtest.New(t)
	keys := pii.NewTestKeys()
	w := &world{t: t, pool: pool, keys: keys, reg: registry.NewStore(pool, keys), ingest: ingest.NewStore(pool, nil),
		ledger: ledger.NewStore(pool, ledger.Rules{}), seqs: map[string]uint64{}, received: time.Now()}
	ctx := context.Background()
	id := must[int64](t)
	w.bygg = id(w.reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Bygg AB", OrgNumber: "556036-0793"}))
	w.el = id(w.reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "El AB", OrgNumber: "556703-7485"}))
	w.hold = id(w.reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Hold AB", OrgNumber: "556677-8899"}))
	exec(t, pool, `UPDATE organisations SET tax_year_end_month = 4 WHERE org_id = $1`, w.el)
	exec(t, pool, `UPDATE organisations SET legal_hold = true WHERE org_id = $1`, w.hold)
	w.eken = id(w.reg.CreateSite(ctx, w.bygg, registry.NewSite{Ident: "ABCDEFGHIJ123", Name: "Kvarteret Eken",
		Address: "Storgatan 1", ByggherreName: "Fastighets AB", ByggherreOrgNumber: "556036-0793"}))
	w.bjorken = id(w.reg.CreateSite(ctx, w.hold, registry.NewSite{Ident: "ZZZZZZZZZZ999", Name: "Kvarteret Björken",
		Address: "Lillgatan 2", ByggherreName: "Fastighets AB", ByggherreOrgNumber: "556036-0793"}))
	if err := w.reg.AddContractor(ctx, w.bygg, w.eken, w.el, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.reg.AddContractor(ctx, w.hold, w.bjorken, w.el, 0); err != nil {
		t.Fatal(err)
	}
	for _, tm := range []struct {
		id   string
		site int64
	}{{"EKEN", w.eken}, {"BJORKEN", w.bjorken}} {
		exec(t, pool, `INSERT INTO terminals (terminal_id) VALUES ($1)`, tm.id)
		exec(t, pool, `INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
			VALUES ($1, '2019-01-01', $2, 'toggle', 'test')`, tm.id, tm.site)
	}
	exec(t, pool, `INSERT INTO terminals (terminal_id) VALUES ('NOWHERE')`)
	return w
}

// person registers a worker with a card (number and chip) and dates their
// registration (and the card's) at registered, a Stockholm date.
func (w *world) person(org int64, name, pnr, card, chip, registered string) int64 {
	w.t.Helper()
	ctx := context.Background()
	id := must[int64](w.t)(w.reg.AddPerson(ctx, org, registry.NewPerson{Name: name, IDNumber: pnr}))
	must[int64](w.t)(w.reg.AddCard(ctx, org, registry.NewCard{CardNumber: card, ChipUIDs: []string{chip}, PersonID: id}))
	at := w.at(registered + " 00:00:00")
	exec(w.t, w.pool, `UPDATE persons SET created_at = $2 WHERE person_id = $1`, id, at)
	exec(w.t, w.pool, `UPDATE cards SET created_at = $2, updated_at = $2 WHERE person_id = $1`, id, at)
	return id
}

// at parses a Stockholm wall time "2006-01-02 15:04:05".
func (w *world) at(s string) time.Time {
	w.t.Helper()
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, stockholm)
	if err != nil {
		w.t.Fatal(err)
	}
	return t
}

// tap uploads taps of one card at a terminal, at Stockholm wall times,
// through ingest, and reconciles them.
func (w *world) tap(terminal, card string, when ...string) {
	w.t.Helper()
	var subs []*ingest.Submission
	for _, s := range when {
		w.seqs[terminal]++
		sess := &ingest.Session{TerminalID: terminal, StoreEpoch: 1,
			HelloClock: syncproto.Clock{WallMicros: w.received.UnixMicro()}, HelloReceived: w.received}
		tp := syncproto.Tap{Seq: w.seqs[terminal], CardID: card,
			Clock: syncproto.Clock{WallMicros: w.at(s).UnixMicro(), BootID: "b", MonoNanos: int64(w.seqs[terminal])}}
		subs = append(subs, &ingest.Submission{Session: sess, Batch: &syncproto.Batch{BatchID: 1, Taps: []syncproto.Tap{tp}},
			Received: w.received})
	}
	w.apply(subs)
}

func (w *world) apply(subs []*ingest.Submission) {
	w.t.Helper()
	ctx := context.Background()
	if _, err := w.ingest.Apply(ctx, subs); err != nil {
		w.t.Fatal(err)
	}
	if err := ledger.NewReconciler(w.pool, ledger.ReconcilerOptions{}).Drain(ctx); err != nil {
		w.t.Fatal(err)
	}
}

// correct adds a correction and dates it at created (Stockholm).
func (w *world) correct(viewer int64, c ledger.Correction, created string) int64 {
	w.t.Helper()
	c.Author, c.Reason = "platschef@bygg.se", "glömt kort"
	id := must[int64](w.t)(w.ledger.Correct(context.Background(), viewer, c))
	exec(w.t, w.pool, `UPDATE corrections SET created_at = $2 WHERE correction_id = $1`, id, w.at(created))
	return id
}

// personalTables are the tables that may hold a person's identifying data.
var personalTables = []string{"persons", "cards", "card_chips", "taps", "tap_resolutions", "corrections",
	"dead_letters", "tap_conflicts"}

// rowsHolding counts the rows of the personal tables whose text contains s
// (case-insensitive), by table.
func (w *world) rowsHolding(s string) map[string]int {
	w.t.Helper()
	out := map[string]int{}
	for _, tbl := range personalTables {
		n := scalar[int](w.t, w.pool, `SELECT count(*)::int FROM `+tbl+` x WHERE strpos(upper(x::text), upper($1)) > 0`, s)
		if n > 0 {
			out[tbl] = n
		}
	}
	return out
}
