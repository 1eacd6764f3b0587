package account

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestInspectorGrantLifecycle(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	mgr, _ := w.user(t, "platschef@bygg.se", w.bygg, RoleSiteManager)
	if err := w.store.AssignSite(ctx, System("test"), mgr, w.siteA); err != nil {
		t.Fatal(err)
	}
	pm := w.principal(t, mgr) // now with the site

	g, err := w.store.CreateGrant(ctx, pm, NewGrant{SiteID: w.siteA})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}$`).MatchString(g.Code) || len(g.LinkToken) != 43 {
		t.Errorf("grant code %q, link %q: want XXXX-XXXX from the unambiguous alphabet and a 256-bit link", g.Code, g.LinkToken)
	}
	if g.SiteID != w.siteA || g.OrgID != w.bygg || g.CreatedBy != mgr || !g.ExpiresAt.Equal(w.clock.Now().Add(8*time.Hour)) {
		t.Errorf("grant = %+v", g.Grant)
	}
	// Neither secret is stored as itself.
	var n int
	err = w.pool.QueryRow(ctx, `SELECT count(*) FROM inspector_grants WHERE code_sha256 = $1 AND link_sha256 = $2`,
		hashToken(strings.ReplaceAll(g.Code, "-", "")), hashToken(g.LinkToken)).Scan(&n)
	if err != nil || n != 1 {
		t.Fatalf("grant secrets not stored as SHA-256: %d, %v", n, err)
	}

	// Redeemed by code, as typed by a person, and by link.
	byCode, sess, err := w.store.RedeemGrant(ctx, " "+strings.ToLower(strings.ReplaceAll(g.Code, "-", " ")), "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if sess.GrantID != g.ID || sess.UserID != 0 || !sess.ExpiresAt.Equal(g.ExpiresAt) {
		t.Errorf("inspector session = %+v", sess)
	}
	byLink, _, err := w.store.RedeemGrant(ctx, g.LinkToken, "203.0.113.8")
	if err != nil {
		t.Fatal(err)
	}
	// The session reads that one site, everything on it, and nothing else.
	loaded, err := w.store.Session(ctx, byCode)
	if err != nil {
		t.Fatal(err)
	}
	p, err := w.store.Principal(ctx, loaded)
	if err != nil {
		t.Fatal(err)
	}
	siteA, _ := w.store.Site(ctx, w.siteA)
	siteB, _ := w.store.Site(ctx, w.siteB)
	if v, staff, ok := ViewerOrg(p, siteA); !ok || v != w.bygg || staff != 0 {
		t.Errorf("inspector ViewerOrg(A) = %d, %d, %v; want %d, 0, true", v, staff, ok, w.bygg)
	}
	if !Allowed(p, siteA, ActViewIdentity) || !Allowed(p, siteA, ActExport) || CanCorrect(p, siteA) || CanViewSite(p, siteB) {
		t.Errorf("inspector principal %v has the wrong rights", p)
	}
	if p.Actor() != fmt.Sprintf("inspector:grant:%d", g.ID) {
		t.Errorf("inspector actor = %q", p.Actor())
	}

	// Each creation and redemption is audit-logged with the granting user.
	created := w.actions(t, w.bygg, ActionInspectorGrant)
	if len(created) != 1 || created[0].Actor != fmt.Sprintf("user:%d", mgr) || created[0].SiteID != w.siteA ||
		created[0].Detail["granted_by"] != float64(mgr) || created[0].Detail["grant_id"] != float64(g.ID) {
		t.Errorf("creation audit = %+v", created)
	}
	redeemed := w.actions(t, w.bygg, ActionInspectorRedeem)
	if len(redeemed) != 2 {
		t.Fatalf("%d redemption entries, want 2", len(redeemed))
	}
	for i, e := range redeemed {
		if e.Actor != p.Actor() || e.SiteID != w.siteA || e.OrgID != w.bygg || e.Detail["granted_by"] != float64(mgr) || e.Detail["use"] != float64(i+1) {
			t.Errorf("redemption audit %d = %+v", i, e)
		}
	}

	// When the grant expires its sessions end and it cannot be redeemed.
	w.clock.Advance(8 * time.Hour)
	for _, tok := range []string{byCode, byLink} {
		if _, err := w.store.Session(ctx, tok); !errors.Is(err, ErrNoSession) {
			t.Errorf("inspector session after expiry = %v, want ErrNoSession", err)
		}
	}
	if _, _, err := w.store.RedeemGrant(ctx, g.LinkToken, "203.0.113.7"); !errors.Is(err, ErrGrantInvalid) {
		t.Errorf("RedeemGrant(expired) = %v, want ErrGrantInvalid", err)
	}

	list, err := w.store.Grants(ctx, pm, w.siteA)
	if err != nil || len(list) != 1 || list[0].Uses != 2 {
		t.Errorf("Grants = %+v, %v", list, err)
	}
}

func TestInspectorGrantRevokeAndLimits(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	admin, pa := w.user(t, "admin@bygg.se", w.bygg, RoleOrgAdmin)

	g, err := w.store.CreateGrant(ctx, pa, NewGrant{SiteID: w.siteB, TTL: 2 * time.Hour, MaxUses: 1})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := w.store.RedeemGrant(ctx, g.Code, "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := w.store.RedeemGrant(ctx, g.Code, "203.0.113.7"); !errors.Is(err, ErrGrantInvalid) {
		t.Errorf("RedeemGrant(used up) = %v, want ErrGrantInvalid", err)
	}

	// Revoking ends the sessions and refuses redemption.
	g2, err := w.store.CreateGrant(ctx, pa, NewGrant{SiteID: w.siteB})
	if err != nil {
		t.Fatal(err)
	}
	tok2, _, err := w.store.RedeemGrant(ctx, g2.LinkToken, "203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{g.ID, g2.ID} {
		if err := w.store.RevokeGrant(ctx, pa, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, tk := range []string{tok, tok2} {
		if _, err := w.store.Session(ctx, tk); !errors.Is(err, ErrNoSession) {
			t.Errorf("session of a revoked grant = %v, want ErrNoSession", err)
		}
	}
	if _, _, err := w.store.RedeemGrant(ctx, g2.Code, "203.0.113.7"); !errors.Is(err, ErrGrantInvalid) {
		t.Errorf("RedeemGrant(revoked) = %v, want ErrGrantInvalid", err)
	}
	if es := w.actions(t, w.bygg, ActionInspectorRevoke); len(es) != 2 || es[0].Actor != fmt.Sprintf("user:%d", admin) {
		t.Errorf("revoke audit = %+v", es)
	}

	// Who may grant: the owner's admin and the site's manager; not a
	// contractor, an operator, another site's manager or an inspector.
	_, el := w.user(t, "admin@el.se", w.el, RoleOrgAdmin)
	_, elc := w.user(t, "kontakt@el.se", w.el, RoleContractorAdmin)
	_, op := w.user(t, "drift@liggare.se", 0, "")
	if err := w.store.GrantRole(ctx, System("test"), op.UserID, 0, RoleOperator); err != nil {
		t.Fatal(err)
	}
	op = w.principal(t, op.UserID)
	otherMgr, _ := w.user(t, "chef.b@bygg.se", w.bygg, RoleSiteManager)
	if err := w.store.AssignSite(ctx, pa, otherMgr, w.siteB); err != nil {
		t.Fatal(err)
	}
	inspector := Principal{Inspector: &InspectorScope{GrantID: g.ID, SiteID: w.siteA, OrgID: w.bygg}}
	for name, p := range map[string]Principal{
		"contractor's admin": el, "contractor admin": elc, "operator": op,
		"manager of another site": w.principal(t, otherMgr), "inspector": inspector, "system": System("cli"),
	} {
		if _, err := w.store.CreateGrant(ctx, p, NewGrant{SiteID: w.siteA}); !errors.Is(err, ErrForbidden) {
			t.Errorf("CreateGrant by %s = %v, want ErrForbidden", name, err)
		}
	}
	if _, err := w.store.Grants(ctx, el, w.siteA); !errors.Is(err, ErrNotFound) {
		t.Errorf("Grants by a contractor = %v, want ErrNotFound", err)
	}
	for _, ttl := range []time.Duration{25 * time.Hour, time.Second, -time.Hour} {
		if _, err := w.store.CreateGrant(ctx, pa, NewGrant{SiteID: w.siteA, TTL: ttl}); !errors.Is(err, ErrInvalid) {
			t.Errorf("CreateGrant(TTL %s) = %v, want ErrInvalid", ttl, err)
		}
	}
	if _, err := w.store.CreateGrant(ctx, pa, NewGrant{SiteID: w.siteA, TTL: MaxGrantTTL}); err != nil {
		t.Errorf("CreateGrant(24 h) = %v", err)
	}
}

func TestRedeemThrottled(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	_, pa := w.user(t, "admin@bygg.se", w.bygg, RoleOrgAdmin)
	g, err := w.store.CreateGrant(ctx, pa, NewGrant{SiteID: w.siteA})
	if err != nil {
		t.Fatal(err)
	}
	lim := DefaultRedeemLimit
	for i := range lim.Free {
		if _, _, err := w.store.RedeemGrant(ctx, fmt.Sprintf("AAAA-AA%02d", i), "203.0.113.9"); !errors.Is(err, ErrGrantInvalid) {
			t.Fatalf("guess %d = %v, want ErrGrantInvalid", i, err)
		}
	}
	_, _, err = w.store.RedeemGrant(ctx, g.Code, "203.0.113.9")
	var te *ThrottledError
	if !errors.As(err, &te) || te.Limit != "redeem_ip" {
		t.Fatalf("RedeemGrant after %d guesses = %v, want ThrottledError{redeem_ip}", lim.Free, err)
	}
	// Another address redeems; the guesser may after the delay.
	if _, _, err := w.store.RedeemGrant(ctx, g.Code, "203.0.113.10"); err != nil {
		t.Errorf("RedeemGrant(other address) = %v", err)
	}
	w.clock.Advance(te.RetryAfter)
	if _, _, err := w.store.RedeemGrant(ctx, g.Code, "203.0.113.9"); err != nil {
		t.Errorf("RedeemGrant after the delay = %v", err)
	}
}
