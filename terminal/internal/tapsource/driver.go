package tapsource

import (
	"context"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Driver adapts a firmware-bridge card reader (OSDP, PN532, line reader)
// to a Source: each card presentation is recorded through the handler, and
// the outcome is shown on the reader at once.
type Driver struct {
	D reader.Driver
	// Name names the reader on a terminal with several ("in", "out").
	Name string
}

// Run reads cards until ctx ends.
func (d *Driver) Run(ctx context.Context, h Handler) error {
	return d.D.Run(ctx, func(ctx context.Context, r reader.Read) reader.Feedback {
		name := r.Reader
		if name == "" {
			name = d.Name
		}
		return ReaderFeedback(h(ctx, Read{CardID: r.CardID, Reader: name}))
	})
}

// State reports the reader's state in one word for the terminal's Status.
func (d *Driver) State() string { return d.D.State().String() }

// refusals are the answers a reader shows as a refusal: the tap is
// recorded, but the card may not be used here.
var refusals = map[string]bool{
	"blocked_id06": true, "blocked_site": true, "not_activated": true,
	"expired": true, "terminated": true, "unknown_status": true,
}

// ReaderFeedback maps what the kiosk decided to what the reader shows:
// green for an accepted card, red with the reason for a refused one, amber
// for a tap recorded without card data to judge it by (an unknown card, or
// no card data yet), and red for a tap that could not be recorded.
func ReaderFeedback(fb Feedback) reader.Feedback {
	switch {
	case !fb.Recorded:
		return reader.Feedback{Outcome: reader.NotRecorded, Reason: fb.Answer}
	case fb.Answer == "accepted":
		return reader.Feedback{Outcome: reader.Accepted}
	case refusals[fb.Answer]:
		return reader.Feedback{Outcome: reader.Refused, Reason: fb.Answer}
	}
	return reader.Feedback{Outcome: reader.RecordedOffline, Reason: fb.Answer}
}
