package osdp

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Defaults of Config.
const (
	DefaultBaud         = 9600
	DefaultPollInterval = 200 * time.Millisecond
	DefaultReplyTimeout = 200 * time.Millisecond
	DefaultOfflineAfter = 8
	DefaultGap          = 50 * time.Millisecond
	minReopenDelay      = 100 * time.Millisecond
	maxReopenDelay      = 5 * time.Second
)

// Log keys, kept as constants so that every line uses the same ones.
const (
	logDevice = "device"
	logAddr   = "addr"
	logReader = "reader"
	logModel  = "model"
	logCode   = "code"
	logReason = "reason"
	logErr    = "err"
	logDelay  = "delay"
	logSecure = "secure"
)

// Port is the serial line a Driver speaks on. The driver reads it from one
// goroutine and writes from another, and closes it to stop the reading one:
// Close must unblock a pending Read. A Read may return (0, nil) when it
// timed out with no data.
type Port = io.ReadWriteCloser

// Opener opens the port. The driver calls it again, with a growing delay,
// after the port fails (a USB adapter unplugged) until it succeeds.
type Opener func(ctx context.Context) (Port, error)

// PDConfig is one reader (PD) on the bus.
type PDConfig struct {
	// Addr is the PD's address, 0x00-0x7E.
	Addr byte
	// Name tells readers on one terminal apart in reader.Read.Reader
	// ("in", "out"); empty for the only one.
	Name string
	// Key is the PD's secure channel base key (SCBK). When set, the
	// driver talks to the PD only through the secure channel, and refuses
	// a PD that does not offer it. When zero, it talks in clear.
	Key Key
	// Install allows install mode: when the PD does not accept Key (a
	// factory-new reader), open the secure channel with the default key
	// SCBK-D and set Key with osdp_KEYSET. Turn it off once readers are
	// installed, since anyone on the bus could do the same.
	Install bool
}

// Config configures a Driver.
type Config struct {
	// Device is the serial device path ("/dev/ttyUSB0").
	Device string
	// Baud is the line speed, DefaultBaud when zero.
	Baud int
	// PDs are the readers on the bus, polled in turn.
	PDs []PDConfig
	// PollInterval is how often each PD is polled, DefaultPollInterval
	// when zero.
	PollInterval time.Duration
	// ReplyTimeout is how long to wait for a reply before sending the
	// command again, DefaultReplyTimeout when zero.
	ReplyTimeout time.Duration
	// OfflineAfter is how many replies in a row a PD may miss before it is
	// offline, DefaultOfflineAfter when zero.
	OfflineAfter int
	// HoldOff is how long a card held against a reader counts as one
	// presentation, reader.DefaultHoldOff when zero.
	HoldOff time.Duration
	// Gap is the longest pause inside one packet (see FrameReader.Gap),
	// DefaultGap when zero.
	Gap time.Duration
	// Open opens the port; when nil, Device is opened at Baud through
	// firmware-bridge/serialport.
	Open Opener
	// Logger receives state changes (online, offline, reopen), never card
	// data or keys. Nil discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ReplyTimeout <= 0 {
		c.ReplyTimeout = DefaultReplyTimeout
	}
	if c.OfflineAfter <= 0 {
		c.OfflineAfter = DefaultOfflineAfter
	}
	if c.HoldOff <= 0 {
		c.HoldOff = reader.DefaultHoldOff
	}
	if c.Gap <= 0 {
		c.Gap = DefaultGap
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Driver is the control panel side of OSDP on one serial bus: it polls its
// PDs, turns their card reports into reader.Reads and shows the Feedback on
// them. It implements reader.Driver.
type Driver struct {
	cfg     Config
	log     *slog.Logger
	holdOff reader.HoldOff
	show    chan feedbackReq

	frames, badChecks, retries, missed, reopens atomic.Uint64

	mu      sync.Mutex
	online  []bool
	models  []string
	lastErr string
}

var _ reader.Driver = (*Driver)(nil)

// ErrConfig: the configuration cannot work.
var ErrConfig = errors.New("osdp: bad configuration")

// New checks cfg and returns a Driver; Run starts it.
func New(cfg Config) (*Driver, error) {
	cfg = cfg.withDefaults()
	if len(cfg.PDs) == 0 {
		return nil, fmt.Errorf("%w: no reader addresses", ErrConfig)
	}
	seen := map[byte]bool{}
	for _, pd := range cfg.PDs {
		if pd.Addr > MaxAddr {
			return nil, fmt.Errorf("%w: address %#02x above %#02x", ErrConfig, pd.Addr, MaxAddr)
		}
		if seen[pd.Addr] {
			return nil, fmt.Errorf("%w: address %#02x twice", ErrConfig, pd.Addr)
		}
		seen[pd.Addr] = true
		if pd.Install && pd.Key.IsZero() {
			return nil, fmt.Errorf("%w: install mode needs a key to install", ErrConfig)
		}
	}
	if cfg.Open == nil {
		if cfg.Device == "" {
			return nil, fmt.Errorf("%w: no device", ErrConfig)
		}
		cfg.Open = serialOpener(cfg.Device, cfg.Baud)
	}
	return &Driver{
		cfg:     cfg,
		log:     cfg.Logger.With(logDevice, cfg.Device),
		holdOff: reader.HoldOff{Window: cfg.HoldOff},
		show:    make(chan feedbackReq, 16),
		online:  make([]bool, len(cfg.PDs)),
		models:  make([]string, len(cfg.PDs)),
	}, nil
}

// State returns the link's state now: online when every PD answers.
func (d *Driver) State() reader.State {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := reader.State{
		Online:         true,
		Frames:         d.frames.Load(),
		ChecksumErrors: d.badChecks.Load(),
		Retries:        d.retries.Load(),
		MissedPolls:    d.missed.Load(),
		Reopens:        d.reopens.Load(),
		LastError:      d.lastErr,
	}
	var models []string
	for i, on := range d.online {
		st.Online = st.Online && on
		if d.models[i] != "" {
			models = append(models, d.models[i])
		}
	}
	st.Model = strings.Join(models, "; ")
	return st
}

// Show shows fb on every PD that is online, as if a card had been read:
// the technician's LED and beeper test. It does not wait.
func (d *Driver) Show(fb reader.Feedback) {
	select {
	case d.show <- feedbackReq{pd: -1, fb: fb}:
	default:
	}
}

func (d *Driver) setError(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.lastErr = ""
		return
	}
	d.lastErr = err.Error()
}

