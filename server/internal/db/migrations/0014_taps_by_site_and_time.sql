-- 0014: a site's taps in a time range are found from the periods near the
-- range, not from every current period of the site.
--
-- Since 0010 a counted tap lives in the current period that names it, and
-- tap_resolutions parses the refs of every current period of the site
-- before a reader's time filter applies: the corrections page's tap picker
-- (the last three days) and the check of a corrected tap read a site's
-- whole history, seconds for a site with a year of it.
--
--   - A counted tap's event time is the time of the period end that names
--     it (Derive sets Start and End from the tap's event time, and taps are
--     never changed), so a tap at T is the start of a period anchored
--     (coalesce(start_at, end_at), as work_periods_site_person orders them)
--     at T, or the end of one anchored in [T - its length, T].
--     work_periods_length makes that length a fact of the table, not of the
--     configuration: a period ends no earlier than it starts and at most 24
--     hours later. Derivation closes a period only within Rules.MaxOpen
--     (16 h by default), and manual periods are at most 24 h long
--     (MaxManualPeriod); a MaxOpen above 24 h would now be refused at the
--     insert. A CHECK costs the reconciler's COPY next to nothing.
--
--   - tap_resolutions_between(site, lo, hi) is tap_resolutions for one site
--     and event times in [lo, hi): the same rows, read through the index of
--     0002 (site, person, anchor). Without a person that index bounds
--     nothing by time, so the function first walks the site's people in it
--     (one probe each, a loose index scan), then reads each one's periods
--     anchored in [lo - 24 h, hi). Its cost grows with the people who ever
--     worked at the site, not with the days they worked there. A single SQL
--     SELECT, STABLE: the planner inlines it, so a reader's own conditions
--     and the parameters' values reach the scans. Its two branches are the
--     view's with conditions added: a change to the view changes it too
--     (ledger's TestTapResolutionsBetween compares them).
--
--     An index of the site's periods by anchor alone would read fewer rows,
--     but it costs every period version the reconciler writes one more
--     index entry: measured with BenchmarkReconcile, about 1-2 of 17
--     PostgreSQL CPU-µs per tap, on the hot path, for a page a site manager
--     opens now and then.
--
-- Existing rows are not changed. Adding the constraint reads every row of
-- work_periods once, holding writes to the table until the migration
-- commits; the migration fails, and nothing changes, if a stored period
-- breaks it.

ALTER TABLE work_periods ADD CONSTRAINT work_periods_length
    CHECK (end_at >= start_at AND end_at <= start_at + interval '24 hours');

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
