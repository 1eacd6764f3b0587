package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"

	"github.com/liggare/liggare/firmware-bridge/osdp"
)

// Config describes the simulated reader.
type Config struct {
	// Addr is the PD's address.
	Addr byte
	// ID is what it answers to osdp_ID; DefaultID when zero.
	ID osdp.PDID
	// Secure makes it offer the secure channel.
	Secure bool
	// Key is its secure channel base key. Zero: factory-new, it accepts
	// only SCBK-D (install mode) until a CP sets a key with osdp_KEYSET.
	Key osdp.Key
	// ChecksumOnly makes it an old reader that knows only the 8-bit
	// checksum: it refuses packets with a CRC-16 (osdp_NAK, check
	// character error) and says so in osdp_PDCAP.
	ChecksumOnly bool
}

// DefaultID is the identity of a simulated reader unless Config says.
func DefaultID() osdp.PDID {
	return osdp.PDID{
		VendorCode: [3]byte{0x4C, 0x49, 0x47}, // "LIG"
		Model:      1,
		Version:    1,
		Serial:     0x00C0FFEE,
		Firmware:   [3]byte{2, 2, 0},
	}
}

// Command is one command the simulator received, as it understood it.
type Command struct {
	Seq  uint8
	Code byte
	// Data is the command's data, decrypted.
	Data []byte
	// Repeat: the same sequence number as the command before; answered
	// with the previous reply, not acted on.
	Repeat bool
	// Secure: it came through the secure channel.
	Secure bool
}

// Signal is one LED or buzzer command shown on the simulated reader.
type Signal struct {
	LED    *osdp.LED
	Buzzer *osdp.Buzzer
}

// PD is a simulated reader. Its methods are safe for concurrent use: a
// test presents cards and injects faults while Serve runs.
type PD struct {
	cfg Config

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced on every change
	conn      io.Closer     // the stream Serve is using, for Unplug
	unplugged bool

	key      osdp.Key // zero: install mode, SCBK-D only
	cards    []osdp.Frame
	inflight bool // cards[0] went out in the last reply

	lastSeq   int // -1: none since power-up
	lastReply []byte
	pending   *osdp.Session // between osdp_CHLNG and osdp_SCRYPT
	sc        *osdp.Session // the secure channel, when open

	silent                    bool
	drop, corrupt, truncate   int
	noise                     int
	commands                  []Command
	signals                   []Signal
	handshakes, keysInstalled int
}

// New returns a simulated reader, powered up and ready to Serve.
func New(cfg Config) *PD {
	if cfg.ID == (osdp.PDID{}) {
		cfg.ID = DefaultID()
	}
	return &PD{cfg: cfg, key: cfg.Key, lastSeq: -1, changed: make(chan struct{})}
}

// ErrUnplugged is returned by Serve after Unplug.
var ErrUnplugged = errors.New("sim: unplugged")

// Serve answers the commands read from rw until ctx ends, rw fails, or
// Unplug. When rw is an io.Closer it is closed when ctx ends (which is
// what unblocks a pending read).
func (p *PD) Serve(ctx context.Context, rw io.ReadWriter) error {
	return Serve(ctx, rw, p)
}

// Serve runs several simulated readers on one stream, as on a multi-drop
// RS-485 bus: each answers the commands to its address (and broadcasts).
// It returns when ctx ends, rw fails, or one of them is unplugged.
func Serve(ctx context.Context, rw io.ReadWriter, pds ...*PD) error {
	if c, ok := rw.(io.Closer); ok {
		for _, p := range pds {
			p.mu.Lock()
			p.conn, p.unplugged = c, false
			p.mu.Unlock()
		}
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
	}
	fr := osdp.NewFrameReader(rw)
	for {
		f, err := fr.ReadFrame()
		switch {
		case errors.Is(err, osdp.ErrChecksum), errors.Is(err, osdp.ErrFormat):
			// A garbled command cannot be trusted even for its address:
			// say nothing, as real PDs do; the CP will send it again.
			continue
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			for _, p := range pds {
				p.mu.Lock()
				unplugged := p.unplugged
				p.mu.Unlock()
				if unplugged {
					return ErrUnplugged
				}
			}
			return fmt.Errorf("sim: %w", err)
		}
		if f.Reply {
			continue
		}
		for _, p := range pds {
			if f.Addr != p.cfg.Addr && f.Addr != osdp.BroadcastAddr {
				continue
			}
			out := p.handle(f)
			if len(out) == 0 {
				continue
			}
			if _, err := rw.Write(out); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("sim: write: %w", err)
			}
		}
	}
}

