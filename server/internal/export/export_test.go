package export

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/ingest"
	"github.com/liggare/liggare/server/internal/ledger"
	"github.com/liggare/liggare/server/internal/pgtest"
	"github.com/liggare/liggare/server/internal/pii"
	"github.com/liggare/liggare/server/internal/registry"
	"github.com/liggare/liggare/syncproto"
)

// world is a site owned by Bygg AB with El AB as its subcontractor, one
// worker of each, a toggle terminal, and a stranger tenant.
type world struct {
	pool                *pgxpool.Pool
	deps                Deps
	owner, sub, foreign int64
	site                int64
	asa, bertil         int64
	seq                 uint64
	now                 time.Time
}

func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	pool := pgtest.New(t)
	reg := registry.NewStore(pool, pii.NewTestKeys())
	// The moment of the test: every tap is placed relative to it.
	now := time.Now().Truncate(time.Second)
	w := &world{pool: pool, now: now,
		deps: Deps{Pool: pool, Ledger: ledger.NewStore(pool, ledger.Rules{}), Registry: reg, Now: func() time.Time { return now }}}
	must := func(id int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	w.owner = must(reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Bygg AB", OrgNumber: "556036-0793"}))
	w.sub = must(reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "El Öst AB", OrgNumber: "556703-7485"}))
	w.foreign = must(reg.CreateOrganisation(ctx, registry.NewOrganisation{Name: "Annat AB", OrgNumber: "556677-8899"}))
	w.site = must(reg.CreateSite(ctx, w.owner, registry.NewSite{Ident: "ABCDEFGHIJ123", Name: "Kvarteret Ängen",
		Address: "Storgatan 1", ByggherreName: "Fastighets AB", ByggherreOrgNumber: "556036-0793"}))
	if err := reg.AddContractor(ctx, w.owner, w.site, w.sub, 0); err != nil {
		t.Fatal(err)
	}
	w.asa = must(reg.AddPerson(ctx, w.owner, registry.NewPerson{Name: "Åsa Öberg", IDNumber: "811218-9876"}))
	w.bertil = must(reg.AddPerson(ctx, w.sub, registry.NewPerson{Name: "Bertil Ström", IDNumber: "19900101-0017"}))
	must(reg.AddCard(ctx, w.owner, registry.NewCard{CardNumber: "AA0000000001", PersonID: w.asa}))
	must(reg.AddCard(ctx, w.sub, registry.NewCard{CardNumber: "BB0000000002", PersonID: w.bertil}))
	if _, err := pool.Exec(ctx, `INSERT INTO terminals (terminal_id) VALUES ('K1')`); err != nil {
		t.Fatal(err)
	}
	if err := reg.AssignTerminal(ctx, w.owner, "K1", w.site, "toggle", now.Add(-30*24*time.Hour), "test"); err != nil {
		t.Fatal(err)
	}
	return w
}

// tap uploads taps of cards at times relative to w.now through the real
// ingest path and reconciles them.
func (w *world) tap(t testing.TB, taps ...struct {
	card string
	ago  time.Duration
}) {
	t.Helper()
	ctx := context.Background()
	sess := &ingest.Session{TerminalID: "K1", StoreEpoch: 1,
		HelloClock: syncproto.Clock{WallMicros: time.Now().UnixMicro()}, HelloReceived: time.Now()}
	var batch syncproto.Batch
	for _, tp := range taps {
		w.seq++
		batch.Taps = append(batch.Taps, syncproto.Tap{Seq: w.seq, CardID: tp.card,
			Clock: syncproto.Clock{WallMicros: w.now.Add(-tp.ago).UnixMicro(), BootID: "b", MonoNanos: int64(w.seq)}})
	}
	batch.BatchID = w.seq
	if _, err := ingest.NewStore(w.pool, nil).Apply(ctx, []*ingest.Submission{{Session: sess, Batch: &batch, Received: time.Now()}}); err != nil {
		t.Fatal(err)
	}
	if err := ledger.NewReconciler(w.pool, ledger.ReconcilerOptions{}).Drain(ctx); err != nil {
		t.Fatal(err)
	}
}

type tp = struct {
	card string
	ago  time.Duration
}

