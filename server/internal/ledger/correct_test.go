package ledger

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/liggare/liggare/server/internal/pgtest"
)

func sthlm(s string) time.Time { return at(s) }

func correct(t *testing.T, s *Store, viewer int64, c Correction) int64 {
	t.Helper()
	if c.Reason == "" {
		c.Reason = "glömt kort"
	}
	if c.Author == "" {
		c.Author = "platschef@bygg.se"
	}
	id, err := s.Correct(context.Background(), viewer, c)
	if err != nil {
		t.Fatalf("Correct(%+v): %v", c, err)
	}
	return id
}

func TestCorrectForgottenCheckoutAndAsOf(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	s := NewStore(pool, Rules{})
	f.upload(t, tapSpec{"IN", "AA0000000001", "2026-11-20 07:00:00"})
	drain(t, r)
	var before time.Time
	pool.QueryRow(context.Background(), `SELECT now()`).Scan(&before)

	correct(t, s, f.owner, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-20 16:00:00")})
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 16:00(m)"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after the check-out correction (-want +got):\n%s", diff)
	}
	// The ledger as known before the correction is still there.
	old, err := s.Periods(context.Background(), f.owner, PeriodQuery{SiteID: f.site, AsOf: before})
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 1 || old[0].End != nil {
		t.Errorf("as of before the correction: %+v, want one open period", old)
	}
	// Correcting the correction: withdraw it and set another time.
	first := scalar(t, pool, `SELECT correction_id FROM corrections`)
	correct(t, s, f.owner, Correction{Kind: Withdraw, SiteID: f.site, Withdraws: first, Reason: "fel tid"})
	if diff := cmp.Diff([]string{"11-20 07:00 - ?"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after withdrawing (-want +got):\n%s", diff)
	}
	correct(t, s, f.owner, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-20 15:30:00")})
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 15:30(m)"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after the second check-out (-want +got):\n%s", diff)
	}
	cs, err := s.Corrections(context.Background(), f.owner, f.site)
	if err != nil || len(cs) != 3 || cs[2].WithdrawnBy == nil {
		t.Errorf("Corrections = %+v, %v; want all three kept, the first withdrawn", cs, err)
	}
}

