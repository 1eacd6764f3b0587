// Package ledger keeps the staff ledger (personalliggare): it turns raw taps,
// corrections and the registry into work periods per site and person.
//
// The derivation (Derive) is a pure function of a person's events at a
// site, so the same taps in any order, any number of times and in any
// batching give the same ledger (design invariant 4). Direction comes from
// the reader's mode: in, out, or toggle, where the person's previous counted
// tap at the site, on any terminal, decides. A repeat within the double-tap
// window is kept and marked, never paired. A check-in while a period is open
// flags that period as a missing check-out; a period open past MaxOpen
// (16 h by default) is never closed by invention: it stays open and is
// reported overdue for a person to correct.
//
// Because state never crosses a gap longer than MaxOpen (Segments), a late
// tap re-derives only the segment it falls in. Periods are stored versioned
// by the time the server knew them, so the ledger as it was known at any
// past moment can be produced.
//
// The Reconciler takes stored taps in from a durable inbox, where ingest
// queues each tap once, with its card id and event time, in runs of
// consecutive sequence numbers. A step (one transaction) takes and deletes
// inbox rows: an equal share, among the workers, of the taps queued ahead
// of it, and at most a few thousand. It resolves each tap's site and reader
// mode (the terminal's assignment) and person from a cache kept exact by
// the registry version (cardcache.go), locks the people concerned (and
// queues again, for a later step, the taps of people another transaction
// holds, rather than wait for it with all the others locked), loads
// their events and current periods around the new taps, re-derives, and
// writes the periods that changed and the taps' marks.
//
// A counted tap is kept by the current period that names it (start_ref or
// end_ref, with its reader mode); only the others (double, void, unknown
// card, unassigned) have a row in tap_marks. The view tap_resolutions shows
// every taken tap as one row, for readers. The statement
// trace of BenchmarkReconcile (LIGGARE_SQL_TRACE=1) shows what each
// statement costs; docs/benchmarks.md keeps the figures.
package ledger
