package serialport

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"
)

// Read timeout limits imposed by the tty's VTIME (tenths of a second, one
// byte).
const (
	// DefaultReadTimeout is used when Config.ReadTimeout is zero. It bounds
	// how long Close and a context's end wait for a Read in progress.
	DefaultReadTimeout = 100 * time.Millisecond
	// MinReadTimeout is the shortest timeout the tty can express.
	MinReadTimeout = 100 * time.Millisecond
	// MaxReadTimeout is the longest timeout the tty can express.
	MaxReadTimeout = 25500 * time.Millisecond
)

// DefaultBaud is used when Config.Baud is zero.
const DefaultBaud = 9600

// Errors a Port returns; test with errors.Is.
var (
	// ErrTimeout: a Read saw no data within the read timeout. Not a
	// failure; read again.
	ErrTimeout = errors.New("serialport: read timeout")
	// ErrGone: the device failed or disappeared (unplugged). The Port is
	// useless; close it and open the device again (Link does this).
	ErrGone = errors.New("serialport: device gone")
	// ErrClosed: the Port was closed.
	ErrClosed = errors.New("serialport: port closed")
	// ErrConfig: the Config cannot be used.
	ErrConfig = errors.New("serialport: bad config")
)

// Parity is the parity bit setting.
type Parity byte

// Parity settings the port supports.
const (
	ParityNone Parity = 'N'
	ParityOdd  Parity = 'O'
	ParityEven Parity = 'E'
)

// Config says which device to open and how.
type Config struct {
	// Path is the device, e.g. /dev/ttyUSB0 or a /dev/serial/by-id link.
	Path string
	// Baud is the line speed; DefaultBaud when zero.
	Baud int
	// ReadTimeout is how long a Read waits for a first byte; zero means
	// DefaultReadTimeout. It is rounded down to a tenth of a second and
	// clamped to [MinReadTimeout, MaxReadTimeout] (see the package doc).
	ReadTimeout time.Duration
	// DataBits is 5 to 8; 8 when zero.
	DataBits int
	// Parity is ParityNone when zero.
	Parity Parity
	// StopBits is 1 or 2; 1 when zero.
	StopBits int
}

// bauds are the rates tarm/serial knows on Linux.
var bauds = map[int]bool{
	50: true, 75: true, 110: true, 134: true, 150: true, 200: true, 300: true,
	600: true, 1200: true, 1800: true, 2400: true, 4800: true, 9600: true,
	19200: true, 38400: true, 57600: true, 115200: true, 230400: true,
	460800: true, 500000: true, 576000: true, 921600: true, 1000000: true,
	1152000: true, 1500000: true, 2000000: true, 2500000: true, 3000000: true,
	3500000: true, 4000000: true,
}

// EffectiveReadTimeout returns the read timeout Open will put in force for
// d: DefaultReadTimeout for zero, otherwise d rounded down to a tenth of a
// second and clamped to [MinReadTimeout, MaxReadTimeout].
func EffectiveReadTimeout(d time.Duration) time.Duration {
	if d == 0 {
		return DefaultReadTimeout
	}
	d = d.Truncate(100 * time.Millisecond)
	return min(max(d, MinReadTimeout), MaxReadTimeout)
}

// normalise fills defaults and validates c.
func (c Config) normalise() (Config, error) {
	if c.Path == "" {
		return c, fmt.Errorf("%w: no device path", ErrConfig)
	}
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if !bauds[c.Baud] {
		return c, fmt.Errorf("%w: unsupported baud rate %d", ErrConfig, c.Baud)
	}
	if c.ReadTimeout < 0 {
		return c, fmt.Errorf("%w: negative read timeout %v", ErrConfig, c.ReadTimeout)
	}
	c.ReadTimeout = EffectiveReadTimeout(c.ReadTimeout)
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		return c, fmt.Errorf("%w: unsupported data bits %d", ErrConfig, c.DataBits)
	}
	switch c.Parity {
	case 0:
		c.Parity = ParityNone
	case ParityNone, ParityOdd, ParityEven:
	default:
		return c, fmt.Errorf("%w: unsupported parity %q", ErrConfig, rune(c.Parity))
	}
	switch c.StopBits {
	case 0:
		c.StopBits = 1
	case 1, 2:
	default:
		return c, fmt.Errorf("%w: unsupported stop bits %d", ErrConfig, c.StopBits)
	}
	return c, nil
}

