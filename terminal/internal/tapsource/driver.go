package tapsource

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/liggare/liggare/firmware-bridge/lineproto"
	"github.com/liggare/liggare/firmware-bridge/osdp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// The --reader prefixes naming firmware-bridge drivers.
const (
	SchemeOSDP  = "osdp"
	SchemePN532 = "pn532"
	SchemeLine  = lineproto.Scheme
)

// examples are shown when a spec names no device.
var examples = map[string]string{
	SchemeOSDP:  "osdp:/dev/ttyUSB0?addr=1",
	SchemePN532: "pn532:/dev/ttyS0",
	SchemeLine:  "line:/dev/ttyACM0",
}

// parseDriver builds the driver a --reader value names, with its package's
// own ParseConfig: every option a driver takes is spelled as its package
// documents it. kind is the spec's prefix, already checked.
func parseDriver(kind, spec string, logger *slog.Logger) (*Driver, error) {
	rest, _ := strings.CutPrefix(spec, kind+":")
	if path, _, _ := strings.Cut(rest, "?"); path == "" || rest == spec {
		return nil, fmt.Errorf("tapsource: %s reader needs a device path, e.g. %s", kind, examples[kind])
	}
	var (
		d    reader.Driver
		name string
		err  error
	)
	// Errors never quote the spec: an OSDP spec may hold a key.
	switch kind {
	case SchemeOSDP:
		var cfg osdp.Config
		if cfg, err = osdp.ParseConfig(spec); err == nil {
			cfg.Logger = logger
			name = cfg.PDs[0].Name
			d, err = osdp.New(cfg)
		}
	case SchemePN532:
		var cfg pn532.Config
		if cfg, err = pn532.ParseConfig(spec); err == nil {
			cfg.Logger = logger
			name = cfg.Name
			d, err = pn532.New(cfg)
		}
	case SchemeLine:
		var cfg lineproto.Config
		if cfg, err = lineproto.ParseConfig(spec); err == nil {
			cfg.Logger = logger
			name = cfg.Name
			d, err = lineproto.New(cfg)
		}
	default:
		err = fmt.Errorf("no driver for %q", kind)
	}
	if err != nil {
		return nil, fmt.Errorf("tapsource: %s reader: %w", kind, err)
	}
	return &Driver{D: d, Name: name}, nil
}

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
