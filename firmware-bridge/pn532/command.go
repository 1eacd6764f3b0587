package pn532

import (
	"errors"
	"fmt"
	"strings"
)

// Command is a PN532 command code (UM0701 chapter 7). The PN532 answers a
// command with the response code Command+1.
type Command byte

// The commands this package uses.
const (
	// CmdGetFirmwareVersion identifies the chip: IC, version, revision,
	// supported protocols.
	CmdGetFirmwareVersion Command = 0x02
	// CmdReadGPIO reads the P3, P7 and I0/I1 pins.
	CmdReadGPIO Command = 0x0C
	// CmdWriteGPIO sets the P3 and P7 pins (a buzzer or LED on a board
	// that wires one).
	CmdWriteGPIO Command = 0x0E
	// CmdSAMConfiguration selects how the secure access module is used;
	// after the HSU wake-up it must be the first command, to leave the
	// PN532 C106's low-battery start-up mode.
	CmdSAMConfiguration Command = 0x14
	// CmdRFConfiguration sets RF parameters, here the number of activation
	// retries so that a poll without a card returns promptly.
	CmdRFConfiguration Command = 0x32
	// CmdInListPassiveTarget looks for and activates cards.
	CmdInListPassiveTarget Command = 0x4A
	// CmdInRelease ends the PN532's session with an activated card.
	CmdInRelease Command = 0x52
)

// Response returns the code of the PN532's answer to c.
func (c Command) Response() byte { return byte(c) + 1 }

// String names the command for logs.
func (c Command) String() string {
	switch c {
	case CmdGetFirmwareVersion:
		return "GetFirmwareVersion"
	case CmdReadGPIO:
		return "ReadGPIO"
	case CmdWriteGPIO:
		return "WriteGPIO"
	case CmdSAMConfiguration:
		return "SAMConfiguration"
	case CmdRFConfiguration:
		return "RFConfiguration"
	case CmdInListPassiveTarget:
		return "InListPassiveTarget"
	case CmdInRelease:
		return "InRelease"
	}
	return fmt.Sprintf("Command(%#02x)", byte(c))
}

// Parameters the driver sends.
var (
	// samNormal: SAMConfiguration Mode 0x01 (normal, no SAM), Timeout 0x14
	// (20 × 50 ms; used only in virtual-card mode) and IRQ 0x01 (drive
	// P70_IRQ, harmless when it is not wired).
	samNormal = []byte{0x01, 0x14, 0x01}
	// rfMaxRetries: RFConfiguration item 0x05 (MaxRetries): MxRtyATR 0xFF
	// (the default), MxRtyPSL 0x01 (the default) and
	// MxRtyPassiveActivation 0x01, i.e. two activation attempts instead of
	// the default 0xFF (retry forever), so that InListPassiveTarget
	// answers "no card" at once and every poll is also a heartbeat.
	rfMaxRetries = []byte{0x05, 0xFF, 0x01, 0x01}
	// listOneTypeA: InListPassiveTarget MaxTg 1, BrTy 0x00 (106 kbps
	// ISO/IEC 14443 type A).
	listOneTypeA = []byte{0x01, 0x00}
	// releaseAll: InRelease Tg 0x00 (all targets).
	releaseAll = []byte{0x00}
)

// ErrResponse reports a response whose parameters do not parse.
var ErrResponse = errors.New("pn532: malformed response")

// Firmware is the answer to GetFirmwareVersion.
type Firmware struct {
	IC      byte // 0x32 for the PN532
	Ver     byte
	Rev     byte
	Support byte // bit 0 ISO/IEC 14443 A, bit 1 ISO/IEC 14443 B, bit 2 ISO 18092
}

// ParseFirmware parses the parameters of GetFirmwareVersion's response
// (the bytes after the response code 0x03).
func ParseFirmware(p []byte) (Firmware, error) {
	if len(p) != 4 {
		return Firmware{}, fmt.Errorf("%w: GetFirmwareVersion: %d bytes, want 4", ErrResponse, len(p))
	}
	return Firmware{IC: p[0], Ver: p[1], Rev: p[2], Support: p[3]}, nil
}

// Bytes returns the firmware as GetFirmwareVersion's response parameters.
func (f Firmware) Bytes() []byte { return []byte{f.IC, f.Ver, f.Rev, f.Support} }

// String describes the chip for State.Model: "PN532 v1.6 (ISO14443A ISO14443B ISO18092)".
func (f Firmware) String() string {
	var b strings.Builder
	if f.IC == 0x32 {
		b.WriteString("PN532")
	} else {
		fmt.Fprintf(&b, "PN53x IC %#02x", f.IC)
	}
	fmt.Fprintf(&b, " v%d.%d", f.Ver, f.Rev)
	var s []string
	for i, name := range []string{"ISO14443A", "ISO14443B", "ISO18092"} {
		if f.Support&(1<<i) != 0 {
			s = append(s, name)
		}
	}
	if len(s) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(s, " "))
	}
	return b.String()
}

