// Package cardcache keeps, on the terminal, the card data its kiosk answers
// from: for every card id a reader may yield on this site, who holds the card
// and whether it may be used here.
//
// # Why a cache
//
// A check-in must never wait for the network (design invariant 9). The
// kiosk therefore never asks the server about a card: it looks the card up
// in this file, which the server keeps current over the sync session
// (syncproto CardUpdate, see package uplink). The tap is recorded in the
// outbox whatever the cache says; the answer only decides what the worker
// is shown ("Kort spärrat hos ID06", ...), and is stored with the tap for
// information. The server judges the tap against its own, current data.
//
// # Stale, partial and empty data
//
// The cache is as old as the last update the terminal received. While the
// network is down a card blocked meanwhile is still shown as accepted, and a
// card added meanwhile as unknown; both taps are recorded and the server,
// which knows better, sorts them out. A terminal that has never completed a
// snapshot has no card data at all: Loaded reports false, and the kiosk says
// only that the tap was recorded rather than calling every card unknown.
//
// A snapshot may span several updates (the first has Reset, the last Final).
// Its pages are written to a second bucket and the kiosk keeps answering from
// the previous complete snapshot until the Final page swaps the two, in the
// same transaction that stores the new cursor. A connection lost in the middle
// therefore never leaves the kiosk answering from half a roster.
//
// # The cursor, and crash safety
//
// The cursor is the server's change-feed position the cache is at; the
// terminal sends it in every Hello (0: send me a snapshot). Every update is
// applied in one bbolt transaction, fsync'd, before the uplink acknowledges
// it. The cursor moves only when an update with Final is applied:
//
//   - an update with Reset stores cursor 0, so a session lost before the
//     snapshot's Final page asks for a fresh snapshot;
//   - the pages of a change set before its Final page keep the previous
//     cursor, so a session lost in the middle asks for the whole change set
//     again. Changes carry a card's current state, not a difference, so
//     applying one twice is harmless.
//
// Losing the file altogether is just as safe: a new file has cursor 0 and
// gets a snapshot. A file bbolt cannot read is moved aside (".corrupt") and
// replaced, and a file of an unknown format version is emptied: a kiosk that
// refused to start over its cache would stop recording taps, which matters
// far more than the card data.
//
// # File layout (format 1)
//
//	cardmeta  format, cursor, live (0 or 1: the bucket the kiosk answers
//	          from), staging (1 while a snapshot is written to the other
//	          bucket), loaded (1 once a snapshot has been completed); each
//	          an 8-byte big-endian integer
//	cards.0   card id -> entry
//	cards.1   card id -> entry
//
// An entry is one format byte (1) followed by the syncproto.CardInfo in
// deterministic CBOR with integer keys; the card id in it must equal the key.
package cardcache
