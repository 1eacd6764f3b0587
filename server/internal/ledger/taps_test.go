package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// Store.Taps keeps its answers: the same as the query it had before
// migration 0014, for windows around each tap, each viewer and person.
func TestTapsKeepsItsAnswers(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	betweenLedger(t, f, true)
	s := NewStore(pool, Rules{})
	ctx := context.Background()
	windows := [][2]time.Time{{}, {at("2026-11-16 16:00:00"), {}}, {{}, at("2026-11-16 16:00:00")},
		{at("2026-11-17 13:59:00"), at("2026-11-17 13:59:00").Add(time.Microsecond)},
		{at("2026-11-17 00:00:00"), at("2026-11-18 00:00:00")}, {at("2026-11-18 00:00:00"), {}}}
	for _, w := range windows {
		for _, viewer := range []int64{f.owner, f.sub} {
			for _, person := range []int64{0, f.anna, f.bertil} {
				q := TapQuery{SiteID: f.site, PersonID: person, From: w[0], To: w[1]}
				got, err := s.Taps(ctx, viewer, q)
				if err != nil {
					t.Fatal(err)
				}
				want := tapsBefore0014(t, pool, viewer, q)
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("Taps(%d, %+v) (-before +now):\n%s", viewer, q, diff)
				}
			}
		}
	}
}

// tapsBefore0014 is Store.Taps as it read tap_resolutions before migration
// 0014.
func tapsBefore0014(t testing.TB, pool *pgxpool.Pool, viewer int64, q TapQuery) []TapRow {
	t.Helper()
	limit := q.Limit
	if limit <= 0 {
		limit = MaxTapRows
	}
	rows, err := pool.Query(context.Background(), `
		SELECT tr.terminal_id, tr.store_epoch, tr.seq, tr.card_ident, tr.person_id, p.name, tr.event_time,
		       t.time_source, t.time_source <> 'device', to_timestamp(t.device_wall_us / 1e6), t.received_at,
		       tr.mode, tr.direction, tr.mark, tr.voided, t.answer
		FROM tap_resolutions tr
		JOIN taps t USING (terminal_id, store_epoch, seq)
		JOIN sites s ON s.site_id = tr.site_id
		LEFT JOIN persons p ON p.person_id = tr.person_id
		WHERE tr.site_id = $1 AND (s.org_id = $2 OR p.org_id = $2)
		  AND ($3::bigint = 0 OR tr.person_id = $3)
		  AND ($4::timestamptz IS NULL OR tr.event_time >= $4)
		  AND ($5::timestamptz IS NULL OR tr.event_time < $5)
		ORDER BY tr.event_time DESC, tr.terminal_id, tr.seq DESC
		LIMIT $6`, q.SiteID, viewer, q.PersonID, nullTime(q.From), nullTime(q.To), limit)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, scanTapRow)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
