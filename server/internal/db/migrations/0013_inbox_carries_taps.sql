-- 0013: an inbox row carries what the reconciler reads of its taps.
--
-- A reconcile step read each taken inbox row's taps back from taps, by an
-- index range scan per row: about 1 µs of PostgreSQL per tap at the morning
-- peak of BenchmarkReconcile, for two values ingest had at hand when it
-- queued the row. Each row (a run of consecutive sequence numbers, 0011)
-- now holds its taps' card ids and event times in sequence order, and the
-- reconciler reads nothing else of them.

ALTER TABLE reconcile_inbox
    ADD COLUMN card_ids    text[],
    ADD COLUMN event_times timestamptz[];

UPDATE reconcile_inbox i
SET card_ids = t.card_ids, event_times = t.event_times
FROM (
    SELECT i2.inbox_id, array_agg(t.card_id ORDER BY t.seq) AS card_ids, array_agg(t.event_time ORDER BY t.seq) AS event_times
    FROM reconcile_inbox i2
    JOIN taps t ON t.terminal_id = i2.terminal_id AND t.store_epoch = i2.store_epoch
               AND t.seq BETWEEN i2.seq_from AND i2.seq_to
    GROUP BY i2.inbox_id) t
WHERE t.inbox_id = i.inbox_id;

-- A row whose range holds no stored tap (none should) queues nothing.
DELETE FROM reconcile_inbox WHERE card_ids IS NULL;

ALTER TABLE reconcile_inbox
    ALTER COLUMN card_ids SET NOT NULL,
    ALTER COLUMN event_times SET NOT NULL,
    ADD CONSTRAINT reconcile_inbox_taps CHECK (
        cardinality(card_ids) = seq_to - seq_from + 1 AND cardinality(event_times) = seq_to - seq_from + 1);
