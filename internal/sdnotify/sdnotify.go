// Package sdnotify speaks systemd's notification protocol (sd_notify(3)):
// one datagram per message, "KEY=value" lines, sent to the unix socket named
// by $NOTIFY_SOCKET. A service with Type=notify tells systemd it is ready
// (READY=1), that it is stopping (STOPPING=1), and that it is alive
// (WATCHDOG=1, at least every WatchdogSec). Without $NOTIFY_SOCKET (not run
// by systemd) every call does nothing.
//
// The server and the terminal both use it (it lives under the module's root
// internal/ so both trees may import it); the protocol is too small to be
// worth a dependency.
package sdnotify

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// Messages.
const (
	Ready     = "READY=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
	Reloading = "RELOADING=1"
)

// Notifier sends notifications to systemd. A nil *Notifier does nothing.
type Notifier struct {
	addr *net.UnixAddr
	// watchdog is the interval systemd expects pings at, 0 if none.
	watchdog time.Duration
}

// FromEnv returns a Notifier for $NOTIFY_SOCKET and $WATCHDOG_USEC, or nil
// when the process was not started by systemd with Type=notify. getenv is
// os.Getenv in production.
func FromEnv(getenv func(string) string) *Notifier {
	path := getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	n := New(path)
	if usec, err := strconv.ParseInt(getenv("WATCHDOG_USEC"), 10, 64); err == nil && usec > 0 {
		// WATCHDOG_PID, when set, names the process that must ping.
		if pid := getenv("WATCHDOG_PID"); pid == "" || pid == strconv.Itoa(os.Getpid()) {
			n.watchdog = time.Duration(usec) * time.Microsecond
		}
	}
	return n
}

// New returns a Notifier that sends to the socket at path; a leading "@"
// names a socket in the abstract namespace.
func New(path string) *Notifier {
	name := path
	if strings.HasPrefix(path, "@") {
		name = "\x00" + path[1:]
	}
	return &Notifier{addr: &net.UnixAddr{Name: name, Net: "unixgram"}}
}

// WithWatchdog sets the interval systemd expects watchdog pings at (for
// tests; FromEnv reads it from the environment).
func (n *Notifier) WithWatchdog(d time.Duration) *Notifier {
	if n != nil {
		n.watchdog = d
	}
	return n
}

// WatchdogInterval is how often systemd expects a ping, 0 if it does not.
func (n *Notifier) WatchdogInterval() time.Duration {
	if n == nil {
		return 0
	}
	return n.watchdog
}

// Notify sends one message of "KEY=value" lines.
func (n *Notifier) Notify(lines ...string) error {
	if n == nil {
		return nil
	}
	conn, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(strings.Join(lines, "\n"))); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// Status formats a STATUS= line, shown by systemctl status.
func Status(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

// RunWatchdog pings systemd at half its watchdog interval until ctx ends,
// as long as alive reports no error: a process that is wedged, or whose
// alive check fails, stops pinging and is restarted by systemd. It returns
// at once when no watchdog is configured. alive may be nil.
func (n *Notifier) RunWatchdog(ctx context.Context, alive func() error) {
	interval := n.WatchdogInterval()
	if interval <= 0 {
		return
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		if alive == nil || alive() == nil {
			n.Notify(Watchdog)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
