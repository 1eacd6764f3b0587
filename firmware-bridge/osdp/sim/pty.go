package sim

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/liggare/liggare/firmware-bridge/ptypair"
)

// Device is a simulated reader on a pseudo-terminal, reached through a
// stable path (a symbolic link) that survives Unplug and Replug the way
// /dev/serial/by-id/... survives pulling out a USB reader. A driver opens
// Path as its serial device.
type Device struct {
	*PD  // the first reader; others on the same bus are in pds
	pds  []*PD
	link string
	ctx  context.Context
	stop context.CancelFunc

	mu   sync.Mutex
	pair *ptypair.Pair
	wg   sync.WaitGroup
}

// Start serves pd (and more readers on the same bus, if any) on a new
// pseudo-terminal pair linked at link (a path whose directory exists, e.g.
// in t.TempDir()) until ctx ends or Close.
//
// For make demo:
//
//	dev, err := sim.Start(ctx, "/tmp/liggare-osdp-1", sim.New(sim.Config{Addr: 1}))
//	// run liggare-terminal --reader osdp:/tmp/liggare-osdp-1?addr=1
//	dev.Present([]byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6})
func Start(ctx context.Context, link string, pd *PD, more ...*PD) (*Device, error) {
	ctx, stop := context.WithCancel(ctx)
	d := &Device{PD: pd, pds: append([]*PD{pd}, more...), link: link, ctx: ctx, stop: stop}
	if err := d.plug(); err != nil {
		stop()
		return nil, err
	}
	return d, nil
}

// Path returns the stable path a driver opens.
func (d *Device) Path() string { return d.link }

// plug opens a new pair, points the link at it and serves on it.
func (d *Device) plug() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pair != nil {
		return errors.New("sim: already plugged in")
	}
	pair, err := ptypair.Open()
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if err := pair.Link(d.link); err != nil {
		pair.Close()
		return fmt.Errorf("sim: %w", err)
	}
	d.pair = pair
	d.wg.Go(func() {
		// Serve ends when the pair is closed (Unplug, Close) or ctx ends;
		// either way its error says nothing new.
		_ = Serve(d.ctx, pair, d.pds...)
	})
	return nil
}

// Unplug pulls the reader out: the pseudo-terminal hangs up, the driver's
// port fails, and opening Path fails until Replug.
func (d *Device) Unplug() error {
	d.mu.Lock()
	pair := d.pair
	d.pair = nil
	d.mu.Unlock()
	if pair == nil {
		return nil
	}
	err := pair.Unplug()
	d.wg.Wait()
	return err
}

// Replug plugs the reader in again on a new pseudo-terminal behind the same
// Path. The reader keeps its state (key, cards not yet delivered).
func (d *Device) Replug() error { return d.plug() }

// Close unplugs the reader and stops serving.
func (d *Device) Close() error {
	d.stop()
	err := d.Unplug()
	d.wg.Wait()
	return err
}
