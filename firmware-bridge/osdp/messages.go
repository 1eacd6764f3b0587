package osdp

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrData: the data of a command or reply does not have the layout its code
// calls for. Decoders wrap it with detail.
var ErrData = errors.New("osdp: malformed data")

// PDID is a PD's identification, the osdp_PDID reply to osdp_ID.
type PDID struct {
	// VendorCode is the manufacturer's IEEE OUI, as sent (LSB first).
	VendorCode [3]byte
	// Model and Version are the manufacturer's model number and hardware
	// version.
	Model, Version byte
	// Serial is the device's serial number.
	Serial uint32
	// Firmware is the firmware version: major, minor, build.
	Firmware [3]byte
}

// pdidLen is the length of osdp_PDID data.
const pdidLen = 12

// ParsePDID decodes osdp_PDID data.
func ParsePDID(data []byte) (PDID, error) {
	var id PDID
	if len(data) != pdidLen {
		return id, fmt.Errorf("%w: PDID of %d bytes, want %d", ErrData, len(data), pdidLen)
	}
	copy(id.VendorCode[:], data[0:3])
	id.Model, id.Version = data[3], data[4]
	id.Serial = binary.LittleEndian.Uint32(data[5:9])
	copy(id.Firmware[:], data[9:12])
	return id, nil
}

// Marshal encodes id as osdp_PDID data.
func (id PDID) Marshal() []byte {
	b := append([]byte(nil), id.VendorCode[:]...)
	b = append(b, id.Model, id.Version)
	b = binary.LittleEndian.AppendUint32(b, id.Serial)
	return append(b, id.Firmware[:]...)
}

// String describes the reader for a technician: "OSDP vendor 0A0B0C model
// 2 version 1 serial 00BC614E firmware 1.2.3".
func (id PDID) String() string {
	return fmt.Sprintf("OSDP vendor %X model %d version %d serial %08X firmware %d.%d.%d",
		id.VendorCode[:], id.Model, id.Version, id.Serial,
		id.Firmware[0], id.Firmware[1], id.Firmware[2])
}

// CUID returns the 8-byte client UID a PD derived from its identity, as
// libosdp builds it; a PD may send any 8 bytes in osdp_CCRYPT.
func (id PDID) CUID() [8]byte {
	var c [8]byte
	copy(c[0:2], id.VendorCode[0:2])
	c[2], c[3] = id.Model, id.Version
	binary.LittleEndian.PutUint32(c[4:], id.Serial)
	return c
}

// Capability function codes (osdp_PDCAP).
const (
	CapContactStatus  byte = 1  // contact status monitoring
	CapOutputControl  byte = 2  // output control
	CapCardFormat     byte = 3  // card data format
	CapLED            byte = 4  // reader LED control
	CapAudible        byte = 5  // reader audible output
	CapText           byte = 6  // reader text output
	CapTimeKeeping    byte = 7  // time keeping (deprecated)
	CapCheckCharacter byte = 8  // check character support: compliance 1 = CRC-16
	CapCommSecurity   byte = 9  // communication security: compliance bit 0 = AES-128
	CapReceiveBuffer  byte = 10 // receive buffer size, LSB/MSB in compliance/items
	CapLargestMessage byte = 11 // largest combined message size
	CapSmartCard      byte = 12 // smart card support
	CapReaders        byte = 13 // number of attached readers
	CapBiometrics     byte = 14 // biometrics
	CapSecurePIN      byte = 15 // secure PIN entry
	CapOSDPVersion    byte = 16 // OSDP version
)

// Capability is one entry of osdp_PDCAP: a function, the level to which
// the PD complies with it, and how many items (LEDs, readers) it has.
type Capability struct {
	Function, Compliance, Items byte
}

// Capabilities is a decoded osdp_PDCAP reply.
type Capabilities []Capability

// ParsePDCAP decodes osdp_PDCAP data: 3-byte entries.
func ParsePDCAP(data []byte) (Capabilities, error) {
	if len(data)%3 != 0 {
		return nil, fmt.Errorf("%w: PDCAP of %d bytes, not a multiple of 3", ErrData, len(data))
	}
	caps := make(Capabilities, 0, len(data)/3)
	for i := 0; i < len(data); i += 3 {
		caps = append(caps, Capability{data[i], data[i+1], data[i+2]})
	}
	return caps, nil
}

