package account

import (
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Role is what a membership lets a user do for an organisation.
type Role string

// The roles. An inspector is not a role: it is a Grant.
const (
	// RoleOrgAdmin runs an organisation: its users, and the combined ledger
	// of the sites it owns; on other sites it sees its own staff.
	RoleOrgAdmin Role = "org_admin"
	// RoleSiteManager runs the sites listed for the user in site_managers,
	// all owned by the membership's organisation.
	RoleSiteManager Role = "site_manager"
	// RoleContractorAdmin sees and corrects its company's own people on any
	// site, and nobody else.
	RoleContractorAdmin Role = "contractor_admin"
	// RoleOperator looks after the fleet (terminal health) and sees no
	// organisation's personal data. Its membership has no organisation.
	RoleOperator Role = "operator"
)

// Roles lists every role, for tables and forms.
var Roles = []Role{RoleOrgAdmin, RoleSiteManager, RoleContractorAdmin, RoleOperator}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Action is something done at a site, checked by Allowed.
type Action int

// The actions at a site.
const (
	// ActViewSite reads the site's ledger (on-site list, periods, history)
	// within the Access's scope.
	ActViewSite Action = iota
	// ActCorrect adds corrections to the site's ledger.
	ActCorrect
	// ActExport takes a ledger file away (PDF, CSV, the machine-readable
	// file); exports carry full identity numbers and are audit-logged.
	ActExport
	// ActViewIdentity shows full identity numbers on screen: an inspector's
	// view only, everywhere else they are masked.
	ActViewIdentity
	// ActGrantInspector issues, lists and revokes inspector grants.
	ActGrantInspector
	// ActViewTerminals shows the health of the site's terminals, which holds
	// no personal data.
	ActViewTerminals
	// ActManageTerminals lets terminals in and out of the site: creates and
	// cancels enrollment codes, revokes a terminal's credentials and issues
	// a terminal a re-enrollment code.
	ActManageTerminals
	numActions
)

// Actions lists every action, for tables.
var Actions = []Action{ActViewSite, ActCorrect, ActExport, ActViewIdentity, ActGrantInspector, ActViewTerminals, ActManageTerminals}

var actionNames = [numActions]string{"view_site", "correct", "export", "view_identity", "grant_inspector", "view_terminals", "manage_terminals"}

// String returns the action's snake_case name.
func (a Action) String() string {
	if a < 0 || a >= numActions {
		return "action(" + strconv.Itoa(int(a)) + ")"
	}
	return actionNames[a]
}

// Site is what authorization needs to know about a site: its owner (the
// organisation holding the byggherre's duties, sites.org_id) and the
// organisations that are or were contractors on it (site_contractors, also
// removed ones: a contractor keeps access to its own part of the ledger).
// Store.Site loads it.
type Site struct {
	ID          int64
	Owner       int64
	Contractors []int64
}

// InspectorScope is the one site an inspector session may read, through a
// grant.
type InspectorScope struct {
	GrantID   int64
	SiteID    int64
	OrgID     int64 // the site's owner
	GrantedBy int64 // the user who created the grant
	ExpiresAt time.Time
}

// Principal is who is acting: a user with memberships, an inspector through
// a grant, or a system job (the admin CLI). Store.Principal builds it from a
// Session; the zero Principal may do nothing.
type Principal struct {
	// UserID is the user; 0 for an inspector or a system job.
	UserID int64
	// Roles are the user's roles per organisation id.
	Roles map[int64][]Role
	// ManagedSites maps each site the user manages as a site manager to the
	// organisation it manages it for (the site's owner).
	ManagedSites map[int64]int64
	// Operator is true for a user holding RoleOperator.
	Operator bool
	// Inspector is set for an inspector session and nil otherwise.
	Inspector *InspectorScope
	// System names a system job ("cli") acting outside any session; it may
	// administer accounts but reads no site.
	System string
}

// System returns the Principal of a system job, e.g. System("cli") for the
// admin CLI. It may administer users and roles; it has no site access.
func System(name string) Principal { return Principal{System: name} }

// Has reports whether p holds role for org.
func (p Principal) Has(org int64, role Role) bool {
	return slices.Contains(p.Roles[org], role)
}

// Actor is how p is named in the audit log: "user:ID", "inspector:grant:ID"
// or "system:NAME".
func (p Principal) Actor() string {
	switch {
	case p.Inspector != nil:
		return "inspector:grant:" + strconv.FormatInt(p.Inspector.GrantID, 10)
	case p.UserID != 0:
		return "user:" + strconv.FormatInt(p.UserID, 10)
	case p.System != "":
		return "system:" + p.System
	}
	return "anonymous"
}

// Access is what a principal may do at one site, and how to ask the ledger
// for it.
type Access struct {
	// Viewer is the organisation to pass as "viewer" to ledger, registry
	// and audit queries. For the site's owner that is the combined ledger;
	// for a contractor, its own staff.
	Viewer int64
	// StaffOf, when non-zero, restricts what the principal sees and
	// corrects to this employer's staff even where Viewer would show more
	// (a contractor admin of the site's owner). The web layer passes it as
	// ledger.PeriodQuery.OrgID and refuses corrections of other employers'
	// people. On a site the viewer does not own, the ledger already limits
	// it to its own staff.
	StaffOf int64
	// Allowed is indexed by Action.
	Allowed [numActions]bool
}

// relation is how a principal stands to a site; the access table is keyed
// by it.
type relation int

const (
	relOwnerAdmin           relation = iota // org_admin of the site's owner
	relManager                              // site_manager of this site, for its owner
	relOwnerContractorAdmin                 // contractor_admin of the site's owner
	relContractorAdmin                      // org_admin of a contractor on the site
	relContractorContractor                 // contractor_admin of a contractor on the site
	relOperator                             // any operator, any site
	relInspector                            // inspector granted this site
	numRelations
)

// staff scopes of the access table.
const (
	scopeAll   = iota // the viewer's whole view
	scopeStaff        // only the viewer organisation's own staff
	scopeNone         // no personal data at all
)

type rule struct {
	scope   int
	allowed [numActions]bool
}

func allow(scope int, acts ...Action) rule {
	r := rule{scope: scope}
	for _, a := range acts {
		r.allowed[a] = true
	}
	return r
}

// accessTable is the authorization model: every relation a principal can
// have to a site, and what it allows. Nothing else grants access.
var accessTable = [numRelations]rule{
	relOwnerAdmin:           allow(scopeAll, ActViewSite, ActCorrect, ActExport, ActGrantInspector, ActViewTerminals, ActManageTerminals),
	relManager:              allow(scopeAll, ActViewSite, ActCorrect, ActExport, ActGrantInspector, ActViewTerminals, ActManageTerminals),
	relOwnerContractorAdmin: allow(scopeStaff, ActViewSite, ActCorrect, ActExport),
	relContractorAdmin:      allow(scopeStaff, ActViewSite, ActCorrect, ActExport),
	relContractorContractor: allow(scopeStaff, ActViewSite, ActCorrect, ActExport),
	relOperator:             allow(scopeNone, ActViewTerminals),
	relInspector:            allow(scopeAll, ActViewSite, ActExport, ActViewIdentity),
}

// candidate is one way p reaches a site: the relation and the organisation
// it acts for.
type candidate struct {
	rel relation
	org int64
}

// relations lists every way p stands to s.
func relations(p Principal, s Site) []candidate {
	if s.ID == 0 {
		return nil
	}
	if p.Inspector != nil {
		// An inspector session is nothing but its grant.
		if p.Inspector.SiteID == s.ID && p.Inspector.OrgID == s.Owner {
			return []candidate{{relInspector, s.Owner}}
		}
		return nil
	}
	var out []candidate
	if p.Operator {
		out = append(out, candidate{relOperator, 0})
	}
	if org, ok := p.ManagedSites[s.ID]; ok && org == s.Owner && p.Has(org, RoleSiteManager) {
		out = append(out, candidate{relManager, org})
	}
	if p.Has(s.Owner, RoleOrgAdmin) {
		out = append(out, candidate{relOwnerAdmin, s.Owner})
	}
	if p.Has(s.Owner, RoleContractorAdmin) {
		out = append(out, candidate{relOwnerContractorAdmin, s.Owner})
	}
	for _, c := range s.Contractors {
		if c == s.Owner {
			continue
		}
		if p.Has(c, RoleOrgAdmin) {
			out = append(out, candidate{relContractorAdmin, c})
		}
		if p.Has(c, RoleContractorAdmin) {
			out = append(out, candidate{relContractorContractor, c})
		}
	}
	return out
}

// SiteAccess returns what p may do at s, and false when p has no business
// there at all. When p reaches the site in several ways, the widest view
// wins (the whole site before one employer's staff, then the most actions,
// then the lowest organisation id), and the other ways add the actions they
// allow within that same view or without personal data (an operator's
// terminal health): an action is never carried into a wider view than the
// relation that allows it.
func SiteAccess(p Principal, s Site) (Access, bool) {
	type option struct {
		a     Access
		scope int
		rank  int
	}
	var opts []option
	for _, c := range relations(p, s) {
		r := accessTable[c.rel]
		o := option{a: Access{Allowed: r.allowed}, scope: r.scope}
		switch r.scope {
		case scopeAll:
			o.a.Viewer, o.rank = c.org, 200
		case scopeStaff:
			o.a.Viewer, o.a.StaffOf, o.rank = c.org, c.org, 100
		}
		for _, ok := range r.allowed {
			if ok {
				o.rank++
			}
		}
		opts = append(opts, o)
	}
	if len(opts) == 0 {
		return Access{}, false
	}
	best := opts[0]
	for _, o := range opts[1:] {
		if o.rank > best.rank || (o.rank == best.rank && o.a.Viewer < best.a.Viewer) {
			best = o
		}
	}
	out := best.a
	for _, o := range opts {
		if o.scope == scopeNone || (o.a.Viewer == out.Viewer && o.a.StaffOf == out.StaffOf) {
			for act, ok := range o.a.Allowed {
				out.Allowed[act] = out.Allowed[act] || ok
			}
		}
	}
	return out, true
}

// Allowed reports whether p may do act at s.
func Allowed(p Principal, s Site, act Action) bool {
	if act < 0 || act >= numActions {
		return false
	}
	a, ok := SiteAccess(p, s)
	return ok && a.Allowed[act]
}

// CanViewSite reports whether p may read s's ledger (within
// ViewerOrg's scope).
func CanViewSite(p Principal, s Site) bool { return Allowed(p, s, ActViewSite) }

// CanCorrect reports whether p may add corrections to s's ledger (within
// ViewerOrg's scope).
func CanCorrect(p Principal, s Site) bool { return Allowed(p, s, ActCorrect) }

// ViewerOrg returns the organisation to pass as "viewer" to ledger and
// registry queries about s, and the employer to restrict them to (0: none;
// see Access.StaffOf). ok is false when p may not read s's ledger: an
// operator has no viewer.
func ViewerOrg(p Principal, s Site) (viewer, staffOf int64, ok bool) {
	a, found := SiteAccess(p, s)
	if !found || !a.Allowed[ActViewSite] {
		return 0, 0, false
	}
	return a.Viewer, a.StaffOf, true
}

// IsOperator reports whether p looks after the fleet.
func IsOperator(p Principal) bool { return p.Inspector == nil && p.Operator }

// CanManageOrg reports whether p may administer org's users and roles: an
// org admin of it, or a system job.
func CanManageOrg(p Principal, org int64) bool {
	if p.Inspector != nil || org <= 0 {
		return false
	}
	return p.System != "" || p.Has(org, RoleOrgAdmin)
}

// ActingOrgs lists the organisations p acts for, lowest first: where it
// holds any role. Audit entries of a user's own account (a login) are
// written once per organisation, so that each sees its users' logins.
func (p Principal) ActingOrgs() []int64 {
	orgs := make([]int64, 0, len(p.Roles))
	for org, roles := range p.Roles {
		if len(roles) > 0 {
			orgs = append(orgs, org)
		}
	}
	slices.Sort(orgs)
	return orgs
}

// String describes p without personal data, for errors and logs.
func (p Principal) String() string {
	return fmt.Sprintf("account.Principal{%s}", p.Actor())
}
