-- 0003: the audit log, and indexes by person for retention and register
-- extracts.

-- Who read, exported or changed whose personal data, and when ("every
-- processing logged"). One row per event; package audit writes and reads it.
--   actor         the user (id or e-mail) or a system job ('system:retention')
--   actor_org_id  the tenant the actor acted for; NULL for system jobs
--   action        dotted lower-case name, e.g. 'person.identity.read'
--   org_id        the tenant the data belongs to (the controller)
--   site_id, person_id  what the event was about, where it was about one
--   detail        a JSON object with counts and ids; never an identity number
--                 (package audit refuses details that look like one)
CREATE TABLE audit_log (
    audit_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    actor         text NOT NULL CHECK (actor <> ''),
    actor_org_id  bigint REFERENCES organisations,
    action        text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$'),
    org_id        bigint REFERENCES organisations,
    site_id       bigint REFERENCES sites,
    person_id     bigint REFERENCES persons,
    detail        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(detail) = 'object')
);
CREATE INDEX audit_log_org_at ON audit_log (org_id, at);
CREATE INDEX audit_log_actor_org_at ON audit_log (actor_org_id, at);
CREATE INDEX audit_log_person ON audit_log (person_id) WHERE person_id IS NOT NULL;
CREATE INDEX audit_log_site_at ON audit_log (site_id, at) WHERE site_id IS NOT NULL;

-- The audit log is append-only. A log that the application can rewrite
-- proves nothing: the point of it is that a read or change of personal data
-- stays on record even when the code (or the person) that made it would
-- rather it did not. The triggers refuse UPDATE, DELETE and TRUNCATE for
-- every role, also under session_replication_role = replica (ENABLE ALWAYS).
-- They guard against mistakes and misuse through the application; a
-- superuser can still drop them. Anonymising a person never touches the log:
-- its rows hold ids and counts, and those stay true.
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_append_only;
ALTER TABLE audit_log ENABLE ALWAYS TRIGGER audit_log_no_truncate;

-- Retention finds each person's latest activity, and a register extract
-- collects everything about one person: both look rows up by person, which
-- the indexes of 0002 (led by the site) cannot do.
CREATE INDEX work_periods_person ON work_periods (person_id);
CREATE INDEX tap_resolutions_person ON tap_resolutions (person_id, event_time) WHERE person_id IS NOT NULL;
CREATE INDEX corrections_person ON corrections (person_id) WHERE person_id IS NOT NULL;
