-- 0011: each tap is queued for the ledger exactly once, so the reconciler
-- needs no record of what it took in.
--
-- Ingest queued, per terminal stream and transaction, the range from the
-- lowest to the highest new sequence number. After batches that came out
-- of order such a range also covered taps queued before, and the
-- reconciler guarded against taking a tap twice: an advisory lock per tap,
-- a look-up of reconciled_ranges, and a COPY into it at every step (about
-- a sixth of a step's PostgreSQL time at a morning peak). Ingest now
-- queues only the taps its transaction inserts, as disjoint runs; a tap is
-- inserted once (the key of taps), so no two inbox rows share a tap.
--
-- What is queued now is made the same: each queued tap not yet taken in
-- (by reconciled_ranges), once, in runs of consecutive stored taps, in the
-- order it was first queued. Then the guard's table goes.
--
-- Every server replica must run a binary with this migration: an older
-- ingest would queue overlapping ranges again, which this reconciler
-- would take in twice.

CREATE TEMP TABLE queued ON COMMIT DROP AS
SELECT t.terminal_id, t.store_epoch, t.seq, min(i.inbox_id) AS first_queued
FROM reconcile_inbox i
JOIN taps t ON t.terminal_id = i.terminal_id AND t.store_epoch = i.store_epoch
           AND t.seq BETWEEN i.seq_from AND i.seq_to
WHERE NOT EXISTS (
    SELECT 1 FROM reconciled_ranges rr
    WHERE rr.terminal_id = t.terminal_id AND rr.store_epoch = t.store_epoch
      AND t.seq BETWEEN rr.seq_from AND rr.seq_to)
GROUP BY t.terminal_id, t.store_epoch, t.seq;

DELETE FROM reconcile_inbox;

INSERT INTO reconcile_inbox (terminal_id, store_epoch, seq_from, seq_to)
SELECT terminal_id, store_epoch, min(seq), max(seq)
FROM (SELECT terminal_id, store_epoch, seq, first_queued,
             seq - row_number() OVER (PARTITION BY terminal_id, store_epoch ORDER BY seq) AS run
      FROM queued) q
GROUP BY terminal_id, store_epoch, run
ORDER BY min(first_queued), terminal_id, store_epoch, min(seq);

DROP TABLE reconciled_ranges;