// cardRead is a Read on its way to the handler.
type cardRead struct {
	pd   int
	read reader.Read
}

// feedbackReq is a Feedback on its way to PD pd (-1: every PD).
type feedbackReq struct {
	pd int
	fb reader.Feedback
}

// Run polls the readers until ctx ends, calling h once per card
// presentation and showing its Feedback on the reader that read the card.
// It reopens the port with a growing delay after it fails and returns nil
// when ctx ends.
func (d *Driver) Run(ctx context.Context, h reader.Handler) error {
	if h == nil {
		return fmt.Errorf("%w: nil handler", ErrConfig)
	}
	reads := make(chan cardRead, 64)
	feedback := make(chan feedbackReq, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		// The handler runs apart from the poll loop, so that polling (and
		// the other readers) go on while a tap is being committed.
		for {
			select {
			case <-ctx.Done():
				return
			case r := <-reads:
				fb := h(ctx, r.read)
				select {
				case feedback <- feedbackReq{pd: r.pd, fb: fb}:
				default: // the loop is far behind; the feedback would be stale
				}
			}
		}
	})

	delay := minReopenDelay
	opened := false
	for ctx.Err() == nil {
		port, err := d.cfg.Open(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			d.setError(fmt.Errorf("osdp: open: %w", err))
			d.log.Debug("osdp: open failed", logErr, err, logDelay, delay)
			if !sleep(ctx, delay) {
				break
			}
			delay = min(2*delay, maxReopenDelay)
			continue
		}
		if opened {
			d.reopens.Add(1)
			d.log.Info("osdp: port reopened")
		}
		opened = true
		if d.session(ctx, port, reads, feedback) {
			delay = minReopenDelay
		}
		if ctx.Err() == nil && !sleep(ctx, delay) {
			break
		}
	}
	return nil
}

// sleep waits for d or ctx and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// rxEvent is what the read loop saw: a good frame, a garbled one, or the
// error that ended it.
type rxEvent struct {
	f       Frame
	garbled bool
	err     error
}

// errPort marks errors of the port itself: the session is over.
var errPort = errors.New("osdp: port failed")

// errNoReply: a PD missed OfflineAfter replies in a row.
var errNoReply = errors.New("osdp: no reply")

