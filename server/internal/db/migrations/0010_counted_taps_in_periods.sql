-- 0010: a tap that counts is kept by the work period that names it, not by
-- a row of its own.
--
-- tap_resolutions had a row per tap: at the morning peak, one COPY row with
-- three index entries per check-in, next to the work_periods row that
-- already names the tap (start_ref, end_ref "tap:T/E/S"), and every
-- derivation read both. Now:
--
--   - tap_marks (the old table, renamed) holds only taps that no current
--     period names: double, void, unknown_card, unassigned, and the pending
--     rows of a correction's transaction;
--   - a counted tap is the start (direction in) or end (out) of exactly one
--     current period of its site and person; work_periods keeps the
--     reader's mode of each end (start_mode, end_mode), which derivation
--     needs again;
--   - tap_resolutions is a view of both, with the rows and columns the
--     table had, so readers (taps lists, register extracts, retention's
--     activity) see what they saw;
--   - reconciled_ranges records which taps were taken in, as runs of
--     sequence numbers per terminal stream, disjoint: the reconciler's
--     guard against taking a tap twice when inbox ranges overlap, which the
--     key of tap_resolutions used to be.

ALTER TABLE tap_resolutions RENAME TO tap_marks;
ALTER INDEX tap_resolutions_pkey RENAME TO tap_marks_pkey;

ALTER TABLE work_periods
    ADD COLUMN start_mode text CHECK (start_mode IN ('in', 'out', 'toggle')),
    ADD COLUMN end_mode   text CHECK (end_mode IN ('in', 'out', 'toggle'));

-- The modes of the taps periods name (every version: a period's ends never
-- change their mode).
UPDATE work_periods wp SET start_mode = tm.mode
FROM tap_marks tm
WHERE wp.start_ref = 'tap:' || tm.terminal_id || '/' || tm.store_epoch || '/' || tm.seq;
UPDATE work_periods wp SET end_mode = tm.mode
FROM tap_marks tm
WHERE wp.end_ref = 'tap:' || tm.terminal_id || '/' || tm.store_epoch || '/' || tm.seq;

CREATE TABLE reconciled_ranges (
    terminal_id text   NOT NULL,
    store_epoch bigint NOT NULL,
    seq_from    bigint NOT NULL,
    seq_to      bigint NOT NULL,
    CHECK (seq_from <= seq_to),
    -- Ranges of a stream never overlap, so each ends at its own seq.
    PRIMARY KEY (terminal_id, store_epoch, seq_to)
);
INSERT INTO reconciled_ranges (terminal_id, store_epoch, seq_from, seq_to)
SELECT terminal_id, store_epoch, min(seq), max(seq)
FROM (SELECT terminal_id, store_epoch, seq,
             seq - row_number() OVER (PARTITION BY terminal_id, store_epoch ORDER BY seq) AS run
      FROM tap_marks) t
GROUP BY terminal_id, store_epoch, run;

-- Counted taps that a current period names leave tap_marks. (A counted
-- row no period names would be a fault of the old code; it stays, and the
-- next derivation of its person settles it.)
DELETE FROM tap_marks tm
WHERE tm.mark = 'counted' AND EXISTS (
    SELECT 1 FROM work_periods wp
    WHERE wp.site_id = tm.site_id AND wp.person_id = tm.person_id AND wp.recorded_to = 'infinity'
      AND 'tap:' || tm.terminal_id || '/' || tm.store_epoch || '/' || tm.seq IN (wp.start_ref, wp.end_ref));

CREATE VIEW tap_resolutions AS
SELECT terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, voided, direction, mark
FROM tap_marks
UNION ALL
SELECT t.terminal_id, t.store_epoch, t.seq, e.site_id, e.person_id, t.event_time, t.card_id, e.mode, false,
       e.direction, 'counted'
FROM (
    SELECT wp.site_id, wp.person_id, x.ref, x.mode, x.direction,
           regexp_match(x.ref, '^tap:(.*)/(\d+)/(\d+)$') AS id
    FROM work_periods wp
    CROSS JOIN LATERAL (VALUES (wp.start_ref, wp.start_mode, 'in'), (wp.end_ref, wp.end_mode, 'out'))
        AS x(ref, mode, direction)
    WHERE wp.recorded_to = 'infinity' AND x.ref LIKE 'tap:%') e
JOIN taps t ON t.terminal_id = e.id[1] AND t.store_epoch = e.id[2]::bigint AND t.seq = e.id[3]::bigint;

-- ledger_refs_kept (0008), which refuses to delete a registry row the
-- ledger names, reads tap_resolutions by name and now reads the view: the
-- same names as before.
