package loadgen

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// Priority. The simulated terminals stand for a fleet of kiosks, each
// with a CPU of its own; here they share two cores with the server and
// PostgreSQL they measure. A generator that waits for a core sends its
// Hellos and Batches late and reports its own starvation as the server's
// slowness, and the more processes the system under test runs (several
// replicas, their PostgreSQL backends), the longer it waits. So the
// harness can run the system under test at a lower priority than itself
// (Options.Nice and FavourSelf), alike for every run it compares.
//
// Linux has two ways to weigh tasks. Without autogroup, a nice value
// weighs each thread against every other: the children are started under
// "nice -n N" and PostgreSQL's processes inherit it. With autogroup
// (/proc/sys/kernel/sched_autogroup_enabled, on in most distributions'
// kernels, for tasks in the root cgroup), the CPU is first
// shared equally between sessions, and a nice value only weighs the
// threads of one session against each other. PostgreSQL starts every
// backend in a session of its own, so each backend weighs as much as the
// generator and all the replicas together would in the one session they
// inherit. There, the children get sessions of their own (as each would
// as a service of its own), and FavourSelf gives the generator's session
// the weight of nice -N, which needs CAP_SYS_NICE. The work measured does
// not change: every tap is still sent, stored and acknowledged, on the
// same cores.

// The kernel's autogroup files; variables so that a test can stand in
// for a kernel or a cgroup this machine does not have.
var (
	autogroupSwitch = "/proc/sys/kernel/sched_autogroup_enabled"
	selfAutogroup   = "/proc/self/autogroup"
)

// FavourSelf asks the scheduler to favour this process by n nice levels
// over the children of an Env started with Options.Nice = n. Without
// autogroup the children's nice does it all; with autogroup it sets the
// nice of this process's session group to -n, which needs CAP_SYS_NICE
// (without it the children still have sessions of their own). It returns
// what the scheduler was told, for a report, and a function that puts the
// session's nice back. For n <= 0 it does nothing.
func FavourSelf(n int) (how string, undo func(), err error) {
	undo = func() {}
	if n <= 0 {
		return "the load generator, servers and PostgreSQL at one priority", undo, nil
	}
	old, grouped, err := autogroupNice()
	if err != nil {
		return "", undo, err
	}
	if !grouped {
		return fmt.Sprintf("servers and PostgreSQL at nice +%d", n), undo, nil
	}
	want := max(old-n, -20)
	if err := os.WriteFile(selfAutogroup, []byte(strconv.Itoa(want)), 0); err != nil {
		if !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
			return "", undo, fmt.Errorf("loadgen: favour the load generator: %w", err)
		}
		return fmt.Sprintf("autogroup: servers and PostgreSQL in sessions of their own; the load generator's session not favoured "+
			"(nice %d needs CAP_SYS_NICE)", want), undo, nil
	}
	undo = func() { os.WriteFile(selfAutogroup, []byte(strconv.Itoa(old)), 0) }
	return fmt.Sprintf("autogroup: servers and PostgreSQL in sessions of their own at nice 0, the load generator's session at nice %d", want), undo, nil
}

// autogroupNice returns the nice of this process's session group, from
// /proc/self/autogroup ("/autogroup-97575 nice 0"), and whether the
// kernel shares the CPU by session for this process at all. It does not
// when autogroup is switched off or missing from the kernel, and when
// the process is in a cgroup of its own (a container, a systemd service,
// a CI job): the kernel then prints nothing in /proc/self/autogroup, and
// nice values weigh the threads of the cgroup against each other.
func autogroupNice() (nice int, grouped bool, err error) {
	b, err := os.ReadFile(autogroupSwitch)
	if err != nil || strings.TrimSpace(string(b)) != "1" {
		return 0, false, nil
	}
	b, err = os.ReadFile(selfAutogroup)
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("loadgen: autogroup: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, false, nil
	}
	if len(f) != 3 || f[1] != "nice" {
		return 0, false, fmt.Errorf("loadgen: autogroup: cannot parse %q", b)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil {
		return 0, false, fmt.Errorf("loadgen: autogroup: %w", err)
	}
	return n, true, nil
}

// niceCommand returns the command that runs bin with args at nice +n in a
// session of its own, or at this process's priority for n <= 0. The nice
// is set by nice(1) before bin starts, so no thread or child of bin's
// escapes it.
func niceCommand(n int, bin string, args []string) (*exec.Cmd, error) {
	if n <= 0 {
		return exec.Command(bin, args...), nil
	}
	nice, err := exec.LookPath("nice")
	if err != nil {
		return nil, fmt.Errorf("loadgen: run below this process's priority: %w", err)
	}
	cmd := exec.Command(nice, append([]string{"-n", strconv.Itoa(n), bin}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, nil
}
