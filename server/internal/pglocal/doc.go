// Package pglocal runs a private PostgreSQL cluster from the PostgreSQL
// binaries installed on the machine: the tests' throwaway cluster (through
// pgtest), the demo launcher's durable one, and the cluster an end-to-end
// test kills and restarts under a running server.
//
// A cluster lives in one directory:
//
//	<dir>/data/            PGDATA, made by initdb on first start
//	<dir>/data/pglocal.conf settings written by Start, included from postgresql.conf
//	<dir>/postgres.log     the server log; its tail is quoted when a start fails
//	<dir>/.s.PGSQL.<port>  the unix socket; the cluster listens on no TCP port
//
// Connections are trusted and go over the unix socket only, so several
// clusters on one machine never fight over a port, and nothing but local
// processes that can enter the directory can reach them. A unix socket path
// is limited to about 107 bytes, so keep the directory short (/tmp/pg-XXXX).
//
// initdb refuses to run as root. When the process runs as root, as CI does,
// pglocal gives the directory to the user "postgres" and runs initdb and
// pg_ctl through "runuser -u postgres --". That user must be able to reach
// the directory: a t.TempDir() is private to root and will not do, which is
// why Start makes its own directory under os.TempDir() when none is given.
//
// The binaries are looked up in PATH first, then in the highest version
// under /usr/lib/postgresql/*/bin (Debian's layout), unless Options.BinDir
// names them.
package pglocal