// Port is an open serial port. See the package doc for its concurrency
// rules.
type Port struct {
	cfg Config
	sp  *serial.Port

	closed atomic.Bool
	mu     sync.Mutex // serialises Close
}

// Open opens the device in cfg with a read timeout always in force.
func Open(cfg Config) (*Port, error) {
	cfg, err := cfg.normalise()
	if err != nil {
		return nil, err
	}
	sp, err := serial.OpenPort(&serial.Config{
		Name:        cfg.Path,
		Baud:        cfg.Baud,
		ReadTimeout: cfg.ReadTimeout,
		Size:        byte(cfg.DataBits),
		Parity:      serial.Parity(cfg.Parity),
		StopBits:    serial.StopBits(cfg.StopBits),
	})
	if err != nil {
		return nil, fmt.Errorf("serialport: open %s: %w", cfg.Path, err)
	}
	return &Port{cfg: cfg, sp: sp}, nil
}

// Path returns the device path the port was opened with.
func (p *Port) Path() string { return p.cfg.Path }

// Config returns the configuration in force, defaults filled in and the
// read timeout rounded.
func (p *Port) Config() Config { return p.cfg }

// ReadTimeout returns the read timeout in force.
func (p *Port) ReadTimeout() time.Duration { return p.cfg.ReadTimeout }

// Read reads what has arrived, waiting at most the read timeout for a first
// byte. It returns n > 0 and a nil error, or 0 and one of: ErrTimeout (no
// data yet: read again), ErrGone (the device is gone), ErrClosed. It never
// returns io.EOF.
func (p *Port) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	if p.closed.Load() {
		return 0, ErrClosed
	}
	n, err := p.sp.Read(b)
	if n > 0 {
		// Any error comes again on the next Read.
		return n, nil
	}
	if p.closed.Load() {
		return 0, ErrClosed
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, p.gone("read", err)
	}
	// Zero bytes: a timeout, or a hung-up tty that returns 0 at once for
	// ever. Only a write tells them apart (see the package doc).
	if _, werr := p.sp.Write(nil); werr != nil {
		if p.closed.Load() {
			return 0, ErrClosed
		}
		return 0, p.gone("read", werr)
	}
	return 0, ErrTimeout
}

// Write writes b. A failure means the device is gone (ErrGone) or the port
// closed (ErrClosed).
func (p *Port) Write(b []byte) (int, error) {
	if p.closed.Load() {
		return 0, ErrClosed
	}
	n, err := p.sp.Write(b)
	if err != nil {
		if p.closed.Load() {
			return n, ErrClosed
		}
		return n, p.gone("write", err)
	}
	return n, nil
}

// Flush discards bytes received but not read and bytes written but not yet
// sent.
func (p *Port) Flush() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if err := p.sp.Flush(); err != nil {
		return p.gone("flush", err)
	}
	return nil
}

// Close closes the port. It waits for a Read in progress, which ends within
// the read timeout, so that the descriptor is really closed when it
// returns. Close is idempotent; Reads and Writes after it fail with
// ErrClosed.
func (p *Port) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return nil
	}
	if err := p.sp.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return fmt.Errorf("serialport: close %s: %w", p.cfg.Path, err)
	}
	return nil
}

func (p *Port) gone(op string, err error) error {
	return fmt.Errorf("serialport: %s %s: %w: %w", op, p.cfg.Path, ErrGone, err)
}
