package main

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/liggare/liggare/internal/flagenv"
	"github.com/liggare/liggare/internal/flagenv/flagenvtest"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

var update = flag.Bool("update", false, "rewrite the flag tables in deploy/README.md")

// readmePath is deploy/README.md from this package's directory.
var readmePath = filepath.Join("..", "..", "..", "deploy", "README.md")

// documented are the flag sets deploy/README.md documents, by the name of
// their section.
func documented() map[string]*flagenv.FlagSet {
	var a agentArgs
	var up uplink.Config
	var e enrollArgs
	var path string
	return map[string]*flagenv.FlagSet{
		"liggare-terminal run":    agentFlags(&a, &up),
		"liggare-terminal enroll": enrollFlags(&e),
		"liggare-terminal rotate": rotateFlags(&e),
		"liggare-terminal outbox": outboxFlags(&path),
	}
}

// TestREADMEFlags checks that deploy/README.md documents every flag and
// environment variable of liggare-terminal as the code registers them; run
// with -update to rewrite the tables.
func TestREADMEFlags(t *testing.T) {
	flagenvtest.CheckREADME(t, readmePath, documented(), *update)
}
