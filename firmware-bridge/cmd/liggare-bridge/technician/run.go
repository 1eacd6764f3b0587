package technician

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// ErrUsage is wrapped by every error about the command line itself.
var ErrUsage = errors.New("usage")

const usage = `usage: liggare-bridge COMMAND [ARGS]

  list [DIR...]                          serial ports, with /dev/serial/by-id links
                                         (and links to ttys in DIR, e.g. a simulator's)
  probe PORT                             detect the protocol and the reader on PORT
  watch SPEC                             print each card read, live (Ctrl-C to stop)
  feedback SPEC OUTCOME                  show accepted, refused, offline or error
                                         on the reader's LED and beeper
  quality SPEC [--for 30s]               run the reader and report link quality
  simulate --protocol osdp|pn532|line --link PATH [--cards N] [--interval D]
                                         a simulated reader behind PATH

SPEC is the terminal's --reader value: osdp:/dev/ttyUSB0?addr=1,
pn532:/dev/ttyS0 or line:/dev/ttyACM0 (probe prints the one to use).
Stop the kiosk agent first: a serial port has one owner.
Run "liggare-bridge COMMAND -h" for a command's flags.
`

// Run runs the command in args (without the program name) until it is done
// or ctx ends, writing what it finds to stdout and usage to stderr.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: no command", ErrUsage)
	}
	out := &syncWriter{w: stdout}
	cmd, args := args[0], args[1:]
	var err error
	switch cmd {
	case "list":
		err = list(args, out, stderr)
	case "probe":
		err = probe(ctx, args, out, stderr)
	case "watch":
		err = watch(ctx, args, out, stderr)
	case "feedback":
		err = feedback(ctx, args, out, stderr)
	case "quality":
		err = quality(ctx, args, out, stderr)
	case "simulate":
		err = simulate(ctx, args, out, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("%w: unknown command %q", ErrUsage, cmd)
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	return err
}

// newFlags returns a flag set for cmd whose errors and help go to stderr.
func newFlags(cmd, args string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: liggare-bridge %s %s\n", cmd, args)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags wherever they stand among the positional
// arguments ("quality SPEC --for 30s" as well as "quality --for 30s
// SPEC"), and checks the number of positional arguments.
func parseArgs(fs *flag.FlagSet, args []string, minPos, maxPos int) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, fmt.Errorf("%w: %s: %w", ErrUsage, fs.Name(), err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...) // everything after "--" is positional
			break
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
	if len(pos) < minPos || len(pos) > maxPos {
		fs.Usage()
		return nil, fmt.Errorf("%w: %s takes %s", ErrUsage, fs.Name(), argCount(minPos, maxPos))
	}
	return pos, nil
}

func argCount(lo, hi int) string {
	switch {
	case lo == hi && lo == 1:
		return "one argument"
	case lo == hi:
		return fmt.Sprintf("%d arguments", lo)
	case hi > 1000:
		return fmt.Sprintf("at least %d arguments", lo)
	}
	return fmt.Sprintf("%d to %d arguments", lo, hi)
}

// outcomes name the reader.Outcomes on the command line.
var outcomes = map[string]reader.Outcome{
	"accepted": reader.Accepted,
	"refused":  reader.Refused,
	"offline":  reader.RecordedOffline,
	"error":    reader.NotRecorded,
}

// parseOutcome reads an outcome's name.
func parseOutcome(s string) (reader.Feedback, error) {
	o, ok := outcomes[strings.ToLower(s)]
	if !ok {
		return reader.Feedback{}, fmt.Errorf("%w: outcome %q: want %s", ErrUsage, s, outcomeNames())
	}
	fb := reader.Feedback{Outcome: o}
	if o == reader.Refused {
		fb.Reason = "technician_test"
	}
	return fb, nil
}

func outcomeNames() string {
	names := make([]string, 0, len(outcomes))
	for n := range outcomes {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// outcomeName is the command-line name of o.
func outcomeName(o reader.Outcome) string {
	for n, v := range outcomes {
		if v == o {
			return n
		}
	}
	return fmt.Sprintf("outcome %d", o)
}

// syncWriter serialises lines written from several goroutines (the
// driver's handler and the state monitor).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}
