package audit

import (
	"context"
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestListChoices(t *testing.T) {
	pool := pgtest.New(t)
	ctx := context.Background()
	a, b, site, anna, bertil := tenants(t, pool)
	for _, e := range []Entry{
		{Actor: "user:1", ActorOrgID: a, Action: ActionIdentityRead, OrgID: a, SiteID: site, PersonID: anna},
		{Actor: "user:1", ActorOrgID: a, Action: ActionLedgerExport, OrgID: a, SiteID: site},
		{Actor: "user:2", ActorOrgID: a, Action: ActionLedgerExport, OrgID: a},
		{Actor: "user:9", ActorOrgID: b, Action: ActionRegisterExtract, OrgID: b, PersonID: bertil},
	} {
		if err := Record(ctx, pool, e); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		viewer int64
		sites  []int64
		want   Choices
	}{
		{"tenant", a, nil, Choices{Actors: []string{"user:1", "user:2"}, Actions: []string{ActionLedgerExport, ActionIdentityRead}}},
		{"within a site", a, []int64{site}, Choices{Actors: []string{"user:1"}, Actions: []string{ActionLedgerExport, ActionIdentityRead}}},
		{"other tenant", b, nil, Choices{Actors: []string{"user:9"}, Actions: []string{ActionRegisterExtract}}},
		{"no sites", a, []int64{}, Choices{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ListChoices(ctx, pool, tc.viewer, tc.sites)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("ListChoices(%d, %v) (-want +got):\n%s", tc.viewer, tc.sites, diff)
			}
		})
	}
	if _, err := ListChoices(ctx, pool, 0, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("ListChoices without viewer = %v, want ErrInvalid", err)
	}
}
