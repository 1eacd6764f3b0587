// Package osdp is the control panel (CP) side of OSDP v2.2, the Open
// Supervised Device Protocol that professional access-control readers speak
// over RS-485, and a reader.Driver built on it.
//
// # The protocol
//
// OSDP is half duplex and strictly request/response: one CP sends a command
// to one peripheral device (PD, here a card reader) by its address and waits
// for that PD's reply before the bus is used again. A PD never speaks
// unasked, so a CP that wants to hear about cards polls (osdp_POLL) each PD
// several times a second; the reply is osdp_ACK ("nothing new") or the
// news itself, such as osdp_RAW with the bits of a card's UID. That same
// poll is the "supervised" in the name: a PD that stops answering is known
// to be gone within a second or two, which matters on a building site where
// cables get cut.
//
// Every packet has the same shape:
//
//	SOM 0x53 | address | length (2, LE) | control | [security block] | code | data | [MAC (4)] | CRC-16 (2, LE) or checksum (1)
//
// The address is 0x00-0x7E (0x7F broadcasts) and a reply sets bit 7 of it.
// The length counts the whole packet. The control byte holds a sequence
// number (bits 0-1), whether a CRC-16 or an 8-bit checksum ends the packet
// (bit 2), and whether a security control block follows (bit 3). The CRC is
// CRC-16/AUG-CCITT: polynomial 0x1021, initial value 0x1D0F.
//
// Sequence numbers are how OSDP survives a noisy line. The CP numbers its
// commands 1, 2, 3, 1, ...; 0 means "start over" and resets the PD. When a
// reply is missing or garbled, the CP sends the same bytes again with the
// same number, and a PD that did get the command answers with its last
// reply instead of acting twice; a PD moving on to the next number is the
// PD's sign that the last reply arrived. So a card report is neither lost
// when its reply is, nor reported twice when the command is repeated.
//
// The Secure Channel (Annex D of the specification) adds AES-128. The CP
// sends a random number (osdp_CHLNG); the PD answers with its own and a
// cryptogram (osdp_CCRYPT); the CP answers with its cryptogram
// (osdp_SCRYPT); the PD with the first MAC of the chain (osdp_RMAC_I). Both
// sides have derived three session keys from the secure channel base key
// (SCBK) and the CP's random number, and proved it. From then on every
// packet carries a MAC chained from the previous packet's, and command and
// reply data are encrypted. A factory-new reader accepts a well-known key,
// SCBK-D, in install mode only, so that the CP can give it a key of its own
// with osdp_KEYSET.
//
// # The package
//
// Frame, Parse and FrameReader are the packet layer: encoding, decoding
// with length limits (MaxPacket) checked before anything is allocated, and
// a stream reader that resynchronises on the next SOM after noise or a bad
// CRC. The message types (PDID, Capabilities, RawCard, FormattedCard, LED,
// Buzzer) encode and decode command and reply data. Session is the secure
// channel's cryptography, shared by the CP and the simulator. Key holds
// keys and never prints them.
//
// Driver (New, Config, ParseConfig) is the CP. It polls each configured PD
// on a cadence, brings an offline PD up from sequence 0 (osdp_ID for the
// model, osdp_CAP, the secure channel when a key is configured), sends a
// command again with the same sequence number when its reply is lost, and
// takes a PD offline after OfflineAfter missed replies in a row. It sends
// CRC-16 packets unless a PD asks for the checksum (osdp_PDCAP, or a NAK of
// the first CRC). Card
// reports become one reader.Read per presentation (reader.HoldOff), handed
// to the handler apart from the poll loop; the Feedback comes back as
// osdp_LED and osdp_BUZ commands sent ahead of the next poll. When the port
// fails (a USB adapter unplugged), the driver reopens it with a growing
// delay. Its State counts good frames, check errors, retries, missed polls
// and reopens for the technician.
//
// Package osdp/sim is a PD simulator speaking the same wire format, with
// faults on demand, for the tests and make demo.
//
// # What is not here
//
// Master-key derivation of per-reader keys (SCBK from a master key and the
// reader's cUID), multi-part messages, file transfer, biometrics, osdp_TEXT
// and the input/output/tamper status commands are not implemented: a kiosk
// needs card reads and feedback. osdp_FMT (deprecated by the specification)
// is understood for the readers that still send it.
package osdp
