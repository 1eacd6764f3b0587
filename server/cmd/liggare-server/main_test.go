package main

import (
	"context"

	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/liggare/liggare/server/internal/db"
	"github.com/liggare/liggare/server/internal/enroll"
	"github.com/liggare/liggare/server/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func envOf(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestEnrollmentCreateCommand(t *testing.T) {
	t.Parallel()
	url := pgtest.NewURL(t)
	pool, err := db.Connect(t.Context(), url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(t.Context(), `
		WITH o AS (INSERT INTO organisations (name, org_number) VALUES ('Bygg AB', '556000-0001') RETURNING org_id)
		INSERT INTO sites (org_id, site_ident, name, address, byggherre_name, byggherre_org_number)
		SELECT org_id, '1A2B3C4D5E6F7', 'Kv. Bryggan', 'Gatan 1', 'Bygg AB', '556000-0001' FROM o`); err != nil {
		t.Fatal(err)
	}
	// The database URL from a file, as systemd's LoadCredential hands it.
	urlFile := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(urlFile, []byte(url+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := envOf(map[string]string{"DATABASE_URL_FILE": urlFile, "SUDO_USER": "anna"})
	var out strings.Builder
	err = run([]string{"enrollment", "create", "--site", "1a2b3c4d5e6f7", "--terminal-id", "gate-1", "--direction", "out", "--ttl", "2h"}, env, &out)
	if err != nil {
		t.Fatalf("enrollment create: %v", err)
	}
	printed := strings.TrimSpace(out.String())
	if !regexp.MustCompile(`^[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}$`).MatchString(printed) {
		t.Fatalf("printed %q, want a code like ABCDE-FGHJK", printed)
	}
	var terminal, direction, by string
	var hours float64
	if err := pool.QueryRow(t.Context(), `
		SELECT terminal_id, direction, created_by, extract(epoch FROM expires_at - created_at) / 3600 FROM enrollment_codes`).
		Scan(&terminal, &direction, &by, &hours); err != nil {
		t.Fatal(err)
	}
	if terminal != "gate-1" || direction != "out" || by != "cli:anna" || hours != 2 {
		t.Errorf("code row = %s %s %s %vh", terminal, direction, by, hours)
	}
	norm, _ := enroll.NormalizeCode(printed)
	var n int
	pool.QueryRow(t.Context(), `SELECT count(*) FROM enrollment_codes WHERE code_sha256 = sha256($1::bytea)`, []byte(norm)).Scan(&n)
	if n != 1 {
		t.Errorf("the printed code is not the stored one")
	}

	for _, args := range [][]string{
		{"enrollment"},
		{"enrollment", "create"},
		{"enrollment", "create", "--site", "1A2B3C4D5E6F7", "--direction", "up"},
		{"enrollment", "create", "--site", "AAAAAAAAAAAAA"},
		{"enrollment", "create", "--site", "1A2B3C4D5E6F7", "--ttl", "soon"},
	} {
		if err := run(args, env, &out); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}

func TestCheckCommand(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	if err := run([]string{"check", "--listen", "127.0.0.1:0"}, envOf(map[string]string{"DATABASE_URL": pgtest.NewURL(t)}), &out); err != nil {
		t.Errorf("check of a good configuration: %v\n%s", err, out.String())
	}
	out.Reset()
	empty := pgtest.NewEmpty(t).Config().ConnString()
	err := run([]string{"check"}, envOf(map[string]string{"DATABASE_URL": empty, "LIGGARE_TLS_CERT": "/nonexistent.pem"}), &out)
	if err == nil {
		t.Fatalf("check of a bad configuration succeeded:\n%s", out.String())
	}
	for _, want := range []string{"FAIL  tls", "FAIL  schema", "2 check(s) failed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestOrgCreate(t *testing.T) {
	url := pgtest.NewURL(t)
	var keys strings.Builder
	if err := run([]string{"keygen"}, envOf(nil), &keys); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": url}
	for _, line := range strings.Fields(keys.String()) {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	if err := run([]string{"org", "create", "--name", "Bygg AB", "--org-number", "556036-0793"}, envOf(env), &strings.Builder{}); err == nil ||
		!strings.Contains(err.Error(), "usage") {
		t.Errorf("org create without --admin = %v, want the usage", err)
	}
	if err := run([]string{"org", "create", "--name", "Bygg AB", "--org-number", "556036-0793", "--admin", "a@bygg.se"}, envOf(map[string]string{"DATABASE_URL": url}), &strings.Builder{}); err == nil ||
		!strings.Contains(err.Error(), "PII keys") {
		t.Errorf("org create without keys = %v, want a clear refusal", err)
	}
	var out strings.Builder
	if err := run([]string{"org", "create", "--name", "Bygg AB", "--org-number", "556036-0793", "--admin", "Admin@Bygg.se"}, envOf(env), &out); err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(out.String())
	if len(password) < 16 {
		t.Fatalf("one-time password %q too short", password)
	}
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var hash, role string
	if err := conn.QueryRow(context.Background(), `
		SELECT u.password_hash, m.role FROM users u JOIN memberships m USING (user_id)
		JOIN organisations o ON o.org_id = m.org_id WHERE u.email = 'admin@bygg.se' AND o.name = 'Bygg AB'`).Scan(&hash, &role); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(hash, "$argon2id$") || strings.Contains(hash, password) || role != "org_admin" {
		t.Errorf("stored hash %q role %q", hash, role)
	}
}

func TestFlagsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "url")
	os.WriteFile(secret, []byte("postgres://from-file\n"), 0o600)
	for _, tc := range []struct {
		name            string
		args            []string
		env             map[string]string
		listen, db, log string
		err             bool
	}{
		{"defaults", nil, nil, "127.0.0.1:8080", "", "text", false},
		{"environment", nil, map[string]string{"LIGGARE_LISTEN": ":9", "DATABASE_URL": "postgres://env", "LIGGARE_LOG_FORMAT": "json"},
			":9", "postgres://env", "json", false},
		{"flag wins", []string{"--listen", ":7", "--database-url", "postgres://flag"}, map[string]string{"LIGGARE_LISTEN": ":9", "DATABASE_URL": "postgres://env"},
			":7", "postgres://flag", "text", false},
		{"secret from a file", nil, map[string]string{"DATABASE_URL_FILE": secret}, "127.0.0.1:8080", "postgres://from-file", "text", false},
		{"variable wins over its file", nil, map[string]string{"DATABASE_URL": "postgres://env", "DATABASE_URL_FILE": secret}, "127.0.0.1:8080", "postgres://env", "text", false},
		{"missing file", nil, map[string]string{"DATABASE_URL_FILE": filepath.Join(dir, "none")}, "", "", "", true},
		{"bad value", nil, map[string]string{"LIGGARE_PING_INTERVAL": "often"}, "", "", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := documentedServe()
			err := c.f.ParseEnv(tc.args, envOf(tc.env))
			if (err != nil) != tc.err {
				t.Fatalf("parse = %v, want error %v", err, tc.err)
			}
			if err == nil && (c.cfg.Listen != tc.listen || c.cfg.DatabaseURL != tc.db || c.log.format != tc.log) {
				t.Errorf("listen %q, database %q, log %q; want %q, %q, %q", c.cfg.Listen, c.cfg.DatabaseURL, c.log.format, tc.listen, tc.db, tc.log)
			}
		})
	}
}

// TestDevDBSet checks that devdb's --set collects postgresql.conf settings,
// the last of a name winning, and refuses what is not NAME=VALUE.
func TestDevDBSet(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want map[string]string
		err  bool
	}{
		{nil, nil, false},
		{[]string{"--set", "shared_preload_libraries=pg_stat_statements", "--set", "work_mem=8MB", "--set", "work_mem=16MB"},
			map[string]string{"shared_preload_libraries": "pg_stat_statements", "work_mem": "16MB"}, false},
		{[]string{"--set", "application_name=a=b"}, map[string]string{"application_name": "a=b"}, false},
		{[]string{"--set", "fsync"}, nil, true},
		{[]string{"--set", "=on"}, nil, true},
	} {
		var a devdbArgs
		err := devdbFlags(&a).ParseEnv(tc.args, envOf(nil))
		if (err != nil) != tc.err {
			t.Errorf("devdb %q: parse = %v, want error %v", tc.args, err, tc.err)
			continue
		}
		if diff := cmp.Diff(tc.want, a.conf); err == nil && diff != "" {
			t.Errorf("devdb %q: settings (-want +got):\n%s", tc.args, diff)
		}
	}
}
