package sdnotify

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// listen opens a unixgram socket as systemd does and returns its path.
func listen(t *testing.T) (*net.UnixConn, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, path
}

func receive(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	buf := make([]byte, 4096)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	conn, path := listen(t)
	n := FromEnv(func(k string) string {
		return map[string]string{"NOTIFY_SOCKET": path}[k]
	})
	if err := n.Notify(Ready, Status("serving on 127.0.0.1:8080")); err != nil {
		t.Fatal(err)
	}
	if got, want := receive(t, conn), "READY=1\nSTATUS=serving on 127.0.0.1:8080"; got != want {
		t.Errorf("received %q, want %q", got, want)
	}
	if err := n.Notify(Stopping); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != Stopping {
		t.Errorf("received %q, want %q", got, Stopping)
	}
}

func TestNotifyAbstract(t *testing.T) {
	name := "liggare-test-" + strconv.Itoa(os.Getpid())
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: "\x00" + name, Net: "unixgram"})
	if err != nil {
		t.Skipf("abstract sockets: %v", err)
	}
	defer conn.Close()
	if err := New("@" + name).Notify(Ready); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, conn); got != Ready {
		t.Errorf("received %q, want %q", got, Ready)
	}
}

func TestWithoutSystemd(t *testing.T) {
	n := FromEnv(func(string) string { return "" })
	if n != nil {
		t.Fatalf("FromEnv without NOTIFY_SOCKET = %v, want nil", n)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("nil Notify = %v", err)
	}
	n.RunWatchdog(t.Context(), nil) // returns at once
}

func TestWatchdog(t *testing.T) {
	conn, path := listen(t)
	env := map[string]string{"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "40000", "WATCHDOG_PID": strconv.Itoa(os.Getpid())}
	n := FromEnv(func(k string) string { return env[k] })
	if got := n.WatchdogInterval(); got != 40*time.Millisecond {
		t.Fatalf("WatchdogInterval = %v, want 40ms", got)
	}
	env["WATCHDOG_PID"] = "1"
	if got := FromEnv(func(k string) string { return env[k] }).WatchdogInterval(); got != 0 {
		t.Errorf("WatchdogInterval for another process = %v, want 0", got)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { n.RunWatchdog(ctx, func() error { return nil }); close(done) }()
	for range 3 {
		if got := receive(t, conn); got != Watchdog {
			t.Fatalf("received %q, want %q", got, Watchdog)
		}
	}
	cancel()
	<-done
}
