package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/server/internal/account"
	"github.com/liggare/liggare/server/internal/audit"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/export"
)

// auditRoutes are the audit log: who read, exported or changed what, and
// when. An org admin sees its organisation's log (entries about its data
// and those of its users, audit.List); a site manager the entries about
// the sites it manages. Nobody else: contractor admins, inspectors and
// operators get 403. Reading the log is not itself logged: it holds ids
// and counts, never a person's data.
func (s *Server) auditRoutes() []route {
	return []route{
		{pattern: "GET /audit", access: loggedIn, h: s.auditPage},
	}
}

// auditPageSize is how many entries a page of the log shows.
const auditPageSize = 50

// auditScope is the part of one organisation's log a principal may read.
type auditScope struct {
	Org     int64
	OrgName string
	// Sites limits a site manager to its sites; nil for an org admin.
	Sites []int64
}

// auditScopes lists the logs p may read, one per organisation, lowest id
// first.
func auditScopes(p account.Principal) []auditScope {
	if p.Inspector != nil || p.UserID == 0 {
		return nil
	}
	var out []auditScope
	for _, org := range p.ActingOrgs() {
		if p.Has(org, account.RoleOrgAdmin) {
			out = append(out, auditScope{Org: org})
			continue
		}
		if !p.Has(org, account.RoleSiteManager) {
			continue
		}
		var sites []int64
		for site, owner := range p.ManagedSites {
			if owner == org {
				sites = append(sites, site)
			}
		}
		if len(sites) > 0 {
			slices.Sort(sites)
			out = append(out, auditScope{Org: org, Sites: sites})
		}
	}
	return out
}

type auditData struct {
	Scope  auditScope
	Scopes []auditScope
	// Sites, Actors and Actions are what the filters offer: the
	// organisation's sites the principal may see, its users, and the
	// actions the page has words for. Choosing from the log itself would
	// read all of it on every page.
	Sites   []siteInfo
	Actors  []actorChoice
	Actions []string
	// The filter as given.
	Site             int64
	Actor, Action    string
	From, To         string
	Rows             []auditRow
	Older, Newest    string // links to the next page and back to the first
	PageSize, Before int64
}

type auditRow struct {
	audit.Entry
	ActorName, SiteName string
	// Detail as "key=value" pairs, sorted by key.
	Detail []string
}

