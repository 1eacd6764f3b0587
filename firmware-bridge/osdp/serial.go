package osdp

import (
	"context"
	"errors"
	"fmt"

	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// serialOpener opens device at baud through firmware-bridge/serialport.
func serialOpener(device string, baud int) Opener {
	return func(ctx context.Context) (Port, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p, err := serialport.Open(serialport.Config{Path: device, Baud: baud})
		if err != nil {
			return nil, fmt.Errorf("osdp: %w", err)
		}
		// Bytes from before this open belong to no command of ours.
		if err := p.Flush(); err != nil {
			p.Close()
			return nil, fmt.Errorf("osdp: %w", err)
		}
		return serialPort{p}, nil
	}
}

// serialPort adapts a serialport.Port to Port: a read timeout is "no data
// yet", (0, nil), not an error.
type serialPort struct{ *serialport.Port }

func (p serialPort) Read(b []byte) (int, error) {
	n, err := p.Port.Read(b)
	if errors.Is(err, serialport.ErrTimeout) {
		return n, nil
	}
	return n, err
}