func TestCorrectVoidReassignAndAssignCard(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	s := NewStore(pool, Rules{})
	f.upload(t,
		tapSpec{"TOG", "AA0000000001", "2026-11-20 07:00:00"},
		tapSpec{"TOG", "AA0000000001", "2026-11-20 09:00:00"}, // seq 2: a mistake
		tapSpec{"TOG", "AA0000000001", "2026-11-20 16:00:00"},
		tapSpec{"TOG", "NEWCARD00001", "2026-11-20 07:10:00"}, // unknown card
	)
	drain(t, r)
	correct(t, s, f.owner, Correction{Kind: VoidTap, SiteID: f.site, Tap: TapID{"TOG", 1, 2}})
	if diff := cmp.Diff([]string{"11-20 07:00 - 11-20 16:00"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after voiding (-want +got):\n%s", diff)
	}
	unknown, err := s.UnknownCards(context.Background(), f.owner, f.site)
	if err != nil || len(unknown) != 1 || unknown[0].CardIdent != "NEWCARD00001" {
		t.Fatalf("UnknownCards = %+v, %v", unknown, err)
	}
	correct(t, s, f.owner, Correction{Kind: AssignCard, SiteID: f.site, PersonID: f.bertil, CardIdent: "NEWCARD00001", Reason: "nytt kort, ej registrerat"})
	if diff := cmp.Diff([]string{"11-20 07:10 - ?"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("Bertil after assigning the card (-want +got):\n%s", diff)
	}
	// Later taps of the assigned card count for him as well.
	f.upload(t, tapSpec{"TOG", "NEWCARD00001", "2026-11-20 15:00:00"})
	drain(t, r)
	if diff := cmp.Diff([]string{"11-20 07:10 - 11-20 15:00"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("Bertil after a later tap (-want +got):\n%s", diff)
	}
	// Anna's 16:00 tap was Bertil's (borrowed card): reassign it.
	correct(t, s, f.owner, Correction{Kind: ReassignTap, SiteID: f.site, Tap: TapID{"TOG", 1, 3}, PersonID: f.bertil, Reason: "lånat kort"})
	if diff := cmp.Diff([]string{"11-20 07:00 - ?"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna after the reassignment (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"11-20 07:10 - 11-20 15:00", "11-20 16:00 - ?"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("Bertil after the reassignment (-want +got):\n%s", diff)
	}
	// Every tap is still there, none erased.
	if n := scalar(t, pool, `SELECT count(*) FROM taps`); n != 5 {
		t.Errorf("taps = %d, want 5", n)
	}
}

func TestCorrectManualPeriodByEmployer(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	s := NewStore(pool, Rules{})
	// The subcontractor adds a period for its own worker on the owner's site.
	correct(t, s, f.sub, Correction{Kind: ManualPeriod, SiteID: f.site, PersonID: f.bertil,
		Start: sthlm("2026-11-19 07:00:00"), End: sthlm("2026-11-19 15:00:00")})
	if diff := cmp.Diff([]string{"11-19 07:00(m) - 11-19 15:00(m)"}, f.periods(t, f.site, f.bertil)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestCorrectRefusals(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	s := NewStore(pool, Rules{})
	outsider := scalar(t, pool, `INSERT INTO organisations (name, org_number) VALUES ('Annat AB', '556000-0003') RETURNING org_id`)
	for _, tc := range []struct {
		name   string
		viewer int64
		c      Correction
		want   error
	}{
		{"no reason", f.owner, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-20 16:00:00"), Reason: " ", Author: "x"}, ErrInvalidCorrection},
		{"period backwards", f.owner, Correction{Kind: ManualPeriod, SiteID: f.site, PersonID: f.anna, Start: sthlm("2026-11-20 16:00:00"), End: sthlm("2026-11-20 07:00:00")}, ErrInvalidCorrection},
		{"period of 30 hours", f.owner, Correction{Kind: ManualPeriod, SiteID: f.site, PersonID: f.anna, Start: sthlm("2026-11-19 07:00:00"), End: sthlm("2026-11-20 13:00:00")}, ErrInvalidCorrection},
		{"outsider corrects the site", outsider, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-20 16:00:00")}, ErrNotFound},
		{"contractor corrects the owner's staff", f.sub, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-20 16:00:00")}, ErrNotFound},
		{"contractor voids a tap", f.sub, Correction{Kind: VoidTap, SiteID: f.site, Tap: TapID{"TOG", 1, 1}}, ErrNotFound},
		{"unknown site", f.owner, Correction{Kind: SetCheckout, SiteID: 9999, PersonID: f.anna, End: sthlm("2026-11-20 16:00:00")}, ErrNotFound},
		{"unknown tap", f.owner, Correction{Kind: VoidTap, SiteID: f.site, Tap: TapID{"TOG", 1, 99}}, ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.c.Reason == "" {
				tc.c.Reason, tc.c.Author = "skäl", "x"
			}
			_, err := s.Correct(context.Background(), tc.viewer, tc.c)
			if !errors.Is(err, tc.want) {
				t.Errorf("Correct = %v, want %v", err, tc.want)
			}
		})
	}
	if n := scalar(t, pool, `SELECT count(*) FROM corrections`); n != 0 {
		t.Errorf("refused corrections left %d rows", n)
	}
}

// TestSetCheckoutMustCloseAPeriod: a check-out is refused, with what is
// there, unless it closes the person's open period; a refused one leaves
// no correction behind.
func TestSetCheckoutMustCloseAPeriod(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	s := NewStore(pool, Rules{})
	// Monday 07:00-16:00 closed; Tuesday checked in at 06:59:30 and open.
	f.upload(t, tapSpec{"IN", "AA0000000001", "2026-11-16 07:00:00"}, tapSpec{"OUT", "AA0000000001", "2026-11-16 16:00:00"},
		tapSpec{"IN", "AA0000000001", "2026-11-17 06:59:30"})
	drain(t, r)
	for _, tc := range []struct {
		name, end, want string
		refusal         Refusal
		times           []string // Stockholm wall times the refusal names
	}{
		{"before any check-in", "2026-11-15 16:00:00", "comes before the check-in at 2026-11-16 07:00:00",
			RefusedCheckoutEarly, []string{"2026-11-15 16:00:00", "2026-11-16 07:00:00"}},
		{"inside a closed period", "2026-11-16 12:00:00", "already ends at 2026-11-16 16:00:00",
			RefusedCheckoutEnded, []string{"2026-11-16 07:00:00", "2026-11-16 16:00:00"}},
		{"after a closed period", "2026-11-16 18:00:00", "the last period ended at 2026-11-16 16:00:00",
			RefusedCheckoutClosed, []string{"2026-11-16 18:00:00", "2026-11-16 16:00:00"}},
		{"the minute typed for a later tap", "2026-11-17 06:59:00", "comes before the check-in at 2026-11-17 06:59:30",
			RefusedCheckoutEarly, []string{"2026-11-17 06:59:00", "2026-11-17 06:59:30"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Correct(context.Background(), f.owner, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna,
				End: sthlm(tc.end), Reason: "glömt", Author: "x"})
			if !errors.Is(err, ErrInvalidCorrection) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Correct = %v, want ErrInvalidCorrection saying %q", err, tc.want)
			}
			var re *RefusalError
			if !errors.As(err, &re) || re.Refusal != tc.refusal {
				t.Fatalf("Correct = %#v, want a RefusalError %s", err, tc.refusal)
			}
			var got []string
			for _, at := range re.Times {
				got = append(got, at.Format("2006-01-02 15:04:05")) // in the site's zone, as given
			}
			if diff := cmp.Diff(tc.times, got); diff != "" {
				t.Errorf("refusal times (-want +got):\n%s", diff)
			}
		})
	}
	if n := scalar(t, pool, `SELECT count(*) FROM corrections`); n != 0 {
		t.Errorf("refused check-outs left %d corrections", n)
	}
	correct(t, s, f.owner, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-17 15:00:00")})
	if diff := cmp.Diff([]string{"11-16 07:00 - 11-16 16:00", "11-17 06:59 - 11-17 15:00(m)"}, f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("after the check-out (-want +got):\n%s", diff)
	}
}

// TestTenantIsolation: every read path, for each tenant, returns only what
// that tenant may see.
func TestTenantIsolation(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	r := NewReconciler(pool, ReconcilerOptions{})
	s := NewStore(pool, Rules{})
	outsider := scalar(t, pool, `INSERT INTO organisations (name, org_number) VALUES ('Annat AB', '556000-0003') RETURNING org_id`)
	f.upload(t,
		tapSpec{"TOG", "AA0000000001", "2026-11-20 07:00:00"},
		tapSpec{"TOG", "BB0000000002", "2026-11-20 07:01:00"},
		tapSpec{"TOG", "UNKNOWN00001", "2026-11-20 07:02:00"},
	)
	drain(t, r)
	correct(t, s, f.owner, Correction{Kind: SetCheckout, SiteID: f.site, PersonID: f.anna, End: sthlm("2026-11-20 16:00:00")})
	ctx := context.Background()
	now := sthlm("2026-11-20 12:00:00")
	names := func(rows []PeriodRow) []string {
		var out []string
		for _, r := range rows {
			out = append(out, r.PersonName)
		}
		return out
	}
	for _, tc := range []struct {
		viewer              int64
		periods, onSite     []string
		unknown, correction int
		taps                []string
	}{
		{f.owner, []string{"Anna", "Bertil"}, []string{"Bertil"}, 1, 1, []string{"?UNKNOWN00001", "Bertil", "Anna"}},
		{f.sub, []string{"Bertil"}, []string{"Bertil"}, 0, 0, []string{"Bertil"}},
		{outsider, nil, nil, 0, 0, nil},
	} {
		ps, err := s.Periods(ctx, tc.viewer, PeriodQuery{SiteID: f.site, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.periods, names(ps)); diff != "" {
			t.Errorf("viewer %d Periods (-want +got):\n%s", tc.viewer, diff)
		}
		on, err := s.OnSite(ctx, tc.viewer, PeriodQuery{SiteID: f.site, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.onSite, names(on)); diff != "" {
			t.Errorf("viewer %d OnSite (-want +got):\n%s", tc.viewer, diff)
		}
		if u, _ := s.UnknownCards(ctx, tc.viewer, f.site); len(u) != tc.unknown {
			t.Errorf("viewer %d UnknownCards = %d, want %d", tc.viewer, len(u), tc.unknown)
		}
		if c, _ := s.Corrections(ctx, tc.viewer, f.site); len(c) != tc.correction {
			t.Errorf("viewer %d Corrections = %d, want %d", tc.viewer, len(c), tc.correction)
		}
		taps, err := s.Taps(ctx, tc.viewer, TapQuery{SiteID: f.site})
		if err != nil {
			t.Fatal(err)
		}
		var who []string
		for _, tp := range taps {
			if tp.PersonName == nil {
				who = append(who, "?"+tp.CardIdent)
				continue
			}
			who = append(who, *tp.PersonName)
		}
		if diff := cmp.Diff(tc.taps, who); diff != "" {
			t.Errorf("viewer %d Taps (-want +got):\n%s", tc.viewer, diff)
		}
	}
}

// Assigning a card id moves every tap with that id at the site, and none
// elsewhere: taps counted for the card's holder before it changed hands,
// taps of the holder after, and taps of a kiosk moved to the site from
// another (where its earlier taps stay).
func TestAssignCardMovesEveryTapAtTheSite(t *testing.T) {
	pool := pgtest.New(t)
	f := newFixture(t, pool)
	s := NewStore(pool, Rules{})
	r := NewReconciler(pool, ReconcilerOptions{})
	const card = "AA0000000001"
	f.upload(t, tapSpec{"IN", card, "2026-11-18 07:00:00"}, tapSpec{"OUT", card, "2026-11-18 16:00:00"})
	drain(t, r)
	// The card changes hands: Bertil's from now on.
	exec(t, pool, `UPDATE cards SET org_id = $1, person_id = $2 WHERE card_number = $3`, f.sub, f.bertil, card)
	exec(t, pool, `DELETE FROM card_chips WHERE chip_uid = '04A1B2C3D4E5F6'`)
	f.upload(t, tapSpec{"IN", card, "2026-11-19 07:00:00"}, tapSpec{"OUT", card, "2026-11-19 16:00:00"},
		tapSpec{"TOG2", card, "2026-11-19 07:10:00"}, tapSpec{"TOG2", card, "2026-11-19 15:50:00"})
	drain(t, r)
	// The second site's kiosk moves to the first site.
	exec(t, pool, `INSERT INTO terminal_assignments (terminal_id, valid_from, site_id, direction, recorded_by)
		VALUES ('TOG2', '2026-11-20 00:00:00+01', $1, 'toggle', 'test')`, f.site)
	f.upload(t, tapSpec{"TOG2", card, "2026-11-20 07:00:00"}, tapSpec{"TOG2", card, "2026-11-20 16:00:00"})
	drain(t, r)
	if n := scalar(t, pool, `SELECT count(*) FROM tap_resolutions WHERE site_id = $1 AND card_ident = $2 AND person_id = $3`, f.site, card, f.bertil); n != 4 {
		t.Fatalf("%d taps at the site counted for Bertil before the assignment, want 4", n)
	}

	correct(t, s, f.owner, Correction{Kind: AssignCard, SiteID: f.site, PersonID: f.anna, CardIdent: card, Reason: "kortet är Annas"})
	drain(t, r)
	type count struct{ Site, Person, Taps int64 }
	rows, err := pool.Query(context.Background(), `SELECT site_id, person_id, count(*) FROM tap_resolutions
		WHERE card_ident = $1 GROUP BY 1, 2 ORDER BY 1, 2`, card)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[count])
	if err != nil {
		t.Fatal(err)
	}
	want := []count{{f.site, f.anna, 6}, {f.site2, f.bertil, 2}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("taps of the card by site and person (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"11-18 07:00 - 11-18 16:00", "11-19 07:00 - 11-19 16:00", "11-20 07:00 - 11-20 16:00"},
		f.periods(t, f.site, f.anna)); diff != "" {
		t.Errorf("Anna's periods at the site (-want +got):\n%s", diff)
	}
}
