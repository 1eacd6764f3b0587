package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
)

// post sends a form with the session's CSRF token and returns the status
// and body.
func (w *world) post(t *testing.T, tok, path string, form url.Values) (int, string) {
	t.Helper()
	form.Set(account.CSRFField, w.csrf(t, tok))
	resp := w.do(t, request{method: "POST", path: path, session: tok, form: form})
	return resp.StatusCode, readBody(t, resp)
}

// auditActions lists the actions of org's audit log.
func (w *world) auditActions(t *testing.T, org int64) []string {
	t.Helper()
	es, err := audit.List(context.Background(), w.pool, org, audit.Filter{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Action)
	}
	return out
}

// formCase is a form posted and the status and text it should answer.
type formCase struct {
	name   string
	form   url.Values
	status int
	want   string
}

func TestAdminCreateSite(t *testing.T) {
	w := newWorld(t)
	admin := w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin)
	tok := w.session(t, admin)
	resp := w.do(t, request{method: "GET", path: "/sites", session: tok})
	if body := readBody(t, resp); !strings.Contains(body, `action="/orgs/`+itoa(w.bygg)+`/sites"`) {
		t.Fatalf("site list lacks the create form:\n%s", body)
	}
	site := func(ident string) url.Values {
		return url.Values{"ident": {ident}, "name": {"Kvarteret Eken"}, "address": {"Ekvägen 3"},
			"byggherre": {"Fastighets AB"}, "byggherre_nr": {"556036-0793"}}
	}
	path := "/orgs/" + itoa(w.bygg) + "/sites"
	for _, c := range []formCase{
		{"short id", site("ABC123"), http.StatusUnprocessableEntity, "Uppgifterna stämmer inte: Identifikationsnumret har fel format."},
		{"bad character", site("ÅBCDEFGHIJ123"), http.StatusUnprocessableEntity, "Identifikationsnumret har fel format."},
		{"duplicate", site("aaaaaaaaaaaa1"), http.StatusConflict, "finns redan"},
		{"bad byggherre", url.Values{"ident": {"EEEEEEEEEEEE5"}, "name": {"X"}, "byggherre_nr": {"1"}}, http.StatusUnprocessableEntity, "Byggherrens organisationsnummer har fel format."},
		{"bad time zone", func() url.Values { f := site("EEEEEEEEEEEE5"); f.Set("tz", "Mars/Olympus"); return f }(), http.StatusUnprocessableEntity, "Tidszonen stämmer inte."},
		{"created", site("eeeeeeeeeeee5"), http.StatusSeeOther, ""},
	} {
		status, body := w.post(t, tok, path, c.form)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("create site (%s) = %d, want %d with %q\n%.2000s", c.name, status, c.status, c.want, body)
		}
	}
	resp = w.do(t, request{method: "GET", path: "/sites", session: tok})
	if body := readBody(t, resp); !strings.Contains(body, "Kvarteret Eken") || !strings.Contains(body, "EEEEEEEEEEEE5") {
		t.Errorf("site list lacks the new site:\n%s", body)
	}
	if !slices.Contains(w.auditActions(t, w.bygg), ActionSiteCreate) {
		t.Errorf("no %s in the audit log", ActionSiteCreate)
	}
}

