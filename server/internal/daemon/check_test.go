package daemon

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/pglocal"
	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := newPKI(t, dir+"/", time.Now().Add(90*24*time.Hour))
	soonDir, expiredDir := t.TempDir(), t.TempDir()
	soon := newPKI(t, soonDir, time.Now().Add(3*24*time.Hour))
	expired := newPKI(t, expiredDir, time.Now().Add(-time.Minute))
	migrated := pgtest.NewURL(t)
	empty := pgtest.NewEmpty(t).Config().ConnString()
	smallLocks := smallLockTable(t)

	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
		want []string // lines that must appear
	}{
		{"all good", Config{Listen: "127.0.0.1:8080", MetricsListen: "127.0.0.1:9090", DatabaseURL: migrated,
			TLSCert: good.certFile, TLSKey: good.keyFile}, true,
			[]string{"ok    database   PostgreSQL", "ok    schema     current (", "ok    locks      lock table of 38400 entries, room for full reconcile steps",
				"ok    clock", "ok    tls        certificate for localhost, 127.0.0.1 valid until", "all checks passed, 0 warning(s)"}},
		{"small lock table", Config{Listen: "127.0.0.1:8080", DatabaseURL: smallLocks}, true,
			[]string{"WARN  locks      lock table of 200 entries: reconcile steps of 33 taps instead of 4096", "reaches 24576", "all checks passed, 1 warning(s)"}},
		{"public listener without TLS", Config{Listen: "0.0.0.0:8080", DatabaseURL: migrated}, true,
			[]string{"WARN  listen     0.0.0.0:8080 is reachable from other machines without TLS", "all checks passed, 1 warning(s)"}},
		{"certificate about to expire", Config{Listen: "127.0.0.1:8080", DatabaseURL: migrated, TLSCert: soon.certFile, TLSKey: soon.keyFile}, true,
			[]string{"WARN  tls        certificate for localhost, 127.0.0.1 expires on"}},
		{"expired certificate", Config{Listen: "127.0.0.1:8080", DatabaseURL: migrated, TLSCert: expired.certFile, TLSKey: expired.keyFile}, false,
			[]string{"FAIL  tls        certificate for localhost, 127.0.0.1 expired on"}},
		{"key of another certificate", Config{Listen: "127.0.0.1:8080", DatabaseURL: migrated, TLSCert: good.certFile, TLSKey: soon.keyFile}, false,
			[]string{"FAIL  tls        daemon: tls: tls: private key does not match public key"}},
		{"certificate without key", Config{Listen: "127.0.0.1:8080", DatabaseURL: migrated, TLSCert: good.certFile}, false,
			[]string{"FAIL  tls        set both --tls-cert and --tls-key"}},
		{"migrations pending", Config{Listen: "127.0.0.1:8080", DatabaseURL: empty}, false,
			[]string{"migration(s) pending: 0001_ingest.sql, 0002_registry_ledger.sql", "(run liggare-server migrate"}},
		{"no database", Config{Listen: "127.0.0.1:8080"}, false,
			[]string{"FAIL  settings   no database: set DATABASE_URL"}},
		{"database unreachable", Config{Listen: "127.0.0.1:8080", DatabaseURL: "postgres://nobody@127.0.0.1:1/x?connect_timeout=2"}, false,
			[]string{"FAIL  database   db: connect to x on 127.0.0.1"}},
		{"bad addresses", Config{Listen: "8080", MetricsListen: "127.0.0.1:8080", DatabaseURL: migrated}, false,
			[]string{`FAIL  listen     "8080" is not a host:port address`}},
		{"metrics on the main listener", Config{Listen: "127.0.0.1:8080", MetricsListen: "127.0.0.1:8080", DatabaseURL: migrated}, false,
			[]string{"FAIL  metrics    --metrics-listen must differ from --listen"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out strings.Builder
			err := Check(t.Context(), tc.cfg, &out)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, ErrCheckFailed)) {
				t.Errorf("Check = %v, want ok %v\n%s", err, tc.ok, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

// smallLockTable starts a migrated cluster whose lock table holds 200
// entries (10 × 20 connections) and returns its URL.
func smallLockTable(t *testing.T) string {
	t.Helper()
	c, err := pglocal.Start(t.Context(), pglocal.Options{ExtraConf: map[string]string{
		"max_connections": "20", "max_locks_per_transaction": "10"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop(context.Background()) })
	pool, err := db.Connect(t.Context(), c.URL("postgres"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if err := db.Migrate(t.Context(), pool, nil); err != nil {
		t.Fatal(err)
	}
	return c.URL("postgres")
}
