package pn532

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// Port is the serial line to the PN532: a serialport.Port on a kiosk, a
// pseudo-terminal or one end of a net.Pipe in tests. Read may return
// (0, nil) when nothing arrived; any error means the port is gone (unplugged)
// and is closed and opened again.
type Port interface {
	io.Reader
	io.Writer
	io.Closer
}

// Opener opens the port. The driver calls it again, with backoff, whenever
// the port fails; it should fail at once when the device is absent rather
// than wait for it.
type Opener func(ctx context.Context) (Port, error)

// Defaults and bounds of Config.
const (
	// DefaultBaud is the PN532's HSU speed after power-up.
	DefaultBaud = 115200
	// DefaultPollInterval is the time from one InListPassiveTarget to the
	// next: fast enough that a tap feels instant, slow enough that the
	// chip and the line idle most of the time (a poll is ~20 bytes).
	DefaultPollInterval = 150 * time.Millisecond
	// MinPollInterval and MaxPollInterval bound Config.PollInterval.
	MinPollInterval = 10 * time.Millisecond
	MaxPollInterval = 2 * time.Second
	// DefaultAckTimeout is how long the driver waits for the ACK frame
	// the PN532 sends right after a command (USB-serial adapters can add
	// 16 ms of latency each way).
	DefaultAckTimeout = 100 * time.Millisecond
	// DefaultResponseTimeout is how long the driver waits for a response
	// after the ACK; activating an ISO/IEC 14443-4 card (with RATS) takes
	// tens of milliseconds.
	DefaultResponseTimeout = time.Second
	// DefaultMaxMissed is how many exchanges in a row may go unanswered
	// before the reader counts as offline and is woken up again.
	DefaultMaxMissed = 3
	// MaxHoldOff bounds Config.HoldOff.
	MaxHoldOff = time.Minute
)

// baudRates are the PN532's HSU speeds (UM0701, SetSerialBaudRate).
var baudRates = []int{9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600, 1288000}

// GPIOPin names a P3 pin by its number as printed: 0x30 is P30, 0x35 is
// P35. The zero value is no pin.
type GPIOPin uint8

// String prints the pin as "P32", or "" for none.
func (p GPIOPin) String() string {
	if p == 0 {
		return ""
	}
	return fmt.Sprintf("P%x", uint8(p))
}

// bit returns the pin's bit in the P3 port byte.
func (p GPIOPin) bit() byte { return 1 << (uint8(p) - 0x30) }

// ParseGPIOPin parses "P30".."P35" (any case).
func ParseGPIOPin(s string) (GPIOPin, error) {
	u := strings.ToUpper(s)
	if len(u) != 3 || u[0] != 'P' || u[1] != '3' || u[2] < '0' || u[2] > '5' {
		return 0, fmt.Errorf("pn532: gpio pin %q: want P30..P35", s)
	}
	return GPIOPin(0x30 + u[2] - '0'), nil
}

// Config configures a Driver. The zero value of each field takes its
// default; Path (or Open) is required.
type Config struct {
	// Path is the serial device ("/dev/ttyS0", "/dev/serial/by-id/...").
	Path string
	// Baud is the line speed; the PN532 listens at 115200 after power-up
	// and this driver does not change it (SetSerialBaudRate).
	Baud int
	// Name names the reader in each Read on a terminal with several
	// ("in", "out").
	Name string
	// HoldOff is how long a card held on the reader, or lifted and put
	// back at once, stays one tap (default reader.DefaultHoldOff).
	HoldOff time.Duration
	// PollInterval is the time between polls (default DefaultPollInterval).
	PollInterval time.Duration
	// AckTimeout, ResponseTimeout and MaxMissed tune supervision (defaults
	// DefaultAckTimeout, DefaultResponseTimeout, DefaultMaxMissed).
	AckTimeout      time.Duration
	ResponseTimeout time.Duration
	MaxMissed       int
	// Beep is a P3 pin wired to a buzzer (active high) on boards that have
	// one; zero means the reader gives no feedback of its own and the
	// kiosk screen is the only feedback.
	Beep GPIOPin
	// Logger receives the driver's log; nil discards it.
	Logger *slog.Logger
	// Open opens the port; nil opens Path at Baud through serialport.
	Open Opener
}