// pd is the driver's view of one PD during a session.
type pd struct {
	idx    int
	cfg    PDConfig
	seq    uint8 // sequence number of the next command
	misses int   // replies missed in a row
	online bool
	// probing: the PD is offline and this is the one osdp_ID that checks
	// whether it is back; no retries.
	probing bool
	// checksum: the PD wants the 8-bit checksum rather than the CRC-16
	// (it said so in osdp_PDCAP, or refused a CRC with NAK).
	checksum bool
	sc       *Session // nil: talking in clear
	queue    []Frame  // feedback commands waiting to be sent
}

// link is one open port: the read loop's events and the writer.
type link struct {
	port   Port
	events chan rxEvent
}

// session runs the poll loop on an open port until the port fails or ctx
// ends, and reports whether any PD answered.
func (d *Driver) session(ctx context.Context, port Port, reads chan<- cardRead, feedback <-chan feedbackReq) (answered bool) {
	sctx, cancel := context.WithCancel(ctx)
	l := &link{port: port, events: make(chan rxEvent, 16)}
	var wg sync.WaitGroup
	wg.Go(func() { d.readLoop(sctx, port, l.events) })
	pds := make([]*pd, len(d.cfg.PDs))
	for i, c := range d.cfg.PDs {
		pds[i] = &pd{idx: i, cfg: c}
	}
	defer func() {
		cancel()
		port.Close() // unblocks the read loop
		wg.Wait()
		for _, p := range pds {
			d.setOnline(p, false, nil)
		}
	}()

	next := time.Now()
	early := false // the last idle ended early, for feedback
	for {
		for _, p := range pds {
			err := d.step(sctx, l, p, reads)
			if p.online {
				answered = true
			}
			if errors.Is(err, errPort) || ctx.Err() != nil {
				if ctx.Err() == nil {
					d.setError(err)
					d.log.Warn("osdp: port failed", logErr, err)
				}
				return answered
			}
		}
		// Feedback still queued goes out at once; a poll schedule that
		// feedback interrupted keeps its time, so the next regular poll is
		// not pushed a whole interval later.
		if queued(pds) {
			continue
		}
		if !early {
			next = next.Add(d.cfg.PollInterval)
		}
		if now := time.Now(); next.Before(now) {
			next = now
		}
		var err error
		if early, err = d.idle(sctx, l, pds, feedback, next); err != nil {
			if ctx.Err() == nil {
				d.setError(err)
				d.log.Warn("osdp: port failed", logErr, err)
			}
			return answered
		}
	}
}

// queued reports whether any reader has commands waiting to be sent.
func queued(pds []*pd) bool {
	for _, p := range pds {
		if len(p.queue) > 0 && p.online {
			return true
		}
	}
	return false
}

// idle waits until the next poll is due, returning early (true) when
// feedback is waiting to be shown.
func (d *Driver) idle(ctx context.Context, l *link, pds []*pd, feedback <-chan feedbackReq, until time.Time) (bool, error) {
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-t.C:
			return false, nil
		case ev := <-l.events:
			if ev.err != nil {
				return false, ev.err
			}
			// Anything else arriving between commands is stale or noise.
		case r := <-feedback:
			d.enqueue(pds, r)
			return true, nil
		case r := <-d.show:
			d.enqueue(pds, r)
			return true, nil
		}
	}
}

// enqueue turns r into LED and buzzer commands for its PD (or all).
func (d *Driver) enqueue(pds []*pd, r feedbackReq) {
	led, buz := Signals(r.fb)
	for _, p := range pds {
		if (r.pd < 0 || r.pd == p.idx) && p.online {
			p.queue = append(p.queue,
				Frame{Code: CmdLED, Data: led.Marshal()},
				Frame{Code: CmdBUZ, Data: buz.Marshal()})
		}
	}
}

// readLoop parses frames off the port until it fails or ctx ends.
func (d *Driver) readLoop(ctx context.Context, port io.Reader, out chan<- rxEvent) {
	fr := NewFrameReader(port)
	fr.Gap = d.cfg.Gap
	for {
		f, err := fr.ReadFrame()
		var ev rxEvent
		switch {
		case err == nil:
			if !f.Reply {
				continue // our own command echoed by a 2-wire adapter
			}
			d.frames.Add(1)
			ev.f = f
		case errors.Is(err, ErrChecksum), errors.Is(err, ErrFormat):
			d.badChecks.Add(1)
			ev.garbled = true
		default:
			ev.err = fmt.Errorf("%w: %w", errPort, err)
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return
		}
		if ev.err != nil {
			return
		}
	}
}

