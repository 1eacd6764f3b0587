package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/liggare/liggare/server/internal/pglocal"
)

func TestReapStale(t *testing.T) {
	t.Parallel()
	// The postgres user must be able to enter tmp, so not t.TempDir().
	tmp, err := os.MkdirTemp("", "reap-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}

	// A process that has exited: its pid is (almost surely) free.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	deadPID := strconv.Itoa(dead.Process.Pid)

	stale := filepath.Join(tmp, dirPrefix+"stale")
	live := filepath.Join(tmp, dirPrefix+"live")
	other := filepath.Join(tmp, dirPrefix+"other")
	for dir, owner := range map[string]string{stale: deadPID, live: strconv.Itoa(os.Getpid()), other: ""} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if owner != "" {
			if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(owner), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	c, err := pglocal.Start(t.Context(), pglocal.Options{Dir: stale})
	if err != nil {
		t.Fatal(err)
	}
	pid, ok := readPID(t, stale)
	if !ok || !alive(pid) {
		t.Fatalf("postmaster of the stale cluster is not running")
	}
	t.Cleanup(func() { c.Kill(context.Background()) })

	reapStale(tmp)

	if alive(pid) {
		t.Errorf("postmaster %d of a dead owner's cluster still runs", pid)
	}
	for dir, want := range map[string]bool{stale: false, live: true, other: true} {
		if _, err := os.Stat(dir); (err == nil) != want {
			t.Errorf("after reapStale, Stat(%s) = %v, want exists %v", dir, err, want)
		}
	}
}

func readPID(t *testing.T, dir string) (int, bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err != nil {
		return 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(line)
	return pid, err == nil
}
