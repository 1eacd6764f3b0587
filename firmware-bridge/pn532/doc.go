// Package pn532 reads ID06 cards from an NXP PN532 NFC module on a UART,
// the cheap kiosk build: the PN532's High Speed UART (HSU) wired to a
// USB-serial adapter or the kiosk's own serial port. It implements
// reader.Driver: one card presentation becomes one reader.Read whose CardID
// is the chip UID in upper-case hex.
//
// # The line (UM0701 §6.2)
//
// Host and PN532 exchange frames:
//
//	normal       00 00 FF LEN LCS TFI PD0..PDn DCS 00      LEN+LCS = 0, TFI+PD+DCS = 0 (mod 256)
//	extended     00 00 FF FF FF LENM LENL LCS TFI PD.. DCS 00
//	ACK          00 00 FF 00 FF 00
//	NACK         00 00 FF FF 00 00
//	error        00 00 FF 01 FF 7F 81 00
//
// TFI is D4 from the host, D5 from the PN532; PD0 is the command code, and
// the response code is the command code + 1. Parser cuts a byte stream into
// frames, checks both checksums, rejects lengths above MaxFrameData before
// buffering them, and after a broken frame resumes right after its start
// code, so noise, truncated frames and corrupted headers cost only the
// frames they touch. It is fuzzed.
//
// # A dialogue
//
// The host sends a command; the PN532 answers with an ACK within a few
// milliseconds, then with the response. The driver sends a command again
// (State.Retries) after a NACK or error frame, when no ACK comes within
// Config.AckTimeout, or when the response arrives corrupted
// (State.ChecksumErrors); every command it uses is safe to repeat. When
// no response follows an ACK within Config.ResponseTimeout, it sends an
// ACK itself, which aborts the command, and counts a missed poll.
//
// Start-up, and again whenever the reader stopped answering:
//
//  1. HSU wake-up: 0x55 0x55 and then zeros for about 2 ms, which keep the
//     line busy while the PN532 leaves power-down and its oscillator starts.
//     The PN532 C106 starts in low-battery mode, which only
//     SAMConfiguration ends, so that comes next.
//  2. SAMConfiguration (0x14): normal mode (no SAM), timeout, use P70_IRQ.
//  3. GetFirmwareVersion (0x02): "PN532 v1.6 (...)" in State.Model.
//  4. RFConfiguration (0x32) item MaxRetries: two passive activation
//     attempts instead of the default "retry for ever", so that a poll
//     with no card on the reader is answered at once.
//  5. With a beep pin configured: ReadGPIO, then WriteGPIO with the pin
//     low.
//
// Then every Config.PollInterval (150 ms): InListPassiveTarget (0x4A) for
// one ISO/IEC 14443 type A target at 106 kbps. The answer lists no card, or
// one with SENS_RES (ATQA), SEL_RES (SAK), the NFCID1 (UID, 4, 7 or 10
// bytes) and, for an ISO/IEC 14443-4 card such as an ID06 2.0 card, its
// ATS. After a card is seen, InRelease (0x52) ends the PN532's session
// with it. InListPassiveTarget was chosen over InAutoPoll because, with
// bounded retries, it answers every poll: each poll doubles as the
// heartbeat that tells a silent reader from an empty one (see Driver.poll).
//
// # Taps
//
// A card is a new presentation when the previous poll did not see it and
// reader.HoldOff has not seen it within Config.HoldOff: a card left on the
// reader for minutes is one tap; lifted and put straight back, still one;
// lifted and presented again after the hold-off, a second. A card with a
// random UID (4 bytes starting 0x08) is logged: its UID changes at every
// power-up and cannot identify it.
//
// # Failures
//
//   - Garbage: dropped frames are counted; the parser resynchronises on the
//     next start code.
//   - Silence: after Config.MaxMissed unanswered exchanges in a row the
//     reader is offline (State.Online false) and is woken and configured
//     again, with backoff, until it answers.
//   - Unplug: a failed read or write closes the port; Run opens it again
//     through serialport with exponential backoff (State.Reopens) and
//     wakes the reader as after power-up. A card presented after the
//     replug is read; the hold-off is kept across the gap.
//
// # Feedback
//
// The bare PN532 module has no LED and no buzzer: the kiosk screen is the
// only feedback. A board that wires a buzzer to one of the PN532's P3 pins
// can name it (Config.Beep, gpio_beep=P32 in the reader address); the
// driver then sounds each reader.Outcome on it with WriteGPIO (0x0E):
// one short beep for accepted, a long one for refused, two for recorded
// offline, three for not recorded.
//
// The simulator in package sim speaks the PN532's side of all this over a
// pseudo-terminal or any io.ReadWriter, with faults on demand.
package pn532