// step does one poll cycle's work for p: bring it up when offline, send
// its queued feedback, poll it.
func (d *Driver) step(ctx context.Context, l *link, p *pd, reads chan<- cardRead) error {
	if !p.online {
		err := d.bringUp(ctx, l, p)
		if err != nil {
			p.sc = nil
			if !errors.Is(err, errPort) && ctx.Err() == nil {
				d.setError(err)
			}
			return err
		}
		d.setOnline(p, true, nil)
		d.setError(nil)
		return nil
	}
	for len(p.queue) > 0 {
		cmd := p.queue[0]
		p.queue = p.queue[1:]
		reply, err := d.exchange(ctx, l, p, cmd)
		if err != nil {
			return d.fail(p, err)
		}
		if reply.Code == ReplyNAK {
			if err := d.nak(p, cmd.Code, reply); err != nil {
				return d.fail(p, err)
			}
		}
	}
	reply, err := d.exchange(ctx, l, p, Frame{Code: CmdPOLL})
	if err != nil {
		return d.fail(p, err)
	}
	return d.fail(p, d.pollReply(ctx, p, reply, reads))
}

// fail takes p offline for any error but nil and ctx's; the next step brings
// it up again from sequence number 0.
func (d *Driver) fail(p *pd, err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	d.setOnline(p, false, err)
	p.sc, p.queue, p.misses = nil, nil, 0
	return err
}

func (d *Driver) setOnline(p *pd, on bool, err error) {
	d.mu.Lock()
	was := d.online[p.idx]
	d.online[p.idx] = on
	if err != nil {
		d.lastErr = err.Error()
	}
	d.mu.Unlock()
	p.online = on
	if was != on {
		if on {
			d.log.Info("osdp: reader online", logAddr, p.cfg.Addr, logReader, p.cfg.Name, logSecure, p.sc != nil)
		} else {
			d.log.Warn("osdp: reader offline", logAddr, p.cfg.Addr, logReader, p.cfg.Name, logErr, err)
		}
	}
}

// NAKError is a PD's refusal of a command.
type NAKError struct {
	Addr    byte
	Command byte
	Reason  NAKReason
}

func (e *NAKError) Error() string {
	return fmt.Sprintf("osdp: PD %#02x refused %s: %s", e.Addr, CodeName(e.Command, false), e.Reason)
}

// nak handles a NAK to an online command. Sequence and security NAKs end
// the session with p (it starts over from sequence 0 and a new secure
// channel); the others refuse this one command, which is dropped.
func (d *Driver) nak(p *pd, cmd byte, reply Frame) error {
	reason, err := ParseNAK(reply.Data)
	if err != nil {
		return err
	}
	nerr := &NAKError{Addr: p.cfg.Addr, Command: cmd, Reason: reason}
	switch reason {
	case NAKSequence, NAKSecurityBlock, NAKEncryption:
		return nerr
	}
	d.log.Debug("osdp: command refused", logAddr, p.cfg.Addr, logCode, CodeName(cmd, false), logReason, reason.String())
	return nil
}

