-- 0008: the derived ledger tables check their references once per
-- statement instead of once per row.
--
-- work_periods and tap_resolutions get a row per tap or period the
-- reconciler takes in: at the morning peak, tens of thousands a minute. A
-- FOREIGN KEY checks each inserted row on its own (one SPI query and one
-- row lock per referenced table per row). Measured with COPY of 10 000
-- rows into a pgtest cluster: 13 µs per work_periods row with its three
-- foreign keys, 3 µs without them and 4 µs with the triggers below;
-- 10-12 µs per tap_resolutions row with its two, 3 µs without. The
-- constraints are replaced by triggers that keep the same promise,
-- set-based:
--
--   - after each INSERT statement, every site, person and organisation the
--     new rows name must exist; the check locks them FOR KEY SHARE, as a
--     foreign key does, so a concurrent DELETE waits for the inserting
--     transaction and then sees its rows;
--   - an UPDATE that changes a reference checks the new one (row by row:
--     such updates are rare corrections, not the stream of taps);
--   - deleting a site, person or organisation that a ledger row names is
--     refused (NO ACTION, as before). The registry never deletes these rows
--     anyway (retention anonymises in place); the guard is for mistakes.
--
-- Errors use SQLSTATE 23503 (foreign_key_violation), like the constraints.

ALTER TABLE work_periods
    DROP CONSTRAINT work_periods_site_id_fkey,
    DROP CONSTRAINT work_periods_person_id_fkey,
    DROP CONSTRAINT work_periods_org_id_fkey;
ALTER TABLE tap_resolutions
    DROP CONSTRAINT tap_resolutions_site_id_fkey,
    DROP CONSTRAINT tap_resolutions_person_id_fkey;

-- ledger_lock_refs locks FOR KEY SHARE the rows of registry table tbl
-- whose key col is in ids (distinct, no NULLs), as a foreign key check does,
-- and fails unless every one exists.
CREATE FUNCTION ledger_lock_refs(source text, tbl text, col text, ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    got bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM (SELECT 1 FROM %I WHERE %I = ANY($1) FOR KEY SHARE) x', tbl, col)
        INTO got USING ids;
    IF got <> coalesce(cardinality(ids), 0) THEN
        RAISE EXCEPTION '%: a row names a key of % that does not exist', source, tbl
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;

-- ledger_refs_exist checks the references of a statement's new rows
-- (transition table new_rows): site_id and person_id, and org_id when the
-- table has one (TG_ARGV[0] = 'org').
CREATE FUNCTION ledger_refs_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sites_  bigint[];
    persons bigint[];
    orgs    bigint[];
BEGIN
    SELECT array_agg(DISTINCT site_id) FILTER (WHERE site_id IS NOT NULL),
           array_agg(DISTINCT person_id) FILTER (WHERE person_id IS NOT NULL)
    INTO sites_, persons FROM new_rows;
    PERFORM ledger_lock_refs(TG_TABLE_NAME, 'sites', 'site_id', sites_);
    PERFORM ledger_lock_refs(TG_TABLE_NAME, 'persons', 'person_id', persons);
    IF TG_NARGS > 0 AND TG_ARGV[0] = 'org' THEN
        SELECT array_agg(DISTINCT org_id) INTO orgs FROM new_rows;
        PERFORM ledger_lock_refs(TG_TABLE_NAME, 'organisations', 'org_id', orgs);
    END IF;
    RETURN NULL;
END
$$;

-- ledger_ref_exists checks the site and person of one updated row.
CREATE FUNCTION ledger_ref_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_lock_refs(TG_TABLE_NAME, 'sites', 'site_id', array_remove(ARRAY[NEW.site_id], NULL));
    PERFORM ledger_lock_refs(TG_TABLE_NAME, 'persons', 'person_id', array_remove(ARRAY[NEW.person_id], NULL));
    RETURN NEW;
END
$$;

CREATE TRIGGER work_periods_refs AFTER INSERT ON work_periods
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refs_exist('org');
CREATE TRIGGER tap_resolutions_refs AFTER INSERT ON tap_resolutions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refs_exist();
CREATE TRIGGER work_periods_ref_update BEFORE UPDATE OF site_id, person_id ON work_periods
    FOR EACH ROW WHEN (OLD.site_id IS DISTINCT FROM NEW.site_id OR OLD.person_id IS DISTINCT FROM NEW.person_id)
    EXECUTE FUNCTION ledger_ref_exists();
CREATE TRIGGER tap_resolutions_ref_update BEFORE UPDATE OF site_id, person_id ON tap_resolutions
    FOR EACH ROW WHEN (OLD.site_id IS DISTINCT FROM NEW.site_id OR OLD.person_id IS DISTINCT FROM NEW.person_id)
    EXECUTE FUNCTION ledger_ref_exists();

-- work_periods.org_id is not expected to change; refuse it rather than
-- check it.
CREATE FUNCTION work_periods_org_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'work_periods: org_id of a period never changes'
        USING ERRCODE = 'foreign_key_violation';
END
$$;
CREATE TRIGGER work_periods_org_update BEFORE UPDATE OF org_id ON work_periods
    FOR EACH ROW WHEN (OLD.org_id IS DISTINCT FROM NEW.org_id) EXECUTE FUNCTION work_periods_org_fixed();

-- ledger_refs_kept refuses to delete a registry row the ledger names
-- (TG_ARGV[0]: which column of the deleted rows, transition table
-- old_rows). It runs after the statement, with a fresh snapshot, so rows
-- committed by a transaction the DELETE waited for are seen.
CREATE FUNCTION ledger_refs_kept() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hit bigint;
BEGIN
    CASE TG_ARGV[0]
    WHEN 'site' THEN
        SELECT d.site_id INTO hit FROM old_rows d
        WHERE EXISTS (SELECT 1 FROM work_periods w WHERE w.site_id = d.site_id)
           OR EXISTS (SELECT 1 FROM tap_resolutions t WHERE t.site_id = d.site_id) LIMIT 1;
    WHEN 'person' THEN
        SELECT d.person_id INTO hit FROM old_rows d
        WHERE EXISTS (SELECT 1 FROM work_periods w WHERE w.person_id = d.person_id)
           OR EXISTS (SELECT 1 FROM tap_resolutions t WHERE t.person_id = d.person_id) LIMIT 1;
    WHEN 'org' THEN
        SELECT d.org_id INTO hit FROM old_rows d
        WHERE EXISTS (SELECT 1 FROM work_periods w WHERE w.org_id = d.org_id) LIMIT 1;
    END CASE;
    IF hit IS NOT NULL THEN
        RAISE EXCEPTION '%: % % is named by the ledger', TG_TABLE_NAME, TG_ARGV[0], hit
            USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER sites_ledger_refs AFTER DELETE ON sites
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refs_kept('site');
CREATE TRIGGER persons_ledger_refs AFTER DELETE ON persons
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refs_kept('person');
CREATE TRIGGER organisations_ledger_refs AFTER DELETE ON organisations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger_refs_kept('org');
