package ledger

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/pgtest"
)

// cpuTimes is the processor time used so far by this process and by the
// test binary's PostgreSQL cluster (postmaster, live backends, and the
// backends it reaped). On a shared machine, CPU per tap is a steadier
// figure than taps per second.
type cpuTimes struct {
	self, postgres time.Duration
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes {
	return cpuTimes{c.self - o.self, c.postgres - o.postgres}
}

// readCPU reads cpuTimes from /proc (Linux; zero where it cannot). With
// PGTEST_URL set the cluster is not ours and only self is read.
func readCPU(tb testing.TB) cpuTimes {
	tb.Helper()
	var c cpuTimes
	if t, _, ok := procCPU("self"); ok {
		c.self = t
	}
	cl := pgtest.Cluster()
	if cl == nil {
		return c
	}
	b, err := os.ReadFile(filepath.Join(cl.Dir(), "data", "postmaster.pid"))
	if err != nil {
		tb.Logf("postgres cpu: %v", err)
		return c
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pm := strings.TrimSpace(string(line))
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		t, parent, ok := procCPU(d.Name())
		if ok && (d.Name() == pm || parent == pm) {
			c.postgres += t
		}
	}
	return c
}

// procCPU returns the user+system time of a process (and, for the
// postmaster's sake, of its reaped children) and its parent's pid.
func procCPU(pid string) (time.Duration, string, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0, "", false
	}
	// Fields after the command name, which is in parentheses: state ppid
	// ... utime (14th field of the line) stime cutime cstime.
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, "", false
	}
	var ticks int64
	for _, s := range f[11:15] {
		n, _ := strconv.ParseInt(s, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond, f[1], true // USER_HZ is 100
}
