package technician

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The simulator never presents a worker's card again within the reader's
// hold-off (the reader would report one tap), and waits when every worker
// has just tapped. A failed presentation leaves the worker free.
func TestPickWorkerKeepsTheHoldOff(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	now := time.Now()
	last := map[int]time.Time{0: now, 1: now, 2: now.Add(-repeatAfter - time.Second)}
	for range 100 {
		i, ok := pickWorker(rng, 4, last)
		if !ok || (i != 2 && i != 3) {
			t.Fatalf("pickWorker = %d, %v; want worker 2 or 3", i, ok)
		}
	}
	last[2], last[3] = now, now
	if i, ok := pickWorker(rng, 4, last); ok {
		t.Errorf("pickWorker = %d with every worker within the hold-off, want none", i)
	}
}
