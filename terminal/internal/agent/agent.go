// Package agent is the kiosk agent: it joins a card reader, the outbox and
// the uplink. Every card presented becomes a tap that is durable in the
// outbox before the reader is told anything (design invariant 1), whether or
// not the network is up (invariant 9).
package agent

import (
	"context"
	"errors"
	"log/slog"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/tapsource"
	"github.com/liggare/liggare/terminal/internal/uplink"
	"golang.org/x/sync/errgroup"
)

// Answers shown for a tap.
const (
	AnswerRecorded    = "recorded"
	AnswerOutboxFull  = "outbox_full"
	AnswerStorageFail = "storage_error"
	AnswerUnreadable  = "unreadable_card"
)

// Agent runs one kiosk.
type Agent struct {
	Outbox *outbox.Outbox
	Uplink *uplink.Uplink
	Reader tapsource.Source
	Clock  uplink.Clock
	Logger *slog.Logger
}

// Run runs the reader and the uplink until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.Reader.Run(ctx, a.Record) })
	g.Go(func() error { return a.Uplink.Run(ctx) })
	return g.Wait()
}

// Record makes one card presentation durable and says what to show.
func (a *Agent) Record(ctx context.Context, r tapsource.Read) tapsource.Feedback {
	tap := syncproto.Tap{CardID: r.CardID, Reader: r.Reader, Clock: a.Clock.Now(), Answer: AnswerRecorded}
	if err := tap.Check(); err != nil {
		// Not a card identity (a misread, line noise): nothing to record,
		// and a tap the server must refuse would only sit in the outbox.
		a.Logger.Warn("card_read_refused", "err", err)
		return tapsource.Feedback{Answer: AnswerUnreadable}
	}
	taps, err := a.Outbox.Append(ctx, tap)
	switch {
	case errors.Is(err, outbox.ErrFull):
		a.Logger.Error("tap_refused_outbox_full")
		return tapsource.Feedback{Answer: AnswerOutboxFull}
	case err != nil:
		a.Logger.Error("tap_not_recorded", "err", err)
		return tapsource.Feedback{Answer: AnswerStorageFail}
	}
	return tapsource.Feedback{Recorded: true, Seq: taps[0].Seq, Answer: AnswerRecorded}
}
