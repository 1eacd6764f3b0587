package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ, 100
// on every Linux architecture Go supports).
const clockTick = 10 * time.Millisecond

// CPU is the processor time used so far by the parts of an Env. Subtract
// two readings to see where the time of a phase went; on a small machine the
// three compete for the same cores.
//
// The *Wait fields are the time the same parts spent runnable but waiting
// for a core (the run queue, from /proc/PID/task/TID/schedstat), summed
// over their threads. They say whether a part was starved: a load
// generator that waits long sends its terminals' messages late, and then
// measures its own starvation as the server's slowness. Unlike the CPU
// times they leave out threads and backends that ended between two
// readings.
type CPU struct {
	// Server is liggare-server serve, summed over the replicas.
	Server time.Duration
	// Postgres is the postmaster and its live backends, plus the backends
	// it has already reaped.
	Postgres time.Duration
	// Self is this process: the simulated terminals and anything else the
	// caller runs in it.
	Self time.Duration
	// ServerWait, PostgresWait and SelfWait are the run-queue waits of
	// the same three parts.
	ServerWait, PostgresWait, SelfWait time.Duration
	// Busy and Idle are the whole machine's time on its cores and time
	// idle (the first line of /proc/stat), summed over the cores. Busy
	// less the three parts is what other processes took: on a shared
	// machine, the one phase of a comparison that ran beside someone
	// else's work shows it there.
	Busy, Idle time.Duration
}

// Others returns the processor time of processes that are not part of the
// run: the machine's Busy time less Server, Postgres and Self.
func (c CPU) Others() time.Duration { return c.Busy - c.Server - c.Postgres - c.Self }

// Sub returns c - o, field by field.
func (c CPU) Sub(o CPU) CPU {
	return CPU{Server: c.Server - o.Server, Postgres: c.Postgres - o.Postgres, Self: c.Self - o.Self,
		ServerWait: c.ServerWait - o.ServerWait, PostgresWait: c.PostgresWait - o.PostgresWait, SelfWait: c.SelfWait - o.SelfWait,
		Busy: c.Busy - o.Busy, Idle: c.Idle - o.Idle}
}

// Add returns c + o, field by field.
func (c CPU) Add(o CPU) CPU {
	return CPU{Server: c.Server + o.Server, Postgres: c.Postgres + o.Postgres, Self: c.Self + o.Self,
		ServerWait: c.ServerWait + o.ServerWait, PostgresWait: c.PostgresWait + o.PostgresWait, SelfWait: c.SelfWait + o.SelfWait,
		Busy: c.Busy + o.Busy, Idle: c.Idle + o.Idle}
}

// String formats the times in seconds.
func (c CPU) String() string {
	return fmt.Sprintf("server %.2fs, postgres %.2fs, terminals %.2fs (waiting for a core: %.2fs, %.2fs, %.2fs)",
		c.Server.Seconds(), c.Postgres.Seconds(), c.Self.Seconds(),
		c.ServerWait.Seconds(), c.PostgresWait.Seconds(), c.SelfWait.Seconds())
}

// CPU reads the processor time used so far by the server, PostgreSQL and
// this process (Linux only). Backends that ended between two readings are
// counted once the postmaster has reaped them.
func (e *Env) CPU() (CPU, error) {
	var c CPU
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return c, fmt.Errorf("loadgen: cpu: %w", err)
	}
	if c.Busy, c.Idle, err = parseProcStat(b); err != nil {
		return c, err
	}
	for _, pid := range e.ServerPIDs() {
		srv, err := readStat(strconv.Itoa(pid))
		if err != nil {
			return c, err
		}
		c.Server += srv.cpu()
		c.ServerWait += runWait(strconv.Itoa(pid))
	}
	self, err := readStat("self")
	if err != nil {
		return c, err
	}
	c.Self = self.cpu()
	c.SelfWait = runWait("self")
	pm, err := e.postmasterPID()
	if err != nil {
		return c, err
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return c, fmt.Errorf("loadgen: cpu: %w", err)
	}
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		st, err := readStat(d.Name())
		if err != nil {
			continue // the process ended meanwhile
		}
		switch {
		case st.pid == pm:
			c.Postgres += st.cpu() + st.childCPU()
			c.PostgresWait += runWait(d.Name())
		case st.ppid == pm:
			c.Postgres += st.cpu()
			c.PostgresWait += runWait(d.Name())
		}
	}
	return c, nil
}

// PGCounts are running totals of the cluster; the difference of two
// readings is what happened in between.
type PGCounts struct {
	// WriteXacts is the cluster's next transaction id: how many
	// transactions that wrote something began (an id is given only to a
	// transaction that writes). Unlike pg_stat_database, it is exact at
	// once.
	WriteXacts int64
	// Sessions is how many backends began (pg_stat_database.sessions,
	// which a backend reports within about a second of its start, or at
	// its end), the harness's own one per reading among them. Each new
	// backend fills its caches and plans its statements anew: a phase
	// that began many measures the start of the servers' pools as well
	// as their work.
	Sessions int64
	// WAL from pg_stat_wal (reported with the same delay): bytes
	// written to the log, full-page images among them, how often a
	// backend found the WAL buffers full and wrote them out itself, and
	// write() calls. Many concurrent writers make more, smaller writes
	// of the same log.
	WALBytes, WALFPI, WALBuffersFull, WALWrites int64
}

