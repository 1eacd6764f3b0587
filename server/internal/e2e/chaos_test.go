package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/liggare/liggare/server/internal/pglocal"
)

// faultKind is one way the chaos breaks the system.
type faultKind int

const (
	faultKillTerminal  faultKind = iota // SIGKILL a terminal, start it again on the same outbox
	faultCut                            // close every connection through the proxy
	faultBlackhole                      // hold every byte through the proxy for 1-4 s
	faultKillServer                     // SIGKILL the server, start it again on a new port
	faultRestartServer                  // SIGTERM the server (a deploy): it must drain and exit cleanly
	faultKillPostgres                   // crash PostgreSQL (immediate stop), start it again
	numFaultKinds
)

func (k faultKind) String() string {
	return [...]string{"kill_terminal", "cut", "blackhole", "kill_server", "restart_server", "kill_postgres"}[k]
}

// minFaults is how often each kind of fault must happen in a run.
const minFaults = 2

// chaos breaks the system at random moments drawn from rng.
type chaos struct {
	t       testing.TB
	rng     *rand.Rand
	proxy   *proxy
	server  *server
	terms   []*terminal
	cluster *pglocal.Cluster // nil when PostgreSQL is not ours to kill
	began   time.Time

	counts [numFaultKinds]int // read only after run returned
}

// kinds returns the kinds of fault this chaos can cause.
func (c *chaos) kinds() []faultKind {
	var ks []faultKind
	for k := range numFaultKinds {
		if k == faultKillPostgres && c.cluster == nil {
			continue
		}
		ks = append(ks, k)
	}
	return ks
}

// plan returns the faults of a run in random order: each kind minFaults
// times, and a few more of random kinds.
func (c *chaos) plan() []faultKind {
	ks := c.kinds()
	var plan []faultKind
	for _, k := range ks {
		for range minFaults {
			plan = append(plan, k)
		}
	}
	for range 2 + c.rng.IntN(4) {
		plan = append(plan, ks[c.rng.IntN(len(ks))])
	}
	c.rng.Shuffle(len(plan), func(i, j int) { plan[i], plan[j] = plan[j], plan[i] })
	return plan
}

// run causes every fault of the plan, with random pauses between them, and
// returns once the system is whole again after the last one.
func (c *chaos) run(ctx context.Context) error {
	c.began = time.Now()
	for i, k := range c.plan() {
		// Half the time the next fault comes soon, while the terminals
		// are still uploading what piled up during the last one.
		gap := c.between(0, 400*time.Millisecond)
		if c.rng.IntN(2) == 0 {
			gap = c.between(400*time.Millisecond, 1200*time.Millisecond)
		}
		if err := sleep(ctx, gap); err != nil {
			return err
		}
		if err := c.do(ctx, k); err != nil {
			return fmt.Errorf("chaos: fault %d (%s): %w", i+1, k, err)
		}
		c.counts[k]++
	}
	return nil
}

func (c *chaos) do(ctx context.Context, k faultKind) error {
	switch k {
	case faultKillTerminal:
		tm := c.terms[c.rng.IntN(len(c.terms))]
		down := c.between(0, 300*time.Millisecond)
		c.logf("SIGKILL terminal %s, start it again after %v", tm.id, down)
		tm.kill()
		if err := sleep(ctx, down); err != nil {
			return err
		}
		return tm.start()
	case faultCut:
		c.logf("cut %d connections", c.proxy.Cut())
	case faultBlackhole:
		d := c.between(time.Second, 4*time.Second)
		c.logf("blackhole for %v", d)
		c.proxy.Blackhole(d)
		return sleep(ctx, d)
	case faultKillServer:
		down := c.between(0, 500*time.Millisecond)
		c.logf("SIGKILL server, start it again after %v", down)
		c.server.kill()
		if err := sleep(ctx, down); err != nil {
			return err
		}
		if err := c.server.start(ctx); err != nil {
			return err
		}
		c.proxy.SetUpstream(c.server.addr)
		c.logf("server back on %s", c.server.addr)
	case faultRestartServer:
		c.logf("SIGTERM server, start it again")
		if err := c.server.stop(stopTimeout); err != nil {
			return fmt.Errorf("server after SIGTERM: %w, want a clean exit", err)
		}
		if err := c.server.start(ctx); err != nil {
			return err
		}
		c.proxy.SetUpstream(c.server.addr)
		c.logf("server back on %s", c.server.addr)
	case faultKillPostgres:
		down := c.between(200*time.Millisecond, 1500*time.Millisecond)
		c.logf("crash PostgreSQL, start it again after %v", down)
		if err := c.cluster.Kill(ctx); err != nil {
			return err
		}
		if err := sleep(ctx, down); err != nil {
			return err
		}
		return c.cluster.Restart(ctx)
	}
	return nil
}

// between returns a random duration in [lo, hi].
func (c *chaos) between(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(c.rng.Int64N(int64(hi-lo)+1)).Round(time.Millisecond)
}

func (c *chaos) logf(format string, args ...any) {
	c.t.Logf("chaos +%5.1fs: %s", time.Since(c.began).Seconds(), fmt.Sprintf(format, args...))
}

// sleep waits for d or until ctx ends. The chaos uses it to time faults,
// never to wait for the system.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}
