package lineproto

import (
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// Scheme is the --reader prefix naming this driver.
const Scheme = "line"

// MaxFeedbackLen bounds a configured feedback command.
const MaxFeedbackLen = 64

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("lineproto: bad config")

// Config configures a Driver.
type Config struct {
	// Port is the serial port; its ReadTimeout is also the silence after
	// which a partial line is discarded.
	Port serialport.Config
	// Framing delimits frames; FrameAuto by default.
	Framing Framing
	// Format says how the UID is printed.
	Format Format
	// HoldOff is the reader.HoldOff window; reader.DefaultHoldOff when
	// zero.
	HoldOff time.Duration
	// Feedback, when set, holds the bytes to send the reader for each
	// outcome; outcomes without an entry send nothing.
	Feedback map[reader.Outcome][]byte
	// Name is reader.Read.Reader ("in", "out"); "" for the only reader.
	Name string
	// MinBackoff and MaxBackoff bound reopening after an unplug; the
	// serialport defaults when zero.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives link events; none when nil.
	Logger *slog.Logger
}

// validate checks what New and ParseConfig cannot leave to serialport.
func (c Config) validate() error {
	if _, ok := framingNames[c.Framing]; !ok {
		return fmt.Errorf("%w: framing %v", ErrConfig, c.Framing)
	}
	if c.Format.Order != AsPrinted && c.Format.Order != Reversed {
		return fmt.Errorf("%w: order %d", ErrConfig, c.Format.Order)
	}
	for _, n := range c.Format.UIDLengths {
		if n < 1 || 2*n > MaxLineLen {
			return fmt.Errorf("%w: UID length %d", ErrConfig, n)
		}
	}
	if len(c.Format.Prefix)+len(c.Format.Suffix) > MaxLineLen/2 {
		return fmt.Errorf("%w: prefix and suffix longer than %d bytes", ErrConfig, MaxLineLen/2)
	}
	if c.HoldOff < 0 {
		return fmt.Errorf("%w: negative hold-off", ErrConfig)
	}
	for o, cmd := range c.Feedback {
		if len(cmd) > MaxFeedbackLen {
			return fmt.Errorf("%w: feedback for outcome %d longer than %d bytes", ErrConfig, o, MaxFeedbackLen)
		}
	}
	return nil
}

// feedbackKeys name the outcomes in a spec.
var feedbackKeys = map[string]reader.Outcome{
	"accepted": reader.Accepted,
	"refused":  reader.Refused,
	"offline":  reader.RecordedOffline,
	"failed":   reader.NotRecorded,
}

// ParseConfig parses a --reader value:
//
//	line:/dev/ttyACM0?baud=9600&frame=crlf&order=reverse
//
// Query keys, all optional: baud; parity (n, o, e); stopbits (1, 2); timeout
// (read timeout, e.g. 200ms); frame (auto, cr, lf, crlf, stx); order
// (printed, reverse); prefix and suffix (URL-escaped text); uidlen (byte
// counts, e.g. 4,7); holdoff (e.g. 2s); name (the reader's name, e.g. in);
// accepted, refused, offline, failed (feedback commands as hex bytes, e.g.
// accepted=1b47310d). Unknown keys are an error, so a typo does not pass
// silently.
func ParseConfig(spec string) (Config, error) {
	var c Config
	rest, ok := strings.CutPrefix(spec, Scheme+":")
	if !ok {
		return c, fmt.Errorf("%w: %q does not start with %q", ErrConfig, spec, Scheme+":")
	}
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return c, fmt.Errorf("%w: %q names no device", ErrConfig, spec)
	}
	c.Port.Path = path
	vals, err := url.ParseQuery(query)
	if err != nil {
		return c, fmt.Errorf("%w: query: %w", ErrConfig, err)
	}
	for key, vs := range vals {
		if len(vs) != 1 {
			return c, fmt.Errorf("%w: %s given %d times", ErrConfig, key, len(vs))
		}
		if err := c.set(key, vs[0]); err != nil {
			return c, fmt.Errorf("%w: %s=%q: %w", ErrConfig, key, vs[0], err)
		}
	}
	if err := c.validate(); err != nil {
		return c, err
	}
	return c, nil
}

func (c *Config) set(key, v string) error {
	var err error
	switch key {
	case "baud":
		c.Port.Baud, err = strconv.Atoi(v)
	case "parity":
		switch strings.ToLower(v) {
		case "n", "none":
			c.Port.Parity = serialport.ParityNone
		case "o", "odd":
			c.Port.Parity = serialport.ParityOdd
		case "e", "even":
			c.Port.Parity = serialport.ParityEven
		default:
			err = errors.New("want n, o or e")
		}
	case "stopbits":
		c.Port.StopBits, err = strconv.Atoi(v)
	case "timeout":
		c.Port.ReadTimeout, err = time.ParseDuration(v)
	case "frame":
		c.Framing, err = ParseFraming(v)
	case "order":
		switch strings.ToLower(v) {
		case "printed", "as-printed":
			c.Format.Order = AsPrinted
		case "reverse", "reversed":
			c.Format.Order = Reversed
		default:
			err = errors.New("want printed or reverse")
		}
	case "prefix":
		c.Format.Prefix = v
	case "suffix":
		c.Format.Suffix = v
	case "uidlen":
		c.Format.UIDLengths = nil
		for f := range strings.SplitSeq(v, ",") {
			n, perr := strconv.Atoi(strings.TrimSpace(f))
			if perr != nil {
				return perr
			}
			c.Format.UIDLengths = append(c.Format.UIDLengths, n)
		}
	case "holdoff":
		c.HoldOff, err = time.ParseDuration(v)
	case "name":
		c.Name = v
	default:
		o, ok := feedbackKeys[key]
		if !ok {
			return errors.New("unknown key")
		}
		cmd, herr := hex.DecodeString(v)
		if herr != nil {
			return herr
		}
		if c.Feedback == nil {
			c.Feedback = make(map[reader.Outcome][]byte)
		}
		c.Feedback[o] = cmd
	}
	return err
}
