package agent

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
)

type fixedClock struct{}

func (fixedClock) Now() syncproto.Clock {
	return syncproto.Clock{WallMicros: 1795241523123456, BootID: "boot", MonoNanos: 7384512000000}
}

// newAgent returns an agent with a real outbox and, unless cards is nil, a
// real card cache holding cards as one complete snapshot.
func newAgent(t *testing.T, opts outbox.Options, cards []syncproto.CardInfo) *Agent {
	t.Helper()
	dir := t.TempDir()
	ob, err := outbox.Open(filepath.Join(dir, "outbox.db"), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	a := &Agent{Outbox: ob, Clock: fixedClock{}, Logger: slog.New(slog.DiscardHandler)}
	if cards != nil {
		a.Cards = openCards(t, dir)
		if err := a.Cards.Apply(&syncproto.CardUpdate{Cursor: 1, Reset: true, Final: true, Cards: cards}); err != nil {
			t.Fatal(err)
		}
	}
	return a
}

func openCards(t *testing.T, dir string) *cardcache.Cache {
	t.Helper()
	c, err := cardcache.Open(filepath.Join(dir, "cards.db"), cardcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// lastTap returns the newest tap in the outbox.
func lastTap(t *testing.T, ob *outbox.Outbox) syncproto.Tap {
	t.Helper()
	taps, err := ob.Pending(0, 1<<20)
	if err != nil || len(taps) == 0 {
		t.Fatalf("Pending: %d taps, %v", len(taps), err)
	}
	return taps[len(taps)-1]
}

func TestRecordAnswersFromCardCacheAndAlwaysRecords(t *testing.T) {
	holder := func(id, status string) syncproto.CardInfo {
		return syncproto.CardInfo{CardID: id, Name: "Anna Andersson", Employer: "Bygg AB", Status: status}
	}
	a := newAgent(t, outbox.Options{}, []syncproto.CardInfo{
		holder("AA0000000001", syncproto.CardActive),
		holder("AA0000000002", syncproto.CardBlockedID06),
		holder("AA0000000003", syncproto.CardBlockedSite),
		holder("AA0000000004", syncproto.CardNotActivated),
		holder("AA0000000005", syncproto.CardExpired),
		holder("AA0000000006", syncproto.CardTerminated),
		holder("AA0000000007", "card_type_not_allowed"), // a status from a newer server
		holder("AA0000000008", "Spärrat\nok 99"),        // no word: must not reach the feed's lines
		holder("04A1B2C3D4E580", syncproto.CardActive),  // a chip UID
	})
	for i, tc := range []struct {
		card, answer, text string
		known              bool
	}{
		{"AA0000000001", "accepted", "Välkommen", true},
		{"AA0000000002", "blocked_id06", "Kort spärrat hos ID06", true},
		{"AA0000000003", "blocked_site", "Kort spärrat av arbetsplatsen", true},
		{"AA0000000004", "not_activated", "Kort ej aktiverat", true},
		{"AA0000000005", "expired", "Kortet har gått ut", true},
		{"AA0000000006", "terminated", "Kortet är avslutat", true},
		{"AA0000000007", "card_type_not_allowed", "Kort ej godkänt – registrerat", true},
		{"AA0000000008", "unknown_status", "Kort ej godkänt – registrerat", true},
		{"04A1B2C3D4E580", "accepted", "Välkommen", true},
		{"AA9999999999", "unknown_card", "Okänt kort – registrerat", false},
	} {
		t.Run(tc.card, func(t *testing.T) {
			fb := a.Record(context.Background(), tapsource.Read{CardID: tc.card, Reader: "in"})
			want := tapsource.Feedback{Recorded: true, Seq: uint64(i + 1), Answer: tc.answer}
			if tc.known {
				want.Name, want.Employer = "Anna Andersson", "Bygg AB"
			}
			if diff := cmp.Diff(want, fb); diff != "" {
				t.Errorf("Record(%s) (-want +got):\n%s", tc.card, diff)
			}
			// Recorded whatever the answer, with the answer (invariant 9).
			if d := a.Outbox.Stats().Depth; d != uint64(i+1) {
				t.Errorf("outbox depth after Record(%s) = %d, want %d", tc.card, d, i+1)
			}
			tap := lastTap(t, a.Outbox)
			if tap.CardID != tc.card || tap.Answer != tc.answer || tap.Reader != "in" || tap.Seq != fb.Seq {
				t.Errorf("stored tap = %+v, want card %s, answer %s, reader in, seq %d", tap, tc.card, tc.answer, fb.Seq)
			}
			if got := KioskText(fb.Answer); got != tc.text {
				t.Errorf("KioskText(%q) = %q, want %q", fb.Answer, got, tc.text)
			}
		})
	}
}

// TestRecordWithoutCardData: a terminal that never completed a snapshot,
// or has no cache, cannot call a card unknown; it records and says so.
func TestRecordWithoutCardData(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, a *Agent)
	}{
		{"no cache", func(*testing.T, *Agent) {}},
		{"empty cache", func(t *testing.T, a *Agent) { a.Cards = openCards(t, t.TempDir()) }},
		{"first snapshot incomplete", func(t *testing.T, a *Agent) {
			a.Cards = openCards(t, t.TempDir())
			u := &syncproto.CardUpdate{Cursor: 4, Reset: true, Cards: []syncproto.CardInfo{{CardID: "AA0000000001", Status: "active"}}}
			if err := a.Cards.Apply(u); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newAgent(t, outbox.Options{}, nil)
			tc.setup(t, a)
			fb := a.Record(context.Background(), tapsource.Read{CardID: "AA0000000001"})
			if want := (tapsource.Feedback{Recorded: true, Seq: 1, Answer: AnswerRecorded}); fb != want {
				t.Errorf("Record = %+v, want %+v", fb, want)
			}
			if tap := lastTap(t, a.Outbox); tap.Answer != AnswerRecorded {
				t.Errorf("stored answer %q, want %q", tap.Answer, AnswerRecorded)
			}
		})
	}
}

// TestRecordDuringSnapshot: while a new snapshot arrives, the kiosk answers
// from the previous one.
func TestRecordDuringSnapshot(t *testing.T) {
	a := newAgent(t, outbox.Options{}, []syncproto.CardInfo{{CardID: "AA0000000001", Status: syncproto.CardActive}})
	u := &syncproto.CardUpdate{Cursor: 9, Reset: true, Cards: []syncproto.CardInfo{{CardID: "AA0000000002", Status: syncproto.CardActive}}}
	if err := a.Cards.Apply(u); err != nil {
		t.Fatal(err)
	}
	for card, want := range map[string]string{"AA0000000001": AnswerAccepted, "AA0000000002": AnswerUnknownCard} {
		if fb := a.Record(context.Background(), tapsource.Read{CardID: card}); !fb.Recorded || fb.Answer != want {
			t.Errorf("Record(%s) = %+v, want recorded, %s", card, fb, want)
		}
	}
}

func TestRecordNotRecorded(t *testing.T) {
	a := newAgent(t, outbox.Options{MaxPending: 1}, []syncproto.CardInfo{{CardID: "AA0000000001", Status: syncproto.CardActive}})
	for _, tc := range []struct {
		card, want string
		depth      uint64
	}{
		{"", AnswerUnreadable, 0},
		{strings.Repeat("A", syncproto.MaxIDBytes+1), AnswerUnreadable, 0},
		{"AA0000000001", AnswerAccepted, 1},
		{"AA0000000001", AnswerOutboxFull, 1}, // MaxPending 1
	} {
		fb := a.Record(context.Background(), tapsource.Read{CardID: tc.card})
		if fb.Answer != tc.want || fb.Recorded != (tc.want == AnswerAccepted) {
			t.Errorf("Record(%.20q) = %+v, want answer %s", tc.card, fb, tc.want)
		}
		if fb.Recorded != (fb.Seq != 0) || (!fb.Recorded && fb.Name != "") {
			t.Errorf("Record(%.20q) = %+v: seq and name only for a recorded tap", tc.card, fb)
		}
		if d := a.Outbox.Stats().Depth; d != tc.depth {
			t.Errorf("outbox depth after Record(%.20q) = %d, want %d", tc.card, d, tc.depth)
		}
	}
}

func TestKioskTextForEveryAnswer(t *testing.T) {
	for _, answer := range []string{
		AnswerAccepted, AnswerBlockedID06, AnswerBlockedSite, AnswerNotActivated, AnswerExpired,
		AnswerTerminated, AnswerUnknownCard, AnswerUnknownStatus, AnswerRecorded,
		AnswerOutboxFull, AnswerStorageFail, AnswerUnreadable,
	} {
		if _, ok := kioskTexts[answer]; !ok {
			t.Errorf("no kiosk text for answer %q", answer)
		}
		if len(answer) > syncproto.MaxIDBytes {
			t.Errorf("answer %q is longer than a tap's Answer may be", answer)
		}
	}
	if got := KioskText("some_future_status"); got != fallbackText {
		t.Errorf("KioskText(some_future_status) = %q, want %q", got, fallbackText)
	}
}

func TestObserveSeesEveryAnswer(t *testing.T) {
	a := newAgent(t, outbox.Options{}, []syncproto.CardInfo{
		{CardID: "AA0000000001", Name: "Åsa Öberg", Employer: "Bygg AB", Status: syncproto.CardActive}})
	var seen []Observation
	a.Observe = func(o Observation) { seen = append(seen, o) }
	ctx := context.Background()
	fb := a.Record(ctx, tapsource.Read{CardID: "AA0000000001", Reader: "in"})
	a.Record(ctx, tapsource.Read{CardID: ""})
	want := []Observation{
		{Read: tapsource.Read{CardID: "AA0000000001", Reader: "in"}, At: time.UnixMicro(fixedClock{}.Now().WallMicros),
			Epoch: a.Outbox.Epoch(), Feedback: fb},
		{Read: tapsource.Read{CardID: ""}, At: time.UnixMicro(fixedClock{}.Now().WallMicros),
			Epoch: a.Outbox.Epoch(), Feedback: tapsource.Feedback{Answer: AnswerUnreadable}},
	}
	if diff := cmp.Diff(want, seen); diff != "" {
		t.Errorf("observations (-want +got):\n%s", diff)
	}
	if !fb.Recorded || fb.Name != "Åsa Öberg" {
		t.Errorf("Record = %+v, want recorded, with the holder's name", fb)
	}
}
