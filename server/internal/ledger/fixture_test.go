package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/syncproto"
)

// fixture is a small world: two tenants, a site owned by the first with the
// second as a subcontractor, people and cards of both, and three terminals
// on the site (in, out, toggle).
type fixture struct {
	pool         *pgxpool.Pool
	ingest       *ingest.Store
	owner, sub   int64
	site, site2  int64
	anna, bertil int64 // persons of owner and sub
	seqs         map[string]uint64
}

func exec(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) {
	t.Helper()
	if _, err := pool.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func scalar(t testing.TB, pool *pgxpool.Pool, sql string, args ...any) int64 {
	t.Helper()
	var v int64
	if err := pool.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

func newFixture(t testing.TB, pool *pgxpool.Pool) *fixture {
	t.Helper()
	f := &fixture{pool: pool, ingest: ingest.NewStore(pool, nil), seqs: map[string]uint64{}}
	f.owner = scalar(t, pool, `INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001') RETURNING org_id`)
	f.sub = scalar(t, pool, `INSERT INTO organisations (name, org_number) VALUES ('El AB', '556000-0002') RETURNING org_id`)
	f.site = scalar(t, pool, `INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		VALUES ($1, 'ABCDEFGHIJ123', 'Kvarteret Eken', 'Storgatan 1', 'Fastighets AB', '556000-0009') RETURNING site_id`, f.owner)
	f.site2 = scalar(t, pool, `INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		VALUES ($1, 'ZZZZZZZZZZ999', 'Kvarteret Björken', 'Lillgatan 2', 'Fastighets AB', '556000-0009') RETURNING site_id`, f.owner)
	exec(t, pool, `INSERT INTO site_contractors (site_id, org_id, hired_by_org_id) VALUES ($1, $2, $3), ($4, $2, $3)`, f.site, f.sub, f.owner, f.site2)
	person := func(org int64, name string) int64 {
		return scalar(t, pool, `INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
			VALUES ($1, $2, 'personnummer', '\x00', $3::bytea, '19800101-****') RETURNING person_id`, org, name, []byte(name))
	}
	f.anna = person(f.owner, "Anna")
	f.bertil = person(f.sub, "Bertil")
	card := func(org, person int64, number, chip string) {
		id := scalar(t, pool, `INSERT INTO cards (org_id, card_number, person_id) VALUES ($1, $2, $3) RETURNING card_id`, org, number, person)
		exec(t, pool, `INSERT INTO card_chips (org_id, chip_uid, card_id) VALUES ($1, $2, $3)`, org, chip, id)
	}
	card(f.owner, f.anna, "AA0000000001", "04A1B2C3D4E5F6")
	card(f.sub, f.bertil, "BB0000000002", "04FFEEDDCCBBAA")
	for _, tm := range []struct {
		id, dir string
		site    int64
	}{{"IN", "in", f.site}, {"OUT", "out", f.site}, {"TOG", "toggle", f.site}, {"TOG2", "toggle", f.site2}} {
		exec(t, pool, `INSERT INTO terminals (terminal_id) VALUES ($1)`, tm.id)
		exec(t, pool, `INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
			VALUES ($1, '2026-01-01', $2, $3, 'test')`, tm.id, tm.site, tm.dir)
	}
	return f
}

// tapAt makes the next tap of a terminal at a Stockholm wall time.
func (f *fixture) tapAt(terminal, card, when string) (*ingest.Session, syncproto.Tap) {
	f.seqs[terminal]++
	t, err := time.ParseInLocation("2006-01-02 15:04:05", when, stockholm)
	if err != nil {
		panic(err)
	}
	sess := &ingest.Session{TerminalID: terminal, StoreEpoch: 1,
		HelloClock: syncproto.Clock{WallMicros: time.Now().UnixMicro()}, HelloReceived: time.Now()}
	return sess, syncproto.Tap{Seq: f.seqs[terminal], CardID: card,
		Clock: syncproto.Clock{WallMicros: t.UnixMicro(), BootID: "b", MonoNanos: int64(f.seqs[terminal])}}
}

// upload stores taps through the real ingest path, one batch per tap.
func (f *fixture) upload(t testing.TB, taps ...tapSpec) {
	t.Helper()
	if _, err := f.ingest.Apply(context.Background(), f.submissions(taps...)); err != nil {
		t.Fatal(err)
	}
}

// submissions gives each tap its identity (the next seq of its terminal)
// and returns one batch per tap, for a test to send as it likes.
func (f *fixture) submissions(taps ...tapSpec) []*ingest.Submission {
	var subs []*ingest.Submission
	for _, ts := range taps {
		sess, tp := f.tapAt(ts.terminal, ts.card, ts.when)
		subs = append(subs, &ingest.Submission{Session: sess, Batch: &syncproto.Batch{BatchID: 1, Taps: []syncproto.Tap{tp}}, Received: time.Now()})
	}
	return subs
}

type tapSpec struct{ terminal, card, when string }

// periods returns the current periods of a person at a site as strings
// "HH:MM-HH:MM flags", in order.
func (f *fixture) periods(t testing.TB, site, person int64) []string {
	t.Helper()
	rows, err := f.pool.Query(context.Background(), `
		SELECT start_at, end_at, missing_checkout, missing_checkin, start_manual, end_manual
		FROM work_periods WHERE site_id = $1 AND person_id = $2 AND recorded_to = 'infinity'
		ORDER BY coalesce(start_at, end_at)`, site, person)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var start, end *time.Time
		var mco, mci, sm, em bool
		if err := rows.Scan(&start, &end, &mco, &mci, &sm, &em); err != nil {
			t.Fatal(err)
		}
		s := func(tp *time.Time, manual bool) string {
			if tp == nil {
				return "?"
			}
			v := tp.In(stockholm).Format("01-02 15:04")
			if manual {
				v += "(m)"
			}
			return v
		}
		line := s(start, sm) + " - " + s(end, em)
		if mco {
			line += " missing-checkout"
		}
		if mci {
			line += " missing-checkin"
		}
		out = append(out, line)
	}
	return out
}

func (f *fixture) String() string { return fmt.Sprintf("fixture(site %d)", f.site) }

// deliveries gives each spec its identity (per-terminal sequence in spec
// order, as the terminals allocated them), then cuts each terminal's taps
// into random batches, repeats some, shuffles them all and groups them into
// random Apply calls.
func (f *fixture) deliveries(specs []tapSpec, rng *rand.Rand) [][]*ingest.Submission {
	perTerminal := map[string][]syncproto.Tap{}
	sessions := map[string]*ingest.Session{}
	var names []string
	for _, sp := range specs {
		sess, tp := f.tapAt(sp.terminal, sp.card, sp.when)
		if _, ok := sessions[sp.terminal]; !ok {
			names = append(names, sp.terminal)
		}
		sessions[sp.terminal] = sess
		perTerminal[sp.terminal] = append(perTerminal[sp.terminal], tp)
	}
	var subs []*ingest.Submission
	for _, name := range names {
		taps := perTerminal[name]
		for i := 0; i < len(taps); {
			j := min(len(taps), i+1+rng.IntN(6))
			for copies := 1 + rng.IntN(2); copies > 0; copies-- {
				subs = append(subs, &ingest.Submission{Session: sessions[name],
					Batch: &syncproto.Batch{BatchID: uint64(len(subs)), Taps: taps[i:j]}, Received: time.Now()})
			}
			i = j
		}
	}
	rng.Shuffle(len(subs), func(a, b int) { subs[a], subs[b] = subs[b], subs[a] })
	var groups [][]*ingest.Submission
	for len(subs) > 0 {
		n := min(len(subs), 1+rng.IntN(4))
		groups = append(groups, subs[:n])
		subs = subs[n:]
	}
	return groups
}
