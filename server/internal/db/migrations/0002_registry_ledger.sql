-- 0002: the registry (tenants, sites, contractors, people, cards, where each
-- terminal stands), corrections, and the ledger derived from taps.
--
-- Tenancy follows the controller split of the GDPR: an organisation is a
-- tenant; it controls its own staff (persons, cards: org_id) and, when it
-- holds the byggherre's duties, the combined ledger of its sites
-- (sites.org_id). Every row of personal data carries the tenant and, where
-- it is about a site, the site.

CREATE TABLE organisations (
    org_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                text NOT NULL CHECK (name <> ''),
    -- Canonical organisationsnummer (NNNNNN-NNNC), or for a sole trader the
    -- masked personnummer; the full number of a sole trader is in org_id_enc.
    org_number          text NOT NULL,
    org_id_enc          bytea,
    org_id_index        bytea UNIQUE,
    -- Retention: ledger data is kept until the end of the second calendar
    -- year after the one in which the tax year holding it ended.
    tax_year_end_month  smallint NOT NULL DEFAULT 12 CHECK (tax_year_end_month BETWEEN 1 AND 12),
    retention_years     smallint NOT NULL DEFAULT 2 CHECK (retention_years >= 2),
    legal_hold          boolean NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_number)
);

CREATE TABLE sites (
    site_id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The tenant holding the byggherre's duties (the byggherre, or the
    -- general contractor it handed them to in writing).
    org_id               bigint NOT NULL REFERENCES organisations,
    site_ident           text NOT NULL UNIQUE CHECK (site_ident ~ '^[A-Z0-9]{13}$'),
    name                 text NOT NULL CHECK (name <> ''),
    address              text NOT NULL,
    time_zone            text NOT NULL DEFAULT 'Europe/Stockholm',
    byggherre_name       text NOT NULL,
    byggherre_org_number text NOT NULL,
    created_at           timestamptz NOT NULL DEFAULT now(),
    ended_at             timestamptz
);
CREATE INDEX sites_org ON sites (org_id);

-- Who works on which site under whom. hired_by_org_id NULL: hired by the
-- site's owner directly.
CREATE TABLE site_contractors (
    site_id          bigint NOT NULL REFERENCES sites,
    org_id           bigint NOT NULL REFERENCES organisations,
    hired_by_org_id  bigint REFERENCES organisations,
    added_at         timestamptz NOT NULL DEFAULT now(),
    removed_at       timestamptz,
    PRIMARY KEY (site_id, org_id)
);
CREATE INDEX site_contractors_org ON site_contractors (org_id);

CREATE TABLE persons (
    person_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The employer: the tenant controlling this person's data.
    org_id         bigint NOT NULL REFERENCES organisations,
    name           text NOT NULL,
    id_kind        text NOT NULL CHECK (id_kind IN ('personnummer', 'samordningsnummer', 'foreign')),
    -- The identity number encrypted with AES-256-GCM (pii.Keys.Seal, bound
    -- to org and person), its keyed hash for lookups, and a masked form
    -- that is safe to show outside inspector views.
    id_enc         bytea NOT NULL,
    id_index       bytea NOT NULL,
    id_masked      text NOT NULL,
    id_country     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    anonymised_at  timestamptz,
    UNIQUE (org_id, id_index)
);

CREATE TABLE cards (
    card_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The employer printed on the card.
    org_id         bigint NOT NULL REFERENCES organisations,
    card_number    text NOT NULL,
    person_id      bigint NOT NULL REFERENCES persons,
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'blocked_id06', 'terminated', 'expired', 'not_activated')),
    valid_from     date,
    valid_until    date,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, card_number)
);
CREATE INDEX cards_person ON cards (person_id);

-- Chip serial numbers (UID/CSN) a reader may yield for a card.
CREATE TABLE card_chips (
    org_id    bigint NOT NULL REFERENCES organisations,
    chip_uid  text NOT NULL CHECK (chip_uid ~ '^[0-9A-F]{8,20}$'),
    card_id   bigint NOT NULL REFERENCES cards,
    PRIMARY KEY (org_id, chip_uid)
);
CREATE INDEX card_chips_card ON card_chips (card_id);

-- A site may block a card locally ("Kort spärrat av arbetsplatsen").
CREATE TABLE site_card_blocks (
    site_id     bigint NOT NULL REFERENCES sites,
    card_id     bigint NOT NULL REFERENCES cards,
    blocked_at  timestamptz NOT NULL DEFAULT now(),
    blocked_by  text NOT NULL,
    reason      text NOT NULL,
    lifted_at   timestamptz,
    PRIMARY KEY (site_id, card_id, blocked_at)
);

-- Where a terminal stands and how its reader decides direction, from a
-- moment on. The assignment of a tap is the latest with valid_from at or
-- before the tap's event time. Rows are only added.
CREATE TABLE terminal_assignments (
    terminal_id  text NOT NULL REFERENCES terminals,
    valid_from   timestamptz NOT NULL,
    site_id      bigint NOT NULL REFERENCES sites,
    direction    text NOT NULL CHECK (direction IN ('in', 'out', 'toggle')),
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    recorded_by  text NOT NULL,
    PRIMARY KEY (terminal_id, valid_from)
);

