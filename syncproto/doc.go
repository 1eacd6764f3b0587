// Package syncproto is the wire protocol between a Liggare terminal (the
// kiosk agent at a site's entrance) and the Liggare server: how taps recorded
// in a terminal's outbox reach the staff ledger exactly once, and what the two
// sides say to each other meanwhile. It is the only package the terminal and
// the server share, and it does no I/O: it defines the messages, encodes and
// decodes them, and holds the protocol's version, limits and rules. Encode
// and Decode convert between messages and wire bytes; a message Decode
// returns has passed every rule below, and Encode refuses to produce what
// Decode would refuse.
//
// This comment is the protocol's specification. It is meant to be enough to
// write a terminal or a server in another language; where it and the code
// disagree, it is a bug in one of them. The files in testdata/golden hold the
// exact wire bytes of one instance of every message.
//
// # Transport
//
// A terminal opens a websocket (RFC 6455) to the server at the path SyncPath,
// "/v1/sync", over TLS in production, and authenticates in the upgrade
// request:
//
//	GET /v1/sync HTTP/1.1
//	Authorization: Bearer <terminal-id>.<secret>
//
// The credential is issued once by the server when the terminal is
// registered, and only a hash of the secret is stored. A terminal id is 1 to
// 64 characters of A-Z a-z 0-9 _ and -, so the first "." ends it. An unknown
// or revoked credential is refused at the upgrade with HTTP 401: no websocket
// is opened and no syncproto message is sent.
//
// Every websocket message is a binary message holding exactly one Envelope,
// at most MaxMessageBytes long (set the websocket read limit to it). A text
// message is a protocol error. Websocket fragmentation is the transport's
// business: the Envelope is the reassembled message.
//
// # Envelope
//
// The Envelope is a CBOR map with two keys:
//
//	key  name  CBOR type  meaning
//	1    type  uint       the message type, a MsgType
//	2    body  map        the message, a map with integer keys (below)
//
//	type  message  direction
//	1     Hello    terminal -> server
//	2     Welcome  server -> terminal
//	3     Batch    terminal -> server
//	4     Ack      server -> terminal
//	5     Status   terminal -> server
//	6     Error    either way
//
// Both keys are required, and the body must be a map. Unknown keys in the
// Envelope are ignored. A type this version does not know (Decode returns
// ErrUnknownType) ends the session with ErrorCodeUnknownType.
//
// # Messages
//
// Every message, and the Clock, Tap and Rejection inside them, is a CBOR
// map from small unsigned integer keys to values. In the tables, uint is CBOR
// major type 0 and int is major type 0 or 1, both limited to the range of the
// Go type shown; text is a UTF-8 text string (major type 3). A value outside
// its range or of another CBOR type makes the message malformed. Fields
// marked "omitted when empty" are left out of the map when empty; every other
// field is always sent, even when zero. A decoder takes a missing key as the
// zero value and ignores keys it does not know.
//
// Hello (type 1) opens a session:
//
//	key  field            type    rules
//	1    ProtocolVersion  uint32  >= 1: the highest version the terminal speaks
//	2    TerminalID       text    1..MaxIDBytes bytes; the credential's terminal id
//	3    StoreEpoch       int64   > 0: names the terminal's outbox
//	4    AgentVersion     text    the terminal software's version
//	5    Clock            Clock   the terminal's clocks when sending the Hello
//	6    OutboxDepth      uint64  taps waiting for acknowledgement
//	7    CardCursor       uint64  version >= 2: cursor of the last CardUpdate
//	                              applied, 0 for an empty card cache;
//	                              omitted when 0
//	8    OutboxAcked      uint64  version >= 2: highest Seq of this epoch the
//	                              outbox had acknowledged and dropped;
//	                              omitted when 0
//
// Clock is one reading of a terminal's clocks, taken at one moment:
//
//	key  field       type   rules
//	1    WallMicros  int64  device wall clock, microseconds since 1970-01-01 UTC
//	2    BootID      text   0..MaxIDBytes bytes: Linux boot_id of the current boot
//	3    MonoNanos   int64  monotonic clock, nanoseconds since boot
//
// Welcome (type 2) accepts a Hello:
//
//	key  field              type    rules
//	1    ProtocolVersion    uint32  >= 1: the session's version, see Versioning
//	2    ServerMicros       int64   the server's clock, microseconds since 1970
//	3    AckedThrough       uint64  every tap of this terminal and epoch with
//	                                Seq <= AckedThrough is held by the server
//	4    MaxBatchTaps       uint32  >= 1: most taps per Batch
//	5    MaxInFlight        uint32  >= 1: most unacknowledged Batches
//	6    ClockOffsetMicros  int64   server clock minus terminal wall clock at Hello
//
// Batch (type 3) carries taps to store:
//
//	key  field    type          rules
//	1    BatchID  uint64        chosen by the terminal, unique in the session
//	2    Taps     array of Tap  1..min(Welcome.MaxBatchTaps, MaxBatchTaps) taps;
//	                            Seq strictly ascending, each in 1..MaxSeq
//
// Tap is one card presented to a reader, as recorded in the outbox:
//
//	key  field   type    rules
//	1    Seq     uint64  1..MaxSeq; from the outbox, no gaps within an epoch
//	2    CardID  text    the normalised card identifier (see Tap.Check)
//	3    Clock   Clock   the terminal's clocks at the tap
//	4    Reader  text    the reader's name; omitted when empty (default reader)
//	5    Answer  text    what the kiosk showed, e.g. "accepted"; omitted when empty
//
// Ack (type 4) answers one Batch, once the batch is committed:
//
//	key  field         type                rules
//	1    BatchID       uint64              the Batch's BatchID
//	2    AckedThrough  uint64              as in Welcome, after this batch
//	3    Rejected      array of Rejection  taps refused; omitted when empty
//
// Rejection says why one tap was not accepted into the ledger:
//
//	key  field   type    rules
//	1    Seq     uint64  the tap's Seq
//	2    Code    uint16  a RejectCode: 1 invalid, 2 conflict
//	3    Reason  text    for people, in English
//
// Status (type 5) is the terminal's periodic health report:
//
//	key  field                type           rules
//	1    Clock                Clock          the terminal's clocks when sending
//	2    OutboxDepth          uint64         taps not yet acknowledged
//	3    OldestUnackedMicros  int64          wall time of the oldest of them, or 0
//	4    ReaderState          text           e.g. "ok", "offline"; omitted when empty
//	5    Alarms               array of text  at most MaxAlarms, e.g. "outbox_full";
//	                                         omitted when empty
//
// Error (type 6) is the last message before a peer closes the connection:
//
//	key  field    type    rules
//	1    Code     uint16  an ErrorCode, see Errors
//	2    Message  text    for people, in English
//
// CardUpdate (type 7, version >= 2) carries, server to terminal, the card
// data the kiosk answers from when the network is down:
//
//	key  field   type               rules
//	1    Cursor  uint64             the change-feed position this update brings
//	                                the terminal to
//	2    Reset   bool               the cards replace the whole cache (first
//	                                update of a snapshot); omitted when false
//	3    Final   bool               last update of a snapshot or change set;
//	                                omitted when false
//	4    Cards   array of CardInfo  at most MaxBatchTaps entries
//
// CardInfo is what a kiosk knows about one card id:
//
//	key  field     type  rules
//	1    CardID    text  1..MaxIDBytes bytes: an ID06 number or a chip UID
//	2    Name      text  the holder's name; omitted when empty
//	3    Employer  text  the holder's employer; omitted when empty
//	4    Status    text  active, blocked_id06, blocked_site, not_activated,
//	                     expired or terminated; omitted when empty
//	5    Removed   bool  forget this card id; omitted when false
//
// CardAck (type 8, version >= 2) acknowledges a CardUpdate once the
// terminal has stored it durably:
//
//	key  field   type    rules
//	1    Cursor  uint64  the CardUpdate's Cursor
//
// # Session
//
//  1. After the upgrade the terminal sends a Hello and nothing else until it
//     has the answer. The server checks that Hello.TerminalID is the
//     credential's terminal (else ErrorCodeUnauthorized) and negotiates the
//     version (else ErrorCodeVersion), then answers with a Welcome. A first
//     message other than Hello, a second Hello, or a message the receiving
//     side never accepts (a Batch sent to a terminal, say) is answered with
//     ErrorCodeUnexpected.
//
//     A server whose cursor is below Hello.OutboxAcked has lost taps it
//     acknowledged (a database restored from a backup): it records the gap
//     as an alarm and answers with Welcome.AckedThrough = OutboxAcked. A
//     Welcome.AckedThrough above the outbox's last Seq means the outbox is
//     an older copy of itself: the terminal moves its pending taps to a new
//     store epoch and reconnects, so they never collide with identities the
//     server already holds.
//
//  2. The terminal drops from its outbox every tap of this epoch with
//     Seq <= Welcome.AckedThrough and uploads the rest, in Seq order from
//     AckedThrough+1, in Batches of at most min(Welcome.MaxBatchTaps,
//     MaxBatchTaps) taps. Batches are pipelined: the terminal may have up to
//     Welcome.MaxInFlight Batches sent and not yet acknowledged, and waits for
//     an Ack before sending more.
//
//  3. The server answers every Batch with exactly one Ack carrying its
//     BatchID, and only after the database transaction holding the batch has
//     committed. Acks may overtake each other (batches commit in groups, on
//     several workers): the terminal keeps the highest AckedThrough it has
//     seen and drops the taps at or below it. A rejected tap counts as held.
//     A tap above AckedThrough stays in the outbox even if it was stored,
//     until the sequences below it are held too; sending it again is
//     harmless.
//
//  4. Once welcomed, the terminal sends a Status whenever it likes, typically
//     every minute and when something changes. The server does not answer it.
//
//  5. Either side ends the session by sending an Error and closing the
//     websocket; the other side closes too. Dropping the connection without
//     an Error is allowed (it is what a power cut does). The terminal
//     reconnects with exponential backoff and jitter and starts again at 1:
//     whatever was not acknowledged is sent again.
//
//  6. In version 2 the server sends CardUpdates after the Welcome: a
//     snapshot when the terminal's Hello.CardCursor is 0 or too old, or when
//     the site's roster changed, else the changes since that cursor. It
//     sends the next update only after the CardAck of the previous one. The
//     terminal applies each update in one durable transaction (clearing its
//     cache first on Reset), stores the cursor with it, then answers CardAck.
//     An update that is lost with the connection is sent again: the terminal
//     reports its cursor in the next Hello. A tap is recorded whatever the
//     card data says; the data only decides what the kiosk shows.
//
// # Identity and exactly-once
//
// A tap's identity is (terminal id, store epoch, Seq). The outbox allocates
// Seq, from 1 without gaps, in the same transaction that stores the tap; the
// store epoch changes whenever the outbox is created anew (a new disk, a
// reinstall), so an identity is never used twice for different taps. An epoch
// is positive and differs from every earlier epoch of the terminal (the Unix
// time of the outbox's creation, in seconds, is a fine choice).
//
// The server keeps every identity forever: there is no time window after
// which a duplicate is forgotten. A tap the server already holds, sent again
// with the same content, gets the same answer as the first time (held, or
// the same Rejection). The same identity with different content (any field
// differs) is rejected with RejectConflict: the new content is quarantined
// and raised as an alarm, and the original is kept untouched. A tap that
// breaks the rules of Tap.Check (an empty card id, an identifier over
// MaxIDBytes) is rejected with RejectInvalid and kept in a dead-letter table.
// Either way a rejected tap counts as acknowledged: one bad tap never blocks
// the queue behind it.
//
// A Batch that breaks a rule of its own (no taps, a Seq of 0 or over MaxSeq,
// Seqs not ascending) or any limit is not rejected tap by tap: it shows a
// broken terminal, and the server answers ErrorCodeMalformed or
// ErrorCodeTooLarge and closes the session. A terminal must therefore never
// record a tap it cannot send: Encode refuses what Decode would refuse, and
// the outbox should refuse, at record time, a card id over MaxIDBytes rather
// than keep a tap that would block its queue.
//
// # Time
//
// Kiosks boot without a real-time clock, so a device's wall clock can be
// wrong by years. Every Clock therefore carries three readings taken at one
// moment: the wall clock, the boot id, and the monotonic time since boot.
// Terminals report their clocks as read and never adjust a recorded reading.
//
// The server measures the offset between its clock and the terminal's wall
// clock when the Hello arrives, and derives each tap's event time from it,
// recording which way it went: the tap's wall clock as it is when the
// offset is small (within 30 s by default); else, for a tap made in the boot
// the Hello came from (same BootID), the Hello's arrival time moved by the
// difference of the monotonic readings; else the time the server received
// the tap. Receive time is never substituted silently. Welcome.ServerMicros
// and Welcome.ClockOffsetMicros tell the terminal how far off its clock is,
// for display and alarms; the protocol does not depend on what the terminal
// does with them.
//
// # Encoding
//
// Messages are encoded in the core deterministic encoding of RFC 8949,
// section 4.2.1, so one message has exactly one encoding:
//
//   - integers, lengths and counts in the shortest form of the head;
//   - definite lengths only;
//   - map keys sorted by the bytewise order of their encodings (for the small
//     unsigned keys used here, numeric order);
//   - no tags, and no floating-point values (version 1 has none).
//
// # Decoding
//
// Decoders are strict; a message breaking any of these rules is refused:
//
//   - no duplicate keys in any map, anywhere in the message, including inside
//     fields the decoder does not know; keys are compared by value, so 0x01
//     and 0x18 0x01 are the same key;
//   - map keys are integers or strings;
//   - no indefinite-length strings, arrays or maps;
//   - no tags, not even the self-described CBOR tag 55799;
//   - text strings are valid UTF-8;
//   - nothing follows the Envelope (no trailing bytes);
//   - every limit below, checked from an item's head before its content is
//     read or allocated;
//   - every field has its CBOR type and fits its Go type, and every message
//     keeps the rules in its table.
//
// Decoders do not require the deterministic encoding: unsorted keys and
// longer heads are accepted. The canonical form is a duty of encoders, not
// a check on the wire.
//
// # Limits
//
//	name             value    applies to
//	MaxMessageBytes  2097152  one websocket message (2 MiB)
//	MaxBatchTaps     4096     taps in a Batch, and every CBOR array
//	MaxMapPairs      64       pairs in every CBOR map
//	MaxNesting       8        levels of nested arrays and maps, the Envelope
//	                          being level 1 (a Batch uses 5)
//	MaxTextBytes     1024     every text or byte string
//	MaxIDBytes       64       TerminalID, BootID; CardID, Reader and Answer
//	                          (for those, see Tap.Check)
//	MaxAlarms        32       Status.Alarms
//	MaxSeq           2^63-1   Tap.Seq
//
// A message beyond a limit is refused with ErrTooLarge, and the session is
// closed with ErrorCodeTooLarge. Welcome.MaxBatchTaps and
// Welcome.MaxInFlight are the server's own limits for the session.
//
// # Versioning
//
// ProtocolVersion is this package's version of the protocol and
// MinProtocolVersion the oldest it still accepts; version.go lists every
// version with its date and what it changed. Hello.ProtocolVersion is the
// highest version the terminal speaks; the server answers with
// Welcome.ProtocolVersion = min(Hello.ProtocolVersion, server's version)
// (see Negotiate), and both sides then speak that version. A peer whose
// version is below MinProtocolVersion gets ErrorCodeVersion, naming both
// sides' versions; so does a server answering with a version above the one
// offered, or below what the terminal still supports.
//
// The protocol changes by addition only: a new field gets a new key, a new
// message a new type, a new code a new number, and the version is bumped.
// Key numbers, type numbers and codes are never reused; a retired one is
// listed where it was declared. Unknown fields are ignored, so older peers
// read newer messages. A peer never sends a message type the session's
// version lacks, and an unknown type ends the session with
// ErrorCodeUnknownType. A Rejection with an unknown RejectCode still counts
// as acknowledged; an unknown ErrorCode is handled as ErrorCodeInternal.
//
// # Errors
//
// An Error's code tells the receiver what to do:
//
//	code  name          meaning                                 receiver
//	1     internal      the sender failed                       reconnect with backoff
//	2     unauthorized  the credential was revoked, or the      stop; raise an alarm
//	                    Hello names another terminal
//	3     version       no common protocol version              stop until upgraded
//	4     malformed     a message could not be decoded, or      alarm; long backoff
//	                    broke a rule of its message
//	5     too_large     a message exceeded a limit              alarm; long backoff
//	6     unexpected    a valid message at the wrong point      alarm; long backoff
//	7     unknown_type  an Envelope type the receiver lacks     alarm; long backoff
//	8     shutdown      the server is stopping                  reconnect soon
//
// Codes 4 to 7 mean one side has a bug. A terminal cannot fix itself, so it
// raises an alarm and keeps retrying slowly, in case the bug was the
// server's. ErrorCodeFor maps the errors of Decode and Negotiate to codes.
//
// # Keepalive
//
// The server sends a websocket ping every PingInterval (30 s); the terminal's
// websocket answers with a pong. Any frame received counts as a sign of
// life; a side that has received nothing for PeerTimeout (75 s) considers
// the peer dead and drops the connection without an Error. Pings and pongs
// are websocket control frames and carry no syncproto message.
//
// # Example
//
// The Hello of terminal t-0042 (testdata/golden/hello.cbor), 91 bytes:
//
//	a2                                            # map(2): the envelope
//	  01 01                                       # 1: type 1 (Hello)
//	  02 a6                                       # 2: body, map(6)
//	    01 01                                     # 1 ProtocolVersion: 1
//	    02 66 74 2d 30 30 34 32                   # 2 TerminalID: "t-0042"
//	    03 1a 69 a4 d3 00                         # 3 StoreEpoch: 1772409600
//	    04 65 31 2e 30 2e 30                      # 4 AgentVersion: "1.0.0"
//	    05 a3                                     # 5 Clock: map(3)
//	      01 1b 00 06 60 c3 3d 45 95 00           # 1 WallMicros: 1795241523123456
//	      02 78 24 30 62 35 66 39 63 31 65 2d 36  # 2 BootID: "0b5f9c1e-6d2a-4e7b-9f30-2a8c5d71e4b6"
//	         64 32 61 2d 34 65 37 62 2d 39
//	         66 33 30 2d 32 61 38 63 35 64
//	         37 31 65 34 62 36
//	      03 1b 00 00 06 b7 57 36 f0 00           # 3 MonoNanos: 7384512000000
//	    06 02                                     # 6 OutboxDepth: 2
//
// Its first Batch after a Welcome with AckedThrough 40, two taps made
// offline earlier in the same boot; the second was answered "blocked_id06" by
// the kiosk (testdata/golden/batch.cbor), 204 bytes:
//
//	a2                                                # map(2): the envelope
//	  01 03                                           # 1: type 3 (Batch)
//	  02 a2                                           # 2: body, map(2)
//	    01 01                                         # 1 BatchID: 1
//	    02 82                                         # 2 Taps: array(2)
//	      a5                                          # map(5): Tap
//	        01 18 29                                  # 1 Seq: 41
//	        02 6e 30 34 41 31 42 32 43 33 44 34       # 2 CardID: "04A1B2C3D4E580"
//	           45 35 38 30
//	        03 a3                                     # 3 Clock: map(3)
//	          01 1b 00 06 60 c2 a0 a5 bc 85           # 1 WallMicros: 1795238895402117
//	          02 78 24 30 62 35 66 39 63 31 65 2d 36  # 2 BootID: as in the Hello
//	             64 32 61 2d 34 65 37 62 2d 39
//	             66 33 30 2d 32 61 38 63 35 64
//	             37 31 65 34 62 36
//	          03 1b 00 00 04 53 86 d1 4f 88           # 3 MonoNanos: 4756790661000
//	        04 62 69 6e                               # 4 Reader: "in"
//	        05 68 61 63 63 65 70 74 65 64             # 5 Answer: "accepted"
//	      a5                                          # map(5): Tap
//	        01 18 2a                                  # 1 Seq: 42
//	        02 6e 30 34 43 32 44 33 45 34 46 35       # 2 CardID: "04C2D3E4F5A681"
//	           41 36 38 31
//	        03 a3                                     # 3 Clock: map(3)
//	          01 1b 00 06 60 c2 a1 32 5f b2           # 1 WallMicros: 1795238904618930
//	          02 78 24 30 62 35 66 39 63 31 65 2d 36  # 2 BootID: as in the Hello
//	             64 32 61 2d 34 65 37 62 2d 39
//	             66 33 30 2d 32 61 38 63 35 64
//	             37 31 65 34 62 36
//	          03 1b 00 00 04 55 ac 2e b7 50           # 3 MonoNanos: 4766007474000
//	        04 63 6f 75 74                            # 4 Reader: "out"
//	        05 6c 62 6c 6f 63 6b 65 64 5f 69 64       # 5 Answer: "blocked_id06"
//	           30 36
package syncproto
