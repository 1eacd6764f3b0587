// Package serialport is the kiosk's serial port: the one package that
// imports github.com/tarm/serial, wrapping it so that card-reader drivers
// never meet its quirks.
//
// Open returns a Port (Read, Write, Close, Flush); a Link owns a port across
// unplug and replug, reopening it with exponential backoff and counting the
// reopens for reader.State; List finds candidate ports for the technician's
// CLI.
//
// # tarm/serial's quirks and how each is handled
//
// Verified against github.com/tarm/serial v0.0.0-20180830185346-98f6abe2eb07
// (serial_linux.go, serial_posix.go) and on Linux pseudo-terminals:
//
//   - A read that times out returns (0, io.EOF): tarm sets VMIN=0 and
//     VTIME>0, read(2) returns 0 and os.File turns that into io.EOF. Port.Read
//     reports it as ErrTimeout instead; io.EOF never leaks, so "no data yet"
//     cannot be mistaken for the end of the stream.
//   - With no read timeout (VMIN=1, VTIME=0) a read blocks until the next
//     byte, and Close waits for a read in progress, so Close hangs until the
//     reader sends something (for ever, for a silent reader). Open always
//     sets a read timeout (DefaultReadTimeout when Config.ReadTimeout is
//     zero). Close still waits for a Read in progress, but that Read ends
//     within the read timeout, so Close returns within one read timeout.
//     Waiting is useful: when Close returns the descriptor is really closed,
//     and no stale read can steal bytes from the next Port on the device.
//   - The timeout is VTIME, in tenths of a second, at most 255: tarm rounds
//     down to a tenth, raises anything under 100 ms to 100 ms and caps at
//     25.5 s. Open does the same rounding itself (MinReadTimeout,
//     MaxReadTimeout), rejects negative timeouts, and Port.ReadTimeout
//     reports the timeout actually in force.
//   - When the device disappears (USB unplug, a pseudo-terminal's master
//     closed) the kernel hangs up the tty: read(2) then returns 0 at once,
//     for ever, which tarm reports as (0, io.EOF) exactly like a timeout,
//     and only writes fail (EIO). After every zero-byte read Port.Read
//     therefore probes the descriptor with a zero-length write, which costs
//     nothing on a live tty and fails with EIO on a hung-up one; Read then
//     returns ErrGone instead of spinning on fake timeouts. Other read and
//     write errors (EIO, ENXIO, ENODEV, EBADF) are ErrGone too.
//   - Unsupported baud rates fail with an unexported, unwrapped error, and
//     open and ioctl errors carry no context. Open validates the Config
//     first (ErrConfig) and wraps every error with the operation and path.
//   - Mark and space parity and 1.5 stop bits are not implemented; Config
//     offers only what works (none, odd, even parity; 1 or 2 stop bits;
//     5 to 8 data bits).
//   - tarm sets CLOCAL and no flow control, and leaves output processing
//     and echo off: the port is raw, which is what reader protocols need.
//
// A Port is for one reader goroutine and one writer goroutine at a time;
// Close may be called from any goroutine.
package serialport