// Unplug closes the stream Serve is using, as if the reader's cable were
// pulled; Serve returns ErrUnplugged. The PD keeps its state (key, cards
// not yet delivered), as a reader on its own power supply would.
func (p *PD) Unplug() error {
	p.mu.Lock()
	c := p.conn
	p.conn, p.unplugged = nil, true
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	return c.Close()
}

// Present holds a card with the given chip UID to the reader: it is
// reported in the reply to a coming osdp_POLL.
func (p *PD) Present(uid []byte) {
	raw := osdp.RawCard{Format: osdp.FormatRaw, Bits: 8 * len(uid), Data: slices.Clone(uid)}
	p.present(osdp.Frame{Code: osdp.ReplyRAW, Data: raw.Marshal()})
}

// PresentNumber holds a card to a reader that reads card numbers and
// reports them as osdp_FMT text.
func (p *PD) PresentNumber(number string) {
	p.present(osdp.Frame{Code: osdp.ReplyFMT, Data: osdp.FormattedCard{Text: number}.Marshal()})
}

func (p *PD) present(f osdp.Frame) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cards = append(p.cards, f)
	p.changedLocked()
}

// Noise makes the reader send n random bytes before its next reply.
func (p *PD) Noise(n int) { p.fault(func() { p.noise += n }) }

// CorruptReplies makes the next n replies go out with a wrong CRC.
func (p *PD) CorruptReplies(n int) { p.fault(func() { p.corrupt += n }) }

// TruncateReplies makes the next n replies go out cut short.
func (p *PD) TruncateReplies(n int) { p.fault(func() { p.truncate += n }) }

// DropReplies makes the next n replies get lost on the wire: the commands
// are acted on, their replies never arrive.
func (p *PD) DropReplies(n int) { p.fault(func() { p.drop += n }) }

// SetSilent makes the reader ignore everything (on) or answer again (off).
func (p *PD) SetSilent(on bool) { p.fault(func() { p.silent = on }) }

func (p *PD) fault(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f()
	p.changedLocked()
}

// Commands returns the commands received so far.
func (p *PD) Commands() []Command {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.commands)
}

// Signals returns the LED and buzzer commands shown so far.
func (p *PD) Signals() []Signal {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.signals)
}

// Pending returns how many presented cards the CP has not yet received.
func (p *PD) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.cards)
}

// Key returns the reader's current base key (zero while factory-new).
func (p *PD) Key() osdp.Key {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.key
}

// Secure reports whether the secure channel is open.
func (p *PD) Secure() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sc != nil
}

// Handshakes returns how many secure channel handshakes completed, and how
// many keys were installed with osdp_KEYSET.
func (p *PD) Handshakes() (handshakes, keysInstalled int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.handshakes, p.keysInstalled
}

// Changed returns a channel closed at the next change of the reader's
// state (a command received, a card presented, a fault set), so that a test
// can wait for a condition without sleeping.
func (p *PD) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

func (p *PD) changedLocked() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// nextSeq is the sequence number after s (0 is only sent to start over).
func nextSeq(s int) int {
	if s >= 3 {
		return 1
	}
	return s + 1
}

