package tapsource

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Defaults for Sim.
const (
	DefaultSimWorkers  = 8
	DefaultSimInterval = 3 * time.Second
)

// Sim is a simulated reader: a crew of workers presenting their cards at
// random, on average once per Interval. Card ids look like ID06 card
// numbers: two letters and ten digits.
type Sim struct {
	Workers  int
	Interval time.Duration
	// Prefix is the two card-supplier letters; "SM" when empty.
	Prefix string
	Logger *slog.Logger
}

// CardID returns the simulated card id of worker i.
func (s *Sim) CardID(i int) string {
	p := s.Prefix
	if p == "" {
		p = "SM"
	}
	return fmt.Sprintf("%s%010d", p, 1000+i)
}

// Run presents cards until ctx ends.
func (s *Sim) Run(ctx context.Context, h Handler) error {
	logger := s.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	for {
		wait := time.Duration(rand.Int64N(int64(2*s.Interval) + 1))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		fb := h(ctx, Read{CardID: s.CardID(rand.IntN(s.Workers))})
		logger.Debug("sim_tap", "recorded", fb.Recorded, "seq", fb.Seq, "answer", fb.Answer)
	}
}

// State reports the simulated reader as healthy.
func (s *Sim) State() string { return "ok" }
