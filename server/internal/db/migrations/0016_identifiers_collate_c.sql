-- 0016: terminal ids and card ids compare byte by byte, whatever the
-- database's collation.
--
-- They are the keys of the busiest indexes: every stored tap adds an entry
-- to taps' key, and ingest, the reconciler and card resolution look them
-- up. In a database collated by a locale (en_US.UTF-8, sv_SE.UTF-8, or
-- C.UTF-8, which a distribution's default cluster has), PostgreSQL compares
-- text through the locale: in one measurement a range scan of a terminal's
-- taps took 23 µs instead of 3. The columns that hold such identifiers now
-- have the C collation; names and addresses keep the database's, so lists
-- of people and companies still sort as the locale says.
--
-- Changing a column's collation rebuilds its indexes (taps' key among
-- them) and holds the tables while it does: minutes at national scale.
-- The view tap_resolutions and the function that returns its rows
-- (0010, 0014) name these columns; they are made again as they were.

DROP FUNCTION tap_resolutions_between(bigint, timestamptz, timestamptz);
DROP VIEW tap_resolutions;

ALTER TABLE terminals
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE taps
    ALTER COLUMN terminal_id TYPE text COLLATE "C",
    ALTER COLUMN card_id TYPE text COLLATE "C";
ALTER TABLE reconcile_inbox
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE ingest_cursors
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE dead_letters
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE tap_conflicts
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE tap_gaps
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE tap_marks
    ALTER COLUMN terminal_id TYPE text COLLATE "C",
    ALTER COLUMN card_ident TYPE text COLLATE "C";
ALTER TABLE terminal_assignments
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE terminal_credentials
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE terminal_keys
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE enrollment_codes
    ALTER COLUMN terminal_id TYPE text COLLATE "C";
ALTER TABLE corrections
    ALTER COLUMN tap_terminal_id TYPE text COLLATE "C",
    ALTER COLUMN card_ident TYPE text COLLATE "C";
ALTER TABLE cards
    ALTER COLUMN card_number TYPE text COLLATE "C";
ALTER TABLE card_chips
    ALTER COLUMN chip_uid TYPE text COLLATE "C";
ALTER TABLE card_changes
    ALTER COLUMN removed_ident TYPE text COLLATE "C";
ALTER TABLE reconcile_inbox ALTER COLUMN card_ids TYPE text[] COLLATE "C";

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

CREATE FUNCTION tap_resolutions_between(site bigint, lo timestamptz, hi timestamptz)
RETURNS SETOF tap_resolutions LANGUAGE sql STABLE AS $$
WITH RECURSIVE people AS (
    -- The people with periods at the site, one index probe each.
    SELECT (SELECT min(wp.person_id) FROM work_periods wp WHERE wp.site_id = site) AS person_id
    UNION ALL
    SELECT (SELECT min(wp.person_id) FROM work_periods wp WHERE wp.site_id = site AND wp.person_id > p.person_id)
    FROM people p WHERE p.person_id IS NOT NULL)
SELECT terminal_id, store_epoch, seq, site_id, person_id, event_time, card_ident, mode, voided, direction, mark
FROM tap_marks
WHERE site_id = site AND event_time >= lo AND event_time < hi
UNION ALL
SELECT t.terminal_id, t.store_epoch, t.seq, e.site_id, e.person_id, t.event_time, t.card_id, e.mode, false,
       e.direction, 'counted'
FROM (
    SELECT wp.site_id, wp.person_id, x.ref, x.mode, x.direction,
           regexp_match(x.ref, '^tap:(.*)/(\d+)/(\d+)$') AS id
    FROM people p
    JOIN work_periods wp ON wp.site_id = site AND wp.person_id = p.person_id
    CROSS JOIN LATERAL (VALUES (wp.start_ref, wp.start_mode, 'in', wp.start_at), (wp.end_ref, wp.end_mode, 'out', wp.end_at))
        AS x(ref, mode, direction, at)
    WHERE wp.recorded_to = 'infinity'
      -- work_periods_length: an end at or after lo belongs to a period
      -- anchored at most 24 hours before it.
      AND coalesce(wp.start_at, wp.end_at) >= lo - interval '24 hours' AND coalesce(wp.start_at, wp.end_at) < hi
      AND x.ref LIKE 'tap:%' AND x.at >= lo AND x.at < hi) e
JOIN taps t ON t.terminal_id = e.id[1] AND t.store_epoch = e.id[2]::bigint AND t.seq = e.id[3]::bigint
WHERE t.event_time >= lo AND t.event_time < hi
$$;
