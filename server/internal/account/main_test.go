package account

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/liggare/liggare/internal/testclock"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// cheapParams keep tests fast; DefaultParams are tested on their own.
var cheapParams = Params{Memory: 64, Time: 1, Threads: 1}

// world is a database with two organisations and sites:
//
//	bygg owns siteA and siteB; el is a contractor on siteA; other is
//	unrelated.
type world struct {
	pool                *pgxpool.Pool
	store               *Store
	clock               *testclock.Clock
	keys                *pii.Keys
	bygg, el, other     int64
	siteA, siteB, siteC int64 // siteC is other's
}

func newWorld(t *testing.T, opts ...func(*Options)) *world {
	t.Helper()
	w := &world{pool: pgtest.New(t), clock: testclock.New(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)), keys: pii.NewTestKeys()}
	o := Options{Now: w.clock.Now, Params: cheapParams}
	for _, f := range opts {
		f(&o)
	}
	w.store = NewStore(w.pool, w.keys, o)
	w.bygg = w.scalar(t, `INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001') RETURNING org_id`)
	w.el = w.scalar(t, `INSERT INTO organisations (name, org_number) VALUES ('El AB', '556000-0002') RETURNING org_id`)
	w.other = w.scalar(t, `INSERT INTO organisations (name, org_number) VALUES ('Annat AB', '556000-0003') RETURNING org_id`)
	site := func(org int64, ident string) int64 {
		return w.scalar(t, `INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
			VALUES ($1, $2, 'Kvarteret '||$2, 'Storgatan 1', 'Fastighets AB', '556000-0009') RETURNING site_id`, org, ident)
	}
	w.siteA, w.siteB, w.siteC = site(w.bygg, "AAAAAAAAAAAA1"), site(w.bygg, "BBBBBBBBBBBB2"), site(w.other, "CCCCCCCCCCCC3")
	if _, err := w.pool.Exec(t.Context(), `INSERT INTO site_contractors (site_id, org_id) VALUES ($1, $2)`, w.siteA, w.el); err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) scalar(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var v int64
	if err := w.pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// user creates a user with a password and the given role in org, and
// returns its id and a principal for it.
func (w *world) user(t *testing.T, email string, org int64, role Role) (int64, Principal) {
	t.Helper()
	ctx := t.Context()
	sys := System("test")
	u, err := w.store.CreateUser(ctx, sys, email, "Namn "+email)
	if err != nil {
		t.Fatalf("CreateUser(%s) = %v", email, err)
	}
	if err := w.store.SetPassword(ctx, sys, u.ID, testPassword); err != nil {
		t.Fatalf("SetPassword = %v", err)
	}
	if role != "" {
		if err := w.store.GrantRole(ctx, sys, u.ID, org, role); err != nil {
			t.Fatalf("GrantRole(%s, %d, %s) = %v", email, org, role, err)
		}
	}
	return u.ID, w.principal(t, u.ID)
}

func (w *world) principal(t *testing.T, userID int64) Principal {
	t.Helper()
	p, err := w.store.Principal(t.Context(), Session{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// actions lists the audit actions about org, oldest first.
func (w *world) actions(t *testing.T, org int64, action string) []audit.Entry {
	t.Helper()
	es, err := audit.List(t.Context(), w.pool, org, audit.Filter{Action: action})
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(es)-1; i < j; i, j = i+1, j-1 {
		es[i], es[j] = es[j], es[i]
	}
	return es
}

const testPassword = "rödbetor i snöstorm"
