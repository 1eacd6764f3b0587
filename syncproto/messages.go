package syncproto

import "fmt"

// MsgType identifies the body carried in an Envelope.
type MsgType uint8

// Message types. Numbers are never reused; retired numbers are listed here.
const (
	// TypeHello is a Hello, terminal -> server, the first message of a session.
	TypeHello MsgType = 1
	// TypeWelcome is a Welcome, server -> terminal, the answer to Hello.
	TypeWelcome MsgType = 2
	// TypeBatch is a Batch, terminal -> server, taps to store.
	TypeBatch MsgType = 3
	// TypeAck is an Ack, server -> terminal, the answer to one Batch.
	TypeAck MsgType = 4
	// TypeStatus is a Status, terminal -> server, a periodic health report.
	TypeStatus MsgType = 5
	// TypeError is an Error, either way, the last message before closing.
	TypeError MsgType = 6
	// TypeCardUpdate is a CardUpdate, server -> terminal, since version 2.
	TypeCardUpdate MsgType = 7
	// TypeCardAck is a CardAck, terminal -> server, since version 2.
	TypeCardAck MsgType = 8
)

// String returns the message type's name, for logs and errors.
func (t MsgType) String() string {
	switch t {
	case TypeHello:
		return "Hello"
	case TypeWelcome:
		return "Welcome"
	case TypeBatch:
		return "Batch"
	case TypeAck:
		return "Ack"
	case TypeStatus:
		return "Status"
	case TypeError:
		return "Error"
	case TypeCardUpdate:
		return "CardUpdate"
	case TypeCardAck:
		return "CardAck"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// Message is implemented by every message body that can travel in an Envelope:
// *Hello, *Welcome, *Batch, *Ack, *Status, *Error, *CardUpdate and *CardAck.
type Message interface {
	MsgType() MsgType
}

// Hello opens a session. The terminal sends it right after the websocket
// upgrade, which has already authenticated the terminal by its credential.
type Hello struct {
	// ProtocolVersion is the highest version the terminal speaks.
	ProtocolVersion uint32 `cbor:"1,keyasint"`
	// TerminalID must equal the identity the credential belongs to.
	TerminalID string `cbor:"2,keyasint"`
	// StoreEpoch names the terminal's outbox. It changes whenever the outbox
	// is created anew, so (TerminalID, StoreEpoch, Seq) is unique forever.
	StoreEpoch int64 `cbor:"3,keyasint"`
	// AgentVersion is the terminal software's version string.
	AgentVersion string `cbor:"4,keyasint"`
	// Clock is the terminal's clock when the Hello was sent.
	Clock Clock `cbor:"5,keyasint"`
	// OutboxDepth is the number of taps waiting for acknowledgement.
	OutboxDepth uint64 `cbor:"6,keyasint"`
	// CardCursor is the cursor of the last CardUpdate the terminal applied
	// and acknowledged, 0 when its card cache is empty (since version 2).
	CardCursor uint64 `cbor:"7,keyasint,omitempty"`
	// OutboxAcked is the highest sequence of this epoch the terminal has
	// had acknowledged and dropped (since version 2). A server holding less
	// has lost acknowledged taps (restored from a backup): it records the
	// gap as an alarm and resumes after it, since the terminal no longer has
	// those taps to send.
	OutboxAcked uint64 `cbor:"8,keyasint,omitempty"`
}

// Clock is one reading of a terminal's clocks, taken at the same moment.
type Clock struct {
	// WallMicros is the device wall clock, microseconds since the Unix epoch.
	// It may be wrong: kiosks boot without a real-time clock.
	WallMicros int64 `cbor:"1,keyasint"`
	// BootID identifies the terminal's current boot (Linux boot_id).
	BootID string `cbor:"2,keyasint"`
	// MonoNanos is the monotonic time since boot, in nanoseconds. Readings
	// with the same BootID can be compared even when the wall clock jumped.
	MonoNanos int64 `cbor:"3,keyasint"`
}

// Welcome accepts a Hello.
type Welcome struct {
	// ProtocolVersion is the version both sides now speak: the lower of the
	// two peers' versions.
	ProtocolVersion uint32 `cbor:"1,keyasint"`
	// ServerMicros is the server's clock when the Welcome was sent.
	ServerMicros int64 `cbor:"2,keyasint"`
	// AckedThrough is the highest sequence the server holds contiguously for
	// this terminal and store epoch: every tap with Seq <= AckedThrough is
	// durable on the server (stored or rejected) and may be dropped from the
	// outbox. The terminal resumes its upload at AckedThrough+1.
	AckedThrough uint64 `cbor:"3,keyasint"`
	// MaxBatchTaps is the most taps the server accepts in one Batch.
	MaxBatchTaps uint32 `cbor:"4,keyasint"`
	// MaxInFlight is the most unacknowledged Batches the server will queue.
	MaxInFlight uint32 `cbor:"5,keyasint"`
	// ClockOffsetMicros is the server's estimate of server clock minus
	// terminal wall clock, measured from the Hello.
	ClockOffsetMicros int64 `cbor:"6,keyasint"`
}

// Tap is one card presented to a reader, as recorded in the terminal outbox.
// Its identity is (terminal id, store epoch, Seq). A tap is immutable: the
// same identity always carries the same content.
type Tap struct {
	// Seq is allocated by the outbox in the transaction that stored the tap;
	// it starts at 1 and has no gaps within a store epoch.
	Seq uint64 `cbor:"1,keyasint"`
	// CardID is the normalised card identifier (see the firmware bridge).
	CardID string `cbor:"2,keyasint"`
	// Clock is the terminal's clock at the moment of the tap.
	Clock Clock `cbor:"3,keyasint"`
	// Reader names the reader the card was presented to, for terminals with
	// more than one (an in-reader and an out-reader). Empty for the default.
	Reader string `cbor:"4,keyasint,omitempty"`
	// Answer is what the kiosk told the worker, from its cached card data
	// (e.g. "accepted", "blocked_id06"). Informational; the server decides.
	Answer string `cbor:"5,keyasint,omitempty"`
}

// Batch carries taps to store. Taps are in ascending Seq order within a
// batch; batches may overlap, repeat or arrive in any order, and the server
// answers each with exactly one Ack.
type Batch struct {
	// BatchID is chosen by the terminal, unique within the session, and
	// echoed in the Ack.
	BatchID uint64 `cbor:"1,keyasint"`
	// Taps are the taps to store, in strictly ascending Seq order: at least
	// one, at most Welcome.MaxBatchTaps and never more than MaxBatchTaps.
	Taps []Tap `cbor:"2,keyasint"`
}

// Ack answers one Batch, and is sent only after the database transaction that
// holds the batch has committed.
type Ack struct {
	// BatchID echoes the Batch.
	BatchID uint64 `cbor:"1,keyasint"`
	// AckedThrough is the highest sequence now held contiguously by the
	// server for this terminal and epoch (see Welcome.AckedThrough). Acks can
	// overtake each other: the terminal keeps the maximum it has seen.
	AckedThrough uint64 `cbor:"2,keyasint"`
	// Rejected lists taps of this batch the server refused. They are kept
	// in the server's dead-letter table and count as acknowledged.
	Rejected []Rejection `cbor:"3,keyasint,omitempty"`
}

// Rejection says why one tap was not accepted into the ledger.
type Rejection struct {
	// Seq is the rejected tap's sequence number.
	Seq uint64 `cbor:"1,keyasint"`
	// Code says which rule the tap broke.
	Code RejectCode `cbor:"2,keyasint"`
	// Reason explains the rejection to a person, in English.
	Reason string `cbor:"3,keyasint"`
}

// RejectCode classifies a Rejection.
type RejectCode uint16

// Reject codes. Numbers are never reused.
const (
	// RejectInvalid means the tap breaks a rule of Tap.Check (empty or
	// over-long card id, ...). Kept in the dead-letter table.
	RejectInvalid RejectCode = 1
	// RejectConflict means the server already holds a different tap with the
	// same identity. The new content is quarantined and an alarm raised; the
	// original is kept.
	RejectConflict RejectCode = 2
)

// String returns the code's name.
func (c RejectCode) String() string {
	switch c {
	case RejectInvalid:
		return "invalid"
	case RejectConflict:
		return "conflict"
	}
	return fmt.Sprintf("RejectCode(%d)", uint16(c))
}

// Status is the terminal's periodic health report.
type Status struct {
	// Clock is the terminal's clock when the Status was sent.
	Clock Clock `cbor:"1,keyasint"`
	// OutboxDepth is the number of taps not yet acknowledged.
	OutboxDepth uint64 `cbor:"2,keyasint"`
	// OldestUnackedMicros is the device wall time of the oldest tap not yet
	// acknowledged, or 0 when the outbox is empty.
	OldestUnackedMicros int64 `cbor:"3,keyasint"`
	// ReaderState describes the card reader ("ok", "offline", ...).
	ReaderState string `cbor:"4,keyasint,omitempty"`
	// Alarms lists conditions that need a person, e.g. "outbox_full".
	Alarms []string `cbor:"5,keyasint,omitempty"`
}

// Error is the last message a peer sends before closing the connection.
type Error struct {
	// Code classifies the error; the peer acts on it (see ErrorCode).
	Code ErrorCode `cbor:"1,keyasint"`
	// Message explains the error to a person, in English.
	Message string `cbor:"2,keyasint"`
}

// ErrorCode classifies an Error.
type ErrorCode uint16

// Error codes. Numbers are never reused.
const (
	// ErrorCodeInternal means the peer failed; retry later.
	ErrorCodeInternal ErrorCode = 1
	// ErrorCodeUnauthorized means the credential is unknown, revoked or
	// belongs to another terminal than the Hello names.
	ErrorCodeUnauthorized ErrorCode = 2
	// ErrorCodeVersion means the protocol version is too old or too new.
	ErrorCodeVersion ErrorCode = 3
	// ErrorCodeMalformed means a message could not be decoded.
	ErrorCodeMalformed ErrorCode = 4
	// ErrorCodeTooLarge means a message exceeded a limit.
	ErrorCodeTooLarge ErrorCode = 5
	// ErrorCodeUnexpected means a valid message came at the wrong point of
	// the session.
	ErrorCodeUnexpected ErrorCode = 6
	// ErrorCodeUnknownType means an envelope type this peer does not know.
	ErrorCodeUnknownType ErrorCode = 7
	// ErrorCodeShutdown means the server is shutting down; reconnect.
	ErrorCodeShutdown ErrorCode = 8
)

// String returns the code's name.
func (c ErrorCode) String() string {
	switch c {
	case ErrorCodeInternal:
		return "internal"
	case ErrorCodeUnauthorized:
		return "unauthorized"
	case ErrorCodeVersion:
		return "version"
	case ErrorCodeMalformed:
		return "malformed"
	case ErrorCodeTooLarge:
		return "too_large"
	case ErrorCodeUnexpected:
		return "unexpected"
	case ErrorCodeUnknownType:
		return "unknown_type"
	case ErrorCodeShutdown:
		return "shutdown"
	}
	return fmt.Sprintf("ErrorCode(%d)", uint16(c))
}

// Error makes *Error usable as a Go error when a peer reports one.
func (e *Error) Error() string {
	return fmt.Sprintf("syncproto: peer error %s: %s", e.Code, e.Message)
}

// MsgType returns TypeHello.
func (*Hello) MsgType() MsgType { return TypeHello }

// MsgType returns TypeWelcome.
func (*Welcome) MsgType() MsgType { return TypeWelcome }

// MsgType returns TypeBatch.
func (*Batch) MsgType() MsgType { return TypeBatch }

// MsgType returns TypeAck.
func (*Ack) MsgType() MsgType { return TypeAck }

// MsgType returns TypeStatus.
func (*Status) MsgType() MsgType { return TypeStatus }

// MsgType returns TypeError.
func (*Error) MsgType() MsgType { return TypeError }

// CardUpdate carries the card data a terminal needs to answer a worker
// without the network: for each card id a reader may yield (ID06 number or
// chip UID) on the terminal's site, who holds the card and whether it may be
// used there. Sent by the server after the Welcome and whenever the data
// changes, at most one unacknowledged at a time. Since version 2.
type CardUpdate struct {
	// Cursor is the position in the server's change feed this update brings
	// the terminal to. The terminal stores it with the cards, acknowledges
	// it with a CardAck, and sends it in its next Hello.
	Cursor uint64 `cbor:"1,keyasint"`
	// Reset: the cards replace the whole cache (a snapshot). A snapshot may
	// span several updates: the first has Reset, the last has Final.
	Reset bool `cbor:"2,keyasint,omitempty"`
	// Final: the last update of a snapshot or of a change set; the terminal
	// may answer from its cache again once it has applied it.
	Final bool `cbor:"3,keyasint,omitempty"`
	// Cards are entries to add, replace or (Removed) delete, at most
	// MaxBatchTaps.
	Cards []CardInfo `cbor:"4,keyasint"`
}

// CardInfo is what a kiosk needs to know about one card id.
type CardInfo struct {
	// CardID is the normalised card identifier readers yield.
	CardID string `cbor:"1,keyasint"`
	// Name is the holder's name as the kiosk shows it.
	Name string `cbor:"2,keyasint,omitempty"`
	// Employer is the holder's employer as the kiosk shows it.
	Employer string `cbor:"3,keyasint,omitempty"`
	// Status is one of the CardStatus values.
	Status string `cbor:"4,keyasint,omitempty"`
	// Removed: the card id no longer concerns this site; forget it.
	Removed bool `cbor:"5,keyasint,omitempty"`
}

// Card statuses carried in CardInfo.Status. A kiosk refuses every status
// but CardActive with its reason, and records the tap all the same.
const (
	CardActive       = "active"        // may be used
	CardBlockedID06  = "blocked_id06"  // "Kort spärrat hos ID06"
	CardBlockedSite  = "blocked_site"  // "Kort spärrat av arbetsplatsen"
	CardNotActivated = "not_activated" // "Kort ej aktiverat"
	CardExpired      = "expired"       // validity ended
	CardTerminated   = "terminated"    // ended for good
)

// CardAck acknowledges a CardUpdate once the terminal has stored it.
// Since version 2.
type CardAck struct {
	Cursor uint64 `cbor:"1,keyasint"`
}

// MsgType returns TypeCardUpdate.
func (*CardUpdate) MsgType() MsgType { return TypeCardUpdate }

// MsgType returns TypeCardAck.
func (*CardAck) MsgType() MsgType { return TypeCardAck }
