-- 0005: sequences a server acknowledged once and no longer holds.
--
-- When a terminal's Hello says its outbox had sequences up to N of an epoch
-- acknowledged and dropped, but the server's cursor is below N, the server
-- lost acknowledged taps (restored from a backup, failed over to a lagging
-- replica). The terminal cannot send them again. The gap is recorded here,
-- as an alarm for a person, and the cursor moves past it explicitly.
CREATE TABLE tap_gaps (
    gap_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    terminal_id  text   NOT NULL,
    store_epoch  bigint NOT NULL,
    seq_from     bigint NOT NULL,
    seq_to       bigint NOT NULL CHECK (seq_to >= seq_from),
    detected_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz
);
CREATE INDEX tap_gaps_open ON tap_gaps (terminal_id) WHERE resolved_at IS NULL;