// handle answers one command addressed to this PD, returning the bytes to
// write (nil: say nothing).
func (p *PD) handle(f osdp.Frame) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	defer p.changedLocked()
	if p.silent {
		return nil
	}
	if p.cfg.ChecksumOnly && !f.Checksum {
		p.commands = append(p.commands, Command{Seq: f.Seq, Code: f.Code, Data: f.Data})
		return p.faults(p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKCheck)}))
	}
	seq := int(f.Seq)
	switch {
	case seq != 0 && seq == p.lastSeq && p.lastReply != nil:
		p.commands = append(p.commands, Command{Seq: f.Seq, Code: f.Code, Data: f.Data, Repeat: true, Secure: f.MAC != nil})
		return p.faults(p.lastReply)
	case seq == 0:
		// The CP starts over: forget the sequence and the secure channel.
		// A card report that may not have arrived is kept.
		p.sc, p.pending, p.inflight = nil, nil, false
	case p.lastSeq < 0 || seq != nextSeq(p.lastSeq):
		p.commands = append(p.commands, Command{Seq: f.Seq, Code: f.Code, Data: f.Data})
		return p.faults(p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSequence)}))
	default:
		// The CP moved on: the last reply arrived.
		if p.inflight {
			p.cards = p.cards[1:]
			p.inflight = false
		}
	}
	reply := p.process(f)
	p.lastSeq, p.lastReply = seq, reply
	return p.faults(reply)
}

// faults applies the pending faults to a reply on its way out.
func (p *PD) faults(reply []byte) []byte {
	out := slices.Clone(reply)
	if len(out) == 0 {
		return nil
	}
	if p.drop > 0 {
		p.drop--
		return nil
	}
	if p.corrupt > 0 {
		p.corrupt--
		out[len(out)-1] ^= 0x5A
	}
	if p.truncate > 0 {
		p.truncate--
		out = out[:len(out)/2]
	}
	if p.noise > 0 {
		junk := make([]byte, p.noise)
		rand.Read(junk)
		out = append(junk, out...)
		p.noise = 0
	}
	return out
}

// process acts on a new command and returns its reply.
func (p *PD) process(f osdp.Frame) []byte {
	secure := f.MAC != nil
	if secure {
		if p.sc == nil {
			return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSecurityBlock)})
		}
		if err := p.sc.Open(&f, true); err != nil {
			p.sc = nil
			return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSecurityBlock)})
		}
	} else if p.sc != nil && f.Code != osdp.CmdCHLNG {
		p.sc = nil
		return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKEncryption)})
	}
	p.commands = append(p.commands, Command{Seq: f.Seq, Code: f.Code, Data: slices.Clone(f.Data), Secure: secure})

	switch f.Code {
	case osdp.CmdPOLL:
		if len(p.cards) > 0 {
			p.inflight = true
			return p.reply(f.Seq, p.cards[0].Code, p.cards[0].Data)
		}
		return p.reply(f.Seq, osdp.ReplyACK, nil)
	case osdp.CmdID:
		return p.reply(f.Seq, osdp.ReplyPDID, p.cfg.ID.Marshal())
	case osdp.CmdCAP:
		crc := byte(1)
		if p.cfg.ChecksumOnly {
			crc = 0
		}
		caps := osdp.Capabilities{
			{Function: osdp.CapCardFormat, Compliance: 1},
			{Function: osdp.CapLED, Compliance: 1, Items: 1},
			{Function: osdp.CapAudible, Compliance: 1, Items: 1},
			{Function: osdp.CapCheckCharacter, Compliance: crc},
			{Function: osdp.CapReaders, Items: 1},
		}
		if p.cfg.Secure {
			caps = append(caps, osdp.Capability{Function: osdp.CapCommSecurity, Compliance: 1, Items: 1})
		}
		return p.reply(f.Seq, osdp.ReplyPDCAP, caps.Marshal())
	case osdp.CmdLED:
		leds, err := osdp.ParseLED(f.Data)
		if err != nil {
			return p.reply(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKLength)})
		}
		for i := range leds {
			p.signals = append(p.signals, Signal{LED: &leds[i]})
		}
		return p.reply(f.Seq, osdp.ReplyACK, nil)
	case osdp.CmdBUZ:
		buz, err := osdp.ParseBUZ(f.Data)
		if err != nil {
			return p.reply(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKLength)})
		}
		p.signals = append(p.signals, Signal{Buzzer: &buz})
		return p.reply(f.Seq, osdp.ReplyACK, nil)
	case osdp.CmdCHLNG:
		return p.challenge(f)
	case osdp.CmdSCRYPT:
		return p.scrypt(f)
	case osdp.CmdKEYSET:
		key, err := osdp.ParseKeySet(f.Data)
		if err != nil || !secure || key.IsZero() {
			return p.reply(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKRecord)})
		}
		// Acknowledge inside the old session, then switch keys: the CP
		// opens a new session with the new key.
		out := p.reply(f.Seq, osdp.ReplyACK, nil)
		p.key, p.sc = key, nil
		p.keysInstalled++
		return out
	}
	return p.reply(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKUnknownCmd)})
}