func TestBuildFormatsAndAudit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// Åsa worked yesterday and is in now; Bertil came and left today.
	w.tap(t, tp{"AA0000000001", 27 * time.Hour}, tp{"AA0000000001", 19 * time.Hour}, tp{"AA0000000001", 3 * time.Hour},
		tp{"BB0000000002", 5 * time.Hour}, tp{"BB0000000002", 4 * time.Hour})
	// Bertil forgot his card in the morning: a manual period, with a reason.
	if _, err := w.deps.Ledger.Correct(ctx, w.owner, ledger.Correction{Kind: ledger.ManualPeriod, SiteID: w.site, PersonID: w.bertil,
		Start: w.now.Add(-10 * time.Hour), End: w.now.Add(-8 * time.Hour), Reason: "glömt kort", Author: "user:1"}); err != nil {
		t.Fatal(err)
	}
	req := Request{SiteID: w.site, Actor: "inspector:grant:7"}

	req.Format = FormatJSON
	name, ctype, body, err := Build(ctx, w.deps, w.owner, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(name, "personalliggare-ABCDEFGHIJ123-") || !strings.HasSuffix(name, ".json") || ctype != "application/json; charset=utf-8" {
		t.Errorf("Build(json) = %q, %q", name, ctype)
	}
	var f struct {
		Schema  string `json:"schema"`
		Persons []struct {
			Name           string `json:"name"`
			IdentityNumber string `json:"identity_number"`
		} `json:"persons"`
		WorkPeriods []struct {
			Person      string `json:"person"`
			StartManual bool   `json:"start_manual"`
			Open        bool   `json:"open"`
		} `json:"work_periods"`
		OnSite []struct {
			Person string `json:"person"`
		} `json:"on_site"`
		Corrections []struct {
			Kind, Reason string
		} `json:"corrections"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatalf("json: %v\n%s", err, body)
	}
	ids := []string{}
	for _, p := range f.Persons {
		ids = append(ids, p.IdentityNumber)
	}
	if diff := cmp.Diff([]string{"198112189876", "199001010017"}, ids); diff != "" {
		t.Errorf("identity numbers in full (-want +got):\n%s", diff)
	}
	if len(f.WorkPeriods) != 4 || len(f.OnSite) != 1 || len(f.Corrections) != 1 || f.Corrections[0].Reason != "glömt kort" {
		t.Errorf("json: %d periods, %d on site, corrections %+v; want 4, 1, the manual period", len(f.WorkPeriods), len(f.OnSite), f.Corrections)
	}

	req.Format = FormatCSV
	_, _, body, err = Build(ctx, w.deps, w.owner, req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(body), "\ufeffIdentifikationsnummer;") || !strings.Contains(string(body), ";Åsa Öberg;19811218-9876;") ||
		!strings.Contains(string(body), ";El Öst AB;556703-7485;Bertil Ström;19900101-0017;") || strings.Count(string(body), "\r\n") != 5 {
		t.Errorf("csv:\n%s", body)
	}

	req.Format = FormatPDF
	_, ctype, body, err = Build(ctx, w.deps, w.owner, req)
	if err != nil {
		t.Fatal(err)
	}
	text := pdfText(t, body)
	for _, want := range []string{"Kvarteret Ängen", "Åsa Öberg", "19811218-9876", "19900101-0017", "glömt kort", "Sida 1 av"} {
		if !strings.Contains(text, want) {
			t.Errorf("pdf (%s) lacks %q", ctype, want)
		}
	}

	// Three exports, three entries, with counts and no number.
	entries, err := audit.List(ctx, w.pool, w.owner, audit.Filter{Action: audit.ActionLedgerExport, SiteID: w.site})
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("audit entries = %d, want 3", len(entries))
	}
	e := entries[2]
	if e.Actor != "inspector:grant:7" || e.OrgID != w.owner || e.Detail["format"] != "json" ||
		e.Detail["periods"] != float64(4) || e.Detail["identities"] != float64(2) || e.Detail["as_of"] != "now" {
		t.Errorf("audit entry = %+v", e)
	}
}

func TestViewAsOfAndScope(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	w.tap(t, tp{"AA0000000001", 3 * time.Hour}, tp{"BB0000000002", 2 * time.Hour})
	// What the server knew before the correction below.
	before := time.Now()
	if _, err := w.deps.Ledger.Correct(ctx, w.owner, ledger.Correction{Kind: ledger.SetCheckout, SiteID: w.site, PersonID: w.asa,
		End: w.now.Add(-time.Hour), Reason: "gick hem", Author: "user:1"}); err != nil {
		t.Fatal(err)
	}

	now, err := View(ctx, w.deps, w.owner, Request{SiteID: w.site, Actor: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	w.deps.Now = time.Now // the as-of moment must not be after "now"
	then, err := View(ctx, w.deps, w.owner, Request{SiteID: w.site, AsOf: before, Actor: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	onSite := func(l *Ledger) []string {
		var out []string
		for _, o := range l.OnSite {
			p, _ := l.Person(o.PersonID)
			out = append(out, p.Name)
		}
		return out
	}
	if diff := cmp.Diff([]string{"Bertil Ström"}, onSite(now)); diff != "" {
		t.Errorf("on site now (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Åsa Öberg", "Bertil Ström"}, onSite(then)); diff != "" {
		t.Errorf("on site as known before the check-out was added (-want +got):\n%s", diff)
	}
	if len(now.Corrections) != 1 || len(then.Corrections) != 0 {
		t.Errorf("corrections now %d, then %d; want 1, 0", len(now.Corrections), len(then.Corrections))
	}
	views, err := audit.List(ctx, w.pool, w.owner, audit.Filter{Action: ActionLedgerView})
	if err != nil || len(views) != 2 {
		t.Errorf("audit views = %d, %v; want 2", len(views), err)
	}

	// One company only.
	sub, err := View(ctx, w.deps, w.owner, Request{SiteID: w.site, OrgID: w.sub, Actor: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(sub.Persons) != 1 || sub.Persons[0].Name != "Bertil Ström" || len(sub.Corrections) != 0 {
		t.Errorf("per company: persons %+v, corrections %d", sub.Persons, len(sub.Corrections))
	}
	// One person only.
	one, err := View(ctx, w.deps, w.owner, Request{SiteID: w.site, PersonID: w.asa, Actor: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Persons) != 1 || len(one.Periods) != 1 || len(one.Corrections) != 1 {
		t.Errorf("per person: %d persons, %d periods, %d corrections; want 1, 1, 1", len(one.Persons), len(one.Periods), len(one.Corrections))
	}
	// The check-out was a mistake: withdrawn. Narrowed to Åsa, the
	// withdrawal shows with what it withdraws; as of before it, it did
	// not exist yet.
	beforeWithdraw := time.Now()
	co := one.Corrections[0].ID
	wid, err := w.deps.Ledger.Correct(ctx, w.owner, ledger.Correction{Kind: ledger.Withdraw, SiteID: w.site, Withdraws: co,
		Reason: "fel person", Author: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	one, err = View(ctx, w.deps, w.owner, Request{SiteID: w.site, PersonID: w.asa, Actor: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(one.Corrections) != 2 || one.Corrections[0].WithdrawnBy != wid || one.Corrections[1].Withdraws != co || len(one.OnSite) != 1 {
		t.Errorf("per person after the withdrawal: corrections %+v, on site %d; want both, Åsa on site again", one.Corrections, len(one.OnSite))
	}
	old, err := View(ctx, w.deps, w.owner, Request{SiteID: w.site, PersonID: w.asa, AsOf: beforeWithdraw, Actor: "user:1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(old.Corrections) != 1 || old.Corrections[0].WithdrawnBy != 0 || len(old.OnSite) != 0 {
		t.Errorf("as of before the withdrawal: corrections %+v, on site %d; want the check-out alone, not withdrawn", old.Corrections, len(old.OnSite))
	}

	// The subcontractor sees its own staff only; a stranger nothing.
	own, err := View(ctx, w.deps, w.sub, Request{SiteID: w.site, Actor: "user:2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(own.Persons) != 1 || own.Persons[0].PersonID != w.bertil || len(own.Contractors) != 2 {
		t.Errorf("subcontractor's view: persons %+v, contractors %+v", own.Persons, own.Contractors)
	}
	if _, err := View(ctx, w.deps, w.foreign, Request{SiteID: w.site, Actor: "user:3"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("stranger's View = %v, want ErrNotFound", err)
	}
}

func TestBuildRefusals(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  Request
		want error
	}{
		{"no actor", Request{SiteID: w.site, Format: FormatCSV}, ErrInvalid},
		{"bad format", Request{SiteID: w.site, Format: "xml", Actor: "user:1"}, ErrInvalid},
		{"future", Request{SiteID: w.site, Format: FormatCSV, Actor: "user:1", AsOf: w.now.Add(time.Hour)}, ErrInvalid},
		{"from after to", Request{SiteID: w.site, Format: FormatCSV, Actor: "user:1", From: w.now, To: w.now.Add(-time.Hour)}, ErrInvalid},
		{"no site", Request{SiteID: 9999, Format: FormatCSV, Actor: "user:1"}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, _, err := Build(ctx, w.deps, w.owner, tc.req); !errors.Is(err, tc.want) {
				t.Errorf("Build = %v, want %v", err, tc.want)
			}
		})
	}
	// A refused export leaves no audit entry, and an audit entry that
	// cannot be written leaves no export.
	if n, _ := audit.List(ctx, w.pool, w.owner, audit.Filter{Action: audit.ActionLedgerExport}); len(n) != 0 {
		t.Errorf("audit entries after refusals = %d, want 0", len(n))
	}
	if _, _, body, err := Build(ctx, w.deps, w.owner, Request{SiteID: w.site, Format: FormatCSV, Actor: "user:198112189876"}); !errors.Is(err, audit.ErrIdentityNumber) || body != nil {
		t.Errorf("Build with an unloggable actor = %d bytes, %v; want nothing, ErrIdentityNumber", len(body), err)
	}
}
