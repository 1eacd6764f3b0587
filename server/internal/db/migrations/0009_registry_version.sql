-- 0009: a version number of the registry data that decides who a tapped
-- card belongs to, so that the reconciler can keep card resolutions in
-- memory and know exactly when they went stale.
--
-- A reconcile step resolved every (site, card id) of its taps with a query
-- over sites, site_contractors, cards, card_chips, corrections and persons:
-- about 3 µs of PostgreSQL per tap at the morning peak of
-- BenchmarkReconcile, for answers that change a few times a day. The
-- reconciler now caches the answers with the version they were read at,
-- and reads the version with each step's taps.
--
-- Every transaction that changes one of those tables adds one to n, once,
-- at commit: a deferred constraint trigger, so the row is locked only while
-- the transaction commits (no lock waits behind a long import, and no
-- deadlock, since nothing else is locked after it). Bumps commit in order
-- (each waits for the previous one's row lock), so two snapshots that see
-- the same n see the same registry: answers read at version n are exact
-- for any statement that reads n.

CREATE TABLE registry_version (
    one boolean PRIMARY KEY DEFAULT true CHECK (one),
    n   bigint NOT NULL
);
INSERT INTO registry_version (n) VALUES (1);

CREATE FUNCTION registry_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once per transaction: the setting is local to it.
    IF current_setting('liggare.registry_bumped', true) IS DISTINCT FROM 'on' THEN
        UPDATE registry_version SET n = n + 1;
        PERFORM set_config('liggare.registry_bumped', 'on', true);
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['sites', 'site_contractors', 'persons', 'cards', 'card_chips'] LOOP
        EXECUTE format('CREATE CONSTRAINT TRIGGER %I AFTER INSERT OR UPDATE OR DELETE ON %I
            DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION registry_version_bump()',
            tbl || '_registry_version', tbl);
    END LOOP;
END $$;
-- corrections only grow; of them, card assignments and withdrawals (of an
-- assignment, or of anything: cheaper to bump than to look) matter.
CREATE CONSTRAINT TRIGGER corrections_registry_version AFTER INSERT ON corrections
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (NEW.kind = 'assign_card' OR NEW.withdraws IS NOT NULL)
    EXECUTE FUNCTION registry_version_bump();
-- Nothing truncates these tables; a TRUNCATE would not fire the triggers
-- above, so one is refused rather than left to leave the cache stale.
CREATE FUNCTION registry_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%: truncate would leave cached card resolutions stale', TG_TABLE_NAME;
END $$;
DO $$
DECLARE
    tbl text;
BEGIN
    FOREACH tbl IN ARRAY ARRAY['sites', 'site_contractors', 'persons', 'cards', 'card_chips', 'corrections'] LOOP
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I
            FOR EACH STATEMENT EXECUTE FUNCTION registry_no_truncate()', tbl || '_no_truncate', tbl);
    END LOOP;
END $$;
