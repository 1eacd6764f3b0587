package web

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/export"
)

func TestInspectorViewAndExport(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	mgr := w.newUser(t, "chef@bygg.se", w.bygg, account.RoleSiteManager, w.siteA)
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
	pnr := personnummer(1980, 1, 1, 1) // Anna's, "19800101-NNNN"
	base := "/sites/" + itoa(w.siteA)

	resp := w.do(t, request{method: "GET", path: base + "/inspect", session: tok})
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, nameAnna) || !strings.Contains(body, pnr) || !strings.Contains(body, nameErik) {
		t.Fatalf("inspect = %d, want Anna with %s and Erik:\n%.2000s", resp.StatusCode, pnr, body)
	}
	// Searching by the full personnummer keeps Anna only.
	// Searching is a POST: a personnummer never goes into a URL.
	search := func(q string) *http.Response {
		return w.do(t, request{method: "POST", path: base + "/inspect", session: tok,
			form: url.Values{"q": {q}, account.CSRFField: {w.csrf(t, tok)}}})
	}
	resp = search(pnr)
	body = readBody(t, resp)
	if !strings.Contains(body, nameAnna) || strings.Contains(body, nameErik) {
		t.Errorf("search by personnummer:\n%.2000s", body)
	}
	// A company filter and a search by organisation number.
	body = readBody(t, w.do(t, request{method: "GET", path: base + "/inspect?org=" + itoa(w.el), session: tok}))
	if strings.Contains(body, nameAnna) || !strings.Contains(body, nameErik) {
		t.Errorf("filter by company:\n%.2000s", body)
	}
	body = readBody(t, search("556677-8899"))
	if strings.Contains(body, nameAnna) || !strings.Contains(body, nameErik) {
		t.Errorf("search by organisation number:\n%.2000s", body)
	}
	// Before anyone tapped, nobody had a period.
	asof := w.clock.Now().Add(-2 * time.Hour).In(stockholm).Format("2006-01-02T15:04")
	body = readBody(t, w.do(t, request{method: "GET", path: base + "/inspect?asof=" + asof, session: tok}))
	if strings.Contains(body, nameAnna) {
		t.Errorf("as of %s shows Anna:\n%.2000s", asof, body)
	}
	if resp := w.do(t, request{method: "GET", path: base + "/inspect?asof=igår", session: tok}); resp.StatusCode != 400 {
		t.Errorf("bad asof = %d, want 400", resp.StatusCode)
	}

	resp = w.do(t, request{method: "GET", path: base + "/export?format=csv", session: tok})
	csv := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.HasPrefix(csv, "\ufeff") || !strings.Contains(csv, nameAnna) {
		t.Fatalf("csv export = %d:\n%.1000s", resp.StatusCode, csv)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.Contains(cd, "attachment") {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if resp := w.do(t, request{method: "GET", path: base + "/export?format=xls", session: tok}); resp.StatusCode != 400 {
		t.Errorf("bad format = %d, want 400", resp.StatusCode)
	}

	actor := "inspector:grant:" + itoa(g.ID)
	for _, action := range []string{export.ActionLedgerView, audit.ActionLedgerExport} {
		es, err := audit.List(ctx, w.pool, w.bygg, audit.Filter{Action: action})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range es {
			found = found || (e.Actor == actor && e.SiteID == w.siteA)
		}
		if !found {
			t.Errorf("no %s audit entry by %s: %+v", action, actor, es)
		}
	}
}

func TestInspectContractorSeesOwnCompany(t *testing.T) {
	w := newWorld(t)
	adm := w.newUser(t, "admin@el.se", w.el, account.RoleContractorAdmin)
	tok := w.session(t, adm)
	base := "/sites/" + itoa(w.siteA)
	// Asking for the owner's company still gives only el's staff.
	body := readBody(t, w.do(t, request{method: "GET", path: base + "/inspect?org=" + itoa(w.bygg), session: tok}))
	if strings.Contains(body, nameAnna) || !strings.Contains(body, nameErik) || strings.Contains(body, personnummer(1981, 2, 2, 2)) {
		t.Errorf("contractor admin's view (full numbers are the inspector's only):\n%.2000s", body)
	}
	csv := readBody(t, w.do(t, request{method: "GET", path: base + "/export?format=csv&org=" + itoa(w.bygg), session: tok}))
	if strings.Contains(csv, nameAnna) || !strings.Contains(csv, nameErik) {
		t.Errorf("contractor admin's export:\n%.1000s", csv)
	}
}
