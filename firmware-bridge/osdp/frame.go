package osdp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"
)

// Wire constants of an OSDP packet.
const (
	// SOM is the start-of-message byte every packet begins with.
	SOM = 0x53
	// MaxAddr is the highest PD address; BroadcastAddr (0x7F) addresses all.
	MaxAddr = 0x7E
	// BroadcastAddr is the configuration/broadcast address.
	BroadcastAddr = 0x7F
	// ReplyBit is set in the address byte of every reply.
	ReplyBit = 0x80
	// MaxPacket is the longest packet, SOM to check bytes inclusive, this
	// package builds or accepts. The replies a card reader sends (ID,
	// capabilities, card data, secure channel handshake) fit in well under
	// it; a length field above it is treated as line noise before anything
	// is allocated.
	MaxPacket = 512
	// MinPacket is the shortest valid packet: header, code and checksum.
	MinPacket = headerLen + 1 + 1

	headerLen = 5
	macLen    = 4
)

// Control byte bits.
const (
	ctrlSeq = 0x03 // sequence number 0-3
	ctrlCRC = 0x04 // set: CRC-16 follows; clear: 8-bit checksum
	ctrlSCB = 0x08 // a security control block follows the header
)

// Security control block types (SEC_BLK_TYPE).
const (
	SCS11 byte = 0x11 // osdp_CHLNG: CP random number follows
	SCS12 byte = 0x12 // osdp_CCRYPT: client cryptogram follows
	SCS13 byte = 0x13 // osdp_SCRYPT: server cryptogram follows
	SCS14 byte = 0x14 // osdp_RMAC_I: initial R-MAC follows
	SCS15 byte = 0x15 // command, MAC, no data (or data in clear)
	SCS16 byte = 0x16 // reply, MAC, no data
	SCS17 byte = 0x17 // command, MAC, encrypted data
	SCS18 byte = 0x18 // reply, MAC, encrypted data
)

// Errors of the frame layer. Parse wraps them with detail.
var (
	// ErrShort: the buffer holds the beginning of a packet; read more.
	ErrShort = errors.New("osdp: short packet")
	// ErrNoSOM: bytes before the next SOM were skipped as noise.
	ErrNoSOM = errors.New("osdp: no start of message")
	// ErrLength: the length field is out of range; the SOM was noise.
	ErrLength = errors.New("osdp: bad packet length")
	// ErrChecksum: the CRC-16 or checksum does not match.
	ErrChecksum = errors.New("osdp: bad check character")
	// ErrFormat: a packet with a good check is malformed (security block
	// or MAC does not fit, sequence out of range when building).
	ErrFormat = errors.New("osdp: malformed packet")
)

// Frame is one OSDP packet, command or reply, decoded from or encoded to the
// wire. Byte slices of a parsed Frame point into its Raw bytes.
type Frame struct {
	// Addr is the PD address (0x00-0x7E, 0x7F broadcast) without the reply bit.
	Addr byte
	// Reply is set for packets from a PD (bit 7 of the address byte).
	Reply bool
	// Seq is the sequence number, 0-3. 0 restarts the PD's numbering.
	Seq uint8
	// Checksum selects the 8-bit checksum instead of the CRC-16.
	Checksum bool
	// SCB is the security control block without its length byte: the
	// block type (SCS11...SCS18) then its data. Nil when absent.
	SCB []byte
	// Code is the command or reply code.
	Code byte
	// Data is the command or reply data (encrypted when the SCB says so).
	Data []byte
	// MAC is the 4-byte message authentication code, present when the SCB
	// type is SCS15 to SCS18.
	MAC []byte
	// Raw is the whole packet as parsed, SOM to check bytes.
	Raw []byte
	// At is when the packet's last byte arrived (set by FrameReader).
	At time.Time
}

// hasMAC reports whether a security block of type t is followed by a MAC.
func hasMAC(scb []byte) bool {
	return len(scb) > 0 && scb[0] >= SCS15 && scb[0] <= SCS18
}

// Len returns the encoded length of f, SOM to check bytes.
func (f *Frame) Len() int {
	n := headerLen + 1 + len(f.Data)
	if f.SCB != nil {
		n += 1 + len(f.SCB)
	}
	if hasMAC(f.SCB) {
		n += macLen
	}
	if f.Checksum {
		return n + 1
	}
	return n + 2
}

// macOffset returns where the MAC starts in the encoded frame.
func (f *Frame) macOffset() int {
	n := f.Len() - macLen - 2
	if f.Checksum {
		n++
	}
	return n
}

