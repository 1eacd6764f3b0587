// Package outbox is the kiosk's durable queue of taps: every card presented
// to a reader is written here before the kiosk shows anything, and stays here
// until the server has acknowledged it.
//
// # Durability
//
// Invariant 1 of the design is "durable before success". Append returns only
// after the bbolt transaction holding the taps has committed, and bbolt
// commits with fdatasync: the outbox never opens its file with NoSync. A nil
// error from Append is the kiosk's licence to show green; any error means the
// tap may not be on disk and the kiosk must say so.
//
// # Identity
//
// A tap's identity is (terminal id, store epoch, sequence). The epoch is a
// random positive int64 drawn from crypto/rand when the file is created; it
// never changes for the life of the file, and a new file (after the old one
// was deleted or lost) gets a new epoch, so the server can never confuse the
// taps of two stores. Sequences start at 1 and are allocated in the same
// bbolt transaction that stores the taps, so they have no gaps and are never
// reused: the last sequence is kept in the meta bucket even after every tap
// has been acknowledged and deleted.
//
// The store is created atomically: a temporary file is initialised with its
// meta bucket and epoch, fsync'd, then hard-linked into place (os.Link does
// not overwrite, so two racing creators end up sharing one store) and the
// directory is fsync'd. A file at the outbox path therefore always has its
// meta; an existing file whose meta is missing or inconsistent is refused
// with ErrCorrupt rather than silently replaced by a new epoch. The directory
// must be on a file system with hard links (ext4, xfs, btrfs, tmpfs).
//
// # Group commit
//
// An fsync costs milliseconds on kiosk flash, so a single goroutine owned by
// the Outbox (started by Open, stopped by Close) does every append. It takes
// one request, then every other request already waiting, writes them all in
// one bbolt transaction and answers each caller: concurrent writers share one
// fsync, and a lone writer is committed at once (bbolt's DB.Batch is not used
// because it waits up to 10 ms for company). Once a request has been handed
// to the committer it will be committed even if its caller stops waiting.
//
// # Compaction
//
// Ack(through) deletes every tap with Seq <= through in one transaction,
// walking a cursor from the first key, and records the acknowledged cursor in
// meta. The pages freed are reused by later appends, so the file size is
// bounded by the largest backlog ever held, not by the number of taps ever
// taken. Ack is idempotent: acknowledging an old cursor again does nothing.
//
// # Size policy
//
// The outbox holds at most Options.MaxPending unacknowledged taps (500 000 by
// default: weeks of a busy site offline). When an Append would go beyond it,
// Append refuses the new taps with ErrFull and Stats reports Full: the kiosk
// shows a red alarm and the Status message carries the alarm "outbox_full".
// Unacknowledged taps are never dropped to make room: a tap the server has
// not confirmed is a legal record that exists nowhere else. A write error
// (disk full, I/O error) is returned as "outbox: append: ..." wrapping the
// cause; bbolt rolls the transaction back, so nothing is half-written and no
// sequence is consumed.
//
// # Crash safety
//
// bbolt is copy-on-write with two meta pages: a crash (power cut, SIGKILL) at
// any moment leaves the file at the last committed transaction. Open rebuilds
// the in-memory statistics by scanning the taps bucket and checks them
// against meta (count, first and last sequence); a mismatch is reported as
// ErrCorrupt. The crash test kills a writer process at random moments and
// checks that every tap it was told is durable is present, with the right
// content, contiguous and unduplicated, and that sequences continue.
//
// # On disk
//
// Bucket "meta" holds 8-byte big-endian values under the keys "format",
// "epoch", "last_seq", "acked_through" and "created_micros". Bucket "taps"
// maps the 8-byte big-endian Seq to a record: one byte of record format
// version (1), then the syncproto.Tap in deterministic CBOR with integer keys.
// Fields added to syncproto.Tap are stored without a format change; a reader
// ignores keys it does not know.
package outbox
