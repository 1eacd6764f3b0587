// Package ptypair gives tests and simulators a pseudo-terminal that stands in
// for a serial card reader.
//
// A Pair is a Linux pseudo-terminal (/dev/ptmx) in raw mode. Its slave path
// (Path, e.g. /dev/pts/7) is what a driver opens through
// firmware-bridge/serialport, exactly as it would open /dev/ttyUSB0; the
// master side (Pair itself: Read, Write, Close, SetReadDeadline) is where a
// simulator speaks the reader's wire format.
//
// Raw mode means: no echo (bytes the simulator writes do not come back to
// it), no line discipline (CR and LF pass unchanged, no line buffering), no
// XON/XOFF flow control, 8 data bits. serialport also sets the slave raw when
// it opens it, but the pair is raw from the start so that bytes written
// before the driver opens are neither echoed nor translated.
//
// The pair keeps a slave descriptor of its own open. Bytes the simulator
// writes while no driver has the port open wait in the terminal's input
// queue (as a real reader's bytes wait in a USB-serial adapter), and the
// simulator's reads do not fail while the driver closes and reopens.
//
// # Unplug and replug
//
// Close (or Unplug, its synonym) closes the master. The kernel hangs up the
// slave: a driver's reads and writes on it fail (writes with EIO; reads
// return at once with no data, which serialport reports as ErrGone) and the
// /dev/pts/N node disappears, as when a USB reader is pulled out.
//
// A test simulates the replug with a stable path, the way udev keeps
// /dev/serial/by-id/... stable across replugs:
//
//	p1, _ := ptypair.Open()
//	link := filepath.Join(t.TempDir(), "reader")
//	p1.Link(link)          // the driver opens link, not p1.Path()
//	...
//	p1.Close()             // unplug: the driver's port fails, reopens fail
//	p2, _ := ptypair.Open()
//	p2.Link(link)          // replug: link now points at the new pty and
//	                       // the driver's backoff loop reopens it
//
// Link replaces the symlink atomically (rename), so a driver never sees a
// half-made link.
package ptypair
