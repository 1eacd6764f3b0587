// Package sim simulates an OSDP card reader (a PD) for tests and demos. It
// speaks the real wire format on any byte stream (the master side of a
// pseudo-terminal, one end of a pipe): it answers osdp_POLL, osdp_ID,
// osdp_CAP, osdp_LED, osdp_BUZ and the secure channel handshake with
// osdp_KEYSET, reports the cards a test presents, and misbehaves on demand
// (noise, wrong CRCs, truncated replies, lost replies, silence, unplug) so
// that a control panel's recovery can be tested. Several simulated readers
// can share one stream, as PDs share an RS-485 bus (Serve).
//
// Like a real PD it keeps a card report until the CP shows, by moving on to
// the next sequence number, that it got the reply carrying it; a command
// sent again with the same sequence number gets the same reply bytes again
// without being acted on twice.
//
// Start runs simulated readers on a pseudo-terminal pair behind a stable
// path, the way make demo and the driver's tests use it; Device.Unplug and
// Device.Replug pull the reader out and plug it in again behind the same
// path. PD.Serve runs one on any io.ReadWriter (a net.Pipe end).
package sim
