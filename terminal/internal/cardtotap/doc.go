// Package cardtotap holds the tests and the benchmark of the kiosk's whole
// card path, with nothing faked: a simulated reader speaking its real wire
// format on a pseudo-terminal, the firmware-bridge driver the terminal's
// --reader names (through tapsource.Parse), the tapsource.Driver adapter,
// agent.Record and a real outbox in a temporary directory, committing with
// fsync.
//
// TestEveryCardOneTap presents cards to each kind of reader (OSDP, PN532,
// line reader) through noise, bad checksums, truncated frames, lost
// replies, an unplug and replug, and a silent reader, and checks the
// outbox: every card presented is there exactly once.
//
// TestBinaries does the same with the real binaries, as make demo runs
// them: liggare-bridge simulate for the reader, liggare-terminal with
// --reader osdp:, pn532: or line:.
//
// BenchmarkCardToTap measures, per protocol, the time from the last byte of
// a card's frame written on the serial line (taken right after the
// simulator's write returns) to the tap being durable (agent.Record
// returned with the tap recorded), and from there to the reader's feedback
// command reaching the simulator. The package has no code of its own.
package cardtotap
