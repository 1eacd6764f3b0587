package ptypair

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Pair is one pseudo-terminal: the master side, which a simulator reads and
// writes, and the path of the slave side, which a driver opens as a serial
// port. It is safe for one reader and one writer to use concurrently.
type Pair struct {
	master *os.File
	slave  *os.File // held open so the master survives driver reopens
	path   string

	closeOnce sync.Once
	closeErr  error
}

// Open creates a pseudo-terminal pair in raw mode.
func Open() (*Pair, error) {
	// O_NONBLOCK makes the master pollable: deadlines work and Close
	// unblocks a pending Read at once.
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ptypair: open /dev/ptmx: %w", err)
	}
	master := os.NewFile(uintptr(fd), "/dev/ptmx")
	fail := func(step string, err error) (*Pair, error) {
		master.Close()
		return nil, fmt.Errorf("ptypair: %s: %w", step, err)
	}
	rc, err := master.SyscallConn()
	if err != nil {
		return fail("syscall conn", err)
	}
	var n int
	var ctlErr error
	err = rc.Control(func(fd uintptr) {
		if ctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ctlErr != nil {
			ctlErr = fmt.Errorf("unlockpt: %w", ctlErr)
			return
		}
		if n, ctlErr = unix.IoctlGetInt(int(fd), unix.TIOCGPTN); ctlErr != nil {
			ctlErr = fmt.Errorf("ptsname: %w", ctlErr)
			return
		}
		if ctlErr = makeRaw(int(fd)); ctlErr != nil {
			ctlErr = fmt.Errorf("raw mode: %w", ctlErr)
		}
	})
	if err = errors.Join(err, ctlErr); err != nil {
		return fail("set up", err)
	}
	path := "/dev/pts/" + strconv.Itoa(n)
	slave, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return fail("open slave", err)
	}
	return &Pair{master: master, slave: slave, path: path}, nil
}

// makeRaw sets the terminal (through its master, which sets the slave's
// termios) to raw 8N1, like cfmakeraw(3), without XON/XOFF.
func makeRaw(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR |
		unix.IGNCR | unix.ICRNL | unix.IXON | unix.IXOFF | unix.IXANY
	t.Oflag &^= unix.OPOST
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8 | unix.CREAD | unix.CLOCAL
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, t)
}

// Path returns the slave's device path (/dev/pts/N), which a driver opens.
func (p *Pair) Path() string { return p.path }

// Read reads what the driver wrote to the slave.
func (p *Pair) Read(b []byte) (int, error) {
	n, err := p.master.Read(b)
	if err != nil {
		return n, fmt.Errorf("ptypair: read: %w", err)
	}
	return n, nil
}

// Write sends bytes to the driver, as the reader would. It blocks while the
// terminal's input queue is full (about 4 KiB no driver has read yet).
func (p *Pair) Write(b []byte) (int, error) {
	n, err := p.master.Write(b)
	if err != nil {
		return n, fmt.Errorf("ptypair: write: %w", err)
	}
	return n, nil
}

// SetReadDeadline bounds the master's next Reads, as on a net.Conn.
func (p *Pair) SetReadDeadline(t time.Time) error {
	if err := p.master.SetReadDeadline(t); err != nil {
		return fmt.Errorf("ptypair: set read deadline: %w", err)
	}
	return nil
}

// SetWriteDeadline bounds the master's next Writes, as on a net.Conn.
func (p *Pair) SetWriteDeadline(t time.Time) error {
	if err := p.master.SetWriteDeadline(t); err != nil {
		return fmt.Errorf("ptypair: set write deadline: %w", err)
	}
	return nil
}

// Master returns the master side as a file, for callers that need one.
// Closing it unplugs the reader, like Close.
func (p *Pair) Master() *os.File { return p.master }

// Link makes path a symbolic link to the slave, replacing whatever was
// there atomically. Re-pointing the same path at a new Pair simulates a
// replug behind a stable name like /dev/serial/by-id/....
func (p *Pair) Link(path string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp"+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	if err := os.Symlink(p.path, tmp); err != nil {
		return fmt.Errorf("ptypair: link %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("ptypair: link %s: %w", path, err)
	}
	return nil
}

// Close closes both sides the pair holds. A driver that still has the slave
// open sees its port fail, as if the reader were unplugged. Close is
// idempotent.
func (p *Pair) Close() error {
	p.closeOnce.Do(func() {
		// Master first: closing it hangs up the slave for everyone.
		p.closeErr = errors.Join(p.master.Close(), p.slave.Close())
		if p.closeErr != nil {
			p.closeErr = fmt.Errorf("ptypair: close: %w", p.closeErr)
		}
	})
	return p.closeErr
}

// Unplug is Close under the name tests use for the fault it simulates.
func (p *Pair) Unplug() error { return p.Close() }