// challenge answers osdp_CHLNG with osdp_CCRYPT.
func (p *PD) challenge(f osdp.Frame) []byte {
	if !p.cfg.Secure || len(f.SCB) != 2 || f.SCB[0] != osdp.SCS11 || len(f.Data) != 8 {
		return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSecurityBlock)})
	}
	p.sc, p.pending = nil, nil
	key := p.key
	switch flag := f.SCB[1]; {
	case flag == 0 && key.IsZero():
		key = osdp.DefaultKey() // install mode
	case flag == 0, key.IsZero():
		// SCBK-D once a key is set, or a key asked of a factory-new
		// reader: refused.
		return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSecurityBlock)})
	}
	var rndA, rndB [8]byte
	copy(rndA[:], f.Data)
	rand.Read(rndB[:])
	s := osdp.NewSession(key, rndA, rndB)
	p.pending = s
	cuid := p.cfg.ID.CUID()
	data := append(append(cuid[:], rndB[:]...), s.ClientCryptogram()...)
	return p.frame(osdp.Frame{Seq: f.Seq, SCB: []byte{osdp.SCS12, f.SCB[1]}, Code: osdp.ReplyCCRYPT, Data: data})
}

// scrypt answers osdp_SCRYPT with osdp_RMAC_I and opens the channel.
func (p *PD) scrypt(f osdp.Frame) []byte {
	s := p.pending
	p.pending = nil
	if s == nil || len(f.SCB) != 2 || f.SCB[0] != osdp.SCS13 {
		return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSecurityBlock)})
	}
	if err := s.VerifyServerCryptogram(f.Data); err != nil {
		return p.frame(osdp.Frame{Seq: f.Seq, SCB: []byte{osdp.SCS14, 0xFF}, Code: osdp.ReplyRMACI, Data: make([]byte, 16)})
	}
	rmacI := s.InitialRMAC()
	if err := s.Start(rmacI); err != nil {
		return p.plain(f.Seq, osdp.ReplyNAK, []byte{byte(osdp.NAKSecurityBlock)})
	}
	p.sc = s
	p.handshakes++
	return p.frame(osdp.Frame{Seq: f.Seq, SCB: []byte{osdp.SCS14, 0x01}, Code: osdp.ReplyRMACI, Data: rmacI})
}

// reply encodes a reply, through the secure channel when it is open.
func (p *PD) reply(seq uint8, code byte, data []byte) []byte {
	if p.sc != nil {
		out, err := p.sc.Seal(osdp.Frame{Addr: p.cfg.Addr, Reply: true, Seq: seq, Checksum: p.cfg.ChecksumOnly, Code: code, Data: data}, false)
		if err == nil {
			return out
		}
	}
	return p.plain(seq, code, data)
}

// plain encodes a reply in clear.
func (p *PD) plain(seq uint8, code byte, data []byte) []byte {
	return p.frame(osdp.Frame{Seq: seq, Code: code, Data: data})
}

func (p *PD) frame(f osdp.Frame) []byte {
	f.Addr, f.Reply, f.Checksum = p.cfg.Addr, true, p.cfg.ChecksumOnly
	out, err := f.Append(nil)
	if err != nil {
		// Only oversized data can fail, and the simulator builds none; if
		// it did, saying nothing is what a broken reader would do.
		return nil
	}
	return out
}