// Append appends the encoded packet to dst. A MAC-bearing security block
// needs a 4-byte MAC (Session.Seal fills it in).
func (f *Frame) Append(dst []byte) ([]byte, error) {
	if f.Addr > BroadcastAddr {
		return dst, fmt.Errorf("%w: address %#02x", ErrFormat, f.Addr)
	}
	if f.Seq > 3 {
		return dst, fmt.Errorf("%w: sequence %d", ErrFormat, f.Seq)
	}
	if f.SCB != nil && (len(f.SCB) == 0 || len(f.SCB) > 254) {
		return dst, fmt.Errorf("%w: security block of %d bytes", ErrFormat, len(f.SCB))
	}
	if hasMAC(f.SCB) != (f.MAC != nil) || (f.MAC != nil && len(f.MAC) != macLen) {
		return dst, fmt.Errorf("%w: MAC of %d bytes with security block %x", ErrFormat, len(f.MAC), f.SCB)
	}
	n := f.Len()
	if n > MaxPacket {
		return dst, fmt.Errorf("%w: %d bytes, limit %d", ErrLength, n, MaxPacket)
	}
	start := len(dst)
	addr := f.Addr
	if f.Reply {
		addr |= ReplyBit
	}
	ctrl := f.Seq & ctrlSeq
	if !f.Checksum {
		ctrl |= ctrlCRC
	}
	if f.SCB != nil {
		ctrl |= ctrlSCB
	}
	dst = append(dst, SOM, addr, byte(n), byte(n>>8), ctrl)
	if f.SCB != nil {
		dst = append(dst, byte(len(f.SCB)+1))
		dst = append(dst, f.SCB...)
	}
	dst = append(dst, f.Code)
	dst = append(dst, f.Data...)
	dst = append(dst, f.MAC...)
	return appendCheck(dst, start, f.Checksum), nil
}

// appendCheck appends the CRC-16 (LSB first) or checksum of dst[start:].
func appendCheck(dst []byte, start int, checksum bool) []byte {
	if checksum {
		return append(dst, Checksum(dst[start:]))
	}
	return binary.LittleEndian.AppendUint16(dst, CRC16(dst[start:]))
}

// Parse decodes the packet at the start of b. It returns the frame and the
// number of bytes consumed; on error, n says how many bytes to drop before
// trying again (0 with ErrShort: wait for more). A stream parser calls it in
// a loop, which resynchronises on the next SOM after noise or a bad packet.
// The length is checked against MaxPacket before anything is allocated.
func Parse(b []byte) (f Frame, n int, err error) {
	if len(b) == 0 {
		return f, 0, ErrShort
	}
	if b[0] != SOM {
		for n = 1; n < len(b) && b[n] != SOM; n++ {
		}
		return f, n, fmt.Errorf("%w: skipped %d bytes", ErrNoSOM, n)
	}
	if len(b) < headerLen {
		return f, 0, ErrShort
	}
	size := int(binary.LittleEndian.Uint16(b[2:4]))
	ctrl := b[4]
	checkLen := 1
	if ctrl&ctrlCRC != 0 {
		checkLen = 2
	}
	if size < headerLen+1+checkLen || size > MaxPacket || ctrl&0x70 != 0 {
		// Bits 4-6 of the control byte are reserved (zero); a SOM followed
		// by anything else is noise. Bit 7 is left alone: some stacks use
		// it, and the CRC decides.
		return f, 1, fmt.Errorf("%w: %d bytes, control %#02x", ErrLength, size, ctrl)
	}
	if len(b) < size {
		return f, 0, ErrShort
	}
	pkt := b[:size]
	body := pkt[:size-checkLen]
	if checkLen == 2 {
		if got, want := binary.LittleEndian.Uint16(pkt[size-2:]), CRC16(body); got != want {
			return f, 1, fmt.Errorf("%w: CRC %04x, computed %04x", ErrChecksum, got, want)
		}
	} else if got, want := pkt[size-1], Checksum(body); got != want {
		return f, 1, fmt.Errorf("%w: checksum %02x, computed %02x", ErrChecksum, got, want)
	}
	raw := make([]byte, size)
	copy(raw, pkt)
	body = raw[:size-checkLen]
	f = Frame{
		Addr:     raw[1] &^ ReplyBit,
		Reply:    raw[1]&ReplyBit != 0,
		Seq:      ctrl & ctrlSeq,
		Checksum: checkLen == 1,
		Raw:      raw,
	}
	rest := body[headerLen:]
	if ctrl&ctrlSCB != 0 {
		if len(rest) < 2 || int(rest[0]) < 2 || int(rest[0]) >= len(rest) {
			return Frame{}, size, fmt.Errorf("%w: security block does not fit", ErrFormat)
		}
		f.SCB = rest[1:rest[0]:rest[0]]
		rest = rest[rest[0]:]
	}
	if hasMAC(f.SCB) {
		if len(rest) < 1+macLen {
			return Frame{}, size, fmt.Errorf("%w: MAC does not fit", ErrFormat)
		}
		f.MAC = rest[len(rest)-macLen:]
		rest = rest[:len(rest)-macLen]
	}
	f.Code = rest[0]
	f.Data = rest[1:len(rest):len(rest)]
	return f, size, nil
}

