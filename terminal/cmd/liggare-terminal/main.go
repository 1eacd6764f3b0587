// Command liggare-terminal is the kiosk agent: it records every card tap
// durably in a local outbox, answers it from a local card cache, and syncs
// both with the server whenever the network allows.
//
//	liggare-terminal [run]                              run the agent (the default)
//	liggare-terminal enroll --server URL --code CODE    enroll with a site manager's code
//	liggare-terminal rotate [--server URL]              replace the credential
//	liggare-terminal outbox --outbox FILE               print the outbox's state (agent stopped)
//
// Every flag may also be set by an environment variable (deploy/README.md
// lists them all).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "liggare-terminal:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "run"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "run":
		return runAgent(ctx, args, getenv)
	case "enroll":
		return enrollCmd(ctx, args, getenv, stdout)
	case "rotate":
		return rotateCmd(ctx, args, getenv, stdout)
	case "outbox":
		return inspectOutbox(args, getenv, stdout)
	case "pin-hash":
		return pinHash(os.Stdin, stdout)
	}
	return fmt.Errorf("unknown command %q (want run, enroll, rotate, outbox or pin-hash)", cmd)
}
