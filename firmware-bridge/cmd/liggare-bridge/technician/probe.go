package technician

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/firmware-bridge/lineproto"
	"github.com/liggare/liggare/firmware-bridge/osdp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// DefaultOSDPBauds are the line speeds probe tries for OSDP, most common
// first.
var DefaultOSDPBauds = []int{9600, 19200, 38400, 115200}

// osdpProbeAddrs are the addresses probe asks: the broadcast address,
// which any single reader on the line answers with its own, then the
// addresses readers ship with, for buses where a broadcast would collide.
var osdpProbeAddrs = []byte{osdp.BroadcastAddr, 0, 1, 2, 3}

// errNoAnswer: a probe got no (usable) reply.
var errNoAnswer = errors.New("no answer")

// ErrNotFound: probe found no reader on the port.
var ErrNotFound = errors.New("no reader found")

// found is what probe identified.
type found struct {
	proto   string
	baud    int
	addr    int // OSDP only
	model   string
	details []string
	spec    string
}

// prober probes one port.
type prober struct {
	path    string
	timeout time.Duration
	out     io.Writer
	sniff   lineSniffer
}

// probe detects the protocol and the reader on a port: PN532 first (one
// short exchange at one speed), then OSDP (several speeds and addresses),
// then it listens for a line reader. Bytes read in the first two steps
// count for the third, so a line reader that prints while it is being
// asked is found too.
func probe(ctx context.Context, args []string, out, stderr io.Writer) error {
	fs := newFlags("probe", "PORT", stderr)
	timeout := fs.Duration("timeout", 300*time.Millisecond, "how long to wait for each reply")
	listen := fs.Duration("listen", 5*time.Second, "how long to listen for a line reader (present a card meanwhile)")
	baudList := fs.String("bauds", joinInts(DefaultOSDPBauds), "OSDP line speeds to try, in order")
	pos, err := parseArgs(fs, args, 1, 1)
	if err != nil {
		return err
	}
	bauds, err := parseInts(*baudList)
	if err != nil {
		return fmt.Errorf("%w: probe: --bauds: %w", ErrUsage, err)
	}
	pr := &prober{path: pos[0], timeout: *timeout, out: out}
	fmt.Fprintf(out, "probing %s\n", pr.path)
	f, err := pr.run(ctx, bauds, *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "found: %s\n", f.summary())
	for _, d := range f.details {
		fmt.Fprintf(out, "  %s\n", d)
	}
	fmt.Fprintf(out, "use: --reader '%s'\n", f.spec)
	return nil
}