// FrameReader reads packets from a byte stream (a serial port), dropping
// noise and packets with a bad check, and resynchronising on the next SOM.
// It is not safe for concurrent use.
type FrameReader struct {
	r io.Reader
	// Gap, when positive, is the longest pause inside one packet: bytes
	// arriving after a longer pause cannot complete a packet begun before
	// it, so the partial packet is dropped as noise. Without it a stray SOM
	// with a large length would swallow the replies after it.
	Gap time.Duration
	// Now tells the time; time.Now when nil.
	Now func() time.Time

	buf  []byte
	last time.Time

	// Skipped counts bytes dropped as noise; BadChecks packets dropped for
	// a bad CRC or checksum; Malformed packets with a good check but a bad
	// structure.
	Skipped, BadChecks, Malformed uint64
}

// NewFrameReader returns a FrameReader on r.
func NewFrameReader(r io.Reader) *FrameReader {
	return &FrameReader{r: r, buf: make([]byte, 0, 2*MaxPacket)}
}

// lookahead finds the first SOM after the start of the buffer that begins
// a complete packet with a good check.
func (fr *FrameReader) lookahead() (int, bool) {
	for i := 1; i+MinPacket <= len(fr.buf); i++ {
		if fr.buf[i] != SOM {
			continue
		}
		if _, _, err := Parse(fr.buf[i:]); err == nil {
			return i, true
		}
	}
	return 0, false
}

// ReadFrame returns the next good packet. It returns an error wrapping
// ErrChecksum or ErrFormat for a packet it dropped (the caller may count it
// and call again) and the reader's error, wrapped, when reading fails.
func (fr *FrameReader) ReadFrame() (Frame, error) {
	now := fr.Now
	if now == nil {
		now = time.Now
	}
	for {
		for len(fr.buf) > 0 {
			f, n, err := Parse(fr.buf)
			if errors.Is(err, ErrShort) {
				// A good packet complete further on means the partial one
				// in front of it was a stray SOM (noise, or inside a
				// garbled packet): skip to it rather than wait.
				skip, ok := fr.lookahead()
				if !ok {
					break
				}
				fr.buf = fr.buf[:copy(fr.buf, fr.buf[skip:])]
				fr.Skipped += uint64(skip)
				continue
			}
			fr.buf = fr.buf[:copy(fr.buf, fr.buf[n:])]
			switch {
			case err == nil:
				f.At = fr.last
				return f, nil
			case errors.Is(err, ErrNoSOM), errors.Is(err, ErrLength):
				fr.Skipped += uint64(n)
			case errors.Is(err, ErrChecksum):
				fr.Skipped += uint64(n)
				fr.BadChecks++
				return Frame{}, err
			default:
				fr.Malformed++
				return Frame{}, err
			}
		}
		if len(fr.buf) == cap(fr.buf) {
			// Cannot happen with a buffer of twice MaxPacket, since Parse
			// decides every packet within MaxPacket bytes; drop a byte
			// rather than spin.
			fr.buf = fr.buf[:copy(fr.buf, fr.buf[1:])]
			fr.Skipped++
			continue
		}
		n, err := fr.r.Read(fr.buf[len(fr.buf):cap(fr.buf)])
		if n > 0 {
			t := now()
			stale := fr.Gap > 0 && len(fr.buf) > 0 && t.Sub(fr.last) > fr.Gap
			fr.buf = fr.buf[:len(fr.buf)+n]
			if stale {
				// A partial packet went stale: drop its SOM and rescan.
				fr.buf = fr.buf[:copy(fr.buf, fr.buf[1:])]
				fr.Skipped++
			}
			fr.last = t
		}
		if err != nil {
			return Frame{}, fmt.Errorf("osdp: read: %w", err)
		}
	}
}
