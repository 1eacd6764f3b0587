// Package db opens the server's PostgreSQL pool and brings the schema up to
// date.
//
// The schema is a sequence of forward-only migrations, migrations/NNNN_name.sql,
// embedded in the binary and numbered from 1 without gaps. Migrate applies the
// ones a database has not seen, each in its own transaction together with its
// row in schema_migrations, so a migration is either wholly applied and
// recorded or not at all. Because several server replicas may start at once,
// Migrate holds a session advisory lock (LockKey) for the whole run: the
// first replica migrates, the others wait and then find nothing to do.
//
// Rules for writing migrations:
//   - Never edit or renumber a migration once it has left your machine; add a
//     new one. A database that holds a version the binary does not know is
//     refused (ErrDatabaseNewer): rolling a binary back past a migration is
//     unsafe.
//   - A migration runs inside a transaction, so it cannot use statements that
//     refuse one (CREATE INDEX CONCURRENTLY, ALTER TYPE ... ADD VALUE before
//     PostgreSQL 12, VACUUM), nor BEGIN/COMMIT of its own.
package db
