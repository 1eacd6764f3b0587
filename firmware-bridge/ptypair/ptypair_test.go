package ptypair

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const bound = 15 * time.Second

func open(t testing.TB) *Pair {
	t.Helper()
	p, err := Open()
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// openSlave opens the slave as a plain file, as a driver would (without
// setting any terminal mode of its own).
func openSlave(t testing.TB, path string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open slave %s: %v", path, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func allBytes() []byte {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

// Raw mode: all byte values (CR, LF, XON, XOFF, ^C, DEL...) cross unchanged
// in both directions and nothing is echoed back to the master.
func TestRaw(t *testing.T) {
	p := open(t)
	s := openSlave(t, p.Path())
	all := allBytes()

	if _, err := p.Write(all); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(all))
	if _, err := io.ReadFull(s, got); err != nil {
		t.Fatalf("slave ReadFull = %v", err)
	}
	if !bytes.Equal(got, all) {
		t.Fatalf("slave read %x, want %x", got, all)
	}

	if _, err := s.Write(all); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadDeadline(time.Now().Add(bound)); err != nil {
		t.Fatal(err)
	}
	back := make([]byte, len(all))
	if _, err := io.ReadFull(p, back); err != nil {
		t.Fatalf("master ReadFull = %v", err)
	}
	if !bytes.Equal(back, all) {
		t.Fatalf("master read %x, want %x (an echo would show up here first)", back, all)
	}
	// Nothing more: no echo of what the master wrote.
	if err := p.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("master Read after exchange = %d, %v, want deadline exceeded", n, err)
	}
}

// The master stays usable while no driver has the slave open, and what it
// writes meanwhile waits for the next driver.
func TestDriverReopen(t *testing.T) {
	p := open(t)
	s := openSlave(t, p.Path())
	s.Close()
	if _, err := p.Write([]byte("while closed\n")); err != nil {
		t.Fatalf("master Write with no driver = %v", err)
	}
	s = openSlave(t, p.Path())
	got := make([]byte, len("while closed\n"))
	if _, err := io.ReadFull(s, got); err != nil || string(got) != "while closed\n" {
		t.Fatalf("slave read %q, %v, want %q", got, err, "while closed\n")
	}
}

// Unplug: the driver's writes fail with EIO, and the node goes away.
func TestUnplug(t *testing.T) {
	p := open(t)
	s := openSlave(t, p.Path())
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, syscall.EIO) {
		t.Errorf("slave Write after unplug = %v, want EIO", err)
	}
	if _, err := os.Stat(p.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Stat(%s) after unplug = %v, want not exist", p.Path(), err)
	}
	if err := p.Close(); err != nil {
		t.Errorf("second Close() = %v", err)
	}
	if _, err := p.Write([]byte("x")); err == nil {
		t.Error("master Write after Close succeeded")
	}
}

// Link makes and re-points a stable path, as udev does for by-id links.
func TestLink(t *testing.T) {
	path := filepath.Join(t.TempDir(), "reader")
	p1 := open(t)
	if err := p1.Link(path); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(path); err != nil || got != p1.Path() {
		t.Fatalf("Readlink = %q, %v, want %q", got, err, p1.Path())
	}
	p1.Close()
	p2 := open(t)
	if err := p2.Link(path); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(path); err != nil || got != p2.Path() {
		t.Fatalf("Readlink after re-point = %q, %v, want %q", got, err, p2.Path())
	}
	s := openSlave(t, path)
	if _, err := p2.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(s, b); err != nil || b[0] != 'z' {
		t.Fatalf("read through link = %q, %v", b, err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Errorf("dir holds %v, %v, want only the link", entries, err)
	}
}

// Close unblocks a master Read at once (the master is pollable).
func TestCloseUnblocksRead(t *testing.T) {
	p := open(t)
	done := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 1))
		done <- err
	}()
	p.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Read after Close succeeded")
		}
	case <-time.After(bound):
		t.Fatal("Read did not end after Close")
	}
}
