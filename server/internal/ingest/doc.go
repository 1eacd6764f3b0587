// Package ingest stores taps uploaded by terminals, exactly once.
//
// Every tap has an identity (terminal id, store epoch, sequence) that the
// server keeps forever. For each (terminal, epoch) the table ingest_cursors
// holds two numbers: acked_through, the highest sequence such that every
// sequence from 1 up to it is held (stored in taps or rejected into
// dead_letters), and max_seen, the highest sequence held at all.
//
// A group of batches, possibly from many terminals, is applied in one
// transaction (Store.Apply):
//
//  1. The cursor rows of every (terminal, epoch) in the group are created if
//     missing and locked FOR UPDATE in sorted order. This serialises writers
//     of one terminal's epoch across connections and server replicas, and the
//     sorted order rules out deadlocks between groups.
//  2. A tap with a sequence above max_seen cannot be held yet: with the lock
//     taken, nobody else can store it, so it is written with COPY, the fastest
//     path PostgreSQL has. Any other tap may be a repeat and is looked up: the
//     same content gets the same answer as the first time (accepted, or the
//     same rejection); different content is a conflict, kept in tap_conflicts
//     and raised as an alarm, and the original is never touched.
//  3. Taps that break the protocol's rules (syncproto.Tap.Check) are kept in
//     dead_letters with the reason and acknowledged as rejected, so one bad
//     tap never blocks the queue behind it.
//  4. The cursors advance over the sequences now held, and the transaction
//     commits. Only then does the Committer answer each batch with an Ack.
//
// The Committer groups batches arriving at the same time from many
// connections into one transaction (group commit) on a few workers, so the
// cost of a commit is shared by every batch in the group.
package ingest
