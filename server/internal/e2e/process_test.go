package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binDirPrefix names the directories the binaries are built into. They
// outlive the test binary (pgtest.Main exits the process, so TestMain has no
// "after"); each holds the pid of its owner, and the next run removes those
// whose owner is gone.
const (
	binDirPrefix = "liggare-e2e-bin-"
	binOwnerFile = "owner.pid"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds liggare-server and liggare-terminal once per test binary
// and returns the directory holding them. They are built without -race:
// the race detector watches the test, and the binaries' own packages have
// their own -race tests.
func binaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() { binDir, buildErr = build() })
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return binDir
}

func build() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside the module")
	}
	reapBinDirs()
	dir, err := os.MkdirTemp("", binDirPrefix)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, binOwnerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"./server/cmd/liggare-server", "./terminal/cmd/liggare-terminal")
	cmd.Dir = filepath.Dir(gomod)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%v: %w\n%s", cmd.Args, err, out)
	}
	return dir, nil
}

// reapBinDirs removes the binary directories of test processes that have
// exited. Errors are ignored: this is hygiene.
func reapBinDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, binOwnerFile))
		if err != nil {
			continue // being set up right now, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // owner still runs
		}
		os.RemoveAll(dir)
	}
}

// process is a child process that the test may start, kill and start again.
// Every run appends its output to one log file, after a header line.
type process struct {
	tb      testing.TB
	name    string
	argv    []string
	env     []string
	logPath string

	mu   sync.Mutex
	cur  *run
	runs int
}

// run is one start of a process.
type run struct {
	cmd      *exec.Cmd
	logStart int64         // size of the log file before this run wrote to it
	done     chan struct{} // closed once the process has exited
	err      error         // cmd.Wait's result; read only after done
	stopping atomic.Bool   // the test asked it to exit
}

// newProcess returns a process that is not started yet. The test's cleanup
// kills it, and logs the tail of its log if the test failed.
func newProcess(t testing.TB, name string, env []string, argv ...string) *process {
	t.Helper()
	p := &process{
		tb:      t,
		name:    name,
		argv:    argv,
		env:     env,
		logPath: filepath.Join(t.ArtifactDir(), name+".log"),
	}
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- tail of %s (%d runs) ---\n%s", p.logPath, p.runs, tailFile(p.logPath, 40))
		}
	})
	return p
}

// start starts the process, which must not be running.
func (p *process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil {
		select {
		case <-p.cur.done:
		default:
			return fmt.Errorf("%s: start: already running", p.name)
		}
	}
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close() // the child has its own descriptor
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	p.runs++
	fmt.Fprintf(f, "=== run %d of %s at %s: %s\n", p.runs, p.name, time.Now().Format(time.TimeOnly+".000"), strings.Join(p.argv, " "))
	cmd := exec.Command(p.argv[0], p.argv[1:]...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = f, f
	// If the test binary dies without its cleanup, so do its children.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("%s: start: %w", p.name, err)
	}
	r := &run{cmd: cmd, logStart: fi.Size(), done: make(chan struct{})}
	go func() {
		r.err = cmd.Wait()
		close(r.done)
	}()
	p.cur = r
	return nil
}

func (p *process) current() *run {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cur
}

// kill SIGKILLs the process and waits until it has exited.
func (p *process) kill() {
	r := p.current()
	if r == nil {
		return
	}
	r.stopping.Store(true)
	r.cmd.Process.Kill()
	<-r.done
}

// stop asks the process to exit with SIGTERM and returns its exit error: nil
// for a clean exit. A process still running after timeout is killed.
func (p *process) stop(timeout time.Duration) error {
	r := p.current()
	if r == nil {
		return fmt.Errorf("%s: stop: never started", p.name)
	}
	r.stopping.Store(true)
	r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
		return r.err
	case <-time.After(timeout):
		r.cmd.Process.Kill()
		<-r.done
		return fmt.Errorf("%s: still running %v after SIGTERM; killed", p.name, timeout)
	}
}

// exitedOnItsOwn returns an error if the current run has exited without
// the test asking it to.
func (p *process) exitedOnItsOwn() error {
	r := p.current()
	if r == nil {
		return nil
	}
	select {
	case <-r.done:
		if !r.stopping.Load() {
			return fmt.Errorf("%s exited by itself: %v; log tail:\n%s", p.name, r.err, tailFile(p.logPath, 20))
		}
	default:
	}
	return nil
}

// runLog returns what the current run has logged so far.
func (p *process) runLog() string {
	r := p.current()
	if r == nil {
		return ""
	}
	b, err := os.ReadFile(p.logPath)
	if err != nil || int64(len(b)) < r.logStart {
		return ""
	}
	return string(b[r.logStart:])
}

// waitLog waits until the current run's log matches re and returns the
// submatches. It fails early if the process exits.
func (p *process) waitLog(ctx context.Context, re *regexp.Regexp, timeout time.Duration) ([]string, error) {
	var m []string
	err := waitFor(ctx, timeout, fmt.Sprintf("%s to log %q", p.name, re), func() (bool, error) {
		if m = re.FindStringSubmatch(p.runLog()); m != nil {
			return true, nil
		}
		return false, p.exitedOnItsOwn()
	})
	return m, err
}

// waitFor polls cond until it reports done, fails, ctx ends or timeout
// passes. The timeout only bounds the wait; it judges nothing.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	b = bytes.TrimRight(b, "\n")
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '\n' {
			if n--; n == 0 {
				return string(b[i+1:])
			}
		}
	}
	return string(b)
}