// Marshal encodes c as osdp_PDCAP data.
func (c Capabilities) Marshal() []byte {
	b := make([]byte, 0, 3*len(c))
	for _, e := range c {
		b = append(b, e.Function, e.Compliance, e.Items)
	}
	return b
}

// Find returns the entry for function fn.
func (c Capabilities) Find(fn byte) (Capability, bool) {
	for _, e := range c {
		if e.Function == fn {
			return e, true
		}
	}
	return Capability{}, false
}

// SecureChannel reports whether the PD offers the AES-128 secure channel.
func (c Capabilities) SecureChannel() bool {
	e, ok := c.Find(CapCommSecurity)
	return ok && e.Compliance&0x01 != 0
}

// Card data formats of osdp_RAW.
const (
	FormatRaw     byte = 0x00 // raw bits, format unspecified (chip UIDs)
	FormatWiegand byte = 0x01 // raw Wiegand bits
)

// RawCard is osdp_RAW: card data as bits, the way a PD reports a card's
// UID/CSN or a Wiegand credential.
type RawCard struct {
	// Reader is the reader number on the PD (0 for the first).
	Reader byte
	// Format is FormatRaw or FormatWiegand.
	Format byte
	// Bits is the number of valid bits in Data, MSB of Data[0] first.
	Bits int
	// Data holds the bits, (Bits+7)/8 bytes.
	Data []byte
}

// ParseRAW decodes osdp_RAW data.
func ParseRAW(data []byte) (RawCard, error) {
	if len(data) < 4 {
		return RawCard{}, fmt.Errorf("%w: RAW of %d bytes", ErrData, len(data))
	}
	r := RawCard{Reader: data[0], Format: data[1], Bits: int(binary.LittleEndian.Uint16(data[2:4]))}
	if r.Bits == 0 || (r.Bits+7)/8 != len(data)-4 {
		return RawCard{}, fmt.Errorf("%w: RAW of %d bits with %d data bytes", ErrData, r.Bits, len(data)-4)
	}
	r.Data = append([]byte(nil), data[4:]...)
	return r, nil
}

// Marshal encodes r as osdp_RAW data.
func (r RawCard) Marshal() []byte {
	b := []byte{r.Reader, r.Format}
	b = binary.LittleEndian.AppendUint16(b, uint16(r.Bits))
	return append(b, r.Data...)
}

// FormattedCard is osdp_FMT: card data the PD already turned into ASCII
// (deprecated in later OSDP revisions, still sent by some readers).
type FormattedCard struct {
	// Reader is the reader number on the PD.
	Reader byte
	// Direction is 0 for a forward read, 1 for a reverse read.
	Direction byte
	// Text is the card data as printable ASCII.
	Text string
}

// ParseFMT decodes osdp_FMT data: reader, direction, length, characters.
func ParseFMT(data []byte) (FormattedCard, error) {
	if len(data) < 3 || int(data[2]) != len(data)-3 {
		return FormattedCard{}, fmt.Errorf("%w: FMT of %d bytes", ErrData, len(data))
	}
	for _, c := range data[3:] {
		if c < 0x20 || c > 0x7E {
			// The character is not quoted: card data stays out of logs.
			return FormattedCard{}, fmt.Errorf("%w: FMT with a non-printable character", ErrData)
		}
	}
	return FormattedCard{Reader: data[0], Direction: data[1], Text: string(data[3:])}, nil
}

// Marshal encodes c as osdp_FMT data. Text longer than 255 bytes is cut.
func (c FormattedCard) Marshal() []byte {
	t := c.Text
	if len(t) > 255 {
		t = t[:255]
	}
	return append([]byte{c.Reader, c.Direction, byte(len(t))}, t...)
}

// ParseNAK decodes osdp_NAK data: the reason, possibly followed by detail.
func ParseNAK(data []byte) (NAKReason, error) {
	if len(data) < 1 {
		return 0, fmt.Errorf("%w: NAK without a reason", ErrData)
	}
	return NAKReason(data[0]), nil
}

// Color is an LED colour of osdp_LED.
type Color byte

// LED colours.
const (
	Black Color = iota // off
	Red
	Green
	Amber
	Blue
	Magenta
	Cyan
	White
)