// Counts reads the cluster's running totals.
func (e *Env) Counts(ctx context.Context) (PGCounts, error) {
	conn, err := pgx.Connect(ctx, e.dbURL)
	if err != nil {
		return PGCounts{}, fmt.Errorf("loadgen: counts: %w", err)
	}
	defer conn.Close(ctx)
	var c PGCounts
	if err := conn.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
		(SELECT sum(sessions)::bigint FROM pg_stat_database),
		w.wal_bytes::bigint, w.wal_fpi, w.wal_buffers_full, w.wal_write
		FROM pg_stat_wal w`).Scan(&c.WriteXacts, &c.Sessions, &c.WALBytes, &c.WALFPI, &c.WALBuffersFull, &c.WALWrites); err != nil {
		return PGCounts{}, fmt.Errorf("loadgen: counts: %w", err)
	}
	return c, nil
}

// postmasterPID reads line 1 of the cluster's postmaster.pid.
func (e *Env) postmasterPID() (int, error) {
	b, err := os.ReadFile(filepath.Join(e.dir, "pg", "data", "postmaster.pid"))
	if err != nil {
		return 0, fmt.Errorf("loadgen: postmaster pid: %w", err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	if err != nil {
		return 0, fmt.Errorf("loadgen: postmaster pid: %w", err)
	}
	return pid, nil
}

// procStat holds the fields of /proc/PID/stat that CPU needs.
type procStat struct {
	pid, ppid                    int
	utime, stime, cutime, cstime int64 // clock ticks
}

func (s procStat) cpu() time.Duration      { return time.Duration(s.utime+s.stime) * clockTick }
func (s procStat) childCPU() time.Duration { return time.Duration(s.cutime+s.cstime) * clockTick }

// readStat parses /proc/<name>/stat. The command name, in parentheses, may
// hold spaces and parentheses itself: fields are counted after the last ')'.
func readStat(name string) (procStat, error) {
	b, err := os.ReadFile("/proc/" + name + "/stat")
	if err != nil {
		return procStat{}, fmt.Errorf("loadgen: cpu: %w", err)
	}
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procStat{}, errors.New("loadgen: cpu: cannot parse /proc/" + name + "/stat")
	}
	var st procStat
	st.pid, err = strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return procStat{}, fmt.Errorf("loadgen: cpu: %w", err)
	}
	// After ")": state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return procStat{}, errors.New("loadgen: cpu: short /proc/" + name + "/stat")
	}
	nums := make([]int64, 5)
	for i, idx := range []int{1, 11, 12, 13, 14} {
		if nums[i], err = strconv.ParseInt(f[idx], 10, 64); err != nil {
			return procStat{}, fmt.Errorf("loadgen: cpu: /proc/%s/stat: %w", name, err)
		}
	}
	st.ppid = int(nums[0])
	st.utime, st.stime, st.cutime, st.cstime = nums[1], nums[2], nums[3], nums[4]
	return st, nil
}

// parseProcStat returns the machine's busy and idle time from /proc/stat:
// its first line, "cpu user nice system idle iowait irq softirq steal
// guest guest_nice" in clock ticks. Waiting for I/O counts as idle; guest
// time is already inside user and nice.
func parseProcStat(b []byte) (busy, idle time.Duration, err error) {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, fmt.Errorf("loadgen: cpu: cannot parse /proc/stat line %q", line)
	}
	var ticks [8]int64
	for i := range ticks {
		if ticks[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return 0, 0, fmt.Errorf("loadgen: cpu: /proc/stat: %w", err)
		}
	}
	user, nice, system, idleT, iowait, irq, softirq, steal := ticks[0], ticks[1], ticks[2], ticks[3], ticks[4], ticks[5], ticks[6], ticks[7]
	return time.Duration(user+nice+system+irq+softirq+steal) * clockTick, time.Duration(idleT+iowait) * clockTick, nil
}

// runWait returns the time the threads of process name ("self" or a pid)
// have spent runnable but not running, summed over its
// /proc/name/task/TID/schedstat. A thread that ended meanwhile, or a
// kernel without schedstats, counts as zero.
func runWait(name string) time.Duration {
	tasks, err := os.ReadDir("/proc/" + name + "/task")
	if err != nil {
		return 0
	}
	var sum time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + name + "/task/" + t.Name() + "/schedstat")
		if err != nil {
			continue
		}
		if d, ok := parseSchedstat(b); ok {
			sum += d
		}
	}
	return sum
}

// parseSchedstat returns the second of the three numbers of a schedstat
// file, "time on a core, time waiting for one, timeslices", in
// nanoseconds.
func parseSchedstat(b []byte) (time.Duration, bool) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return 0, false
	}
	ns, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || ns < 0 {
		return 0, false
	}
	return time.Duration(ns), true
}
