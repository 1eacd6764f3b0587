package web

import (
	"context"
	"html"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/enroll"
)

// auditRows returns the rows of the log table of a page, one string each.
func auditRows(body string) []string {
	_, table, ok := strings.Cut(body, `id="audit"`)
	if !ok {
		return nil
	}
	table, _, _ = strings.Cut(table, "</tbody>")
	_, rows, _ := strings.Cut(table, "<tbody>")
	var out []string
	for _, r := range strings.Split(rows, "<tr>")[1:] {
		out = append(out, html.UnescapeString(r))
	}
	return out
}

// TestAuditLogPage checks who sees which entries, the filters and paging.
func TestAuditLogPage(t *testing.T) {
	w := newAccessWorld(t)
	ctx := context.Background()
	admin, mgrA, mgrB := w.users[roleOwnerAdmin], w.users[roleManagerA], w.users[roleManagerB]
	otherAdmin := w.newUser(t, "vd@annat.se", w.other, account.RoleOrgAdmin)
	// One enrollment code per site, by its manager (or, at C, its admin).
	for _, c := range []struct {
		u     user
		site  string
		owner int64
	}{{mgrA, "AAAAAAAAAAAA1", w.bygg}, {mgrB, "BBBBBBBBBBBB2", w.bygg}, {otherAdmin, "CCCCCCCCCCCC3", w.other}} {
		if _, err := w.srv.enroll.CreateCode(ctx, enroll.CodeRequest{SiteIdent: c.site, OrgID: c.owner,
			CreatedBy: "user:" + itoa(c.u.id)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(u user, query string) (int, []string, string) {
		t.Helper()
		resp := w.do(t, request{method: "GET", path: "/audit?" + query, session: w.session(t, u)})
		body := readBody(t, resp)
		return resp.StatusCode, auditRows(body), body
	}
	has := func(rows []string, want ...string) bool {
		for _, r := range rows {
			ok := true
			for _, s := range want {
				ok = ok && strings.Contains(r, s)
			}
			if ok {
				return true
			}
		}
		return false
	}
	codeOf := func(u user) []string {
		return []string{"Namn " + strings.Split(u.email, "@")[0], "Registreringskod skapad"}
	}

	// The org admin sees its whole organisation's log; the managers their
	// sites'; the other tenant its own.
	status, rows, body := get(admin, "")
	if status != 200 || !has(rows, codeOf(mgrA)...) || !has(rows, codeOf(mgrB)...) || has(rows, codeOf(otherAdmin)...) {
		t.Fatalf("org admin's log (%d):\n%v\n%s", status, rows, body)
	}
	if !has(rows, "Kvarteret Asken") || strings.Contains(body, nameSiteC) {
		t.Errorf("org admin's log names sites wrongly:\n%v", rows)
	}
	_, rows, body = get(mgrA, "")
	if !has(rows, codeOf(mgrA)...) || has(rows, codeOf(mgrB)...) || strings.Contains(body, "Kvarteret Björken") {
		t.Errorf("manager A's log:\n%v", rows)
	}
	for _, r := range rows {
		if !strings.Contains(r, "Kvarteret Asken") {
			t.Errorf("manager A sees an entry not about site A: %s", r)
		}
	}
	if _, rows, _ = get(mgrA, "site="+itoa(w.siteB)); len(rows) != 0 {
		t.Errorf("manager A filtering by site B sees %v", rows)
	}
	if _, rows, _ = get(otherAdmin, ""); !has(rows, codeOf(otherAdmin)...) || has(rows, codeOf(mgrA)...) || has(rows, "Kvarteret Asken") || has(rows, "Kvarteret Björken") {
		t.Errorf("other tenant's log:\n%v", rows)
	}
	if status, _, _ := get(admin, "org="+itoa(w.other)); status != 404 {
		t.Errorf("org admin asking for another tenant's log = %d, want 404", status)
	}

	// Filters: actor, action, site, days (the log's own clock is the
	// database's).
	_, rows, _ = get(admin, url.Values{"actor": {"user:" + itoa(mgrB.id)}, "action": {enroll.ActionCodeCreate}}.Encode())
	if len(rows) != 1 || !has(rows, codeOf(mgrB)...) {
		t.Errorf("by actor and action: %v", rows)
	}
	_, rows, _ = get(admin, "site="+itoa(w.siteB))
	if len(rows) == 0 || has(rows, "Kvarteret Asken") {
		t.Errorf("by site B: %v", rows)
	}
	today := time.Now().In(stockholm)
	if _, rows, _ = get(admin, "from="+today.AddDate(0, 0, 1).Format(time.DateOnly)); len(rows) != 0 {
		t.Errorf("from tomorrow: %v", rows)
	}
	if _, rows, _ = get(admin, "from="+today.Format(time.DateOnly)+"&to="+today.Format(time.DateOnly)); !has(rows, codeOf(mgrA)...) {
		t.Errorf("today: %v", rows)
	}
	if status, _, _ := get(admin, "from=igår"); status != 400 {
		t.Errorf("a bad date = %d, want 400", status)
	}

	// Paging: more entries than a page; the next page goes on where the
	// first ended, and the two together are every entry once.
	for i := range auditPageSize {
		if err := audit.Record(ctx, w.pool, audit.Entry{Actor: "system:test", Action: "test.page", OrgID: w.bygg,
			SiteID: w.siteA, Detail: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := audit.List(ctx, w.pool, w.bygg, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	_, first, body := get(admin, "")
	if len(first) != auditPageSize {
		t.Fatalf("first page has %d rows, want %d", len(first), auditPageSize)
	}
	m := regexp.MustCompile(`href="([^"]+)" rel="next"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no link to older entries")
	}
	next := html.UnescapeString(m[1])
	resp := w.do(t, request{method: "GET", path: next, session: w.session(t, admin)})
	second := auditRows(readBody(t, resp))
	if len(first)+len(second) != len(all) {
		t.Errorf("pages of %d and %d rows, %d entries in all", len(first), len(second), len(all))
	}
}
