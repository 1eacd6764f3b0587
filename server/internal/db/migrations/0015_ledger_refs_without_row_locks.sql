-- 0015: the ledger's reference checks no longer lock the registry rows they
-- name; deleting a registry row waits for the ledger's writers instead.
--
-- 0008 checked the sites, people and employers a statement's new ledger rows
-- name, and locked them FOR KEY SHARE, as a foreign key does, so that a
-- concurrent DELETE would wait and then see the new rows. At the morning
-- peak every reconcile step locked every person it took taps of, every
-- site, and the employers: a row lock written to each, and, where two
-- steps held the same site or employer at once, a multixact. In
-- BenchmarkReconcile's statement times that was about a fifth of the
-- work_periods COPY, and more the more steps ran at once.
--
-- The same promise, kept from the other side: sites, persons and
-- organisations are never deleted by the application (retention anonymises
-- in place), so the rare DELETE now takes the cost. Its check
-- (ledger_refs_kept) first locks work_periods and tap_marks in SHARE mode,
-- which waits for every transaction writing to them to end and keeps new
-- writers out until it commits, and then looks for rows naming what it
-- deleted, with a snapshot that sees them all. A writer that checked a
-- reference before the delete committed has committed by then, and is
-- found; one that comes after waits for the delete and then finds the
-- reference gone. That needs a snapshot per statement: such a DELETE is
-- refused in a REPEATABLE READ or SERIALIZABLE transaction.

CREATE FUNCTION ledger_check_refs(source text, tbl text, col text, ids bigint[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    got bigint;
BEGIN
    EXECUTE format('SELECT count(*) FROM %I WHERE %I = ANY($1)', tbl, col) INTO got USING ids;
    IF got <> coalesce(cardinality(ids), 0) THEN
        RAISE EXCEPTION '%: a row names a key of % that does not exist', source, tbl
            USING ERRCODE = 'foreign_key_violation';
    END IF;
END
$$;

CREATE OR REPLACE FUNCTION ledger_refs_exist() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    sites_  bigint[];
    persons bigint[];
    orgs    bigint[];
BEGIN
    SELECT array_agg(DISTINCT site_id) FILTER (WHERE site_id IS NOT NULL),
           array_agg(DISTINCT person_id) FILTER (WHERE person_id IS NOT NULL)
    INTO sites_, persons FROM new_rows;
    PERFORM ledger_check_refs(TG_TABLE_NAME, 'sites', 'site_id', sites_);
    PERFORM ledger_check_refs(TG_TABLE_NAME, 'persons', 'person_id', persons);
    IF TG_NARGS > 0 AND TG_ARGV[0] = 'org' THEN
        SELECT array_agg(DISTINCT org_id) INTO orgs FROM new_rows;
        PERFORM ledger_check_refs(TG_TABLE_NAME, 'organisations', 'org_id', orgs);
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION ledger_ref_exists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM ledger_check_refs(TG_TABLE_NAME, 'sites', 'site_id', array_remove(ARRAY[NEW.site_id], NULL));
    PERFORM ledger_check_refs(TG_TABLE_NAME, 'persons', 'person_id', array_remove(ARRAY[NEW.person_id], NULL));
    RETURN NEW;
END
$$;

DROP FUNCTION ledger_lock_refs(text, text, text, bigint[]);

CREATE OR REPLACE FUNCTION ledger_refs_kept() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    hit bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION '%: delete only in a READ COMMITTED transaction (the ledger check needs a fresh snapshot)', TG_TABLE_NAME
            USING ERRCODE = 'feature_not_supported';
    END IF;
    LOCK TABLE work_periods, tap_marks IN SHARE MODE;
    CASE TG_ARGV[0]
    WHEN 'site' THEN
        SELECT d.site_id INTO hit FROM old_rows d
        WHERE EXISTS (SELECT 1 FROM work_periods w WHERE w.site_id = d.site_id)
           OR EXISTS (SELECT 1 FROM tap_marks t WHERE t.site_id = d.site_id) LIMIT 1;
    WHEN 'person' THEN
        SELECT d.person_id INTO hit FROM old_rows d
        WHERE EXISTS (SELECT 1 FROM work_periods w WHERE w.person_id = d.person_id)
           OR EXISTS (SELECT 1 FROM tap_marks t WHERE t.person_id = d.person_id) LIMIT 1;
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
