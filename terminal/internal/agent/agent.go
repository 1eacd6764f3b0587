// Package agent is the kiosk agent: it joins a card reader, the outbox, the
// card cache and the uplink. Every card presented becomes a tap that is
// durable in the outbox before the reader is told anything (design invariant
// 1), whether or not the network is up, and whatever the card cache says
// about the card (invariant 9): the cache only decides what the kiosk shows.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/cardcache"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
	"github.com/liggare/liggare/terminal/internal/uplink"
	"golang.org/x/sync/errgroup"
)

// Answers for a recorded tap, stored with it (syncproto.Tap.Answer). A card
// status other than active is the answer as it is, so a status added by a
// newer server reaches the kiosk and the ledger unchanged.
const (
	// AnswerAccepted: the card is active on this site.
	AnswerAccepted = "accepted"
	// The refusals that are card statuses (syncproto), listed again so that
	// every answer is in one place.
	AnswerBlockedID06   = syncproto.CardBlockedID06
	AnswerBlockedSite   = syncproto.CardBlockedSite
	AnswerNotActivated  = syncproto.CardNotActivated
	AnswerExpired       = syncproto.CardExpired
	AnswerTerminated    = syncproto.CardTerminated
	AnswerUnknownCard   = "unknown_card"   // the card cache is complete and lacks the card
	AnswerUnknownStatus = "unknown_status" // the cache holds a status that is no word
	// AnswerRecorded: the terminal has no card data yet (no snapshot ever
	// completed, or no card cache): it can only say the tap was recorded.
	AnswerRecorded = "recorded"
)

// Answers for a tap that was not recorded.
const (
	AnswerOutboxFull  = "outbox_full"
	AnswerStorageFail = "storage_error"
	AnswerUnreadable  = "unreadable_card"
)

// Agent runs one kiosk.
type Agent struct {
	Outbox *outbox.Outbox
	// Cards is the card data the kiosk answers from. When nil every tap
	// is answered AnswerRecorded.
	Cards  *cardcache.Cache
	Uplink *uplink.Uplink
	Reader tapsource.Source
	Clock  uplink.Clock
	Logger *slog.Logger
	// Observe, when set, is called at the end of every Record with what it
	// answered, recorded or not, before the reader is told. It runs on the
	// reader's goroutine, so it must not block: the kiosk screen and the
	// terminal's tap journal only hand the observation on.
	Observe func(Observation)
}

// Observation is one card presentation and what Record answered, for
// Agent.Observe.
type Observation struct {
	Read tapsource.Read
	// At is the tap's time by the device clock, as stored with it.
	At time.Time
	// Epoch is the outbox's store epoch: with Feedback.Seq it names a
	// recorded tap.
	Epoch    int64
	Feedback tapsource.Feedback
}

// Run runs the reader and the uplink until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Reader.Run(ctx, a.Record) })
	g.Go(func() error { return a.Uplink.Run(ctx) })
	return g.Wait()
}

// Record makes one card presentation durable and says what to show. The
// answer comes from the card cache, never from the network; the tap is
// recorded whatever it is. Only a card id that is no card id, or an outbox
// that cannot take the tap, leaves the tap unrecorded.
func (a *Agent) Record(ctx context.Context, r tapsource.Read) tapsource.Feedback {
	clk := a.Clock.Now()
	fb := a.record(ctx, r, clk)
	if a.Observe != nil {
		a.Observe(Observation{Read: r, At: time.UnixMicro(clk.WallMicros), Epoch: a.Outbox.Epoch(), Feedback: fb})
	}
	return fb
}

func (a *Agent) record(ctx context.Context, r tapsource.Read, clk syncproto.Clock) tapsource.Feedback {
	tap := syncproto.Tap{CardID: r.CardID, Reader: r.Reader, Clock: clk}
	if err := tap.Check(); err != nil {
		// Not a card identity (a misread, line noise): nothing to record,
		// and a tap the server must refuse would only sit in the outbox.
		a.Logger.Warn("card_read_refused", "err", err)
		return tapsource.Feedback{Answer: AnswerUnreadable}
	}
	fb := a.judge(r.CardID)
	tap.Answer = fb.Answer
	taps, err := a.Outbox.Append(ctx, tap)
	switch {
	case errors.Is(err, outbox.ErrFull):
		a.Logger.Error("tap_refused_outbox_full")
		return tapsource.Feedback{Answer: AnswerOutboxFull}
	case err != nil:
		a.Logger.Error("tap_not_recorded", "err", err)
		return tapsource.Feedback{Answer: AnswerStorageFail}
	}
	fb.Recorded, fb.Seq = true, taps[0].Seq
	return fb
}

// judge says what the kiosk shows for a card, from the card cache alone.
func (a *Agent) judge(cardID string) tapsource.Feedback {
	if a.Cards == nil {
		return tapsource.Feedback{Answer: AnswerRecorded}
	}
	ci, ok := a.Cards.Lookup(cardID)
	switch {
	case ok:
		return tapsource.Feedback{Answer: answerFor(ci.Status), Name: ci.Name, Employer: ci.Employer}
	case a.Cards.Loaded():
		return tapsource.Feedback{Answer: AnswerUnknownCard}
	}
	return tapsource.Feedback{Answer: AnswerRecorded}
}

// answerFor maps a card status to the kiosk's answer. A status is at most
// syncproto.MaxIDBytes long (the cache checks), but it travels on in the
// tap and on the feed's line protocol: only a lower-case word passes.
func answerFor(status string) string {
	if status == syncproto.CardActive {
		return AnswerAccepted
	}
	if status == "" {
		return AnswerUnknownStatus
	}
	for _, c := range status {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return AnswerUnknownStatus
		}
	}
	return status
}
