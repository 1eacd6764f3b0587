package ledger

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/liggare/liggare/server/internal/pgtest"
)

// copyPeriods writes the rows pgx's CopyFrom would: the same values, NULLs,
// and times truncated to microseconds the same way, also before 1970 and
// 2000.
func TestCopyPeriodsMatchesCopyFrom(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	ctx := context.Background()
	in, toggle := "in", "toggle"
	at := func(s string, nanos int) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.Add(time.Duration(nanos))
	}
	rows := []periodRow{
		{f.site, f.anna, f.owner, Period{Start: at("2026-11-20T07:00:00+01:00", 123456789), End: at("2026-11-20T16:00:00Z", 999),
			StartRef: "tap:K1/1/7", EndRef: "tap:K1/1/9"}, &toggle, &in},
		{f.site, f.anna, f.owner, Period{Start: at("2026-11-21T07:00:00Z", 0), StartRef: "tap:K1/1/11", MissingCheckout: true}, &in, nil},
		{f.site, f.anna, f.owner, Period{End: at("1999-12-31T23:59:59Z", 999999), EndRef: "correction:4/out", EndManual: true,
			MissingCheckin: true}, nil, &toggle},
		{f.site2, f.bertil, f.sub, Period{Start: at("1969-07-20T20:17:40Z", 1500), End: at("1969-07-21T02:56:15Z", -1500),
			StartRef: "correction:5/in", StartManual: true}, nil, nil},
	}
	now := at("2026-11-22T08:00:00Z", 424242)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE copied AS SELECT `+periodCopyColumns+` FROM work_periods WITH NO DATA`); err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if err := copyPeriods(ctx, tx, rows, now); err != nil {
			return err
		}
		var old [][]any
		for _, r := range rows {
			old = append(old, []any{r.site, r.person, r.org, nullTime(r.p.Start), nullTime(r.p.End),
				nullString(r.p.StartRef), nullString(r.p.EndRef), r.p.StartManual, r.p.EndManual,
				r.p.MissingCheckout, r.p.MissingCheckin, now, r.startMode, r.endMode})
		}
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"copied"}, []string{
			"site_id", "person_id", "org_id", "start_at", "end_at", "start_ref", "end_ref",
			"start_manual", "end_manual", "missing_checkout", "missing_checkin", "recorded_from",
			"start_mode", "end_mode",
		}, pgx.CopyFromRows(old))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	var mine, theirs, differ int
	if err := conn.QueryRow(ctx, `
		WITH a AS (SELECT `+periodCopyColumns+` FROM work_periods),
		     b AS (SELECT `+periodCopyColumns+` FROM copied)
		SELECT (SELECT count(*) FROM a), (SELECT count(*) FROM b),
		       (SELECT count(*) FROM ((TABLE a EXCEPT ALL TABLE b) UNION ALL (TABLE b EXCEPT ALL TABLE a)) d)`).
		Scan(&mine, &theirs, &differ); err != nil {
		t.Fatal(err)
	}
	if mine != len(rows) || theirs != len(rows) || differ != 0 {
		t.Errorf("copyPeriods wrote %d rows, CopyFrom %d, of %d; %d differ", mine, theirs, len(rows), differ)
	}
}
