package lineproto

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// readBufSize is one Read's buffer; frames may span Reads.
const readBufSize = 256

// Stats are a Driver's counters since it started.
type Stats struct {
	// Sightings counts good frames (a held card may give many).
	Sightings uint64
	// Taps counts presentations handed to the Handler.
	Taps uint64
	// BadLines counts whole frames that are not a UID.
	BadLines uint64
	// Overlong counts frames discarded for passing MaxLineLen.
	Overlong uint64
	// Truncated counts partial frames discarded after silence, an unplug
	// or (STX) a new frame's start.
	Truncated uint64
	// Noise counts runs of bytes outside STX/ETX frames.
	Noise uint64
}

// Errors returns all dropped input: what reader.State calls ChecksumErrors.
func (s Stats) Errors() uint64 { return s.BadLines + s.Overlong + s.Truncated + s.Noise }

// Driver reads a line reader; it implements reader.Driver.
type Driver struct {
	cfg     Config
	link    *serialport.Link
	holdOff reader.HoldOff

	sightings, taps, badLines, overlong, truncated, noise atomic.Uint64

	mu      sync.Mutex
	lastErr string
}

var _ reader.Driver = (*Driver)(nil)

// New validates cfg and returns a Driver; nothing is opened until Run.
func New(cfg Config) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	link, err := serialport.NewLink(serialport.LinkConfig{
		Port:       cfg.Port,
		MinBackoff: cfg.MinBackoff,
		MaxBackoff: cfg.MaxBackoff,
		Logger:     cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("lineproto: %w", err)
	}
	d := &Driver{cfg: cfg, link: link}
	d.holdOff.Window = cfg.HoldOff
	return d, nil
}

// Run reads cards until ctx ends, calling h once per presentation and
// writing the configured feedback command, if any. It returns nil when ctx
// ends; unplugs, silence and garbage do not end it.
func (d *Driver) Run(ctx context.Context, h reader.Handler) error {
	if err := d.link.Run(ctx, func(ctx context.Context, p *serialport.Port) error {
		return d.session(ctx, p, h)
	}); err != nil {
		return fmt.Errorf("lineproto: %w", err)
	}
	return nil
}

// session reads one open port until it fails or ctx ends.
func (d *Driver) session(ctx context.Context, p *serialport.Port, h reader.Handler) error {
	fr := newFramer(d.cfg.Framing)
	buf := make([]byte, readBufSize)
	for ctx.Err() == nil {
		n, err := p.Read(buf)
		switch {
		case errors.Is(err, serialport.ErrTimeout):
			d.count(fr.gap())
			continue
		case err != nil:
			d.count(fr.gap())
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		at := time.Now()
		for _, ev := range fr.feed(buf[:n]) {
			if ev.kind != evLine {
				d.count([]event{ev})
				continue
			}
			if err := d.line(ctx, p, h, ev.line, at); err != nil {
				return err
			}
		}
	}
	return nil
}

// line handles one whole frame.
func (d *Driver) line(ctx context.Context, p *serialport.Port, h reader.Handler, line []byte, at time.Time) error {
	uid, err := d.cfg.Format.ParseLine(line)
	if err != nil {
		d.badLines.Add(1)
		d.setLastErr(err)
		return nil
	}
	d.sightings.Add(1)
	id := reader.CardID(uid, "")
	if !d.holdOff.Fresh(id, at) {
		return nil
	}
	d.taps.Add(1)
	fb := h(ctx, reader.Read{CardID: id, UID: uid, Reader: d.cfg.Name, At: at})
	if cmd := d.cfg.Feedback[fb.Outcome]; len(cmd) > 0 {
		if _, err := p.Write(cmd); err != nil {
			return fmt.Errorf("lineproto: feedback: %w", err)
		}
	}
	return nil
}

// count records dropped input.
func (d *Driver) count(evs []event) {
	for _, ev := range evs {
		switch ev.kind {
		case evOverlong:
			d.overlong.Add(1)
			d.setLastErr(fmt.Errorf("lineproto: frame longer than %d bytes", MaxLineLen))
		case evTruncated:
			d.truncated.Add(1)
			d.setLastErr(errors.New("lineproto: truncated frame"))
		case evNoise:
			d.noise.Add(1)
			d.setLastErr(errors.New("lineproto: noise between frames"))
		}
	}
}

func (d *Driver) setLastErr(err error) {
	d.mu.Lock()
	d.lastErr = err.Error()
	d.mu.Unlock()
}

// Stats returns the driver's counters now.
func (d *Driver) Stats() Stats {
	return Stats{
		Sightings: d.sightings.Load(),
		Taps:      d.taps.Load(),
		BadLines:  d.badLines.Load(),
		Overlong:  d.overlong.Load(),
		Truncated: d.truncated.Load(),
		Noise:     d.noise.Load(),
	}
}

// State returns the reader's state: Online while the port is open (a line
// reader is silent when idle, so there is nothing else to supervise);
// Frames counts good frames and ChecksumErrors all dropped input;
// LastError is why the port is down when offline, else the latest dropped
// input.
func (d *Driver) State() reader.State {
	ls := d.link.Stats()
	s := d.Stats()
	d.mu.Lock()
	lastErr := d.lastErr
	d.mu.Unlock()
	// Offline, why the port is down matters most; online, the latest bad
	// input.
	if !ls.Online && ls.LastError != "" || lastErr == "" {
		lastErr = ls.LastError
	}
	return reader.State{
		Online:         ls.Online,
		Model:          fmt.Sprintf("line reader (frame=%v, order=%v)", d.cfg.Framing, d.cfg.Format.Order),
		Frames:         s.Sightings,
		ChecksumErrors: s.Errors(),
		Reopens:        ls.Reopens,
		LastError:      lastErr,
	}
}
