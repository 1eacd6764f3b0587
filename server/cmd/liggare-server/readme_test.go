package main

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/liggare/liggare/internal/flagenv"
	"github.com/liggare/liggare/internal/flagenv/flagenvtest"
	"github.com/liggare/liggare/server/internal/daemon"
)

var update = flag.Bool("update", false, "rewrite the flag tables in deploy/README.md")

// readmePath is deploy/README.md from this package's directory.
var readmePath = filepath.Join("..", "..", "..", "deploy", "README.md")

// documented are the flag sets deploy/README.md documents, by the name of
// their section.
func documented() map[string]*flagenv.FlagSet {
	var cfg daemon.Config
	var log logFlags
	var url, actor string
	var e enrollmentArgs
	var d devdbArgs
	var o orgArgs
	return map[string]*flagenv.FlagSet{
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
	flagenvtest.CheckREADME(t, readmePath, documented(), *update)
}

type serveSet struct {
	cfg daemon.Config
	log logFlags
	f   *flagenv.FlagSet
}

func documentedServe() *serveSet {
	s := &serveSet{}
	s.f = serveFlags(&s.cfg, &s.log)
	return s
}