// pollReply handles the reply to osdp_POLL.
func (d *Driver) pollReply(ctx context.Context, p *pd, reply Frame, reads chan<- cardRead) error {
	switch reply.Code {
	case ReplyACK:
		return nil
	case ReplyNAK:
		return d.nak(p, CmdPOLL, reply)
	case ReplyRAW, ReplyFMT:
	default:
		// Status reports, keypad and vendor replies are not needed here.
		d.log.Debug("osdp: reply ignored", logAddr, p.cfg.Addr, logCode, CodeName(reply.Code, true))
		return nil
	}
	uid, number, err := cardData(reply)
	if err != nil {
		// A card report the driver cannot use is not a link failure.
		d.log.Warn("osdp: card data not understood", logAddr, p.cfg.Addr, logErr, err)
		d.setError(err)
		return nil
	}
	r := reader.Read{
		CardID:     reader.CardID(uid, number),
		UID:        uid,
		CardNumber: number,
		Reader:     p.cfg.Name,
		At:         reply.At,
	}
	if r.At.IsZero() {
		r.At = time.Now()
	}
	if !d.holdOff.Fresh(p.cfg.Name+"\x00"+r.CardID, r.At) {
		return nil
	}
	select {
	case reads <- cardRead{pd: p.idx, read: r}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// exchange sends cmd to p and returns the reply to it. A missing or
// garbled reply makes it send the very same bytes again (same sequence
// number, same MAC), so that a PD that did get the command answers with
// its last reply rather than acting twice; after OfflineAfter misses in a
// row it gives up with errNoReply. An offline PD being probed gets one try.
func (d *Driver) exchange(ctx context.Context, l *link, p *pd, cmd Frame) (Frame, error) {
	cmd.Addr, cmd.Seq, cmd.Checksum = p.cfg.Addr, p.seq, p.checksum
	var (
		pkt []byte
		err error
	)
	if p.sc != nil {
		pkt, err = p.sc.Seal(cmd, true)
	} else {
		pkt, err = cmd.Append(nil)
	}
	if err != nil {
		return Frame{}, err
	}
	busy := 0
	for {
		if err := l.send(pkt); err != nil {
			return Frame{}, err
		}
		reply, err := l.await(ctx, p.cfg.Addr, p.seq, d.cfg.ReplyTimeout)
		switch {
		case err == nil && reply.Code == ReplyBUSY && busy < d.cfg.OfflineAfter:
			busy++
			if !sleep(ctx, d.cfg.ReplyTimeout/4) {
				return Frame{}, ctx.Err()
			}
			d.retries.Add(1)
			continue
		case err == nil:
			p.misses = 0
			p.seq = nextSeq(p.seq)
			return d.open(p, cmd.Code, reply)
		case errors.Is(err, errNoReply):
			d.missed.Add(1)
			p.misses++
			if p.probing || p.misses >= d.cfg.OfflineAfter {
				return Frame{}, fmt.Errorf("%w to %s from PD %#02x after %d tries",
					errNoReply, CodeName(cmd.Code, false), p.cfg.Addr, p.misses)
			}
			d.retries.Add(1)
		default:
			return Frame{}, err
		}
	}
}

// open checks a reply's security against p's channel and decrypts it.
func (d *Driver) open(p *pd, cmd byte, reply Frame) (Frame, error) {
	if p.sc == nil {
		if reply.SCB != nil && !isHandshake(reply.SCB) {
			return Frame{}, fmt.Errorf("%w: secure reply %s without a secure channel", ErrMAC, CodeName(reply.Code, true))
		}
		return reply, nil
	}
	if reply.SCB == nil {
		// A PD that lost its session (power cycle) answers in clear; so
		// may one that switched to a new key after osdp_KEYSET.
		if reply.Code == ReplyNAK || (cmd == CmdKEYSET && reply.Code == ReplyACK) {
			return reply, nil
		}
		return Frame{}, fmt.Errorf("%w: %s in clear inside the secure channel", ErrMAC, CodeName(reply.Code, true))
	}
	if err := p.sc.Open(&reply, false); err != nil {
		return Frame{}, err
	}
	return reply, nil
}

func isHandshake(scb []byte) bool {
	return len(scb) > 0 && scb[0] >= SCS11 && scb[0] <= SCS14
}

// nextSeq returns the sequence number after s: 1, 2, 3, 1, ...; 0 is
// only ever sent to start over.
func nextSeq(s uint8) uint8 {
	if s >= 3 {
		return 1
	}
	return s + 1
}

// send writes one packet.
func (l *link) send(pkt []byte) error {
	// Anything that arrived before this command cannot be its reply.
	for {
		select {
		case ev := <-l.events:
			if ev.err != nil {
				return ev.err
			}
			continue
		default:
		}
		break
	}
	if _, err := l.port.Write(pkt); err != nil {
		return fmt.Errorf("%w: write: %w", errPort, err)
	}
	return nil
}

// await waits for the reply from addr with sequence number seq.
func (l *link) await(ctx context.Context, addr, seq byte, timeout time.Duration) (Frame, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return Frame{}, ctx.Err()
		case <-t.C:
			return Frame{}, errNoReply
		case ev := <-l.events:
			switch {
			case ev.err != nil:
				return Frame{}, ev.err
			case ev.garbled:
				return Frame{}, errNoReply
			case ev.f.Addr != addr, ev.f.Seq != seq && ev.f.Code != ReplyBUSY:
				// Stale, or another PD's: keep waiting.
			default:
				return ev.f, nil
			}
		}
	}
}

