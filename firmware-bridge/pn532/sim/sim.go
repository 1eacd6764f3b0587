package sim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/ptypair"
)

// Fault is a one-shot misbehaviour applied to the next command the
// simulator receives (see Sim.Inject).
type Fault uint8

// Faults on demand.
const (
	// Noise writes random bytes before the ACK.
	Noise Fault = iota + 1
	// BadLCS corrupts the response's length checksum.
	BadLCS
	// BadDCS corrupts the response's data checksum.
	BadDCS
	// Truncate sends only the first half of the response.
	Truncate
	// NACK answers the command with a NACK instead of running it.
	NACK
	// Deaf ignores the command: no ACK, no response.
	Deaf
)

// String names the fault.
func (f Fault) String() string {
	switch f {
	case Noise:
		return "noise"
	case BadLCS:
		return "bad_lcs"
	case BadDCS:
		return "bad_dcs"
	case Truncate:
		return "truncate"
	case NACK:
		return "nack"
	case Deaf:
		return "deaf"
	}
	return fmt.Sprintf("fault(%d)", uint8(f))
}

// ErrUnplugged is what Serve returns after Unplug.
var ErrUnplugged = errors.New("pn532 sim: unplugged")

// DefaultFirmware is what the simulator reports: a PN532 with firmware
// v1.6 supporting ISO/IEC 14443 A and B and ISO 18092.
var DefaultFirmware = pn532.Firmware{IC: 0x32, Ver: 1, Rev: 6, Support: 0x07}

// Config configures a Sim. The zero value is a PN532 v1.6.
type Config struct {
	// Firmware is GetFirmwareVersion's answer (zero: DefaultFirmware).
	Firmware pn532.Firmware
	// Seed seeds the noise, so a test's noise is the same every run.
	Seed uint64
	// Logger receives the simulator's log; nil discards it.
	Logger *slog.Logger
}

// Stats counts what the simulator saw and did, for tests to wait on.
type Stats struct {
	Wakes         uint64 // wake-ups heard (0x55 while asleep)
	SAMConfigs    uint64 // SAMConfiguration commands run
	Commands      uint64 // commands run (ACKed and answered)
	Polls         uint64 // InListPassiveTarget commands run
	PollsWithCard uint64 // ... that found the presented card
	Releases      uint64 // InRelease commands run
	GPIOWrites    uint64 // WriteGPIO commands run
	P3            byte   // the P3 port as last written
	NACKsSent     uint64 // commands refused with a NACK (fault)
	NACKsHeard    uint64 // NACKs from the host (each resends the last response)
	ACKsHeard     uint64 // ACKs from the host (aborts)
	BadFrames     uint64 // host frames dropped for a bad checksum or shape
	Ignored       uint64 // commands ignored while silent, asleep or deaf
	Faults        uint64 // faults applied
}

// Sim is a simulated PN532 on its HSU line. Safe for concurrent use: tests
// present and remove cards and inject faults while Serve runs.
type Sim struct {
	cfg Config
	log *slog.Logger

	mu         sync.Mutex
	card       *pn532.TargetA
	faults     []Fault
	silent     bool
	awake      bool   // heard the wake-up since power-up
	configured bool   // SAMConfiguration ran since the wake-up
	line       *line  // the connection Serve is serving, nil if none
	last       []byte // the last response frame, for the host's NACK
	stats      Stats
	changed    chan struct{} // closed and replaced on every change of stats
	rng        *rand.Rand
	replug     chan struct{}
}

