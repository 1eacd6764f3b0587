package syncproto

// ProtocolVersion is the version of the sync protocol this package speaks.
// It is bumped whenever a message gains a field or a message type is added;
// each bump gets one dated line below saying what changed. Fields are only
// ever added and key numbers are never reused, so a peer at a higher version
// can always talk to one at a lower version that is still supported.
//
// History:
//
//	1 (2026-11-21): Hello, Welcome, Batch, Ack, Status, Error.
//	2 (2026-11-21): card data downlink: CardUpdate (7), CardAck (8) and
//	                Hello.CardCursor (key 7); Hello.OutboxAcked (key 8). Servers send CardUpdates only
//	                when both peers speak 2; a version 1 terminal works as
//	                before, answering from no card data.
const ProtocolVersion = 2

// MinProtocolVersion is the oldest peer version this package still accepts.
// A Hello below it is refused with ErrorCodeVersion, naming both numbers.
const MinProtocolVersion = 1