// bringUp starts over with an offline PD: sequence 0, osdp_ID, osdp_CAP,
// and the secure channel when p has a key.
func (d *Driver) bringUp(ctx context.Context, l *link, p *pd) error {
	p.seq, p.sc, p.misses, p.queue = 0, nil, 0, nil
	p.probing = true
	reply, err := d.exchange(ctx, l, p, Frame{Code: CmdID, Data: []byte{0}})
	p.probing = false
	if err != nil {
		return err
	}
	if reason, err := ParseNAK(reply.Data); reply.Code == ReplyNAK && err == nil && reason == NAKCheck {
		// A PD that knows only the checksum fails every CRC; switch.
		p.checksum = !p.checksum
		return unexpected(p, CmdID, reply)
	}
	if reply.Code != ReplyPDID {
		return unexpected(p, CmdID, reply)
	}
	id, err := ParsePDID(reply.Data)
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.models[p.idx] = id.String()
	d.mu.Unlock()

	reply, err = d.exchange(ctx, l, p, Frame{Code: CmdCAP, Data: []byte{0}})
	if err != nil {
		return err
	}
	if reply.Code != ReplyPDCAP {
		return unexpected(p, CmdCAP, reply)
	}
	caps, err := ParsePDCAP(reply.Data)
	if err != nil {
		return err
	}
	if c, ok := caps.Find(CapCheckCharacter); ok {
		p.checksum = c.Compliance&0x01 == 0
	}
	if p.cfg.Key.IsZero() {
		return nil
	}
	if !caps.SecureChannel() {
		return fmt.Errorf("%w: PD %#02x does not offer the secure channel; a key is configured, so it is not used in clear",
			ErrCryptogram, p.cfg.Addr)
	}
	err = d.handshake(ctx, l, p, p.cfg.Key, keyFlagSCBK)
	if err == nil || !p.cfg.Install || errors.Is(err, errPort) || ctx.Err() != nil {
		return err
	}
	// Install mode: a new reader knows only SCBK-D. Open the channel with
	// it, give the reader its own key, and open the channel again with that.
	d.log.Info("osdp: installing key", logAddr, p.cfg.Addr, logReason, err.Error())
	if err := d.handshake(ctx, l, p, DefaultKey(), keyFlagDefault); err != nil {
		return fmt.Errorf("osdp: install mode: %w", err)
	}
	reply, err = d.exchange(ctx, l, p, Frame{Code: CmdKEYSET, Data: KeySetData(p.cfg.Key)})
	if err != nil {
		return err
	}
	if reply.Code != ReplyACK {
		return unexpected(p, CmdKEYSET, reply)
	}
	p.sc = nil
	if err := d.handshake(ctx, l, p, p.cfg.Key, keyFlagSCBK); err != nil {
		return fmt.Errorf("osdp: after KEYSET: %w", err)
	}
	d.log.Info("osdp: key installed", logAddr, p.cfg.Addr)
	return nil
}

// handshake opens the secure channel with key: osdp_CHLNG with the CP's
// random number, osdp_CCRYPT back with the PD's and its cryptogram,
// osdp_SCRYPT with the CP's cryptogram, osdp_RMAC_I back with the first
// MAC of the chain.
func (d *Driver) handshake(ctx context.Context, l *link, p *pd, key Key, flag byte) error {
	p.sc = nil
	var rndA [8]byte
	rand.Read(rndA[:]) // never fails (crypto/rand)
	reply, err := d.exchange(ctx, l, p, Frame{SCB: []byte{SCS11, flag}, Code: CmdCHLNG, Data: rndA[:]})
	if err != nil {
		return err
	}
	if reply.Code != ReplyCCRYPT || len(reply.Data) != 32 {
		return unexpected(p, CmdCHLNG, reply)
	}
	var rndB [8]byte
	copy(rndB[:], reply.Data[8:16])
	s := NewSession(key, rndA, rndB)
	if err := s.VerifyClientCryptogram(reply.Data[16:32]); err != nil {
		return fmt.Errorf("PD %#02x: %w", p.cfg.Addr, err)
	}
	reply, err = d.exchange(ctx, l, p, Frame{SCB: []byte{SCS13, flag}, Code: CmdSCRYPT, Data: s.ServerCryptogram()})
	if err != nil {
		return err
	}
	if reply.Code != ReplyRMACI || len(reply.Data) != 16 {
		return unexpected(p, CmdSCRYPT, reply)
	}
	if err := s.Start(reply.Data); err != nil {
		return fmt.Errorf("PD %#02x: %w", p.cfg.Addr, err)
	}
	p.sc = s
	return nil
}

// unexpected describes a reply that does not answer cmd.
func unexpected(p *pd, cmd byte, reply Frame) error {
	if reply.Code == ReplyNAK {
		if reason, err := ParseNAK(reply.Data); err == nil {
			return &NAKError{Addr: p.cfg.Addr, Command: cmd, Reason: reason}
		}
	}
	return fmt.Errorf("%w: %s answered with %s", ErrData, CodeName(cmd, false), CodeName(reply.Code, true))
}
