package export

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
)

// personnummer returns the i-th of a series of valid personnummer
// (YYYYMMDD-NNNC with the Luhn check digit).
func personnummer(i int) string {
	born := time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i)
	nine := born.Format("060102") + "123"
	sum := 0
	for k, c := range nine {
		d := int(c-'0') * (2 - k%2)
		sum += d/10 + d%10
	}
	return born.Format("20060102") + "-123" + fmt.Sprint((10-sum%10)%10)
}

// seedSite makes a site with people present: each has worked the last
// `days` days (closed periods) and is checked in now (an open period). The
// periods are written as reconciliation would write them, without taps:
// the benchmark is of the read side.
func seedSite(b *testing.B, people, days int) (*world, int64) {
	b.Helper()
	ctx := context.Background()
	pool := pgtest.New(b)
	reg := registry.NewStore(pool, pii.NewTestKeys())
	now := time.Now().Truncate(time.Second)
	w := &world{pool: pool, now: now, deps: Deps{Pool: pool, Ledger: ledger.NewStore(pool, ledger.Rules{}), Registry: reg, Now: func() time.Time { return now }}}
	var err error
	if w.owner, err = reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Bygg AB", OrgNumber: "556036-0793"}); err != nil {
		b.Fatal(err)
	}
	if w.site, err = reg.CreateSite(ctx, w.owner, registry.NewSite{Ident: "ABCDEFGHIJ123", Name: "Kvarteret Ängen",
		Address: "Storgatan 1", ByggherreName: "Fastighets AB", ByggherreOrgNumber: "556036-0793"}); err != nil {
		b.Fatal(err)
	}
	// Ten contractors share the people.
	orgs := []int64{w.owner}
	for i := 1; i < 10; i++ {
		num := fmt.Sprintf("55670%d-%04d", i, 0)
		id, err := reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: fmt.Sprintf("Entreprenör %d AB", i), OrgNumber: validOrg(num)})
		if err != nil {
			b.Fatal(err)
		}
		if err := reg.AddContractor(ctx, w.owner, w.site, id, 0); err != nil {
			b.Fatal(err)
		}
		orgs = append(orgs, id)
	}
	for k, org := range orgs {
		var csv strings.Builder
		csv.WriteString("namn;personnummer\n")
		for i := k; i < people; i += len(orgs) {
			fmt.Fprintf(&csv, "Person %d Åberg;%s\n", i, personnummer(i))
		}
		if _, err := reg.ImportCSV(ctx, org, strings.NewReader(csv.String())); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO work_periods (site_id, person_id, org_id, start_at, end_at, start_ref, end_ref)
		SELECT $1, p.person_id, p.org_id, $2::timestamptz - make_interval(days => d) - interval '2 hours',
		       $2::timestamptz - make_interval(days => d) + interval '6 hours', 'tap:K/1/' || d, 'tap:K/1/' || d
		FROM persons p, generate_series(1, $3) d`, w.site, now, days); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `
		INSERT INTO work_periods (site_id, person_id, org_id, start_at, start_ref)
		SELECT $1, p.person_id, p.org_id, $2::timestamptz - interval '2 hours', 'tap:K/1/0' FROM persons p`, w.site, now); err != nil {
		b.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	return w, w.owner
}

// validOrg completes an organisationsnummer's Luhn check digit.
func validOrg(num string) string {
	digits := strings.ReplaceAll(num, "-", "")[:9]
	sum := 0
	for k, c := range digits {
		d := int(c-'0') * (2 - k%2)
		sum += d/10 + d%10
	}
	return digits[:6] + "-" + digits[6:] + fmt.Sprint((10-sum%10)%10)
}

// BenchmarkInspectorView is an inspector's visit to a site with 2 000
// people present, each with a working week behind them: the view of the
// ledger (on-site list and periods, identity numbers decrypted, audited),
// then the JSON export of it (audited). Server time, one op = both.
// Target: 300 ms (issue 5).
func BenchmarkInspectorView(b *testing.B) {
	w, viewer := seedSite(b, 2000, 5)
	ctx := context.Background()
	req := Request{SiteID: w.site, Actor: "inspector:grant:1", From: w.now.Add(-7 * 24 * time.Hour)}
	var view, export time.Duration
	for b.Loop() {
		t0 := time.Now()
		l, err := View(ctx, w.deps, viewer, req)
		if err != nil {
			b.Fatal(err)
		}
		if len(l.OnSite) != 2000 || len(l.Periods) != 12000 {
			b.Fatalf("view: %d on site, %d periods; want 2000, 12000", len(l.OnSite), len(l.Periods))
		}
		t1 := time.Now()
		req.Format = FormatJSON
		if _, _, _, err := Build(ctx, w.deps, viewer, req); err != nil {
			b.Fatal(err)
		}
		view, export = view+t1.Sub(t0), export+time.Since(t1)
	}
	b.ReportMetric(float64(view.Milliseconds())/float64(b.N), "view-ms/op")
	b.ReportMetric(float64(export.Milliseconds())/float64(b.N), "json-ms/op")
}

// BenchmarkExportPDF is the printable file of the same site.
func BenchmarkExportPDF(b *testing.B) {
	w, viewer := seedSite(b, 2000, 5)
	ctx := context.Background()
	req := Request{SiteID: w.site, Actor: "inspector:grant:1", From: w.now.Add(-7 * 24 * time.Hour), Format: FormatPDF}
	for b.Loop() {
		if _, _, _, err := Build(ctx, w.deps, viewer, req); err != nil {
			b.Fatal(err)
		}
	}
}
