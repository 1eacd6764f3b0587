package ledger

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var stockholm = mustLoad("Europe/Stockholm")

func mustLoad(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

func at(s string) time.Time {
	t, err := time.ParseInLocation("2006-01-02 15:04:05", s, stockholm)
	if err != nil {
		panic(err)
	}
	return t
}

func tap(ref, when string, m Mode) Event { return Event{Ref: ref, At: at(when), Mode: m} }

func TestDeriveCases(t *testing.T) {
	r := DefaultRules
	for _, tc := range []struct {
		name   string
		events []Event
		want   []Period
		marks  map[string]Mark
	}{
		{
			name: "in through terminal A, out through B",
			events: []Event{
				tap("a1", "2026-11-20 07:00:00", ModeIn),
				tap("b1", "2026-11-20 16:00:00", ModeOut),
			},
			want: []Period{{Start: at("2026-11-20 07:00:00"), StartRef: "a1", End: at("2026-11-20 16:00:00"), EndRef: "b1"}},
		},
		{
			name: "toggle: lunch makes two periods",
			events: []Event{
				tap("t1", "2026-11-20 07:00:00", ModeToggle),
				tap("t2", "2026-11-20 11:30:00", ModeToggle),
				tap("t3", "2026-11-20 12:15:00", ModeToggle),
				tap("t4", "2026-11-20 16:00:00", ModeToggle),
			},
			want: []Period{
				{Start: at("2026-11-20 07:00:00"), StartRef: "t1", End: at("2026-11-20 11:30:00"), EndRef: "t2"},
				{Start: at("2026-11-20 12:15:00"), StartRef: "t3", End: at("2026-11-20 16:00:00"), EndRef: "t4"},
			},
		},
		{
			name: "double tap on a toggle reader is kept but not paired",
			events: []Event{
				tap("t1", "2026-11-20 07:00:00", ModeToggle),
				tap("t2", "2026-11-20 07:00:05", ModeToggle),
				tap("t3", "2026-11-20 16:00:00", ModeToggle),
			},
			want:  []Period{{Start: at("2026-11-20 07:00:00"), StartRef: "t1", End: at("2026-11-20 16:00:00"), EndRef: "t3"}},
			marks: map[string]Mark{"t1": MarkCounted, "t2": MarkDouble, "t3": MarkCounted},
		},
		{
			name: "in then out within the window on fixed readers is a real pair",
			events: []Event{
				tap("a1", "2026-11-20 07:00:00", ModeIn),
				tap("b1", "2026-11-20 07:00:10", ModeOut),
			},
			want: []Period{{Start: at("2026-11-20 07:00:00"), StartRef: "a1", End: at("2026-11-20 07:00:10"), EndRef: "b1"}},
		},
		{
			name: "forgotten check-out, checked in next morning",
			events: []Event{
				tap("a1", "2026-11-19 07:00:00", ModeIn),
				tap("a2", "2026-11-20 07:00:00", ModeIn),
				tap("b1", "2026-11-20 16:00:00", ModeOut),
			},
			want: []Period{
				{Start: at("2026-11-19 07:00:00"), StartRef: "a1"},
				{Start: at("2026-11-20 07:00:00"), StartRef: "a2", End: at("2026-11-20 16:00:00"), EndRef: "b1"},
			},
		},
		{
			name: "checked in twice the same day: the first period lacks its check-out",
			events: []Event{
				tap("a1", "2026-11-20 07:00:00", ModeIn),
				tap("a2", "2026-11-20 12:00:00", ModeIn),
			},
			want: []Period{
				{Start: at("2026-11-20 07:00:00"), StartRef: "a1", MissingCheckout: true},
				{Start: at("2026-11-20 12:00:00"), StartRef: "a2"},
			},
		},
		{
			name: "check-out past the limit does not close the period",
			events: []Event{
				tap("a1", "2026-11-20 07:00:00", ModeIn),
				tap("b1", "2026-11-21 08:00:00", ModeOut),
			},
			want: []Period{
				{Start: at("2026-11-20 07:00:00"), StartRef: "a1"},
				{End: at("2026-11-21 08:00:00"), EndRef: "b1", MissingCheckin: true},
			},
		},
		{
			name: "night shift across midnight",
			events: []Event{
				tap("t1", "2026-11-20 22:00:00", ModeToggle),
				tap("t2", "2026-11-21 06:00:00", ModeToggle),
			},
			want: []Period{{Start: at("2026-11-20 22:00:00"), StartRef: "t1", End: at("2026-11-21 06:00:00"), EndRef: "t2"}},
		},
		{
			// 2026-10-25 03:00 CEST becomes 02:00 CET: 22:00 to 06:00 is 9 h.
			name: "night shift across the autumn DST change",
			events: []Event{
				tap("t1", "2026-10-24 22:00:00", ModeToggle),
				tap("t2", "2026-10-25 06:00:00", ModeToggle),
			},
			want: []Period{{Start: at("2026-10-24 22:00:00"), StartRef: "t1", End: at("2026-10-25 06:00:00"), EndRef: "t2"}},
		},
		{
			name: "voided tap is kept and skipped",
			events: []Event{
				tap("t1", "2026-11-20 07:00:00", ModeToggle),
				{Ref: "t2", At: at("2026-11-20 09:00:00"), Mode: ModeToggle, Void: true},
				tap("t3", "2026-11-20 16:00:00", ModeToggle),
			},
			want:  []Period{{Start: at("2026-11-20 07:00:00"), StartRef: "t1", End: at("2026-11-20 16:00:00"), EndRef: "t3"}},
			marks: map[string]Mark{"t1": MarkCounted, "t2": MarkVoid, "t3": MarkCounted},
		},
		{
			name: "manual check-out closes a forgotten period",
			events: []Event{
				tap("a1", "2026-11-20 07:00:00", ModeIn),
				{Ref: "correction:1", At: at("2026-11-20 16:30:00"), Mode: ModeOut, Manual: true},
			},
			want: []Period{{Start: at("2026-11-20 07:00:00"), StartRef: "a1", End: at("2026-11-20 16:30:00"), EndRef: "correction:1", EndManual: true}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Derive(tc.events, r)
			if diff := cmp.Diff(tc.want, got.Periods); diff != "" {
				t.Errorf("Derive periods (-want +got):\n%s", diff)
			}
			for ref, m := range tc.marks {
				if got.Marks[ref] != m {
					t.Errorf("mark of %s = %s, want %s", ref, got.Marks[ref], m)
				}
			}
		})
	}
}

func TestDSTDuration(t *testing.T) {
	p := Derive([]Event{
		tap("t1", "2026-10-24 22:00:00", ModeToggle),
		tap("t2", "2026-10-25 06:00:00", ModeToggle),
	}, DefaultRules).Periods[0]
	if d := p.End.Sub(p.Start); d != 9*time.Hour {
		t.Errorf("autumn night shift lasted %v, want 9h", d)
	}
	p = Derive([]Event{
		tap("t1", "2026-03-28 22:00:00", ModeToggle),
		tap("t2", "2026-03-29 06:00:00", ModeToggle),
	}, DefaultRules).Periods[0]
	if d := p.End.Sub(p.Start); d != 7*time.Hour {
		t.Errorf("spring night shift lasted %v, want 7h", d)
	}
}

func TestOverdue(t *testing.T) {
	p := Period{Start: at("2026-11-20 07:00:00")}
	if p.Overdue(at("2026-11-20 20:00:00"), DefaultRules) {
		t.Error("open 13 h: overdue, want not")
	}
	if !p.Overdue(at("2026-11-21 00:00:01"), DefaultRules) {
		t.Error("open 17 h: not overdue, want overdue")
	}
}

// randomEvents makes a few weeks of a person's taps, with the mess real
// sites make: several readers, double taps, forgotten check-outs, voids and
// manual events.
func randomEvents(rng *rand.Rand) []Event {
	var evs []Event
	day := at("2026-10-20 00:00:00")
	n := 0
	for d := 0; d < 14; d++ {
		t := day.Add(time.Duration(d)*24*time.Hour + 6*time.Hour + time.Duration(rng.IntN(180))*time.Minute)
		for k := rng.IntN(6); k >= 0; k-- {
			n++
			ev := Event{Ref: fmt.Sprintf("tap:%03d", n), At: t, Mode: Mode(1 + rng.IntN(3))}
			switch rng.IntN(10) {
			case 0:
				ev.Void = true
			case 1:
				ev.Manual = true
				ev.Mode = Mode(1 + rng.IntN(2))
				ev.Ref = fmt.Sprintf("correction:%d", n)
			}
			evs = append(evs, ev)
			if rng.IntN(5) == 0 {
				t = t.Add(time.Duration(rng.IntN(40)) * time.Second) // double tap territory
			} else {
				t = t.Add(time.Duration(rng.IntN(20*60)) * time.Minute / 10)
			}
		}
	}
	return evs
}

// TestDeriveIsOrderFree: the same events, shuffled and repeated, always
// give the same ledger.
func TestDeriveIsOrderFree(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for i := 0; i < 500; i++ {
		evs := randomEvents(rng)
		want := Derive(evs, DefaultRules)
		mixed := slices.Clone(evs)
		for range rng.IntN(len(evs) + 1) {
			mixed = append(mixed, evs[rng.IntN(len(evs))])
		}
		rng.Shuffle(len(mixed), func(a, b int) { mixed[a], mixed[b] = mixed[b], mixed[a] })
		if diff := cmp.Diff(want, Derive(mixed, DefaultRules)); diff != "" {
			t.Fatalf("case %d: shuffled and repeated events derive differently (-ordered +shuffled):\n%s", i, diff)
		}
	}
}

// TestSegmentsDeriveIndependently: deriving each segment alone and joining
// the results gives exactly the whole derivation, which is what makes
// re-deriving only the touched segment correct.
func TestSegmentsDeriveIndependently(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for i := 0; i < 500; i++ {
		evs := randomEvents(rng)
		// Sometimes stretch gaps so there are many segments.
		if rng.IntN(2) == 0 {
			for j := range evs {
				evs[j].At = evs[j].At.Add(time.Duration(j/3) * 20 * time.Hour)
			}
		}
		whole := Derive(evs, DefaultRules)
		sorted := slices.Clone(evs)
		SortEvents(sorted)
		joined := Derived{Marks: map[string]Mark{}, Directions: map[string]Mode{}}
		for _, seg := range Segments(sorted, DefaultRules) {
			d := Derive(seg, DefaultRules)
			joined.Periods = append(joined.Periods, d.Periods...)
			for k, v := range d.Marks {
				joined.Marks[k] = v
			}
			for k, v := range d.Directions {
				joined.Directions[k] = v
			}
		}
		if diff := cmp.Diff(whole, joined); diff != "" {
			t.Fatalf("case %d: segments derive differently from the whole (-whole +segments):\n%s", i, diff)
		}
	}
}

func BenchmarkDerive(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	evs := randomEvents(rng)
	b.ReportAllocs()
	for b.Loop() {
		Derive(evs, DefaultRules)
	}
	b.ReportMetric(float64(len(evs)*b.N)/b.Elapsed().Seconds(), "taps/s")
}