func TestAdminContractors(t *testing.T) {
	w := newWorld(t)
	admin := w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin)
	tok := w.session(t, admin)
	path := "/sites/" + itoa(w.siteA) + "/contractors"
	for _, c := range []formCase{
		{"bad number", url.Values{"orgnr": {"556000-0002"}, "name": {"Måleri AB"}}, http.StatusUnprocessableEntity, "Organisationsnumret har fel kontrollsiffra."},
		{"owner", url.Values{"orgnr": {"556036-0793"}, "name": {"Bygg AB"}}, http.StatusUnprocessableEntity, "sin egen entreprenör"},
		{"hirer not on site", url.Values{"orgnr": {"556000-0001"}, "name": {"Måleri AB"}, "hired_by": {itoa(w.other)}}, http.StatusUnprocessableEntity, "Den som anlitat"},
		{"new organisation under el", url.Values{"orgnr": {"556000-0001"}, "name": {"Måleri AB"}, "hired_by": {itoa(w.el)}}, http.StatusSeeOther, ""},
	} {
		status, body := w.post(t, tok, path, c.form)
		if status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("add contractor (%s) = %d, want %d with %q\n%.2000s", c.name, status, c.status, c.want, body)
		}
	}
	resp := w.do(t, request{method: "GET", path: path, session: tok})
	body := readBody(t, resp)
	// The chain: El AB under the owner, Måleri AB under El AB.
	re := regexp.MustCompile(`(?s)data-depth="1".*El AB.*data-depth="2".*Måleri AB`)
	if resp.StatusCode != http.StatusOK || !re.MatchString(body) {
		t.Errorf("contractors page = %d, want the chain Bygg > El > Måleri:\n%s", resp.StatusCode, body)
	}
	// A contractor that exists already is put on the site as it is.
	if status, body := w.post(t, tok, "/sites/"+itoa(w.siteB)+"/contractors", url.Values{"orgnr": {"5560000001"}, "name": {"Ignored"}}); status != http.StatusSeeOther {
		t.Fatalf("add existing contractor = %d\n%s", status, body)
	}
	var n int
	if err := w.pool.QueryRow(context.Background(), `SELECT count(*) FROM organisations WHERE org_number = '556000-0001'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("organisations with the number = %d, %v; want 1", n, err)
	}
	if got := w.auditActions(t, w.bygg); !slices.Contains(got, ActionContractorAdd) {
		t.Errorf("no %s in the audit log: %v", ActionContractorAdd, got)
	}

	// Removal: El AB hired Måleri AB, which goes first; both stay in the
	// chain, marked removed.
	var maleri int64
	if err := w.pool.QueryRow(context.Background(), `SELECT org_id FROM organisations WHERE org_number = '556000-0001'`).Scan(&maleri); err != nil {
		t.Fatal(err)
	}
	removePath := func(org int64) string { return path + "/" + itoa(org) + "/remove" }
	if status, body := w.post(t, tok, removePath(w.el), url.Values{}); status != http.StatusConflict || !strings.Contains(body, "Ta bort dem först") {
		t.Errorf("remove El AB while Måleri AB is on the site = %d, want 409 saying why\n%.2000s", status, body)
	}
	for _, org := range []int64{maleri, w.el} {
		if status, body := w.post(t, tok, removePath(org), url.Values{}); status != http.StatusSeeOther {
			t.Fatalf("remove %d = %d\n%.2000s", org, status, body)
		}
	}
	if status, _ := w.post(t, tok, removePath(w.el), url.Values{}); status != http.StatusNotFound {
		t.Errorf("remove El AB twice = %d, want 404", status)
	}
	resp = w.do(t, request{method: "GET", path: path, session: tok})
	body = readBody(t, resp)
	if n := strings.Count(body, translate(langSV, "contractors.removed")); n != 2 || !re.MatchString(body) || strings.Contains(body, "/remove") {
		t.Errorf("after removal the chain shows %d removed (want 2, still in order, no remove buttons):\n%s", n, body)
	}
	if got := w.auditActions(t, w.bygg); !slices.Contains(got, ActionContractorRemove) {
		t.Errorf("no %s in the audit log: %v", ActionContractorRemove, got)
	}
}

var oneTimePassword = regexp.MustCompile(`id="one-time-password">([A-Z0-9-]+)<`)

// TestAdminUsersOfTwoOrganisations: an admin of two organisations reaches
// both users pages; the menu names the first, and each page the other.
func TestAdminUsersOfTwoOrganisations(t *testing.T) {
	w := newWorld(t)
	admin := w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin)
	if err := w.srv.Accounts().GrantRole(context.Background(), account.System("test"), admin.id, w.other, account.RoleOrgAdmin); err != nil {
		t.Fatal(err)
	}
	tok := w.session(t, admin)
	for _, c := range []struct{ org, other int64 }{{w.bygg, w.other}, {w.other, w.bygg}} {
		resp := w.do(t, request{method: "GET", path: "/orgs/" + itoa(c.org) + "/users", session: tok})
		body := readBody(t, resp)
		link := `href="/orgs/` + itoa(c.other) + `/users"`
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="other-orgs"`) || !strings.Contains(body, link) {
			t.Errorf("users page of %d = %d, want a link to the users of %d:\n%s", c.org, resp.StatusCode, c.other, body)
		}
	}
	resp := w.do(t, request{method: "GET", path: "/orgs/" + itoa(w.bygg) + "/users", session: w.session(t, w.newUser(t, "ensam@bygg.se", w.bygg, account.RoleOrgAdmin))})
	if body := readBody(t, resp); strings.Contains(body, `id="other-orgs"`) {
		t.Errorf("an admin of one organisation is offered others:\n%s", body)
	}
}

