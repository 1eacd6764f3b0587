package tapsource

import (
	"context"
	"testing"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

func TestReaderFeedback(t *testing.T) {
	for _, tc := range []struct {
		fb   Feedback
		want reader.Feedback
	}{
		{Feedback{Recorded: true, Answer: "accepted"}, reader.Feedback{Outcome: reader.Accepted}},
		{Feedback{Recorded: true, Answer: "blocked_site"}, reader.Feedback{Outcome: reader.Refused, Reason: "blocked_site"}},
		{Feedback{Recorded: true, Answer: "unknown_card"}, reader.Feedback{Outcome: reader.RecordedOffline, Reason: "unknown_card"}},
		{Feedback{Recorded: true, Answer: "recorded"}, reader.Feedback{Outcome: reader.RecordedOffline, Reason: "recorded"}},
		{Feedback{Answer: "outbox_full"}, reader.Feedback{Outcome: reader.NotRecorded, Reason: "outbox_full"}},
	} {
		if got := ReaderFeedback(tc.fb); got != tc.want {
			t.Errorf("ReaderFeedback(%+v) = %+v, want %+v", tc.fb, got, tc.want)
		}
	}
}

// fakeDriver presents cards from a list, as a reader would.
type fakeDriver struct {
	cards []reader.Read
	shown []reader.Feedback
}

func (f *fakeDriver) Run(ctx context.Context, h reader.Handler) error {
	for _, r := range f.cards {
		f.shown = append(f.shown, h(ctx, r))
	}
	return nil
}

func (f *fakeDriver) State() reader.State { return reader.State{Online: true} }

func TestDriverAdapter(t *testing.T) {
	fd := &fakeDriver{cards: []reader.Read{{CardID: "AB0000000001"}, {CardID: "04A1B2C3", Reader: "out"}}}
	d := &Driver{D: fd, Name: "in"}
	var got []Read
	err := d.Run(context.Background(), func(_ context.Context, r Read) Feedback {
		got = append(got, r)
		return Feedback{Recorded: true, Answer: "accepted"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Reader != "in" || got[1].Reader != "out" || got[1].CardID != "04A1B2C3" {
		t.Errorf("reads = %+v", got)
	}
	if len(fd.shown) != 2 || fd.shown[0].Outcome != reader.Accepted {
		t.Errorf("shown = %+v", fd.shown)
	}
	if d.State() != "ok" {
		t.Errorf("State = %q", d.State())
	}
}
