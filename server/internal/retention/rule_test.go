package retention

import (
	"math/rand/v2"
	"testing"
	"time"
)

func sthlm(y int, m time.Month, d, hh, mm int) time.Time {
	return time.Date(y, m, d, hh, mm, 0, 0, stockholm)
}

func TestKeepUntil(t *testing.T) {
	for _, tc := range []struct {
		name         string
		start        time.Time
		month, years int
		want         time.Time
	}{
		{"calendar year", sthlm(2023, time.June, 15, 7, 0), 12, 2, sthlm(2026, time.January, 1, 0, 0)},
		{"calendar year, first minute", sthlm(2023, time.January, 1, 0, 0), 12, 2, sthlm(2026, time.January, 1, 0, 0)},
		{"calendar year, last minute", sthlm(2023, time.December, 31, 23, 59), 12, 2, sthlm(2026, time.January, 1, 0, 0)},
		// 23:30 UTC on 31 December is already the new year in Stockholm.
		{"new year in Stockholm, not in UTC", time.Date(2023, time.December, 31, 23, 30, 0, 0, time.UTC), 12, 2,
			sthlm(2027, time.January, 1, 0, 0)},
		{"broken tax year, in its last month", sthlm(2023, time.April, 30, 23, 59), 4, 2, sthlm(2026, time.January, 1, 0, 0)},
		{"broken tax year, month after it ended", sthlm(2023, time.May, 1, 0, 0), 4, 2, sthlm(2027, time.January, 1, 0, 0)},
		{"broken tax year, December", sthlm(2023, time.December, 31, 12, 0), 4, 2, sthlm(2027, time.January, 1, 0, 0)},
		{"broken tax year, January", sthlm(2024, time.January, 2, 12, 0), 4, 2, sthlm(2027, time.January, 1, 0, 0)},
		{"tax year ending January", sthlm(2023, time.January, 31, 12, 0), 1, 2, sthlm(2026, time.January, 1, 0, 0)},
		{"tax year ending January, February", sthlm(2023, time.February, 1, 12, 0), 1, 2, sthlm(2027, time.January, 1, 0, 0)},
		{"tax year ending November, December", sthlm(2023, time.December, 1, 0, 0), 11, 2, sthlm(2027, time.January, 1, 0, 0)},
		{"leap day", sthlm(2024, time.February, 29, 12, 0), 12, 2, sthlm(2027, time.January, 1, 0, 0)},
		{"longer retention", sthlm(2023, time.June, 15, 7, 0), 12, 5, sthlm(2029, time.January, 1, 0, 0)},
		{"too short retention is raised", sthlm(2023, time.June, 15, 7, 0), 12, 0, sthlm(2026, time.January, 1, 0, 0)},
		{"invalid month is read as December", sthlm(2023, time.June, 15, 7, 0), 13, 2, sthlm(2026, time.January, 1, 0, 0)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := KeepUntil(tc.start, tc.month, tc.years); !got.Equal(tc.want) {
				t.Errorf("KeepUntil(%v, %d, %d) = %v, want %v", tc.start, tc.month, tc.years, got, tc.want)
			}
		})
	}
}

func TestCutoff(t *testing.T) {
	for _, tc := range []struct {
		now          time.Time
		month, years int
		want         time.Time
	}{
		{sthlm(2026, time.March, 1, 0, 0), 12, 2, sthlm(2024, time.January, 1, 0, 0)},
		{sthlm(2025, time.December, 31, 23, 59), 12, 2, sthlm(2023, time.January, 1, 0, 0)},
		{sthlm(2026, time.January, 1, 0, 0), 12, 2, sthlm(2024, time.January, 1, 0, 0)},
		{sthlm(2026, time.March, 1, 0, 0), 4, 2, sthlm(2023, time.May, 1, 0, 0)},
		{sthlm(2026, time.March, 1, 0, 0), 12, 3, sthlm(2023, time.January, 1, 0, 0)},
	} {
		if got := Cutoff(tc.now, tc.month, tc.years); !got.Equal(tc.want) {
			t.Errorf("Cutoff(%v, %d, %d) = %v, want %v", tc.now, tc.month, tc.years, got, tc.want)
		}
	}
}

// TestCutoffIsKeepUntilTurnedAround checks the property queries rely on:
// an entry is past retention at now exactly when it started before Cutoff.
func TestCutoffIsKeepUntilTurnedAround(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := sthlm(2018, time.January, 1, 0, 0).Unix()
	hi := sthlm(2032, time.January, 1, 0, 0).Unix()
	at := func() time.Time {
		t := time.Unix(lo+rng.Int64N(hi-lo), 0)
		if rng.IntN(4) == 0 { // often exactly on a month boundary, where mistakes hide
			l := t.In(stockholm)
			t = time.Date(l.Year(), l.Month(), 1, 0, 0, 0, 0, stockholm).Add(time.Duration(rng.IntN(3)-1) * time.Second)
		}
		return t
	}
	for range 200000 {
		start, now := at(), at()
		m, r := 1+rng.IntN(12), 2+rng.IntN(3)
		past := !now.Before(KeepUntil(start, m, r))
		if before := start.Before(Cutoff(now, m, r)); past != before {
			t.Fatalf("start %v, now %v, month %d, years %d: past retention = %v, but start before Cutoff %v = %v",
				start, now, m, r, past, Cutoff(now, m, r), before)
		}
	}
}
