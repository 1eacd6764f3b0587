package serialport

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Info describes a candidate serial port.
type Info struct {
	// Path is the device node (/dev/ttyUSB0) or a stable link
	// (/dev/serial/by-id/usb-...).
	Path string
	// Target is, for a link, the device node it points to; "" otherwise.
	Target string
	// Kind is "usb" (USB-serial adapter), "acm" (USB CDC-ACM, most USB
	// readers), "uart" (on-board UART) or "by-id" (a stable link).
	Kind string
}

// devicePatterns are the device nodes List reports, by kind. ttyAMA* and
// ttyS* are the on-board UARTs of a Raspberry Pi and a PC; ttyS* nodes
// exist whether or not hardware sits behind them.
var devicePatterns = []struct{ glob, kind string }{
	{"ttyUSB*", "usb"},
	{"ttyACM*", "acm"},
	{"ttyAMA*", "uart"},
	{"ttyS*", "uart"},
}

// List returns the serial ports that exist on this (Linux) machine: device
// nodes, then /dev/serial/by-id links with their targets, each group sorted.
func List() ([]Info, error) { return list("/dev") }

func list(dev string) ([]Info, error) {
	var out []Info
	for _, dp := range devicePatterns {
		paths, err := filepath.Glob(filepath.Join(dev, dp.glob))
		if err != nil {
			return nil, fmt.Errorf("serialport: list %s: %w", dp.glob, err)
		}
		slices.SortFunc(paths, naturalCompare)
		for _, p := range paths {
			if fi, err := os.Stat(p); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				out = append(out, Info{Path: p, Kind: dp.kind})
			}
		}
	}
	byID := filepath.Join(dev, "serial", "by-id")
	entries, err := os.ReadDir(byID)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("serialport: list %s: %w", byID, err)
	}
	for _, e := range entries {
		p := filepath.Join(byID, e.Name())
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // a dangling link: the device is going away
		}
		out = append(out, Info{Path: p, Target: target, Kind: "by-id"})
	}
	return out, nil
}

// naturalCompare orders ttyS2 before ttyS10.
func naturalCompare(a, b string) int {
	ta, na := splitNum(a)
	tb, nb := splitNum(b)
	if c := strings.Compare(ta, tb); c != 0 {
		return c
	}
	if len(na) != len(nb) {
		return len(na) - len(nb)
	}
	return strings.Compare(na, nb)
}

func splitNum(s string) (string, string) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	return s[:i], s[i:]
}
