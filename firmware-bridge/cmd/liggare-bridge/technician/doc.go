// Package technician holds the commands of liggare-bridge, the field
// technician's tool for a kiosk's card reader. A technician at a site has
// the kiosk's own computer and a reader that "does nothing"; the commands
// walk the fault down from the cable to the card:
//
//   - list: which serial ports exist, with their stable /dev/serial/by-id
//     names (and, given directories, the links a simulator made there);
//   - probe PORT: what is on the port: a PN532 (wake-up and
//     GetFirmwareVersion at 115200 baud), an OSDP reader (osdp_ID to the
//     broadcast address, then to addresses 0-3, at 9600, 19200, 38400 and
//     115200 baud), or a line reader (listening for a line of hex); it
//     prints the --reader value that drives it;
//   - watch SPEC: every card the reader reads, live, with the reader's
//     state changes; nothing else (no names, nothing from the registry);
//   - feedback SPEC OUTCOME: shows an outcome on the reader's LED and
//     beeper through the driver's own feedback path;
//   - quality SPEC: runs the driver for a while and reports the link
//     counters of reader.State (frames, checksum errors, retries, missed
//     polls, reopens);
//   - simulate: a simulated reader on a pseudo-terminal behind a stable
//     path, presenting the cards of a simulated crew (package crew), for
//     make demo and for training.
//
// SPEC is the terminal's --reader value (osdp:PATH?..., pn532:PATH?...,
// line:PATH?...), parsed by each driver package's ParseConfig, so what
// works here works in the terminal. The kiosk agent must be stopped
// first: a serial port has one owner.
//
// Nothing here prints a key: the OSDP spec may hold one, so commands print
// the protocol and device path, never the spec itself.
package technician
