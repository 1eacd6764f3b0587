// Package tapsource gives the terminal its card reader, named by the
// --reader flag: a real reader on a serial port through a firmware-bridge
// driver ("osdp:", "pn532:", "line:"), a random generator for demos
// ("sim") or a line-driven feed for tests ("feed").
//
// A source calls its handler once per card presentation and reports the
// handler's Feedback the way its reader would: a driver shows it on the
// reader's LED and beeper, the simulator logs it, the feed writes it back
// on the line the card came from.
package tapsource

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// Read is one card presented to a reader.
type Read struct {
	CardID string
	Reader string
}

// Feedback is what the terminal answers a Read with, after the tap is
// durable in the outbox (or could not be made durable).
type Feedback struct {
	// Recorded is true once the tap is durable in the outbox, whatever the
	// Answer: a blocked card's tap is recorded too.
	Recorded bool
	// Seq is the tap's sequence when Recorded.
	Seq uint64
	// Answer is what the kiosk shows: from the card cache when Recorded
	// ("accepted", "blocked_id06", "unknown_card", ...), else why the tap
	// was not recorded ("outbox_full", "unreadable_card", ...).
	Answer string
	// Name and Employer are the card holder's, from the card cache; empty
	// for a card the cache does not know.
	Name     string
	Employer string
}

// Handler records one Read and returns the Feedback for the reader.
type Handler func(context.Context, Read) Feedback

// Source is a card reader.
type Source interface {
	// Run calls h for every card presented until ctx ends.
	Run(ctx context.Context, h Handler) error
	// State describes the reader's health ("ok", "offline", ...).
	State() string
}

// Options are what a --reader value cannot say.
type Options struct {
	// Logger receives the reader's events (online, offline, reopened);
	// none when nil. Drivers never log card data or keys.
	Logger *slog.Logger
}

// Parse returns the source named by a --reader flag value:
//
//	osdp:/dev/ttyUSB0?addr=1         an OSDP reader (see osdp.ParseConfig)
//	pn532:/dev/ttyS0                 a PN532 module (see pn532.ParseConfig)
//	line:/dev/ttyACM0?frame=crlf     a line reader (see lineproto.ParseConfig)
//	sim                              random workers tapping every few seconds
//	sim:workers=20,interval=2s       the same with options
//	feed:127.0.0.1:7001              line-driven feed on a loopback TCP port
//	feed:127.0.0.1:7001,answers      the same, answering "ok <seq> <answer>"
//
// Every driver takes name=NAME ("in", "out") to name its reader on a
// terminal with several. Driver sources are *Driver.
func Parse(spec string) (Source, error) { return ParseWith(spec, Options{}) }

// ParseWith is Parse with options.
func ParseWith(spec string, opts Options) (Source, error) {
	kind, arg, _ := strings.Cut(spec, ":")
	switch kind {
	case SchemeOSDP, SchemePN532, SchemeLine:
		return parseDriver(kind, spec, opts.Logger)
	case "sim":
		s := &Sim{Workers: DefaultSimWorkers, Interval: DefaultSimInterval, Logger: opts.Logger}
		if arg == "" {
			return s, nil
		}
		for _, kv := range strings.Split(arg, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("tapsource: %q: want key=value", kv)
			}
			switch k {
			case "workers":
				n, err := strconv.Atoi(v)
				if err != nil || n < 1 || n > 100000 {
					return nil, fmt.Errorf("tapsource: workers=%q: want 1-100000", v)
				}
				s.Workers = n
			case "interval":
				d, err := time.ParseDuration(v)
				if err != nil || d <= 0 {
					return nil, fmt.Errorf("tapsource: interval=%q: want a positive duration", v)
				}
				s.Interval = d
			case "prefix":
				s.Prefix = v
			default:
				return nil, fmt.Errorf("tapsource: unknown sim option %q", k)
			}
		}
		return s, nil
	case "feed":
		addr, opts, _ := strings.Cut(arg, ",")
		if addr == "" {
			return nil, errors.New("tapsource: feed needs an address, e.g. feed:127.0.0.1:7001")
		}
		f := &Feed{Addr: addr}
		if opts != "" {
			for _, o := range strings.Split(opts, ",") {
				switch o {
				case "answers":
					f.Answers = true
				default:
					return nil, fmt.Errorf("tapsource: unknown feed option %q (want answers)", o)
				}
			}
		}
		return f, nil
	}
	// Only the kind is quoted: the rest of a mistyped spec may hold a key.
	return nil, fmt.Errorf("tapsource: unknown reader %q (want osdp:PATH, pn532:PATH, line:PATH, sim or feed:ADDR)", kind)
}