// sakISO14443_4 is the SEL_RES (SAK) bit of a card that speaks
// ISO/IEC 14443-4; the PN532 then also fetches its ATS.
const sakISO14443_4 = 0x20

// TargetA is an ISO/IEC 14443 type A card as InListPassiveTarget reports
// it (UM0701, InListPassiveTarget: 106 kbps type A target data).
type TargetA struct {
	Tg   byte    // the PN532's number for the target
	ATQA [2]byte // SENS_RES, as the PN532 sends it
	SAK  byte    // SEL_RES
	UID  []byte  // NFCID1: 4, 7 or 10 bytes
	ATS  []byte  // ATS including its length byte TL; only for ISO/IEC 14443-4 cards
}

// RandomUID reports whether the UID is a random ID (a single-size UID
// starting with 0x08, ISO/IEC 14443-3): such a card gets a new UID at every
// power-up, so the UID cannot identify it.
func (t TargetA) RandomUID() bool { return len(t.UID) == 4 && t.UID[0] == 0x08 }

// AppendTo appends the target's InListPassiveTarget target data.
func (t TargetA) AppendTo(dst []byte) []byte {
	dst = append(dst, t.Tg, t.ATQA[0], t.ATQA[1], t.SAK, byte(len(t.UID)))
	dst = append(dst, t.UID...)
	return append(dst, t.ATS...)
}

// ParseTargetsA parses the parameters of InListPassiveTarget's response for
// type A (the bytes after the response code 0x4B): NbTg, then each target's
// Tg, SENS_RES, SEL_RES, NFCIDLength, NFCID1 and, for a card whose SEL_RES
// says ISO/IEC 14443-4, its ATS. No card is an empty slice.
func ParseTargetsA(p []byte) ([]TargetA, error) {
	if len(p) < 1 {
		return nil, fmt.Errorf("%w: InListPassiveTarget: empty", ErrResponse)
	}
	nb := int(p[0])
	if nb > 2 {
		return nil, fmt.Errorf("%w: InListPassiveTarget: %d targets, at most 2", ErrResponse, nb)
	}
	p = p[1:]
	ts := make([]TargetA, 0, nb)
	for i := range nb {
		if len(p) < 5 {
			return nil, fmt.Errorf("%w: InListPassiveTarget: target %d: %d bytes", ErrResponse, i+1, len(p))
		}
		t := TargetA{Tg: p[0], ATQA: [2]byte{p[1], p[2]}, SAK: p[3]}
		n := int(p[4])
		if n != 4 && n != 7 && n != 10 {
			return nil, fmt.Errorf("%w: InListPassiveTarget: target %d: UID length %d", ErrResponse, i+1, n)
		}
		p = p[5:]
		if len(p) < n {
			return nil, fmt.Errorf("%w: InListPassiveTarget: target %d: UID cut short", ErrResponse, i+1)
		}
		t.UID = append([]byte(nil), p[:n]...)
		p = p[n:]
		if t.SAK&sakISO14443_4 != 0 && len(p) > 0 {
			tl := int(p[0])
			if tl < 1 || tl > len(p) {
				return nil, fmt.Errorf("%w: InListPassiveTarget: target %d: ATS length %d", ErrResponse, i+1, tl)
			}
			t.ATS = append([]byte(nil), p[:tl]...)
			p = p[tl:]
		}
		ts = append(ts, t)
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: InListPassiveTarget: %d bytes after the targets", ErrResponse, len(p))
	}
	return ts, nil
}

// GPIO is the answer to ReadGPIO: the P3 and P7 ports and the I0/I1 pins.
type GPIO struct {
	P3, P7, I0I1 byte
}

// ParseGPIO parses the parameters of ReadGPIO's response.
func ParseGPIO(p []byte) (GPIO, error) {
	if len(p) != 3 {
		return GPIO{}, fmt.Errorf("%w: ReadGPIO: %d bytes, want 3", ErrResponse, len(p))
	}
	return GPIO{P3: p[0], P7: p[1], I0I1: p[2]}, nil
}

// gpioValidate is WriteGPIO's "apply this port" bit: a port byte without
// it leaves that port as it is.
const gpioValidate = 0x80

// writeGPIOP3 returns WriteGPIO parameters that set P3 to p3 (bits 0-5)
// and leave P7 alone.
func writeGPIOP3(p3 byte) []byte {
	return []byte{gpioValidate | p3&0x3F, 0x00}
}