-- Corrections only add (SKVFS 2015:6). Each says what, by whom, why and
-- when; a later correction may withdraw an earlier one (withdraws).
CREATE TABLE corrections (
    correction_id   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id         bigint NOT NULL REFERENCES sites,
    org_id          bigint NOT NULL REFERENCES organisations, -- tenant of the author
    kind            text NOT NULL CHECK (kind IN
                    ('manual_period', 'set_checkout', 'void_tap', 'reassign_tap', 'assign_card', 'withdraw')),
    person_id       bigint REFERENCES persons,
    -- The tap concerned (void_tap, reassign_tap).
    tap_terminal_id text,
    tap_store_epoch bigint,
    tap_seq         bigint,
    -- The card id a reader yielded (assign_card).
    card_ident      text,
    start_at        timestamptz,
    end_at          timestamptz,
    withdraws       bigint REFERENCES corrections,
    reason          text NOT NULL CHECK (reason <> ''),
    author          text NOT NULL CHECK (author <> ''),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX corrections_site ON corrections (site_id, person_id);
CREATE INDEX corrections_withdraws ON corrections (withdraws) WHERE withdraws IS NOT NULL;
CREATE INDEX corrections_tap ON corrections (tap_terminal_id, tap_store_epoch, tap_seq) WHERE tap_terminal_id IS NOT NULL;

-- Taps waiting for reconciliation, added in the ingest transaction, taken
-- by a reconciler with SKIP LOCKED and deleted in the transaction that
-- applied them: each tap is reconciled exactly once, whatever crashes.
CREATE TABLE reconcile_inbox (
    inbox_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    terminal_id  text   NOT NULL,
    store_epoch  bigint NOT NULL,
    seq_from     bigint NOT NULL,
    seq_to       bigint NOT NULL
);

-- What reconciliation made of each tap. Inputs: the site and reader mode
-- from the terminal's assignment at the event time, the person and employer
-- from the card (or from corrections: assign_card, reassign_tap), and void
-- (void_tap). Outputs of the derivation: direction and mark. Recomputed
-- freely; the raw tap never changes.
CREATE TABLE tap_resolutions (
    terminal_id  text   NOT NULL,
    store_epoch  bigint NOT NULL,
    seq          bigint NOT NULL,
    site_id      bigint REFERENCES sites,          -- NULL: terminal not assigned then
    person_id    bigint REFERENCES persons,        -- NULL: unknown card
    event_time   timestamptz NOT NULL,
    card_ident   text   NOT NULL,
    mode         text   NOT NULL CHECK (mode IN ('in', 'out', 'toggle')),
    voided       boolean NOT NULL DEFAULT false,
    direction    text   CHECK (direction IN ('in', 'out')),
    mark         text   NOT NULL CHECK (mark IN ('counted', 'double', 'void', 'unknown_card', 'unassigned', 'pending')),
    PRIMARY KEY (terminal_id, store_epoch, seq)
);
CREATE INDEX tap_resolutions_site_person ON tap_resolutions (site_id, person_id, event_time);
CREATE INDEX tap_resolutions_unknown ON tap_resolutions (site_id, card_ident) WHERE person_id IS NULL;

-- Work periods, derived from taps, corrections and the registry, and
-- versioned by when the server knew them: a re-derivation never changes a
-- row's content; it ends the version (recorded_to) and adds the new one. The
-- ledger as known at T is the rows with recorded_from <= T < recorded_to.
CREATE TABLE work_periods (
    period_id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    site_id          bigint NOT NULL REFERENCES sites,
    person_id        bigint NOT NULL REFERENCES persons,
    org_id           bigint NOT NULL REFERENCES organisations, -- the contractor (employer)
    start_at         timestamptz,            -- NULL: a check-out without check-in
    end_at           timestamptz,            -- NULL: open, or check-out missing
    start_ref        text,                   -- "tap:T/E/S" or "correction:N"
    end_ref          text,
    start_manual     boolean NOT NULL DEFAULT false,
    end_manual       boolean NOT NULL DEFAULT false,
    missing_checkout boolean NOT NULL DEFAULT false,
    missing_checkin  boolean NOT NULL DEFAULT false,
    recorded_from    timestamptz NOT NULL DEFAULT now(),
    recorded_to      timestamptz NOT NULL DEFAULT 'infinity',
    CHECK (start_at IS NOT NULL OR end_at IS NOT NULL)
);
-- One index serves the current ledger (recorded_to = 'infinity' is checked
-- on the few versions per person) and as-of reads of a site; a partial
-- index for current rows plus a second one for as-of reads cost every
-- insert a third index for little gain.
CREATE INDEX work_periods_site_person ON work_periods (site_id, person_id, coalesce(start_at, end_at));
