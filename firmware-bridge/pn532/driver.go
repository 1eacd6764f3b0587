package pn532

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Log keys, kept consistent across the driver's messages.
const (
	logKeyPort    = "port"
	logKeyErr     = "err"
	logKeyModel   = "model"
	logKeyReader  = "reader"
	logKeyCommand = "command"
	logKeyOutcome = "outcome"
	logKeyBackoff = "backoff"
)

// maxAttempts is how often a command is sent before the driver gives up on
// an exchange: once, and twice more after a NACK, an error frame, a missing
// ACK or a corrupted response.
const maxAttempts = 3

// Backoff between attempts to open the port, and between attempts to wake
// a reader that stopped answering.
const (
	minBackoff = 100 * time.Millisecond
	maxBackoff = 5 * time.Second
	// stableAfter: a session that lasted this long resets the backoff.
	stableAfter = 30 * time.Second
)

// wakeLeadTime is how long the zeros after the HSU wake-up bytes keep the
// line busy while the PN532's oscillator starts (UM0701 PowerDown and the
// C106 application note ask for a "long preamble"; libnfc sends three
// zeros, vendor examples fourteen). 2 ms is the margin chosen here
// (unconfirmed against the datasheet's oscillator start-up time; easy to raise).
const wakeLeadTime = 2 * time.Millisecond

// errNoReply reports an exchange the PN532 did not answer: no ACK after
// maxAttempts sends, or no response after its ACK.
var errNoReply = errors.New("pn532: no reply")

// errSilent reports a reader that missed MaxMissed polls in a row.
var errSilent = errors.New("pn532: reader stopped answering")

// Driver reads ID06 (ISO/IEC 14443 type A) cards from a PN532 on a serial
// port. It implements reader.Driver.
type Driver struct {
	cfg     Config
	log     *slog.Logger
	holdOff reader.HoldOff

	// Owned by Run's goroutine.
	held   string // the card seen by the last poll, "" for none
	opened bool   // the port was opened before
	p3     byte   // P3 port as read at wake-up, beep pin low

	mu sync.Mutex
	st reader.State
}

var _ reader.Driver = (*Driver)(nil)

// New returns a driver for the PN532 that cfg describes. It does not open
// the port: Run does.
func New(cfg Config) (*Driver, error) {
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("pn532: new driver: %w", err)
	}
	cfg = cfg.withDefaults()
	if cfg.Open == nil {
		cfg.Open = serialOpener(cfg.Path, cfg.Baud)
	}
	return &Driver{
		cfg:     cfg,
		log:     cfg.Logger.With(logKeyPort, cfg.Path, logKeyReader, cfg.Name),
		holdOff: reader.HoldOff{Window: cfg.HoldOff},
	}, nil
}

// State returns the reader's state now. Safe for concurrent use.
func (d *Driver) State() reader.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

func (d *Driver) update(f func(*reader.State)) {
	d.mu.Lock()
	f(&d.st)
	d.mu.Unlock()
}

func (d *Driver) setError(err error) {
	if err != nil {
		d.update(func(s *reader.State) { s.LastError = err.Error() })
	}
}

// counted tallies a parsed frame (err nil) or a dropped one.
func (d *Driver) counted(err error) {
	d.update(func(s *reader.State) {
		switch {
		case err == nil:
			s.Frames++
		case IsChecksumError(err):
			s.ChecksumErrors++
			s.LastError = err.Error()
		default:
			s.LastError = err.Error()
		}
	})
}