// run tries each protocol in turn.
func (pr *prober) run(ctx context.Context, bauds []int, listen time.Duration) (*found, error) {
	steps := []func(context.Context) (*found, error){
		pr.pn532,
		func(ctx context.Context) (*found, error) { return pr.osdp(ctx, bauds) },
		func(ctx context.Context) (*found, error) { return pr.line(ctx, listen) },
	}
	for _, step := range steps {
		f, err := step(ctx)
		if err != nil {
			return nil, err
		}
		if f == nil {
			f = pr.sniff.found(pr.path)
		}
		if f != nil {
			return f, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("%w on %s: no PN532 or OSDP answer, and no card line within %v (check power and cable; present a card while probing a line reader)",
		ErrNotFound, pr.path, listen)
}

func (f *found) summary() string {
	switch f.proto {
	case protoOSDP:
		return fmt.Sprintf("OSDP reader at %d baud, address %d", f.baud, f.addr)
	case protoPN532:
		return fmt.Sprintf("PN532 at %d baud", f.baud)
	}
	return "line reader"
}

// open opens the port at baud with the shortest read timeout.
func (pr *prober) open(baud int) (*serialport.Port, error) {
	p, err := serialport.Open(serialport.Config{Path: pr.path, Baud: baud, ReadTimeout: serialport.MinReadTimeout})
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return p, nil
}

// read reads the port until done says so, the deadline passes or ctx
// ends; every byte also goes to the line sniffer.
func (pr *prober) read(ctx context.Context, p *serialport.Port, until time.Time, done func([]byte) bool) error {
	buf := make([]byte, 512)
	for time.Now().Before(until) && ctx.Err() == nil {
		n, err := p.Read(buf)
		if n > 0 {
			pr.sniff.feed(buf[:n])
			if done(buf[:n]) {
				return nil
			}
		}
		switch {
		case errors.Is(err, serialport.ErrTimeout):
		case err != nil:
			return fmt.Errorf("probe: %w", err)
		}
	}
	return nil
}

// pn532 wakes a PN532 on its HSU line and asks its firmware version.
func (pr *prober) pn532(ctx context.Context) (*found, error) {
	p, err := pr.open(pn532.DefaultBaud)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	fmt.Fprintf(pr.out, "  PN532 at %d baud: ", pn532.DefaultBaud)
	// The HSU wake-up: 0x55 0x55, then zeros for a couple of milliseconds
	// while the chip's oscillator starts.
	wake := append([]byte{0x55, 0x55}, make([]byte, 32)...)
	if _, err := p.Write(wake); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	// SAMConfiguration (normal mode, 1 s timeout, IRQ) must come first:
	// it ends the PN532 C106's low-battery start-up mode.
	if _, err := pr.pn532Exchange(ctx, p, pn532.CmdSAMConfiguration, 0x01, 0x14, 0x01); err != nil {
		fmt.Fprintln(pr.out, err)
		return nil, nil
	}
	params, err := pr.pn532Exchange(ctx, p, pn532.CmdGetFirmwareVersion)
	if err != nil {
		fmt.Fprintln(pr.out, err)
		return nil, nil
	}
	fw, err := pn532.ParseFirmware(params)
	if err != nil {
		fmt.Fprintln(pr.out, err)
		return nil, nil
	}
	fmt.Fprintln(pr.out, "answered")
	return &found{
		proto: protoPN532, baud: pn532.DefaultBaud, model: fw.String(),
		details: []string{"model: " + fw.String()},
		spec:    protoPN532 + ":" + pr.path,
	}, nil
}

// pn532Exchange sends one command and returns its response's parameters.
func (pr *prober) pn532Exchange(ctx context.Context, p *serialport.Port, cmd pn532.Command, params ...byte) ([]byte, error) {
	wire, err := pn532.CommandFrame(cmd, params...).MarshalBinary()
	if err != nil {
		return nil, err
	}
	if _, err := p.Write(wire); err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	var parser pn532.Parser
	var resp []byte
	err = pr.read(ctx, p, time.Now().Add(pr.timeout), func(b []byte) bool {
		_, _ = parser.Write(b)
		for {
			f, err := parser.Next()
			switch {
			case errors.Is(err, pn532.ErrIncomplete):
				return false
			case err != nil:
				continue // a broken frame: look for the next
			}
			if code, ok := f.Code(); ok && f.Kind == pn532.KindInfo && f.TFI == pn532.TFIPN532 && code == cmd.Response() {
				resp = f.Data[1:]
				return true
			}
		}
	})
	if err != nil {
		return nil, err
	}
	if resp == nil {
		return nil, fmt.Errorf("%w to %v", errNoAnswer, cmd)
	}
	return resp, nil
}

// osdp asks for the reader's identity (osdp_ID) at each speed and address.
func (pr *prober) osdp(ctx context.Context, bauds []int) (*found, error) {
	for _, baud := range bauds {
		if ctx.Err() != nil {
			return nil, nil
		}
		f, err := pr.osdpAt(ctx, baud)
		if f != nil || err != nil {
			return f, err
		}
		if pr.sniff.uid != nil {
			return nil, nil // a line reader spoke meanwhile
		}
	}
	return nil, nil
}

func (pr *prober) osdpAt(ctx context.Context, baud int) (*found, error) {
	p, err := pr.open(baud)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	fmt.Fprintf(pr.out, "  OSDP at %d baud: ", baud)
	for _, addr := range osdpProbeAddrs {
		// Sequence 0 starts the reader's numbering over, as a control
		// panel does when it first meets a reader.
		cmd := osdp.Frame{Addr: addr, Code: osdp.CmdID, Data: []byte{0}}
		reply, err := pr.osdpExchange(ctx, p, cmd)
		if errors.Is(err, errNoAnswer) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if reason, perr := osdp.ParseNAK(reply.Data); reply.Code == osdp.ReplyNAK && perr == nil && reason == osdp.NAKCheck {
			// An old reader that knows only the 8-bit checksum.
			cmd.Checksum = true
			if reply, err = pr.osdpExchange(ctx, p, cmd); err != nil {
				continue
			}
		}
		fmt.Fprintf(pr.out, "answered at address %s\n", addrName(addr))
		return pr.osdpFound(ctx, p, baud, cmd.Checksum, reply), nil
	}
	fmt.Fprintln(pr.out, "no answer (broadcast, addresses 0-3)")
	return nil, nil
}

// osdpFound describes the reader that answered osdp_ID, asking its
// capabilities too.
func (pr *prober) osdpFound(ctx context.Context, p *serialport.Port, baud int, checksum bool, idReply osdp.Frame) *found {
	f := &found{proto: protoOSDP, baud: baud, addr: int(idReply.Addr)}
	if idReply.Code == osdp.ReplyPDID {
		if id, err := osdp.ParsePDID(idReply.Data); err == nil {
			f.model = id.String()
			f.details = append(f.details, "model: "+f.model)
		}
	} else {
		f.details = append(f.details, "it answered osdp_ID with "+osdp.CodeName(idReply.Code, true))
	}
	reply, err := pr.osdpExchange(ctx, p, osdp.Frame{Addr: idReply.Addr, Seq: 1, Checksum: checksum, Code: osdp.CmdCAP, Data: []byte{0}})
	if err == nil && reply.Code == osdp.ReplyPDCAP {
		if caps, err := osdp.ParsePDCAP(reply.Data); err == nil {
			f.details = append(f.details, "capabilities: "+describeCaps(caps))
		}
	}
	if checksum {
		f.details = append(f.details, "check character: 8-bit checksum only")
	}
	f.spec = fmt.Sprintf("%s:%s?addr=%d", protoOSDP, pr.path, f.addr)
	if baud != osdp.DefaultBaud {
		f.spec += "&baud=" + strconv.Itoa(baud)
	}
	return f
}

func addrName(a byte) string {
	if a == osdp.BroadcastAddr {
		return "0x7F (broadcast)"
	}
	return strconv.Itoa(int(a))
}

// describeCaps lists what matters of a reader's capabilities.
func describeCaps(caps osdp.Capabilities) string {
	var out []string
	if c, ok := caps.Find(osdp.CapLED); ok && c.Compliance > 0 {
		out = append(out, "LED")
	}
	if c, ok := caps.Find(osdp.CapAudible); ok && c.Compliance > 0 {
		out = append(out, "buzzer")
	}
	if c, ok := caps.Find(osdp.CapCheckCharacter); ok && c.Compliance&1 != 0 {
		out = append(out, "CRC-16")
	}
	if caps.SecureChannel() {
		out = append(out, "secure channel (AES-128)")
	}
	if len(out) == 0 {
		return "none of LED, buzzer, CRC-16, secure channel"
	}
	return strings.Join(out, ", ")
}

// osdpExchange sends cmd and returns the first reply from its address (any
// address for a broadcast).
func (pr *prober) osdpExchange(ctx context.Context, p *serialport.Port, cmd osdp.Frame) (osdp.Frame, error) {
	pkt, err := cmd.Append(nil)
	if err != nil {
		return osdp.Frame{}, err
	}
	if _, err := p.Write(pkt); err != nil {
		return osdp.Frame{}, fmt.Errorf("probe: %w", err)
	}
	var (
		buf   []byte
		reply *osdp.Frame
	)
	err = pr.read(ctx, p, time.Now().Add(pr.timeout), func(b []byte) bool {
		buf = append(buf, b...)
		for len(buf) > 0 {
			f, n, err := osdp.Parse(buf)
			if errors.Is(err, osdp.ErrShort) {
				return false
			}
			buf = buf[max(n, 1):]
			if err != nil || !f.Reply {
				continue // noise, a bad packet, or our own command echoed
			}
			if cmd.Addr == osdp.BroadcastAddr || f.Addr == cmd.Addr {
				f.Data = slices.Clone(f.Data)
				reply = &f
				return true
			}
		}
		return false
	})
	if err != nil {
		return osdp.Frame{}, err
	}
	if reply == nil {
		return osdp.Frame{}, errNoAnswer
	}
	return *reply, nil
}

// line listens for a line reader printing a card's UID.
func (pr *prober) line(ctx context.Context, listen time.Duration) (*found, error) {
	if f := pr.sniff.found(pr.path); f != nil {
		return f, nil
	}
	p, err := pr.open(serialport.DefaultBaud)
	if err != nil {
		return nil, err
	}
	defer p.Close()
	fmt.Fprintf(pr.out, "  line reader: listening %v for a card (present one now)\n", listen)
	err = pr.read(ctx, p, time.Now().Add(listen), func([]byte) bool { return pr.sniff.uid != nil })
	return nil, err
}

// lineSniffer looks for a line reader's output in the bytes probe reads:
// a line (CR, LF, STX or ETX delimited) that lineproto takes for a UID.
type lineSniffer struct {
	buf   []byte
	uid   []byte
	stx   bool // the line came in STX ... ETX
	inSTX bool
}

func (l *lineSniffer) feed(b []byte) {
	for _, c := range b {
		switch c {
		case '\r', '\n', lineproto.STX, lineproto.ETX:
			if l.uid == nil && len(l.buf) > 0 {
				if uid, err := (lineproto.Format{}).ParseLine(l.buf); err == nil {
					l.uid = uid
					l.stx = l.inSTX && c == lineproto.ETX
				}
			}
			l.buf = l.buf[:0]
			l.inSTX = c == lineproto.STX
		default:
			if len(l.buf) <= lineproto.MaxLineLen {
				l.buf = append(l.buf, c)
			}
		}
	}
}

// found describes the line reader, if one printed a UID.
func (l *lineSniffer) found(path string) *found {
	if l.uid == nil {
		return nil
	}
	f := &found{proto: protoLine, baud: serialport.DefaultBaud, spec: protoLine + ":" + path}
	framing := "lines"
	if l.stx {
		framing = "STX/ETX frames"
		f.spec += "?frame=stx"
	}
	f.details = []string{
		fmt.Sprintf("it printed card %X in %s", l.uid, framing),
		"if your cards show up byte-reversed, add order=reverse",
	}
	return f
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func parseInts(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a line speed", f)
		}
		out = append(out, n)
	}
	return out, nil
}
