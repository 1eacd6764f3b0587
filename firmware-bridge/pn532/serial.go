package pn532

import (
	"context"
	"fmt"

	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// serialOpener opens path at baud through serialport, with serialport's
// default read timeout (100 ms): a Read returns serialport.ErrTimeout when
// nothing came, which the link's read loop takes as "no data", and
// serialport.ErrGone when the device was unplugged.
//
// Run's own loop reopens it with backoff rather than serialport.Link, so
// that the same loop drives a serial port and the net.Pipe the tests use.
func serialOpener(path string, baud int) Opener {
	return func(ctx context.Context) (Port, error) {
		p, err := serialport.Open(serialport.Config{Path: path, Baud: baud})
		if err != nil {
			return nil, fmt.Errorf("pn532: %w", err)
		}
		// Bytes that waited in the driver's buffers belong to nobody.
		if err := p.Flush(); err != nil {
			_ = p.Close()
			return nil, fmt.Errorf("pn532: %w", err)
		}
		return p, nil
	}
}
