// Package sim simulates a PN532 NFC module on its HSU line, for the
// pn532 driver's tests and for `make demo`.
//
// It speaks the real wire format (package pn532's frames) on whatever it is
// given: the master side of a ptypair pseudo-terminal, whose slave the
// driver opens through serialport exactly as it would open /dev/ttyS0
// (RunPTY does this behind a stable symlink), or one end of a net.Pipe.
//
// What it models:
//
//   - Power: it starts asleep, as after power-up, and ignores everything
//     until it hears the HSU wake-up byte 0x55. It then takes only
//     SAMConfiguration, which ends the PN532 C106's low-battery mode; other
//     commands are ignored until then. Unplug, and coming back from
//     Silence, put it to sleep again, as a power cut or glitch would.
//   - Commands: GetFirmwareVersion (PN532 v1.6), SAMConfiguration,
//     RFConfiguration, InListPassiveTarget for type A (the card presented
//     with Present, or no target), InRelease, ReadGPIO and WriteGPIO (the
//     P3 port is kept, so a test sees the buzzer pin). Each is ACKed, then
//     answered; an unknown command or bad parameters get the error frame.
//   - The host's ACK (abort) is counted; the host's NACK makes it send its
//     last response again; a host frame with a bad checksum is dropped
//     unanswered, as the chip would.
//
// Faults on demand: Inject queues one-shot faults, each applied to the
// next command (Noise before the ACK, BadLCS, BadDCS, Truncate on the
// response, NACK instead of running it, Deaf for no answer at all);
// Silence makes it deaf and mute until called off; Unplug closes the line.
// Stats counts what it saw, and Wait blocks until the counters reach a
// condition, so tests wait for events instead of sleeping.
package sim