// New returns a simulator with no card presented, asleep as after power-up.
func New(cfg Config) *Sim {
	if cfg.Firmware == (pn532.Firmware{}) {
		cfg.Firmware = DefaultFirmware
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sim{
		cfg:     cfg,
		log:     cfg.Logger,
		changed: make(chan struct{}),
		rng:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		replug:  make(chan struct{}, 1),
		stats:   Stats{P3: 0x3F},
	}
}

// Present puts a card with this UID on the reader: an ISO/IEC 14443-4
// smart card like an ID06 2.0 card (SAK 0x20, with an ATS). It replaces
// any card already there.
func (s *Sim) Present(uid []byte) {
	atqa := [2]byte{0x00, 0x04}
	if len(uid) == 7 {
		atqa = [2]byte{0x03, 0x44}
	}
	s.PresentTarget(pn532.TargetA{
		ATQA: atqa,
		SAK:  0x20,
		UID:  uid,
		ATS:  []byte{0x06, 0x75, 0x77, 0x81, 0x02, 0x80},
	})
}

// PresentTarget puts a card described in full on the reader (Tg is set by
// the simulator).
func (s *Sim) PresentTarget(t pn532.TargetA) {
	t.Tg = 1
	t.UID = append([]byte(nil), t.UID...)
	t.ATS = append([]byte(nil), t.ATS...)
	s.mu.Lock()
	s.card = &t
	s.mu.Unlock()
}

// Remove takes the card off the reader.
func (s *Sim) Remove() {
	s.mu.Lock()
	s.card = nil
	s.mu.Unlock()
}

// Inject queues faults; each command received takes the first one queued.
func (s *Sim) Inject(faults ...Fault) {
	s.mu.Lock()
	s.faults = append(s.faults, faults...)
	s.mu.Unlock()
}

// Silence makes the simulator deaf and mute (on) or brings it back (off).
// It comes back as from a power glitch: asleep, needing the wake-up and
// SAMConfiguration again.
func (s *Sim) Silence(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.silent && !on {
		s.awake, s.configured = false, false
	}
	s.silent = on
}

// line is one connection being served.
type line struct {
	conn      io.ReadWriter
	unplugged bool
}

// Unplug pulls the reader out: the connection Serve is serving is closed
// (if it can be), Serve returns ErrUnplugged, and the chip loses power.
// The card, if any, stays on the reader.
func (s *Sim) Unplug() {
	s.mu.Lock()
	ln := s.line
	s.line = nil
	if ln != nil {
		ln.unplugged = true
	}
	s.awake, s.configured = false, false
	s.mu.Unlock()
	if ln == nil {
		return
	}
	if cl, ok := ln.conn.(io.Closer); ok {
		_ = cl.Close()
	}
}

// Replug lets RunPTY plug the reader in again after Unplug.
func (s *Sim) Replug() {
	select {
	case s.replug <- struct{}{}:
	default:
	}
}

// Stats returns the counters now.
func (s *Sim) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Wait blocks until cond holds for the counters, or ctx ends.
func (s *Sim) Wait(ctx context.Context, cond func(Stats) bool) error {
	for {
		s.mu.Lock()
		st, ch := s.stats, s.changed
		s.mu.Unlock()
		if cond(st) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pn532 sim: wait: %w (stats %+v)", ctx.Err(), st)
		case <-ch:
		}
	}
}

// count changes the counters; call with s.mu held.
func (s *Sim) count(f func(*Stats)) {
	f(&s.stats)
	close(s.changed)
	s.changed = make(chan struct{})
}

// RunPTY serves on a pseudo-terminal whose slave is linked at link (the
// path a driver opens), for `make demo` and manual tests. After Unplug it
// waits for Replug, then serves on a new pseudo-terminal behind the same
// link, as a USB reader comes back under its /dev/serial/by-id name. It
// returns nil when ctx ends.
func (s *Sim) RunPTY(ctx context.Context, link string) error {
	for {
		pair, err := ptypair.Open()
		if err != nil {
			return fmt.Errorf("pn532 sim: %w", err)
		}
		if err := pair.Link(link); err != nil {
			_ = pair.Close()
			return fmt.Errorf("pn532 sim: %w", err)
		}
		err = s.Serve(ctx, pair)
		_ = pair.Close()
		if ctx.Err() != nil {
			return nil
		}
		if !errors.Is(err, ErrUnplugged) {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.replug:
		}
	}
}

// Serve speaks the PN532's side of the HSU protocol on conn until ctx
// ends (nil), Unplug (ErrUnplugged) or conn fails. When ctx ends, conn is
// closed if it is an io.Closer, to end a pending Read. The simulator is one
// reader: serve one connection at a time (a new Serve may start while the
// one Unplug ended is still returning).
func (s *Sim) Serve(ctx context.Context, conn io.ReadWriter) error {
	ln := &line{conn: conn}
	s.mu.Lock()
	s.line = ln
	s.mu.Unlock()
	if cl, ok := conn.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { _ = cl.Close() })
		defer stop()
	}
	var parser pn532.Parser
	buf := make([]byte, 512)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := s.receive(conn, &parser, buf[:n]); werr != nil {
				err = werr
			}
		}
		if err != nil {
			s.mu.Lock()
			unplugged := ln.unplugged
			if s.line == ln {
				s.line = nil
			}
			s.mu.Unlock()
			switch {
			case ctx.Err() != nil:
				return nil
			case unplugged:
				return ErrUnplugged
			}
			return fmt.Errorf("pn532 sim: serve: %w", err)
		}
	}
}

