package flagenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func testSet() (*FlagSet, *string, *int, *string) {
	f := New("test")
	addr := f.String("listen", ":8080", "address")
	n := f.Int("workers", 4, "workers")
	key := f.String("key", "", "a secret")
	f.Bind("listen", "T_LISTEN")
	f.Bind("workers", "T_WORKERS")
	f.BindSecret("key", "T_KEY")
	return f, addr, n, key
}

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		listen    string
		workers   int
		key       string
		listenSet bool
	}{
		{name: "defaults", listen: ":8080", workers: 4},
		{name: "variable", env: map[string]string{"T_LISTEN": ":9"}, listen: ":9", workers: 4, listenSet: true},
		{name: "flag beats variable", args: []string{"--listen", ":1"}, env: map[string]string{"T_LISTEN": ":9"}, listen: ":1", workers: 4, listenSet: true},
		{name: "secret file", env: map[string]string{"T_KEY_FILE": keyFile}, listen: ":8080", workers: 4, key: "from-file"},
		{name: "secret variable beats its file", env: map[string]string{"T_KEY": "direct", "T_KEY_FILE": keyFile}, listen: ":8080", workers: 4, key: "direct"},
		{name: "a plain flag has no _FILE", env: map[string]string{"T_LISTEN_FILE": keyFile}, listen: ":8080", workers: 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, listen, workers, key := testSet()
			if err := f.ParseEnv(tc.args, func(k string) string { return tc.env[k] }); err != nil {
				t.Fatal(err)
			}
			if *listen != tc.listen || *workers != tc.workers || *key != tc.key {
				t.Errorf("got listen=%q workers=%d key=%q, want %q %d %q", *listen, *workers, *key, tc.listen, tc.workers, tc.key)
			}
			if f.IsSet("listen") != tc.listenSet {
				t.Errorf("IsSet(listen) = %v, want %v", f.IsSet("listen"), tc.listenSet)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	f, _, _, _ := testSet()
	err := f.ParseEnv(nil, func(k string) string { return map[string]string{"T_WORKERS": "many"}[k] })
	if err == nil || !strings.Contains(err.Error(), `T_WORKERS="many"`) {
		t.Errorf("a bad variable: got %v, want an error naming it and its value", err)
	}
	f, _, _, _ = testSet()
	err = f.ParseEnv(nil, func(k string) string { return map[string]string{"T_KEY_FILE": "/nonexistent/key"}[k] })
	if err == nil || !strings.Contains(err.Error(), "T_KEY_FILE") {
		t.Errorf("a missing secret file: got %v, want an error naming T_KEY_FILE", err)
	}
}

func TestMarkdown(t *testing.T) {
	f, _, _, _ := testSet()
	want := "| flag | environment | default | meaning |\n|---|---|---|---|\n" +
		"| `--key` | `T_KEY`, `T_KEY_FILE` |  | a secret |\n" +
		"| `--listen` | `T_LISTEN` | `:8080` | address |\n" +
		"| `--workers` | `T_WORKERS` | `4` | workers |\n"
	if got := f.Markdown(); got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
	var b strings.Builder
	f.WriteDefaults(&b)
	if !strings.Contains(b.String(), "--key (env T_KEY, T_KEY_FILE)") || !strings.Contains(b.String(), "--workers (env T_WORKERS) (default 4)") {
		t.Errorf("usage:\n%s", b.String())
	}
}