func TestAdminUsers(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	admin := w.newUser(t, "admin@bygg.se", w.bygg, account.RoleOrgAdmin)
	spare := w.newUser(t, "reserv@bygg.se", w.bygg, account.RoleSiteManager)
	elUser := w.newUser(t, "admin@el.se", w.el, account.RoleContractorAdmin)
	tok := w.session(t, admin)
	users := "/orgs/" + itoa(w.bygg) + "/users"
	st := w.srv.Accounts()

	// Invite a site manager of site A: the one-time password is shown once
	// and works, with a change forced at login.
	status, body := w.post(t, tok, users, url.Values{"email": {"Chef@Bygg.se"}, "name": {"Sara Chef"},
		"role": {"site_manager"}, "site": {itoa(w.siteA)}})
	m := oneTimePassword.FindStringSubmatch(body)
	if status != http.StatusOK || m == nil {
		t.Fatalf("invite = %d, want 200 with a one-time password\n%s", status, body)
	}
	l, err := st.Authenticate(ctx, "chef@bygg.se", m[1], "192.0.2.1")
	if err != nil || !l.MustChangePassword {
		t.Fatalf("Authenticate(one-time password) = %+v, %v; want a forced change", l, err)
	}
	sara, err := st.UserByEmail(ctx, "chef@bygg.se")
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := st.Principal(ctx, account.Session{UserID: sara.ID}); !account.CanViewSite(p, account.Site{ID: w.siteA, Owner: w.bygg}) {
		t.Errorf("invited site manager cannot see site A: %+v", p)
	}
	resp := w.do(t, request{method: "GET", path: users, session: tok})
	if body := readBody(t, resp); strings.Contains(body, m[1]) || !strings.Contains(body, "Sara Chef") || !strings.Contains(body, "Kvarteret Asken") {
		t.Errorf("users page: want Sara with site A and no password shown again\n%s", body)
	}

	for _, c := range []struct {
		name, path string
		form       url.Values
		status     int
		want       string
	}{
		{"unknown role", users, url.Values{"email": {"x@bygg.se"}, "name": {"X"}, "role": {"operator"}}, http.StatusUnprocessableEntity, "kontrollera"},
		{"taken address", users, url.Values{"email": {"chef@bygg.se"}, "name": {"X"}, "role": {"org_admin"}}, http.StatusConflict, "används redan"},
		{"another tenant's site", users, url.Values{"email": {"y@bygg.se"}, "name": {"Y"}, "role": {"site_manager"}, "site": {itoa(w.siteC)}}, http.StatusUnprocessableEntity, "kontrollera"},
		{"last admin", users + "/" + itoa(admin.id) + "/roles", url.Values{"op": {"revoke"}, "role": {"org_admin"}}, http.StatusConflict, "minst en administratör"},
		{"disable self", users + "/" + itoa(admin.id) + "/disable", url.Values{}, http.StatusConflict, "ditt eget konto"},
		{"another tenant's user", users + "/" + itoa(elUser.id) + "/roles", url.Values{"op": {"grant"}, "role": {"org_admin"}}, http.StatusNotFound, ""},
		{"grant", users + "/" + itoa(spare.id) + "/roles", url.Values{"op": {"grant"}, "role": {"contractor_admin"}}, http.StatusSeeOther, ""},
		{"assign", users + "/" + itoa(spare.id) + "/sites", url.Values{"op": {"assign"}, "site": {itoa(w.siteB)}}, http.StatusSeeOther, ""},
		{"assign another tenant's site", users + "/" + itoa(spare.id) + "/sites", url.Values{"op": {"assign"}, "site": {itoa(w.siteC)}}, http.StatusUnprocessableEntity, "kontrollera"},
		{"unassign", users + "/" + itoa(sara.ID) + "/sites", url.Values{"op": {"unassign"}, "site": {itoa(w.siteA)}}, http.StatusSeeOther, ""},
		{"revoke", users + "/" + itoa(spare.id) + "/roles", url.Values{"op": {"revoke"}, "role": {"contractor_admin"}}, http.StatusSeeOther, ""},
	} {
		if status, body := w.post(t, tok, c.path, c.form); status != c.status || !strings.Contains(body, c.want) {
			t.Errorf("%s = %d, want %d with %q\n%.2000s", c.name, status, c.status, c.want, body)
		}
	}
	ms, err := st.Members(ctx, account.System("test"), w.bygg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		switch m.ID {
		case spare.id:
			if !slices.Equal(m.Roles, []account.Role{account.RoleSiteManager}) || !slices.Equal(m.ManagedSites, []int64{w.siteB}) {
				t.Errorf("spare = %v, %v; want site manager of B", m.Roles, m.ManagedSites)
			}
		case sara.ID:
			if len(m.ManagedSites) != 0 {
				t.Errorf("Sara manages %v after unassign", m.ManagedSites)
			}
		}
	}

	// A reset shows a new one-time password once; disabling ends logins.
	status, body = w.post(t, tok, users+"/"+itoa(spare.id)+"/password", url.Values{})
	if m := oneTimePassword.FindStringSubmatch(body); status != http.StatusOK || m == nil {
		t.Errorf("reset = %d, want 200 with a one-time password\n%s", status, body)
	} else if l, err := st.Authenticate(ctx, spare.email, m[1], "192.0.2.1"); err != nil || !l.MustChangePassword {
		t.Errorf("Authenticate(reset password) = %+v, %v", l, err)
	}
	if status, body := w.post(t, tok, users+"/"+itoa(spare.id)+"/disable", url.Values{}); status != http.StatusSeeOther {
		t.Errorf("disable = %d\n%s", status, body)
	}
	if _, err := st.Authenticate(ctx, spare.email, testPassword, "192.0.2.1"); !errors.Is(err, account.ErrDisabled) && !errors.Is(err, account.ErrBadCredentials) {
		t.Errorf("Authenticate(disabled) = %v, want refused", err)
	}
	got := w.auditActions(t, w.bygg)
	for _, a := range []string{account.ActionUserCreate, account.ActionRoleGrant, account.ActionRoleRevoke, account.ActionSiteAssign,
		account.ActionSiteUnassign, account.ActionPasswordReset, account.ActionUserDisable} {
		if !slices.Contains(got, a) {
			t.Errorf("no %s in the audit log", a)
		}
	}
}
