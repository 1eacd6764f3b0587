package ledger

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// seedHistory makes one site with people working there every day for days
// days, as the reconciler leaves it: each day, per person, a check-in on
// the in-terminal and a check-out on the out-terminal, the period's open
// version closed by its complete one, and now and then a double tap. It
// returns the site, its owner, and the time of the last tap.
func seedHistory(b *testing.B, pool *pgxpool.Pool, people, days int) (site, owner int64, last time.Time) {
	b.Helper()
	ctx := context.Background()
	for _, q := range []string{
		`INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001')`,
		`INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		 VALUES (1, 'ABCDEFGHIJ123', 'Kvarteret Eken', '', 'BH', '556000-0009')`,
		`INSERT INTO persons (org_id, name, id_kind, id_enc, id_index, id_masked)
		 SELECT 1, 'Person ' || g, 'personnummer', '\x00', int8send(g), '19800101-****' FROM generate_series(1, $1) g`,
		`INSERT INTO terminals (terminal_id) VALUES ('IN'), ('OUT')`,
		`INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
		 VALUES ('IN', '2020-01-01', 1, 'in', 'bench'), ('OUT', '2020-01-01', 1, 'out', 'bench')`,
		// Person p on day d: in at 07:00 + p min, out at 16:00 + p min;
		// seq d * people + p on each terminal.
		`CREATE TABLE hist AS
		 SELECT p, d, d * $1 + p AS seq,
		        timestamptz '2025-01-06 07:00+01' + make_interval(days => d, mins => p % 120) AS t_in,
		        timestamptz '2025-01-06 16:00+01' + make_interval(days => d, mins => p % 120) AS t_out
		 FROM generate_series(1, $1) p, generate_series(0, $2 - 1) d`,
		`INSERT INTO taps (terminal_id, store_epoch, seq, card_id, device_wall_us, boot_id, mono_ns, received_at, event_time, time_source)
		 SELECT 'IN', 1, seq, 'AB' || lpad(p::text, 10, '0'), 0, 'b', 0, t_in, t_in, 'device' FROM hist
		 UNION ALL
		 SELECT 'OUT', 1, seq, 'AB' || lpad(p::text, 10, '0'), 0, 'b', 0, t_out, t_out, 'device' FROM hist
		 UNION ALL
		 SELECT 'IN', 2, seq, 'AB' || lpad(p::text, 10, '0'), 0, 'b', 0, t_in + interval '10 s', t_in + interval '10 s', 'device'
		 FROM hist WHERE (p * 7 + d) % 50 = 0`,
		`INSERT INTO tap_marks (terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, direction, mark)
		 SELECT 'IN', 2, seq, 1, p, t_in + interval '10 s', 'AB' || lpad(p::text, 10, '0'), 'in', 'in', 'double'
		 FROM hist WHERE (p * 7 + d) % 50 = 0`,
		`INSERT INTO work_periods (site_id, person_id, org_id, start_at, end_at, start_ref, end_ref, recorded_from, recorded_to, start_mode, end_mode)
		 SELECT 1, p, 1, t_in, NULL, 'tap:IN/1/' || seq, NULL, t_in, t_out, 'in', NULL FROM hist
		 UNION ALL
		 SELECT 1, p, 1, t_in, t_out, 'tap:IN/1/' || seq, 'tap:OUT/1/' || seq, t_out, 'infinity', 'in', 'out' FROM hist
		 ORDER BY 8`,
		`DROP TABLE hist`,
		`ANALYZE`,
	} {
		var args []any
		switch {
		case strings.Contains(q, "$2"):
			args = []any{people, days}
		case strings.Contains(q, "$1"):
			args = []any{people}
		}
		if _, err := pool.Exec(ctx, q, args...); err != nil {
			b.Fatalf("%s: %v", q, err)
		}
	}
	if err := pool.QueryRow(ctx, `SELECT max(event_time) FROM taps`).Scan(&last); err != nil {
		b.Fatal(err)
	}
	return 1, 1, last
}