// ParseConfig parses a reader address as the terminal's --reader flag
// gives it: "pn532:/dev/ttyS0?baud=115200&holdoff=2s&poll=150ms&gpio_beep=P32&name=in".
// The "pn532:" prefix is optional; every parameter is. The hold-off is
// spelt holdoff as for the OSDP and line readers; hold_off, this package's
// first spelling, is still read.
func ParseConfig(s string) (Config, error) {
	var c Config
	rest, _ := strings.CutPrefix(s, "pn532:")
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return c, fmt.Errorf("pn532: config %q: no serial device path", s)
	}
	c.Path = path
	q, err := url.ParseQuery(query)
	if err != nil {
		return c, fmt.Errorf("pn532: config %q: %w", s, err)
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return c, fmt.Errorf("pn532: config %q: %s given %d times", s, k, len(vs))
		}
		v := vs[0]
		switch k {
		case "baud":
			if c.Baud, err = strconv.Atoi(v); err != nil {
				return c, fmt.Errorf("pn532: config %q: baud: %w", s, err)
			}
		case "name":
			c.Name = v
		case "holdoff", "hold_off":
			if _, twice := q["holdoff"]; twice && k == "hold_off" {
				return c, fmt.Errorf("pn532: config %q: holdoff and hold_off both given", s)
			}
			if c.HoldOff, err = time.ParseDuration(v); err != nil {
				return c, fmt.Errorf("pn532: config %q: holdoff: %w", s, err)
			}
		case "poll":
			if c.PollInterval, err = time.ParseDuration(v); err != nil {
				return c, fmt.Errorf("pn532: config %q: poll: %w", s, err)
			}
		case "gpio_beep":
			if c.Beep, err = ParseGPIOPin(v); err != nil {
				return c, fmt.Errorf("pn532: config %q: %w", s, err)
			}
		default:
			return c, fmt.Errorf("pn532: config %q: unknown parameter %q", s, k)
		}
	}
	if err := c.validate(); err != nil {
		return c, fmt.Errorf("pn532: config %q: %w", s, err)
	}
	return c, nil
}

// ErrConfig reports an invalid Config.
var ErrConfig = errors.New("invalid config")

func (c Config) validate() error {
	if c.Path == "" && c.Open == nil {
		return fmt.Errorf("%w: no path", ErrConfig)
	}
	if c.Baud != 0 && !slices.Contains(baudRates, c.Baud) {
		return fmt.Errorf("%w: baud %d: want one of %v", ErrConfig, c.Baud, baudRates)
	}
	if c.HoldOff < 0 || c.HoldOff > MaxHoldOff {
		return fmt.Errorf("%w: holdoff %v: want 0..%v", ErrConfig, c.HoldOff, MaxHoldOff)
	}
	if c.PollInterval != 0 && (c.PollInterval < MinPollInterval || c.PollInterval > MaxPollInterval) {
		return fmt.Errorf("%w: poll %v: want %v..%v", ErrConfig, c.PollInterval, MinPollInterval, MaxPollInterval)
	}
	if c.AckTimeout < 0 || c.ResponseTimeout < 0 || c.MaxMissed < 0 {
		return fmt.Errorf("%w: negative timeout or miss count", ErrConfig)
	}
	if c.Beep != 0 && (c.Beep < 0x30 || c.Beep > 0x35) {
		return fmt.Errorf("%w: gpio_beep %#x: want P30..P35", ErrConfig, uint8(c.Beep))
	}
	return nil
}

// withDefaults fills in the zero fields.
func (c Config) withDefaults() Config {
	if c.Baud == 0 {
		c.Baud = DefaultBaud
	}
	if c.HoldOff == 0 {
		c.HoldOff = reader.DefaultHoldOff
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.AckTimeout == 0 {
		c.AckTimeout = DefaultAckTimeout
	}
	if c.ResponseTimeout == 0 {
		c.ResponseTimeout = DefaultResponseTimeout
	}
	if c.MaxMissed == 0 {
		c.MaxMissed = DefaultMaxMissed
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