// receive handles bytes from the host and writes the answers.
func (s *Sim) receive(w io.Writer, parser *pn532.Parser, b []byte) error {
	s.mu.Lock()
	if s.silent {
		s.mu.Unlock()
		parser.Reset()
		return nil
	}
	if !s.awake {
		i := indexByte(b, 0x55)
		if i < 0 {
			s.mu.Unlock()
			return nil
		}
		s.awake = true
		s.count(func(st *Stats) { st.Wakes++ })
		parser.Reset()
		b = b[i:]
	}
	s.mu.Unlock()
	_, _ = parser.Write(b)
	for {
		f, err := parser.Next()
		if errors.Is(err, pn532.ErrIncomplete) {
			return nil
		}
		var out []byte
		s.mu.Lock()
		if err != nil {
			s.count(func(st *Stats) { st.BadFrames++ })
		} else {
			out = s.handle(f)
		}
		s.mu.Unlock()
		if len(out) > 0 {
			if _, err := w.Write(out); err != nil {
				return fmt.Errorf("pn532 sim: write: %w", err)
			}
		}
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

var (
	ackWire, _   = pn532.Frame{Kind: pn532.KindACK}.MarshalBinary()
	nackWire, _  = pn532.Frame{Kind: pn532.KindNACK}.MarshalBinary()
	errorWire, _ = pn532.Frame{Kind: pn532.KindError}.MarshalBinary()
)

// handle answers one frame from the host; call with s.mu held.
func (s *Sim) handle(f pn532.Frame) []byte {
	switch f.Kind {
	case pn532.KindACK:
		// Aborts a running command; commands here finish at once.
		s.count(func(st *Stats) { st.ACKsHeard++ })
		return nil
	case pn532.KindNACK:
		s.count(func(st *Stats) { st.NACKsHeard++ })
		return s.last
	case pn532.KindError:
		return nil
	}
	code, _ := f.Code()
	if f.TFI != pn532.TFIHost || len(f.Data) == 0 {
		s.count(func(st *Stats) { st.BadFrames++ })
		return nil
	}
	var fault Fault
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
		s.count(func(st *Stats) { st.Faults++ })
		s.log.Debug("pn532_sim_fault", "fault", fault, "command", pn532.Command(code))
	}
	// After the wake-up the C106 is in low-battery mode until
	// SAMConfiguration; other commands are not taken.
	if fault == Deaf || (!s.configured && pn532.Command(code) != pn532.CmdSAMConfiguration) {
		s.count(func(st *Stats) { st.Ignored++ })
		return nil
	}
	if fault == NACK {
		s.count(func(st *Stats) { st.NACKsSent++ })
		return nackWire
	}
	var out []byte
	if fault == Noise {
		noise := make([]byte, 8+s.rng.IntN(24))
		for i := range noise {
			noise[i] = byte(s.rng.UintN(256))
		}
		out = append(out, noise...)
	}
	out = append(out, ackWire...)
	params, ok := s.run(pn532.Command(code), f.Data[1:])
	if !ok {
		return append(out, errorWire...)
	}
	s.count(func(st *Stats) { st.Commands++ })
	resp, err := pn532.Frame{Kind: pn532.KindInfo, TFI: pn532.TFIPN532,
		Data: append([]byte{pn532.Command(code).Response()}, params...)}.MarshalBinary()
	if err != nil {
		return append(out, errorWire...)
	}
	s.last = resp
	bad := append([]byte(nil), resp...)
	switch fault {
	case BadLCS:
		bad[4]++ // 00 00 FF LEN LCS
	case BadDCS:
		bad[len(bad)-2]++ // ... DCS 00
	case Truncate:
		bad = bad[:len(bad)/2]
	}
	return append(out, bad...)
}

// run executes a command and returns its response parameters, or false for
// a command or parameters the simulator does not accept (answered with the
// error frame).
func (s *Sim) run(cmd pn532.Command, p []byte) ([]byte, bool) {
	switch cmd {
	case pn532.CmdGetFirmwareVersion:
		return s.cfg.Firmware.Bytes(), true
	case pn532.CmdSAMConfiguration:
		if len(p) < 1 || p[0] < 1 || p[0] > 4 {
			return nil, false
		}
		s.configured = true
		s.count(func(st *Stats) { st.SAMConfigs++ })
		return nil, true
	case pn532.CmdRFConfiguration:
		if len(p) < 1 {
			return nil, false
		}
		return nil, true
	case pn532.CmdReadGPIO:
		return []byte{s.stats.P3, 0x06, 0x00}, true
	case pn532.CmdWriteGPIO:
		if len(p) != 2 {
			return nil, false
		}
		s.count(func(st *Stats) {
			st.GPIOWrites++
			if p[0]&0x80 != 0 {
				st.P3 = p[0] & 0x3F
			}
		})
		return nil, true
	case pn532.CmdInListPassiveTarget:
		if len(p) < 2 || p[0] < 1 || p[0] > 2 {
			return nil, false
		}
		found := p[1] == 0x00 && s.card != nil
		s.count(func(st *Stats) {
			st.Polls++
			if found {
				st.PollsWithCard++
			}
		})
		if !found {
			return []byte{0x00}, true
		}
		return s.card.AppendTo([]byte{0x01}), true
	case pn532.CmdInRelease:
		if len(p) != 1 {
			return nil, false
		}
		s.count(func(st *Stats) { st.Releases++ })
		return []byte{0x00}, true
	}
	return nil, false
}
