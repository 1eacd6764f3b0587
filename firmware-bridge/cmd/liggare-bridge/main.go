// Command liggare-bridge is the field technician's tool for a kiosk's card
// reader: it finds serial ports, tells which reader is on one, shows card
// reads live, tests the reader's LED and beeper, measures link quality, and
// simulates readers for the demo and for training.
//
//	liggare-bridge list [DIR...]
//	liggare-bridge probe PORT
//	liggare-bridge watch SPEC
//	liggare-bridge feedback SPEC accepted|refused|offline|error
//	liggare-bridge quality SPEC [--for 30s]
//	liggare-bridge simulate --protocol osdp|pn532|line --link PATH [--cards N] [--interval D]
//
// SPEC is the terminal's --reader value: osdp:/dev/ttyUSB0?addr=1,
// pn532:/dev/ttyS0 or line:/dev/ttyACM0. The commands live in package
// technician.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/liggare/liggare/firmware-bridge/cmd/liggare-bridge/technician"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := technician.Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, technician.ErrUsage):
		fmt.Fprintln(os.Stderr, "liggare-bridge:", err)
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "liggare-bridge:", err)
		os.Exit(1)
	}
}
