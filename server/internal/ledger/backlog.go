package ledger

import (
	"context"
	"fmt"
	"time"
)

// Backlog is the work waiting for the reconciler.
type Backlog struct {
	// Rows is the number of reconcile_inbox rows (each a seq range of one
	// terminal, typically one uploaded batch).
	Rows int64
	// OldestAge is how long ago the oldest queued taps were received: the
	// reconciliation lag. Zero when the inbox is empty.
	OldestAge time.Duration
}

// Backlog reports the reconciler's backlog, across every server replica
// (for metrics). The oldest row is the one the reconcilers take next; its
// first tap's receive time is when it was queued, give or take a commit.
func (r *Reconciler) Backlog(ctx context.Context) (Backlog, error) {
	var b Backlog
	var ageSeconds *float64
	err := r.pool.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM reconcile_inbox),
		       (SELECT extract(epoch FROM clock_timestamp() - t.received_at)::float8
		        FROM (SELECT terminal_id, store_epoch, seq_from FROM reconcile_inbox ORDER BY inbox_id LIMIT 1) i
		        JOIN taps t ON t.terminal_id = i.terminal_id AND t.store_epoch = i.store_epoch AND t.seq = i.seq_from)`).
		Scan(&b.Rows, &ageSeconds)
	if err != nil {
		return Backlog{}, fmt.Errorf("ledger: backlog: %w", err)
	}
	if ageSeconds != nil && *ageSeconds > 0 {
		b.OldestAge = time.Duration(*ageSeconds * float64(time.Second))
	}
	return b, nil
}
