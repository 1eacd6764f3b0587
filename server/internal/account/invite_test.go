package account

import (
	"errors"
	"testing"
)

func TestInviteUser(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	_, admin := w.user(t, "admin@bygg.se", w.bygg, RoleOrgAdmin)
	u, pw, err := w.store.InviteUser(ctx, admin, w.bygg, RoleSiteManager, "Chef@Bygg.se", "Sara Chef")
	if err != nil {
		t.Fatal(err)
	}
	l, err := w.store.Authenticate(ctx, "chef@bygg.se", pw, "192.0.2.1")
	if err != nil || !l.Complete() || !l.MustChangePassword {
		t.Fatalf("Authenticate(one-time password) = %+v, %v; want MustChangePassword", l, err)
	}
	if p := w.principal(t, u.ID); !p.Has(w.bygg, RoleSiteManager) {
		t.Errorf("invited principal = %+v, want site manager of bygg", p)
	}
	if es := w.actions(t, w.bygg, ActionUserCreate); len(es) != 1 || es[0].Actor != admin.Actor() {
		t.Errorf("invite audit = %+v", es)
	}
	for _, c := range []struct {
		name string
		org  int64
		role Role
		want error
	}{
		{"othertenant", w.el, RoleOrgAdmin, ErrForbidden},
		{"operator", 0, RoleOperator, ErrForbidden},
		{"unknown role", w.bygg, Role("king"), ErrInvalid},
	} {
		if _, _, err := w.store.InviteUser(ctx, admin, c.org, c.role, c.name+"@x.se", "X"); !errors.Is(err, c.want) {
			t.Errorf("InviteUser(%s) = %v, want %v", c.name, err, c.want)
		}
	}
	if _, _, err := w.store.InviteUser(ctx, admin, w.bygg, RoleOrgAdmin, "chef@bygg.se", "Again"); !errors.Is(err, ErrEmailTaken) {
		t.Errorf("InviteUser(taken) = %v, want ErrEmailTaken", err)
	}
	// A refused invitation leaves no user behind.
	if _, err := w.store.UserByEmail(ctx, "othertenant@x.se"); !errors.Is(err, ErrNotFound) {
		t.Errorf("UserByEmail(refused invitation) = %v, want ErrNotFound", err)
	}
}

func TestRevokeLastAdmin(t *testing.T) {
	w := newWorld(t)
	ctx := t.Context()
	aID, a := w.user(t, "a@bygg.se", w.bygg, RoleOrgAdmin)
	bID, _ := w.user(t, "b@bygg.se", w.bygg, RoleOrgAdmin)
	if err := w.store.RevokeRole(ctx, a, bID, w.bygg, RoleOrgAdmin); err != nil {
		t.Fatalf("RevokeRole(other admin) = %v", err)
	}
	if err := w.store.RevokeRole(ctx, a, aID, w.bygg, RoleOrgAdmin); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("RevokeRole(last admin) = %v, want ErrLastAdmin", err)
	}
	if p := w.principal(t, aID); !p.Has(w.bygg, RoleOrgAdmin) {
		t.Error("the last admin lost its seat")
	}
	// A disabled admin is no seat: the last enabled one stays.
	cID, _ := w.user(t, "c@bygg.se", w.bygg, RoleOrgAdmin)
	if err := w.store.DisableUser(ctx, a, cID); err != nil {
		t.Fatal(err)
	}
	if err := w.store.RevokeRole(ctx, System("test"), aID, w.bygg, RoleOrgAdmin); !errors.Is(err, ErrLastAdmin) {
		t.Errorf("RevokeRole(last enabled admin) = %v, want ErrLastAdmin", err)
	}
}
