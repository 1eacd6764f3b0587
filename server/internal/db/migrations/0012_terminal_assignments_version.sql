-- 0012: a terminal's assignments (its site and reader mode over time) are
-- registry data too, so that the reconciler can keep them in memory.
--
-- Each reconcile step looked up every tap's assignment with an index probe
-- of its own (about 1 µs of PostgreSQL per tap at the morning peak of
-- BenchmarkReconcile), for rows that change when a kiosk is moved. A change
-- to terminal_assignments now adds one to registry_version at commit, like
-- the tables of 0009, and the reconciler caches each terminal's
-- assignments with the version it read them at.

CREATE CONSTRAINT TRIGGER terminal_assignments_registry_version
    AFTER INSERT OR UPDATE OR DELETE ON terminal_assignments
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION registry_version_bump();
CREATE TRIGGER terminal_assignments_no_truncate BEFORE TRUNCATE ON terminal_assignments
    FOR EACH STATEMENT EXECUTE FUNCTION registry_no_truncate();
