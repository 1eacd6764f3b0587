// Package clock reads the terminal's three clocks at once: the wall clock,
// the boot id and the monotonic time since boot. The server needs all three
// to say honestly when a tap happened (design invariant 5): a kiosk may boot
// without a real-time clock, but within one boot the monotonic clock never
// jumps.
package clock

import (
	"bytes"
	"fmt"
	"os"
	"time"

	"github.com/liggare/liggare/syncproto"
	"golang.org/x/sys/unix"
)

// bootIDPath is where Linux publishes a random id chosen at every boot.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// Clock reads the terminal's clocks.
type Clock struct {
	bootID string
}

// New reads the boot id and returns a Clock.
func New() (*Clock, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return nil, fmt.Errorf("clock: read boot id: %w", err)
	}
	return &Clock{bootID: string(bytes.TrimSpace(b))}, nil
}

// BootID returns the id of the current boot.
func (c *Clock) BootID() string { return c.bootID }

// Now returns one reading of all three clocks.
func (c *Clock) Now() syncproto.Clock {
	var ts unix.Timespec
	// CLOCK_BOOTTIME keeps counting through suspend, unlike CLOCK_MONOTONIC.
	_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return syncproto.Clock{
		WallMicros: time.Now().UnixMicro(),
		BootID:     c.bootID,
		MonoNanos:  ts.Nano(),
	}
}
