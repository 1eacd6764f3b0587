package enroll

import (
	"errors"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/audit"
)

func TestOutstandingAndCancel(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)
	f.store.Now = func() time.Time { return now }
	a := f.code(t, CodeRequest{TerminalID: "gate-1", Direction: "in"})
	b := f.code(t, CodeRequest{TTL: time.Hour})
	used := f.code(t, CodeRequest{})
	req, _ := request(t, used.Code, "")
	if _, err := f.store.Redeem(ctx, req); err != nil {
		t.Fatal(err)
	}
	other := f.code(t, CodeRequest{SiteIdent: siteB})

	ids := func(cs []CodeInfo) []int64 {
		var out []int64
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	cs, err := f.store.OutstandingCodes(ctx, f.siteA, now)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(cs); len(got) != 2 || got[0] != b.ID || got[1] != a.ID {
		t.Fatalf("OutstandingCodes = %v, want [%d %d] (newest first; used and other sites' left out)", got, b.ID, a.ID)
	}
	if cs[1].TerminalID != "gate-1" || cs[1].Direction != "in" || cs[1].CreatedBy != "cli:test" || !cs[1].ExpiresAt.Equal(now.Add(DefaultTTL)) {
		t.Errorf("code a listed as %+v", cs[1])
	}
	// An hour later b has expired by itself.
	if cs, _ = f.store.OutstandingCodes(ctx, f.siteA, now.Add(time.Hour)); len(cs) != 1 {
		t.Errorf("an hour later %v outstanding, want only a", ids(cs))
	}

	// Cancelling: another site's code is not found; then a is cancelled,
	// refused at redemption, and the cancel is on record once.
	if err := f.store.CancelCode(ctx, f.siteA, other.ID, "user:1", f.orgA); !errors.Is(err, ErrCodeNotFound) {
		t.Errorf("CancelCode(other site's) = %v, want ErrCodeNotFound", err)
	}
	now = now.Add(time.Minute)
	for range 2 { // the second time changes nothing
		if err := f.store.CancelCode(ctx, f.siteA, a.ID, "user:1", f.orgA); err != nil {
			t.Fatalf("CancelCode = %v", err)
		}
	}
	if cs, _ = f.store.OutstandingCodes(ctx, f.siteA, now); len(cs) != 1 || cs[0].ID != b.ID {
		t.Errorf("after cancel %v outstanding, want [%d]", ids(cs), b.ID)
	}
	req, _ = request(t, a.Code, "gate-1")
	if _, err := f.store.Redeem(ctx, req); !errors.Is(err, ErrCodeExpired) {
		t.Errorf("Redeem(cancelled) = %v, want ErrCodeExpired", err)
	}
	es, err := audit.List(ctx, f.pool, f.orgA, audit.Filter{Action: ActionCodeCancel})
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Actor != "user:1" || es[0].SiteID != f.siteA || es[0].Detail["code_id"] != float64(a.ID) {
		t.Errorf("cancel audit entries %+v, want one for code %d", es, a.ID)
	}
}

func TestCredentials(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := t.Context()
	// cli-1 has a CLI credential and no key; gate-1 is enrolled, then
	// rotates; gate-2 is enrolled and revoked.
	if _, err := f.terminals.Create(ctx, "cli-1"); err != nil {
		t.Fatal(err)
	}
	enrollAs := func(id string) string {
		req, _ := request(t, f.code(t, CodeRequest{TerminalID: id}).Code, id)
		resp, err := f.store.Redeem(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Credential
	}
	cred := enrollAs("gate-1")
	_, credID, err := f.terminals.Authenticate(ctx, cred)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.terminals.Rotate(ctx, credID); err != nil {
		t.Fatal(err)
	}
	enrollAs("gate-2")
	if _, err := f.store.Revoke(ctx, "gate-2", "user:1"); err != nil {
		t.Fatal(err)
	}

	st, err := f.store.Credentials(ctx, []string{"cli-1", "gate-1", "gate-2", "nobody"})
	if err != nil {
		t.Fatal(err)
	}
	if c := st["cli-1"]; c.Active != 1 || c.HasKey || c.IssuedBy != "cli" || c.RotationPending || c.RevokedAt != nil || c.IssuedAt.IsZero() {
		t.Errorf("cli-1: %+v", c)
	}
	if c := st["gate-1"]; c.Active != 2 || !c.HasKey || c.IssuedBy != "rotation" || !c.RotationPending {
		t.Errorf("gate-1 mid-rotation: %+v", c)
	}
	if c := st["gate-2"]; c.Active != 0 || c.RevokedAt == nil || !c.IssuedAt.IsZero() || c.IssuedBy != "" {
		t.Errorf("gate-2 revoked: %+v", c)
	}
	if _, ok := st["nobody"]; ok || len(st) != 3 {
		t.Errorf("Credentials = %+v, want three terminals", st)
	}
}
