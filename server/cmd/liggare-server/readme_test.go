package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/liggare/liggare/server/internal/daemon"
)

var update = flag.Bool("update", false, "rewrite the flag tables in deploy/README.md")

// readmePath is deploy/README.md from this package's directory.
var readmePath = filepath.Join("..", "..", "..", "deploy", "README.md")

// documented are the flag sets deploy/README.md documents, by the name of
// their section.
func documented() map[string]*flagSet {
	var cfg daemon.Config
	var log logFlags
	var url, actor string
	var e enrollmentArgs
	var d devdbArgs
	var o orgArgs
	return map[string]*flagSet{
		"liggare-server org create":        orgFlags(&o, &log),
		"liggare-server serve":             serveFlags(&cfg, &log),
		"liggare-server migrate":           dbFlags("liggare-server migrate", &url, &log),
		"liggare-server enrollment create": enrollmentFlags(&e, &log),
		"liggare-server terminal":          terminalFlags(&url, &actor, &log),
		"liggare-server devdb":             devdbFlags(&d),
	}
}

// TestREADMEFlags checks that deploy/README.md documents every flag and
// environment variable of liggare-server as the code registers them; run
// with -update to rewrite the tables.
func TestREADMEFlags(t *testing.T) {
	checkREADME(t, readmePath, documented(), *update)
}

func checkREADME(t *testing.T, path string, sets map[string]*flagSet, update bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for name, f := range sets {
		begin, end := "<!-- BEGIN flags "+name+" -->\n", "<!-- END flags "+name+" -->"
		i := strings.Index(text, begin)
		j := strings.Index(text, end)
		if i < 0 || j < i {
			t.Errorf("%s: no section %q ... %q", path, begin, end)
			continue
		}
		got, want := text[i+len(begin):j], f.markdown()
		if got == want {
			continue
		}
		if update {
			text = text[:i+len(begin)] + want + text[j:]
			continue
		}
		t.Errorf("%s: the flags of %s are not as documented (go test -run TestREADMEFlags -update rewrites them)\ngot:\n%s\nwant:\n%s",
			path, name, got, want)
	}
	if update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type serveSet struct {
	cfg daemon.Config
	log logFlags
	f   *flagSet
}

func documentedServe() *serveSet {
	s := &serveSet{}
	s.f = serveFlags(&s.cfg, &s.log)
	return s
}
