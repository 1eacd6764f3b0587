// Command liggare-load drives the real liggare-server with thousands of
// simulated terminals on one machine and reports what the fleet cost it:
// taps/s, ack latency, server memory per connection, and where the CPU went.
//
//	liggare-load --scenario peak      a morning peak with network outages
//	liggare-load --scenario storm     every terminal reconnects at once with taps buffered
//	liggare-load --scenario idle      connected terminals with nothing to send
//	liggare-load --scenario replicas  the storm's workload against 1 and N replicas
//
// It starts a private PostgreSQL and the server binaries itself (see the
// loadgen package); "make load" runs it with LOAD_FLAGS. The flags are
// listed by --help.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "liggare-load:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("liggare-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := defineFlags(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: liggare-load --scenario peak|storm|idle|replicas [flags]")
		fmt.Fprintln(stderr, "\nA zero --terminals or --taps takes the scenario's default (see each flag).")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, *cfg, stdout, stderr)
}