func (s *Server) auditPage(w http.ResponseWriter, r *http.Request, rc *reqCtx) error {
	ctx := r.Context()
	scopes := auditScopes(rc.P)
	if len(scopes) == 0 {
		return errForbidden
	}
	q := r.URL.Query()
	d := auditData{Scopes: scopes, Scope: scopes[0], PageSize: auditPageSize}
	if v := q.Get("org"); v != "" {
		org, err := strconv.ParseInt(v, 10, 64)
		i := slices.IndexFunc(scopes, func(sc auditScope) bool { return sc.Org == org })
		if err != nil || i < 0 {
			return errNotFound
		}
		d.Scope = scopes[i]
	}
	if err := s.auditSites(ctx, rc, &d); err != nil {
		return err
	}
	f := audit.Filter{Sites: d.Scope.Sites, Limit: auditPageSize + 1}
	var bad bool
	parseID := func(name string) int64 {
		v := q.Get(name)
		if v == "" {
			return 0
		}
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id <= 0 {
			bad = true
		}
		return id
	}
	d.Site, d.Before = parseID("site"), parseID("before")
	f.SiteID, f.BeforeID = d.Site, d.Before
	d.Actor, d.Action = strings.TrimSpace(q.Get("actor")), strings.TrimSpace(q.Get("action"))
	f.Actor, f.Action = d.Actor, d.Action
	d.From, d.To = q.Get("from"), q.Get("to")
	day := func(v string) time.Time {
		if v == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation(time.DateOnly, v, s.cfg.Location)
		if err != nil {
			bad = true
		}
		return t
	}
	f.From = day(d.From)
	if to := day(d.To); !to.IsZero() {
		f.To = to.AddDate(0, 0, 1) // the whole last day
	}
	if bad {
		return errStatus(http.StatusBadRequest, "audit.err.filter")
	}
	entries, err := audit.List(ctx, s.cfg.Pool, d.Scope.Org, f)
	if err != nil {
		return err
	}
	if len(entries) > auditPageSize {
		entries = entries[:auditPageSize]
		d.Older = d.link(entries[len(entries)-1].ID)
	}
	if d.Before != 0 {
		d.Newest = d.link(0)
	}
	if d.Actors, err = s.orgUsers(ctx, d.Scope.Org); err != nil {
		return err
	}
	d.Actions = namedActions
	actors := make([]string, len(entries))
	for i, e := range entries {
		actors[i] = e.Actor
	}
	names, err := s.actorNames(ctx, rc, actors)
	if err != nil {
		return err
	}
	siteNames := make(map[int64]string, len(d.Sites))
	for _, si := range d.Sites {
		siteNames[si.ID] = si.Name
	}
	for _, e := range entries {
		row := auditRow{Entry: e, ActorName: names[e.Actor], SiteName: siteNames[e.SiteID]}
		if row.SiteName == "" && e.SiteID != 0 {
			row.SiteName = "#" + strconv.FormatInt(e.SiteID, 10)
		}
		keys := make([]string, 0, len(e.Detail))
		for k := range e.Detail {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			row.Detail = append(row.Detail, fmt.Sprintf("%s=%v", k, e.Detail[k]))
		}
		d.Rows = append(d.Rows, row)
	}
	s.render(w, rc, http.StatusOK, "audit", view{Title: rc.T("audit.title"), D: d})
	return nil
}

// auditSites fills the sites the filter offers: the organisation's own
// that p may see, or a manager's.
func (s *Server) auditSites(ctx context.Context, rc *reqCtx, d *auditData) error {
	all, err := s.visibleSites(ctx, rc.P)
	if err != nil {
		return err
	}
	for _, si := range all {
		if si.Owner != d.Scope.Org || (d.Scope.Sites != nil && !slices.Contains(d.Scope.Sites, si.ID)) {
			continue
		}
		d.Sites = append(d.Sites, si)
		d.Scope.OrgName = si.OwnerName
	}
	for i := range d.Scopes {
		if d.Scopes[i].Org == d.Scope.Org {
			d.Scopes[i].OrgName = d.Scope.OrgName
		}
	}
	return nil
}

// link is the URL of the page of the log with d's filter, before the
// entry with id (0: the newest).
func (d auditData) link(before int64) string {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" && val != "0" {
			v.Set(k, val)
		}
	}
	set("org", strconv.FormatInt(d.Scope.Org, 10))
	set("site", strconv.FormatInt(d.Site, 10))
	set("actor", d.Actor)
	set("action", d.Action)
	set("from", d.From)
	set("to", d.To)
	set("before", strconv.FormatInt(before, 10))
	return "/audit?" + v.Encode()
}

// namedActions are the audit actions the log page names in words
// ("audit.action." + action in the catalogue); others show as they are.
var namedActions = []string{
	audit.ActionIdentityRead, export.ActionLedgerView, audit.ActionLedgerExport, ActionCorrection,
	audit.ActionRegisterExtract, ActionImport, audit.ActionRetentionAnonymise,
	account.ActionInspectorGrant, account.ActionInspectorRedeem, account.ActionInspectorRevoke, account.ActionLogin,
	enroll.ActionCodeCreate, enroll.ActionCodeCancel, enroll.ActionEnroll, enroll.ActionRevoke, enroll.ActionRotate,
}

// ActionName is an audit action in words, or the action itself.
func (v view) ActionName(action string) string {
	if slices.Contains(namedActions, action) {
		return translate(v.rc.Lang, "audit.action."+action)
	}
	return action
}

// CanAudit reports whether the principal may read an audit log.
func (v view) CanAudit() bool { return len(auditScopes(v.rc.P)) > 0 }
