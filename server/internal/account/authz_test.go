package account

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The site of the table: owned by org 1, org 2 a contractor on it (the
// owner is listed as a contractor too, as happens); org 3 has nothing to do
// with it; site 20 is another site of org 1.
const (
	tOwner, tContractor, tStranger = 1, 2, 3
	tSite, tOtherSite              = 10, 20
)

var tableSite = Site{ID: tSite, Owner: tOwner, Contractors: []int64{tOwner, tContractor}}

func roles(pairs ...any) map[int64][]Role {
	m := map[int64][]Role{}
	for i := 0; i < len(pairs); i += 2 {
		org := int64(pairs[i].(int))
		m[org] = append(m[org], pairs[i+1].(Role))
	}
	return m
}

func inspector(site, org int64) *InspectorScope {
	return &InspectorScope{GrantID: 7, SiteID: site, OrgID: org, ExpiresAt: time.Now().Add(time.Hour)}
}

// accessCases is every kind of principal against tableSite, with the
// access it must get: viewer, staffOf and the allowed actions by their
// initials (V view, C correct, E export, I identity, G grant inspector,
// T terminals, M manage terminals), or "-" for no access at all.
var accessCases = []struct {
	name    string
	p       Principal
	viewer  int64
	staffOf int64
	want    string
}{
	{"nobody", Principal{}, 0, 0, "-"},
	{"system job", System("cli"), 0, 0, "-"},

	{"org admin of the owner", Principal{UserID: 1, Roles: roles(tOwner, RoleOrgAdmin)}, tOwner, 0, "VCEGTM"},
	{"org admin of a contractor", Principal{UserID: 1, Roles: roles(tContractor, RoleOrgAdmin)}, tContractor, tContractor, "VCE"},
	{"org admin of a stranger", Principal{UserID: 1, Roles: roles(tStranger, RoleOrgAdmin)}, 0, 0, "-"},

	{"site manager of the site", Principal{UserID: 1, Roles: roles(tOwner, RoleSiteManager), ManagedSites: map[int64]int64{tSite: tOwner}}, tOwner, 0, "VCEGTM"},
	{"site manager of another site", Principal{UserID: 1, Roles: roles(tOwner, RoleSiteManager), ManagedSites: map[int64]int64{tOtherSite: tOwner}}, 0, 0, "-"},
	{"site manager without sites", Principal{UserID: 1, Roles: roles(tOwner, RoleSiteManager)}, 0, 0, "-"},
	{"site manager of a contractor, site listed", Principal{UserID: 1, Roles: roles(tContractor, RoleSiteManager), ManagedSites: map[int64]int64{tSite: tContractor}}, 0, 0, "-"},
	{"site listed without the role", Principal{UserID: 1, Roles: roles(tOwner, RoleContractorAdmin), ManagedSites: map[int64]int64{tSite: tOwner}}, tOwner, tOwner, "VCE"},
	{"site manager of a stranger, site listed", Principal{UserID: 1, Roles: roles(tStranger, RoleSiteManager), ManagedSites: map[int64]int64{tSite: tStranger}}, 0, 0, "-"},

	{"contractor admin of the owner", Principal{UserID: 1, Roles: roles(tOwner, RoleContractorAdmin)}, tOwner, tOwner, "VCE"},
	{"contractor admin of a contractor", Principal{UserID: 1, Roles: roles(tContractor, RoleContractorAdmin)}, tContractor, tContractor, "VCE"},
	{"contractor admin of a stranger", Principal{UserID: 1, Roles: roles(tStranger, RoleContractorAdmin)}, 0, 0, "-"},

	{"operator", Principal{UserID: 1, Operator: true}, 0, 0, "T"},

	{"inspector of the site", Principal{Inspector: inspector(tSite, tOwner)}, tOwner, 0, "VEI"},
	{"inspector of another site", Principal{Inspector: inspector(tOtherSite, tOwner)}, 0, 0, "-"},
	{"inspector, grant names another owner", Principal{Inspector: inspector(tSite, tStranger)}, 0, 0, "-"},
	{"inspector with roles (ignored)", Principal{Inspector: inspector(tOtherSite, tOwner), Roles: roles(tOwner, RoleOrgAdmin), Operator: true}, 0, 0, "-"},

	// Several ways in.
	{"owner admin and contractor admin", Principal{UserID: 1, Roles: roles(tOwner, RoleOrgAdmin, tContractor, RoleContractorAdmin)}, tOwner, 0, "VCEGTM"},
	{"owner's contractor admin and site manager", Principal{UserID: 1, Roles: roles(tOwner, RoleContractorAdmin, tOwner, RoleSiteManager), ManagedSites: map[int64]int64{tSite: tOwner}}, tOwner, 0, "VCEGTM"},
	{"operator and contractor admin", Principal{UserID: 1, Operator: true, Roles: roles(tContractor, RoleContractorAdmin)}, tContractor, tContractor, "VCET"},
	{"admin of two contractors", Principal{UserID: 1, Roles: roles(tContractor, RoleOrgAdmin, tOwner, RoleContractorAdmin)}, tOwner, tOwner, "VCE"},
}

var actionLetters = map[Action]string{
	ActViewSite: "V", ActCorrect: "C", ActExport: "E", ActViewIdentity: "I", ActGrantInspector: "G", ActViewTerminals: "T", ActManageTerminals: "M",
}

// accessString writes an Access as the letters of its actions.
func accessString(a Access, ok bool) string {
	if !ok {
		return "-"
	}
	var b strings.Builder
	for _, act := range Actions {
		if a.Allowed[act] {
			b.WriteString(actionLetters[act])
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

func TestAccessTable(t *testing.T) {
	for _, tc := range accessCases {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := SiteAccess(tc.p, tableSite)
			if got := accessString(a, ok); got != tc.want || a.Viewer != tc.viewer || a.StaffOf != tc.staffOf {
				t.Errorf("SiteAccess = %s viewer %d staffOf %d, want %s viewer %d staffOf %d", got, a.Viewer, a.StaffOf, tc.want, tc.viewer, tc.staffOf)
			}
			// Every action through Allowed, and the named helpers.
			for _, act := range Actions {
				want := strings.Contains(tc.want, actionLetters[act])
				if got := Allowed(tc.p, tableSite, act); got != want {
					t.Errorf("Allowed(%s) = %v, want %v", act, got, want)
				}
			}
			if got, want := CanViewSite(tc.p, tableSite), strings.Contains(tc.want, "V"); got != want {
				t.Errorf("CanViewSite = %v, want %v", got, want)
			}
			if got, want := CanCorrect(tc.p, tableSite), strings.Contains(tc.want, "C"); got != want {
				t.Errorf("CanCorrect = %v, want %v", got, want)
			}
			v, staff, ok := ViewerOrg(tc.p, tableSite)
			if wantOK := strings.Contains(tc.want, "V"); ok != wantOK || (ok && (v != tc.viewer || staff != tc.staffOf)) || (!ok && (v != 0 || staff != 0)) {
				t.Errorf("ViewerOrg = %d, %d, %v; want %d, %d, %v", v, staff, ok, tc.viewer, tc.staffOf, wantOK)
			}
			// No principal reaches a site with no id, or a site unknown to it.
			if _, ok := SiteAccess(tc.p, Site{}); ok {
				t.Error("SiteAccess(zero Site) granted access")
			}
		})
	}
}

// TestRoleActionMatrix checks every role, in every relation of its
// organisation to a site, against every action: the model in one screen.
func TestRoleActionMatrix(t *testing.T) {
	relations := map[string]int64{"owner": tOwner, "contractor": tContractor, "stranger": tStranger}
	// want[role][relation] = actions, as in accessCases. A site manager is
	// given the site in its ManagedSites (what AssignSite allows only for
	// the owner's site managers).
	want := map[Role]map[string]string{
		RoleOrgAdmin:        {"owner": "VCEGTM", "contractor": "VCE", "stranger": "-"},
		RoleSiteManager:     {"owner": "VCEGTM", "contractor": "-", "stranger": "-"},
		RoleContractorAdmin: {"owner": "VCE", "contractor": "VCE", "stranger": "-"},
		RoleOperator:        {"owner": "T", "contractor": "T", "stranger": "T"},
	}
	for _, role := range Roles {
		for rel, org := range relations {
			p := Principal{UserID: 1, Roles: map[int64][]Role{}}
			if role == RoleOperator {
				p.Operator = true
			} else {
				p.Roles[org] = []Role{role}
			}
			if role == RoleSiteManager {
				p.ManagedSites = map[int64]int64{tSite: org}
			}
			a, ok := SiteAccess(p, tableSite)
			got := accessString(a, ok)
			if got != want[role][rel] {
				t.Errorf("%s of the %s: %s, want %s", role, rel, got, want[role][rel])
			}
			for _, act := range Actions {
				w := strings.Contains(want[role][rel], actionLetters[act])
				if Allowed(p, tableSite, act) != w {
					t.Errorf("%s of the %s: Allowed(%s) = %v, want %v", role, rel, act, !w, w)
				}
			}
		}
	}
}

func TestOrgLevelChecks(t *testing.T) {
	for _, tc := range []struct {
		p        Principal
		manage   bool // CanManageOrg(p, tOwner)
		operator bool
	}{
		{Principal{}, false, false},
		{System("cli"), true, false},
		{Principal{UserID: 1, Roles: roles(tOwner, RoleOrgAdmin)}, true, false},
		{Principal{UserID: 1, Roles: roles(tContractor, RoleOrgAdmin)}, false, false},
		{Principal{UserID: 1, Roles: roles(tOwner, RoleSiteManager), ManagedSites: map[int64]int64{tSite: tOwner}}, false, false},
		{Principal{UserID: 1, Roles: roles(tOwner, RoleContractorAdmin)}, false, false},
		{Principal{UserID: 1, Operator: true}, false, true},
		{Principal{Inspector: inspector(tSite, tOwner)}, false, false},
		{Principal{Inspector: inspector(tSite, tOwner), Operator: true, Roles: roles(tOwner, RoleOrgAdmin)}, false, false},
	} {
		if got := CanManageOrg(tc.p, tOwner); got != tc.manage {
			t.Errorf("CanManageOrg(%v) = %v, want %v", tc.p, got, tc.manage)
		}
		if got := IsOperator(tc.p); got != tc.operator {
			t.Errorf("IsOperator(%v) = %v, want %v", tc.p, got, tc.operator)
		}
	}
	if CanManageOrg(System("cli"), 0) {
		t.Error("CanManageOrg(system, org 0) = true")
	}
}

func TestActorNames(t *testing.T) {
	for _, tc := range []struct {
		p    Principal
		want string
	}{
		{Principal{UserID: 42}, "user:42"},
		{Principal{Inspector: &InspectorScope{GrantID: 9}}, "inspector:grant:9"},
		{System("cli"), "system:cli"},
		{Principal{}, "anonymous"},
	} {
		if got := tc.p.Actor(); got != tc.want {
			t.Errorf("Actor() = %q, want %q", got, tc.want)
		}
	}
	if got := fmt.Sprint(Action(99)); got != "action(99)" {
		t.Errorf("Action(99) = %q", got)
	}
}
