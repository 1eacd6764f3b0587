-- 0001: terminals, their credentials, raw taps and everything ingest keeps.
-- Raw taps are immutable: nothing here is ever updated or deleted by ingest.

CREATE TABLE terminals (
    terminal_id    text PRIMARY KEY CHECK (terminal_id ~ '^[A-Za-z0-9_-]{1,64}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz,
    agent_version  text NOT NULL DEFAULT '',
    -- The latest Status report, kept for fleet health pages.
    status_at          timestamptz,
    outbox_depth       bigint,
    oldest_unacked_at  timestamptz,
    clock_offset_us    bigint,
    reader_state       text,
    alarms             text[]
);

-- A terminal's credentials. Only a SHA-256 of the 256-bit random secret is
-- stored; a random secret needs no slow hash. Several may be active during a
-- rotation; a revoked one is refused at the next connection attempt.
CREATE TABLE terminal_credentials (
    credential_id  bigserial PRIMARY KEY,
    terminal_id    text NOT NULL REFERENCES terminals,
    secret_sha256  bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX terminal_credentials_terminal ON terminal_credentials (terminal_id);

-- Every accepted tap, keyed by its identity forever (design invariant 3).
CREATE TABLE taps (
    terminal_id     text   NOT NULL,
    store_epoch     bigint NOT NULL,
    seq             bigint NOT NULL CHECK (seq > 0),
    card_id         text   NOT NULL,
    reader          text   NOT NULL DEFAULT '',
    answer          text   NOT NULL DEFAULT '',
    -- Raw clock readings from the terminal, kept as sent.
    device_wall_us  bigint NOT NULL,
    boot_id         text   NOT NULL,
    mono_ns         bigint NOT NULL,
    -- What the server knew when it received the tap.
    received_at     timestamptz NOT NULL,
    clock_offset_us bigint,
    -- The derived event time and how it was derived (invariant 5).
    event_time      timestamptz NOT NULL,
    time_source     text NOT NULL CHECK (time_source IN ('device', 'offset', 'received')),
    PRIMARY KEY (terminal_id, store_epoch, seq)
);

-- Taps refused by validation: kept with the reason, acknowledged as rejected.
CREATE TABLE dead_letters (
    terminal_id  text   NOT NULL,
    store_epoch  bigint NOT NULL,
    seq          bigint NOT NULL,
    code         smallint NOT NULL,
    reason       text   NOT NULL,
    payload      jsonb  NOT NULL,
    received_at  timestamptz NOT NULL,
    PRIMARY KEY (terminal_id, store_epoch, seq)
);

-- A second, different content for an identity the server already holds.
-- The original stays; each distinct conflicting content is kept once here
-- and raised as an alarm until a person resolves it.
CREATE TABLE tap_conflicts (
    conflict_id     bigserial PRIMARY KEY,
    terminal_id     text   NOT NULL,
    store_epoch     bigint NOT NULL,
    seq             bigint NOT NULL,
    payload         jsonb  NOT NULL,
    payload_sha256  bytea  NOT NULL,
    received_at     timestamptz NOT NULL,
    resolved_at     timestamptz,
    UNIQUE (terminal_id, store_epoch, seq, payload_sha256)
);

-- Per (terminal, store epoch): the highest sequence held contiguously
-- (stored or dead-lettered) and the highest seen at all. Rows are locked
-- FOR UPDATE by ingest, which serialises writers of one terminal's epoch
-- across connections and server replicas.
CREATE TABLE ingest_cursors (
    terminal_id    text   NOT NULL,
    store_epoch    bigint NOT NULL,
    acked_through  bigint NOT NULL DEFAULT 0,
    max_seen       bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (terminal_id, store_epoch)
);