// LED control codes.
const (
	// LEDTempNop keeps the temporary state; LEDTempCancel ends it at once;
	// LEDTempSet starts a new one and its timer.
	LEDTempNop, LEDTempCancel, LEDTempSet byte = 0, 1, 2
	// LEDPermNop keeps the permanent state; LEDPermSet replaces it.
	LEDPermNop, LEDPermSet byte = 0, 1
)

// LEDState is a blinking pattern: OnTime and OffTime in units of 100 ms
// (OffTime 0 with OnTime > 0: steady), in OnColor and OffColor.
type LEDState struct {
	Control           byte
	OnTime, OffTime   byte
	OnColor, OffColor Color
}

// LED is one osdp_LED record: a temporary pattern shown for Timer (units of
// 100 ms) over the permanent one.
type LED struct {
	Reader, Number byte
	Temporary      LEDState
	Timer          uint16
	Permanent      LEDState
}

// ledLen is the size of one osdp_LED record.
const ledLen = 14

// Marshal encodes l as one osdp_LED record.
func (l LED) Marshal() []byte {
	b := []byte{l.Reader, l.Number,
		l.Temporary.Control, l.Temporary.OnTime, l.Temporary.OffTime,
		byte(l.Temporary.OnColor), byte(l.Temporary.OffColor)}
	b = binary.LittleEndian.AppendUint16(b, l.Timer)
	return append(b, l.Permanent.Control, l.Permanent.OnTime, l.Permanent.OffTime,
		byte(l.Permanent.OnColor), byte(l.Permanent.OffColor))
}

// ParseLED decodes osdp_LED data: one or more 14-byte records.
func ParseLED(data []byte) ([]LED, error) {
	if len(data) == 0 || len(data)%ledLen != 0 {
		return nil, fmt.Errorf("%w: LED of %d bytes, not a multiple of %d", ErrData, len(data), ledLen)
	}
	var leds []LED
	for i := 0; i < len(data); i += ledLen {
		r := data[i : i+ledLen]
		leds = append(leds, LED{
			Reader: r[0], Number: r[1],
			Temporary: LEDState{Control: r[2], OnTime: r[3], OffTime: r[4], OnColor: Color(r[5]), OffColor: Color(r[6])},
			Timer:     binary.LittleEndian.Uint16(r[7:9]),
			Permanent: LEDState{Control: r[9], OnTime: r[10], OffTime: r[11], OnColor: Color(r[12]), OffColor: Color(r[13])},
		})
	}
	return leds, nil
}

// Buzzer tone codes.
const (
	ToneOff     byte = 1 // silence
	ToneDefault byte = 2 // the PD's default tone
)

// Buzzer is one osdp_BUZ record: Count beeps (0: until told otherwise) of
// OnTime, separated by OffTime, in units of 100 ms.
type Buzzer struct {
	Reader, Tone, OnTime, OffTime, Count byte
}

// buzLen is the size of one osdp_BUZ record.
const buzLen = 5

// Marshal encodes b as osdp_BUZ data.
func (b Buzzer) Marshal() []byte {
	return []byte{b.Reader, b.Tone, b.OnTime, b.OffTime, b.Count}
}

// ParseBUZ decodes osdp_BUZ data.
func ParseBUZ(data []byte) (Buzzer, error) {
	if len(data) != buzLen {
		return Buzzer{}, fmt.Errorf("%w: BUZ of %d bytes, want %d", ErrData, len(data), buzLen)
	}
	return Buzzer{data[0], data[1], data[2], data[3], data[4]}, nil
}

// keyTypeSCBK is the osdp_KEYSET key type of a secure channel base key.
const keyTypeSCBK = 0x01

// ParseKeySet decodes osdp_KEYSET data: key type, length, key. Only SCBKs
// of 16 bytes are accepted.
func ParseKeySet(data []byte) (Key, error) {
	var k Key
	if len(data) != 2+len(k) || data[0] != keyTypeSCBK || int(data[1]) != len(k) {
		return k, fmt.Errorf("%w: KEYSET of %d bytes", ErrData, len(data))
	}
	copy(k[:], data[2:])
	return k, nil
}

// KeySetData encodes k as osdp_KEYSET data (key type SCBK). It holds the key
// in clear: send it only inside a secure channel, which encrypts it.
func KeySetData(k Key) []byte {
	return append([]byte{keyTypeSCBK, byte(len(k))}, k[:]...)
}
