// Package pgtest gives tests a real PostgreSQL database of their own.
//
// A test binary that needs PostgreSQL calls Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Main starts one throwaway, non-durable cluster for the whole binary (see
// pglocal), creates a template database migrated with db.Migrate, runs the
// tests, then stops and removes the cluster. Each call to New or NewURL
// clones the template into a fresh database (CREATE DATABASE ... TEMPLATE,
// milliseconds for a small schema), which the test's cleanup drops: tests
// share nothing and may run with t.Parallel.
//
// When PGTEST_URL is set (a postgres:// URL of a superuser, or one allowed to
// create databases), Main uses that server instead of starting a cluster,
// and Cluster returns nil. Without PGTEST_URL and without PostgreSQL
// binaries, Main fails the binary: tests that need a database never skip.
//
// A binary killed before its cleanup (a test timeout, kill -9) leaves its
// cluster running; the next Main stops and removes the clusters of
// processes that no longer exist.
package pgtest
