// Command liggare-server is the Liggare server: it receives taps from the
// site terminals and keeps the staff ledger in PostgreSQL.
//
//	liggare-server [serve]             run the server (the default)
//	liggare-server check               test configuration and database; exit 1 on a problem
//	liggare-server migrate             apply database migrations and exit
//	liggare-server enrollment create --site SITE-IDENT [--terminal-id ID] [--direction in|out|toggle] [--ttl 24h]
//	                                   print a single-use enrollment code for a kiosk
//	liggare-server terminal add ID...  register terminals, print a credential each
//	liggare-server terminal revoke ID  revoke every credential of a terminal
//	liggare-server org create --name NAME --org-number NNNNNN-NNNN --admin EMAIL
//	                                   create a tenant and its first admin (one-time password)
//	liggare-server keygen              print new keys for identity numbers (--pii-keys, --pii-index-key)
//	liggare-server devdb --dir DIR     run a private PostgreSQL for development,
//	                                   printing its URL, until interrupted
//
// Every flag of serve and check may also be set by an environment variable
// (deploy/README.md lists them all).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "liggare-server:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv)
	case "check":
		return check(ctx, args, getenv, stdout)
	case "migrate":
		return migrate(ctx, args, getenv)
	case "enrollment":
		return enrollment(ctx, args, getenv, stdout)
	case "terminal":
		return terminal(ctx, args, getenv, stdout)
	case "org":
		return org(ctx, args, getenv, stdout)
	case "keygen":
		return keygen(stdout)
	case "devdb":
		return devDB(ctx, args, getenv, stdout)
	}
	return fmt.Errorf("unknown command %q (want serve, check, migrate, enrollment, terminal, org, keygen or devdb)", cmd)
}
