package web

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/export"
)

// TestInspectPerson follows one person from the inspector's list to her
// history: every period, the corrections with their authors, as of now or
// of a past moment, with the read on record and her number in no URL.
func TestInspectPerson(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
	mtok := w.session(t, mgr)
	base := "/sites/" + itoa(w.siteA)
	before := w.clock.Now().In(stockholm).Format("2006-01-02T15:04")
	w.clock.Advance(time.Minute)
	day := w.clock.Now().In(stockholm).Format("2006-01-02")
	resp := w.do(t, request{method: "POST", path: base + "/corrections", session: mtok, form: url.Values{
		"kind": {"set_checkout"}, "person": {itoa(w.anna)}, "end": {day + "T07:00"}, "reason": {"gick hem tidigt"},
		account.CSRFField: {w.csrf(t, mtok)}}})
	wantStatus(t, resp, readBody(t, resp), 303, "")
	w.clock.Advance(time.Minute)

	p, err := w.srv.Accounts().Principal(ctx, account.Session{UserID: mgr.id})
	if err != nil {
		t.Fatal(err)
	}
	g, err := w.srv.Accounts().CreateGrant(ctx, p, account.NewGrant{SiteID: w.siteA, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := w.srv.Accounts().RedeemGrant(ctx, g.Code, "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	pnr := personnummer(1980, 1, 1, 1)

	// The list links each person by id.
	list := readBody(t, w.do(t, request{method: "POST", path: base + "/inspect", session: tok,
		form: url.Values{"q": {pnr}, account.CSRFField: {w.csrf(t, tok)}}}))
	link := `href="` + base + "/inspect/persons/" + itoa(w.anna) + `"`
	if !strings.Contains(list, link) {
		t.Fatalf("search result lacks %s:\n%.2000s", link, list)
	}
	digits := strings.ReplaceAll(pnr, "-", "")
	for _, href := range strings.Split(list, `href="`)[1:] {
		href, _, _ = strings.Cut(href, `"`)
		if strings.Contains(strings.ReplaceAll(href, "-", ""), digits[2:]) {
			t.Errorf("a link holds the personnummer: %s", href)
		}
	}

	path := base + "/inspect/persons/" + itoa(w.anna)
	resp = w.do(t, request{method: "GET", path: path, session: tok})
	body := readBody(t, resp)
	wantStatus(t, resp, body, 200, "")
	for _, want := range []string{nameAnna, pnr, "Bygg AB", "gick hem tidigt", "Namn chef", translate(langSV, "kind.set_checkout"),
		translate(langSV, "flag.manual"), "07:00:00", "person=" + itoa(w.anna)} {
		if !strings.Contains(body, want) {
			t.Errorf("person page lacks %q:\n%.3000s", want, body)
		}
	}
	if strings.Contains(body, nameErik) {
		t.Errorf("person page shows another person")
	}
	// As the ledger stood before anything was known of her (the server
	// recorded the taps at its real time, after the test clock's): she is
	// shown, with no history then. (export's tests take the ledger back
	// to before a correction.)
	body = readBody(t, w.do(t, request{method: "GET", path: path + "?asof=" + before, session: tok}))
	if !strings.Contains(body, nameAnna) || strings.Contains(body, "gick hem tidigt") || !strings.Contains(body, translate(langSV, "inspect.not_then")) ||
		!strings.Contains(body, translate(langSV, "inspect.no_corrections")) {
		t.Errorf("person page as of %s:\n%.3000s", before, body)
	}
	// The person download is the person's only.
	csv := readBody(t, w.do(t, request{method: "GET", path: base + "/export?format=csv&person=" + itoa(w.anna), session: tok}))
	if !strings.Contains(csv, nameAnna) || strings.Contains(csv, nameErik) {
		t.Errorf("person export:\n%s", csv)
	}

	// Each read is on record, naming the person.
	es, err := audit.List(ctx, w.pool, w.bygg, audit.Filter{Action: export.ActionLedgerView, PersonID: w.anna})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 2 || es[0].Actor != "inspector:grant:"+itoa(g.ID) || es[0].SiteID != w.siteA {
		t.Errorf("person reads on record: %+v, want 2 by the inspector (now, and as of before)", es)
	}

	// Someone outside the view is not found: another tenant's person, and
	// for el's admin bygg's.
	if resp := w.do(t, request{method: "GET", path: base + "/inspect/persons/" + itoa(w.olle), session: tok}); resp.StatusCode != 404 {
		t.Errorf("another tenant's person = %d, want 404", resp.StatusCode)
	}
	el := w.session(t, w.newUser(t, "admin@el.se", w.el, account.RoleContractorAdmin))
	if resp := w.do(t, request{method: "GET", path: path, session: el}); resp.StatusCode != 404 {
		t.Errorf("el's admin asking for Anna = %d, want 404", resp.StatusCode)
	}
	if body := readBody(t, w.do(t, request{method: "GET", path: base + "/inspect/persons/" + itoa(w.erik), session: el})); !strings.Contains(body, nameErik) ||
		strings.Contains(body, personnummer(1981, 2, 2, 2)) {
		t.Errorf("el's admin's view of Erik (masked number):\n%.2000s", body)
	}
}
