package technician

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/liggare/liggare/firmware-bridge/lineproto"
	"github.com/liggare/liggare/firmware-bridge/osdp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Protocols, as named on the command line and in a SPEC's prefix.
const (
	protoOSDP  = "osdp"
	protoPN532 = "pn532"
	protoLine  = lineproto.Scheme
)

// device is a reader opened from a SPEC.
type device struct {
	proto string
	path  string
	drv   reader.Driver
	// show shows a Feedback without a card (OSDP's LED and beeper test);
	// nil when the driver shows feedback only in answer to a card.
	show func(reader.Feedback)
	// mute says why the reader itself will show no feedback ("" when it
	// will): the kiosk screen is then the only feedback.
	mute string
}

// describe names the reader without its options, which may hold a key.
func (d *device) describe() string { return d.proto + " reader on " + d.path }

// openDevice builds the driver SPEC names, exactly as the terminal's
// --reader does. logger receives the driver's own log (nil: none).
func openDevice(spec string, logger *slog.Logger) (*device, error) {
	proto, rest, ok := strings.Cut(spec, ":")
	path, _, _ := strings.Cut(rest, "?")
	if !ok || path == "" {
		return nil, fmt.Errorf("%w: reader %q: want osdp:PATH, pn532:PATH or line:PATH", ErrUsage, proto)
	}
	d := &device{proto: proto, path: path}
	// Errors never quote the spec: an OSDP spec may hold a key.
	switch proto {
	case protoOSDP:
		cfg, err := osdp.ParseConfig(spec)
		if err != nil {
			return nil, err
		}
		cfg.Logger = logger
		drv, err := osdp.New(cfg)
		if err != nil {
			return nil, err
		}
		d.drv, d.show = drv, drv.Show
	case protoPN532:
		cfg, err := pn532.ParseConfig(spec)
		if err != nil {
			return nil, err
		}
		cfg.Logger = logger
		drv, err := pn532.New(cfg)
		if err != nil {
			return nil, err
		}
		d.drv = drv
		if cfg.Beep == 0 {
			d.mute = "a bare PN532 has no LED or beeper; a board with a buzzer on a P3 pin needs gpio_beep=P3x in the spec"
		}
	case protoLine:
		cfg, err := lineproto.ParseConfig(spec)
		if err != nil {
			return nil, err
		}
		cfg.Logger = logger
		drv, err := lineproto.New(cfg)
		if err != nil {
			return nil, err
		}
		d.drv = drv
		if len(cfg.Feedback) == 0 {
			d.mute = "no feedback commands are configured for this line reader (accepted=HEX&refused=HEX&offline=HEX&failed=HEX in the spec); most line readers take none"
		}
	default:
		return nil, fmt.Errorf("%w: unknown protocol %q: want osdp, pn532 or line", ErrUsage, proto)
	}
	return d, nil
}