// BenchmarkTapsPicker: the corrections page's tap picker (Store.Taps of the
// last three days, at most 300) on a site of 100 people with 30, 250 and
// 750 days of history. tap_resolutions_between reads the periods of the
// window, so ms/op should not grow with the history; "view" is the query
// before migration 0014, over tap_resolutions, for comparison.
func BenchmarkTapsPicker(b *testing.B) {
	for _, days := range []int{30, 250, 750} {
		pool := pgtest.New(b)
		site, owner, last := seedHistory(b, pool, 100, days)
		q := TapQuery{SiteID: site, From: last.AddDate(0, 0, -3), Limit: 300}
		s := NewStore(pool, Rules{})
		for _, how := range []string{"store", "view"} {
			b.Run(fmt.Sprintf("days=%d/%s", days, how), func(b *testing.B) {
				var rows int
				b.ResetTimer()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if how == "view" {
						rows = len(tapsBefore0014(b, pool, owner, q))
						continue
					}
					got, err := s.Taps(context.Background(), owner, q)
					if err != nil {
						b.Fatal(err)
					}
					rows = len(got)
				}
				b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms")
				b.ReportMetric(float64(rows), "rows")
			})
		}
	}
}

// BenchmarkAssignCard: a manager assigns an unknown card id, tapped twice
// a day for the last week, on a site of 100 people with 30 and 250 days of
// history. The correction reads the site's terminals' taps for the card id
// (before, it read the site's whole ledger through tap_resolutions: 36 s
// for 20 sites × 100 people × 250 days).
func BenchmarkAssignCard(b *testing.B) {
	for _, days := range []int{30, 250} {
		b.Run(fmt.Sprintf("days=%d", days), func(b *testing.B) {
			pool := pgtest.New(b)
			site, owner, last := seedHistory(b, pool, 100, days)
			ctx := context.Background()
			if _, err := pool.Exec(ctx, `
				INSERT INTO taps (terminal_id, store_epoch, seq, card_id, device_wall_us, boot_id, mono_ns, received_at, event_time, time_source)
				SELECT 'IN', 3, d, 'XX0000000001', 0, 'b', 0, $1::timestamptz - make_interval(days => d), $1::timestamptz - make_interval(days => d), 'device'
				FROM generate_series(1, 7) d`, last); err != nil {
				b.Fatal(err)
			}
			if _, err := pool.Exec(ctx, `
				INSERT INTO tap_marks (terminal_id, store_epoch, seq, site_id, event_time, card_ident, mode, mark)
				SELECT terminal_id, store_epoch, seq, 1, event_time, card_id, 'in', 'unknown_card' FROM taps WHERE store_epoch = 3`); err != nil {
				b.Fatal(err)
			}
			s := NewStore(pool, Rules{})
			b.ResetTimer()
			for i := range b.N {
				if _, err := s.Correct(ctx, owner, Correction{Kind: AssignCard, SiteID: site, PersonID: int64(1 + i%2),
					CardIdent: "XX0000000001", Reason: "nytt kort", Author: "platschef@bygg.se"}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/op")
		})
	}
}

// BenchmarkOnSite: the live page's list of who is on the site (OnSite, at
// the last check-in) on a site of 100 people with 30, 250 and 750 days of
// history: 0.6-0.9 ms at each, so it does not grow with the history (a
// step through the site's people, one index range each, measured 1.3-2.0).
func BenchmarkOnSite(b *testing.B) {
	for _, days := range []int{30, 250, 750} {
		b.Run(fmt.Sprintf("days=%d", days), func(b *testing.B) {
			pool := pgtest.New(b)
			site, owner, last := seedHistory(b, pool, 100, days)
			// The last day's check-ins are still open.
			for _, q := range []string{
				`DELETE FROM work_periods WHERE start_at > $1::timestamptz - interval '12 hours' AND end_at IS NOT NULL`,
				`UPDATE work_periods SET recorded_to = 'infinity' WHERE start_at > $1::timestamptz - interval '12 hours'`,
			} {
				if _, err := pool.Exec(context.Background(), q, last); err != nil {
					b.Fatal(err)
				}
			}
			s := NewStore(pool, Rules{})
			var rows int
			b.ResetTimer()
			for range b.N {
				got, err := s.OnSite(context.Background(), owner, PeriodQuery{SiteID: site, Now: last})
				if err != nil {
					b.Fatal(err)
				}
				rows = len(got)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms")
			b.ReportMetric(float64(rows), "rows")
		})
	}
}