// Run polls the reader until ctx ends, calling h once per card
// presentation. It opens the port, wakes the PN532, and keeps going through
// unplugs (the port is opened again with backoff), silence (the reader is
// woken again) and garbage (dropped and counted). It returns nil when ctx
// ends. Run must not be called again before it returns.
func (d *Driver) Run(ctx context.Context, h reader.Handler) error {
	backoff := minBackoff
	quiet := false // a failure to open was logged; repeat ones go to debug
	for {
		port, err := d.cfg.Open(ctx)
		if err == nil {
			if d.opened {
				d.update(func(s *reader.State) { s.Reopens++ })
				d.log.Info("pn532_port_reopened")
			}
			d.opened, quiet = true, false
			start := time.Now()
			err = d.session(ctx, port, h)
			if time.Since(start) > stableAfter {
				backoff = minBackoff
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		d.setError(err)
		level := slog.LevelWarn
		if quiet {
			level = slog.LevelDebug
		}
		d.log.Log(ctx, level, "pn532_port_failed", logKeyErr, err, logKeyBackoff, backoff)
		quiet = true
		if sleep(ctx, backoff) != nil {
			return nil
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session runs one open port until it fails or ctx ends: wake the reader,
// poll it, and wake it again whenever it stops answering.
func (d *Driver) session(ctx context.Context, port Port, h reader.Handler) (err error) {
	l := startLink(port, d.counted)
	defer func() {
		d.update(func(s *reader.State) { s.Online = false })
		d.held = ""
		if cerr := l.close(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	backoff := minBackoff
	logged := false // a reader that stays silent is logged once
	for {
		err := d.wake(ctx, l)
		if err == nil {
			backoff, logged = minBackoff, false
			d.update(func(s *reader.State) { s.Online = true })
			d.log.Info("pn532_online", logKeyModel, d.State().Model)
			err = d.poll(ctx, l, h)
			d.update(func(s *reader.State) { s.Online = false })
			d.held = ""
		}
		if ctx.Err() != nil || errors.Is(err, errPortGone) {
			return err
		}
		d.setError(err)
		level := slog.LevelWarn
		if logged {
			level = slog.LevelDebug
		}
		d.log.Log(ctx, level, "pn532_offline", logKeyErr, err, logKeyBackoff, backoff)
		logged = true
		if err := sleep(ctx, backoff); err != nil {
			return err
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// wakeBytes returns the HSU wake-up sequence: 0x55 0x55 and then zeros for
// wakeLeadTime at the line speed (a byte is 10 bits on the line).
func wakeBytes(baud int) []byte {
	zeros := max(3, int(time.Duration(baud)*wakeLeadTime/(10*time.Second))+1)
	b := make([]byte, 2+zeros)
	b[0], b[1] = 0x55, 0x55
	return b
}

// wake brings the PN532 out of low-battery or power-down mode and sets it
// up: the HSU wake-up, SAMConfiguration (which must come first),
// GetFirmwareVersion for State.Model, RFConfiguration so that a poll
// without a card returns at once, and the beep pin low if there is one.
func (d *Driver) wake(ctx context.Context, l *link) error {
	l.flush()
	if err := l.write(wakeBytes(d.cfg.Baud)); err != nil {
		return err
	}
	if _, _, err := d.exchange(ctx, l, CmdSAMConfiguration, samNormal); err != nil {
		return fmt.Errorf("pn532: wake: %w", err)
	}
	p, _, err := d.exchange(ctx, l, CmdGetFirmwareVersion, nil)
	if err != nil {
		return fmt.Errorf("pn532: wake: %w", err)
	}
	fw, err := ParseFirmware(p)
	if err != nil {
		return fmt.Errorf("pn532: wake: %w", err)
	}
	d.update(func(s *reader.State) { s.Model = fw.String() })
	if _, _, err := d.exchange(ctx, l, CmdRFConfiguration, rfMaxRetries); err != nil {
		return fmt.Errorf("pn532: wake: %w", err)
	}
	if d.cfg.Beep != 0 {
		p, _, err := d.exchange(ctx, l, CmdReadGPIO, nil)
		if err != nil {
			return fmt.Errorf("pn532: wake: %w", err)
		}
		g, err := ParseGPIO(p)
		if err != nil {
			return fmt.Errorf("pn532: wake: %w", err)
		}
		d.p3 = g.P3 &^ d.cfg.Beep.bit()
		if _, _, err := d.exchange(ctx, l, CmdWriteGPIO, writeGPIOP3(d.p3)); err != nil {
			return fmt.Errorf("pn532: wake: %w", err)
		}
	}
	return nil
}

// poll lists cards every PollInterval until the port fails, ctx ends or
// the reader misses MaxMissed polls in a row.
//
// Why InListPassiveTarget and not InAutoPoll: with its activation retries
// bounded (RFConfiguration), InListPassiveTarget answers every poll at
// once, card or not, so each poll is also the heartbeat that tells a silent
// reader from an empty one. InAutoPoll stays quiet until a card comes,
// must be aborted to send anything else (WriteGPIO), and its silence means
// nothing. A poll is ~20 bytes each way: at 115200 baud and 150 ms the line
// is idle more than 95% of the time.
func (d *Driver) poll(ctx context.Context, l *link, h reader.Handler) error {
	missed := 0
	next := time.Now()
	for {
		if err := sleep(ctx, time.Until(next)); err != nil {
			return err
		}
		next = time.Now().Add(d.cfg.PollInterval)
		p, at, err := d.exchange(ctx, l, CmdInListPassiveTarget, listOneTypeA)
		if errors.Is(err, errNoReply) {
			if missed++; missed >= d.cfg.MaxMissed {
				return fmt.Errorf("%w: %d polls in a row", errSilent, missed)
			}
			continue
		}
		if err != nil {
			return err
		}
		missed = 0
		ts, err := ParseTargetsA(p)
		if err != nil {
			d.setError(err)
			d.log.Warn("pn532_bad_target_data", logKeyErr, err)
			continue
		}
		if len(ts) == 0 {
			d.held = ""
			continue
		}
		d.sighted(ctx, l, h, ts[0], at)
		// Release the card so that the next poll activates it afresh;
		// a failure here is the next poll's business.
		if _, _, err := d.exchange(ctx, l, CmdInRelease, releaseAll); err != nil && !errors.Is(err, errNoReply) {
			return err
		}
	}
}

// sighted turns a card seen by a poll into a tap when it is a new
// presentation: not the card the previous poll saw, and not seen within the
// hold-off.
func (d *Driver) sighted(ctx context.Context, l *link, h reader.Handler, t TargetA, at time.Time) {
	id := reader.CardID(t.UID, "")
	fresh := d.holdOff.Fresh(id, at) && id != d.held
	d.held = id
	if !fresh {
		return
	}
	if t.RandomUID() {
		d.log.Warn("pn532_random_uid", "detail", "the card shows a random UID, which changes at every power-up and cannot identify it")
	}
	fb := h(ctx, reader.Read{CardID: id, UID: t.UID, Reader: d.cfg.Name, At: at})
	d.log.Debug("pn532_tap", logKeyOutcome, fb.Outcome)
	d.feedback(ctx, l, fb)
}

// beep is one step of a buzzer pattern.
type beep struct {
	on  bool
	dur time.Duration
}

// beepPatterns follow reader.Outcome's descriptions.
var beepPatterns = map[reader.Outcome][]beep{
	reader.Accepted:        {{true, 100 * time.Millisecond}},
	reader.Refused:         {{true, 600 * time.Millisecond}},
	reader.RecordedOffline: {{true, 100 * time.Millisecond}, {false, 100 * time.Millisecond}, {true, 100 * time.Millisecond}},
	reader.NotRecorded: {{true, 100 * time.Millisecond}, {false, 100 * time.Millisecond}, {true, 100 * time.Millisecond},
		{false, 100 * time.Millisecond}, {true, 100 * time.Millisecond}},
}

// feedback sounds the outcome on a buzzer wired to a P3 pin, if the board
// has one (Config.Beep); the bare PN532 module has no LED or buzzer, so
// otherwise the kiosk screen is the only feedback. The pattern runs inline
// (at most 500 ms): the worker is still at the reader and the card is
// still on it.
func (d *Driver) feedback(ctx context.Context, l *link, fb reader.Feedback) {
	pattern := beepPatterns[fb.Outcome]
	if d.cfg.Beep == 0 || len(pattern) == 0 {
		return
	}
	set := func(ctx context.Context, on bool) error {
		p3 := d.p3
		if on {
			p3 |= d.cfg.Beep.bit()
		}
		_, _, err := d.exchange(ctx, l, CmdWriteGPIO, writeGPIOP3(p3))
		return err
	}
	// Whatever happens, leave the buzzer off, even when ctx has ended.
	defer func() {
		off, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if err := set(off, false); err != nil {
			d.log.Warn("pn532_beep_failed", logKeyErr, err)
		}
	}()
	for _, b := range pattern {
		if err := set(ctx, b.on); err != nil {
			d.log.Warn("pn532_beep_failed", logKeyErr, err)
			return
		}
		if sleep(ctx, b.dur) != nil {
			return
		}
	}
}

// exchange sends a command and returns its response parameters (after the
// response code) and when the response's last byte arrived.
//
// The handshake (UM0701 §6.2): the PN532 ACKs a command within a few
// milliseconds, then answers. The command is sent again, counting a retry,
// after a NACK or an error frame (the PN532 did not take it), after no ACK
// within AckTimeout (lost on the line), or after a corrupted frame where
// the response should be (every command used here is safe to repeat). No
// response within ResponseTimeout after the ACK is given up: the host's
// ACK aborts the command and the exchange fails with errNoReply.
func (d *Driver) exchange(ctx context.Context, l *link, cmd Command, params []byte) ([]byte, time.Time, error) {
	wire, err := CommandFrame(cmd, params...).MarshalBinary()
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("pn532: %v: %w", cmd, err)
	}
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		if attempt > 1 {
			d.update(func(s *reader.State) { s.Retries++ })
		}
		l.flush()
		if err := l.write(wire); err != nil {
			return nil, time.Time{}, err
		}
		deadline := time.Now().Add(d.cfg.AckTimeout)
		acked := false
	wait:
		for {
			e, err := l.next(ctx, deadline)
			switch {
			case errors.Is(err, errTimeout):
				l.abandon()
				if !acked {
					break wait // resend
				}
				d.update(func(s *reader.State) { s.MissedPolls++ })
				if err := l.write(ackFrame); err != nil {
					return nil, time.Time{}, err
				}
				return nil, time.Time{}, fmt.Errorf("%w: %v: no response within %v", errNoReply, cmd, d.cfg.ResponseTimeout)
			case err != nil:
				return nil, time.Time{}, err
			case e.err != nil:
				// Counted already. Before the ACK, keep waiting:
				// the ACK may still come. After it, the response
				// was lost: ask again.
				if acked {
					break wait
				}
				continue
			}
			switch e.f.Kind {
			case KindACK:
				if !acked {
					acked = true
					deadline = time.Now().Add(d.cfg.ResponseTimeout)
				}
			case KindNACK, KindError:
				d.log.Debug("pn532_command_refused", logKeyCommand, cmd, "frame", e.f.Kind)
				break wait
			case KindInfo:
				if code, _ := e.f.Code(); e.f.TFI == TFIPN532 && code == cmd.Response() {
					return e.f.Data[1:], e.at, nil
				}
				// A stray frame (a late answer to an earlier
				// command): not ours.
			}
		}
	}
	d.update(func(s *reader.State) { s.MissedPolls++ })
	return nil, time.Time{}, fmt.Errorf("%w: %v: %d attempts", errNoReply, cmd, maxAttempts)
}

// sleep waits for dur or until ctx ends.
func sleep(ctx context.Context, dur time.Duration) error {
	if dur <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
