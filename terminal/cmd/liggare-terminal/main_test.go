package main

import (
	"os"
	"strings"
	"testing"

	"github.com/liggare/liggare/terminal/internal/uplink"
)

func TestDefaultCardsPath(t *testing.T) {
	for _, tc := range []struct{ outbox, want string }{
		{"/var/lib/liggare/outbox.db", "/var/lib/liggare/cards.db"},
		{"/tmp/e2e/K1.outbox", "/tmp/e2e/K1.cards.db"},
		{"/tmp/e2e/K2.outbox", "/tmp/e2e/K2.cards.db"},
		{"outbox", "cards.db"},
		{"cards.db", "cards.cards.db"},
	} {
		if got := defaultCardsPath(tc.outbox); got != tc.want {
			t.Errorf("defaultCardsPath(%q) = %q, want %q", tc.outbox, got, tc.want)
		}
	}
}

func TestCredentialSource(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/credential"
	if err := os.WriteFile(file, []byte("gate-1.from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"named file", []string{"--credential-file", file}, map[string]string{"LIGGARE_CREDENTIAL": "gate-1.from-env"}, "gate-1.from-file"},
		{"file from the environment", nil, map[string]string{"LIGGARE_CREDENTIAL_FILE": file, "LIGGARE_CREDENTIAL": "gate-1.from-env"}, "gate-1.from-file"},
		{"credential from the environment", nil, map[string]string{"LIGGARE_CREDENTIAL": "gate-1.from-env"}, "gate-1.from-env"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var a agentArgs
			var up uplink.Config
			getenv := func(k string) string { return tc.env[k] }
			if err := parseAgent(agentFlags(&a, &up), tc.args, getenv, &a); err != nil {
				t.Fatal(err)
			}
			got, err := credentialSource(a, getenv)()
			if err != nil || got != tc.want {
				t.Errorf("credential = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	// Nothing named and nothing there: say how to enroll.
	var a agentArgs
	var up uplink.Config
	getenv := func(k string) string { return map[string]string{"LIGGARE_CREDENTIAL_FILE": dir + "/none"}[k] }
	parseAgent(agentFlags(&a, &up), nil, getenv, &a)
	if _, err := credentialSource(a, getenv)(); err == nil || !strings.Contains(err.Error(), "liggare-terminal enroll") {
		t.Errorf("missing credential: %v, want a pointer to enroll", err)
	}
}
