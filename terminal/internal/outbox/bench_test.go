package outbox

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/liggare/liggare/syncproto"
)

// percentile returns the p-th percentile (0 < p <= 1) of sorted samples.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// BenchmarkTapToDurable measures what the kiosk waits for between a card
// tap and showing success: one Append of one tap by a lone writer. Each
// iteration also times a bare bbolt db.Update putting one key of the same
// size on a separate file, the floor the outbox is compared with; the two
// alternate in order so that neither always runs on a warmer cache.
//
// Metrics: p50-us, p99-us (the outbox), bbolt-p99-us (bare bbolt) and
// p99-x-bbolt, their ratio (target <= 2).
func BenchmarkTapToDurable(b *testing.B) {
	dir := b.TempDir()
	o := openTest(b, filepath.Join(dir, "outbox.db"), Options{MaxPending: math.MaxInt})
	db, err := bolt.Open(filepath.Join(dir, "bare.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	bucket := []byte("taps")
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucket(bucket)
		return err
	}); err != nil {
		b.Fatal(err)
	}
	tap := mkTap(1)
	tap.Seq = 1 << 20 // a typical record size
	val, err := o.encode(&tap)
	if err != nil {
		b.Fatal(err)
	}
	tap.Seq = 0

	ctx := context.Background()
	ours := make([]time.Duration, 0, b.N)
	bare := make([]time.Duration, 0, b.N)
	appendOne := func() {
		start := time.Now()
		if _, err := o.Append(ctx, tap); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(start))
	}
	putOne := func(i int) {
		start := time.Now()
		if err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucket).Put(u64(uint64(i)+1), val)
		}); err != nil {
			b.Fatal(err)
		}
		bare = append(bare, time.Since(start))
	}
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			appendOne()
			putOne(i)
		} else {
			putOne(i)
			appendOne()
		}
	}
	b.StopTimer()

	var sum time.Duration
	for _, d := range ours {
		sum += d
	}
	slices.Sort(ours)
	slices.Sort(bare)
	p99 := percentile(ours, 0.99)
	bareP99 := percentile(bare, 0.99)
	b.ReportMetric(float64(sum)/float64(len(ours)), "ns/op") // the outbox alone
	b.ReportMetric(micros(percentile(ours, 0.50)), "p50-us")
	b.ReportMetric(micros(p99), "p99-us")
	b.ReportMetric(micros(percentile(bare, 0.50)), "bbolt-p50-us")
	b.ReportMetric(micros(bareP99), "bbolt-p99-us")
	b.ReportMetric(float64(p99)/float64(bareP99), "p99-x-bbolt")
}

// BenchmarkAppendConcurrent has 16 writers appending one tap at a time, as
// several readers and a flood of taps would, to show group commit: taps/s
// well above 1/fsync, and taps/commit above 1.
func BenchmarkAppendConcurrent(b *testing.B) {
	const writers = 16
	o := openTest(b, filepath.Join(b.TempDir(), "outbox.db"), Options{MaxPending: math.MaxInt})
	tap := mkTap(1)
	ctx := context.Background()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range writers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := o.Append(ctx, tap); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "taps/s")
	b.ReportMetric(float64(b.N)/float64(o.commits.Load()), "taps/commit")
}

// BenchmarkAck100k measures the outbox's share of draining a backlog: one
// Ack of 100 000 taps (the project's target for the whole drain, server
// included, is 2 s).
func BenchmarkAck100k(b *testing.B) {
	const n = 100_000
	o := openTest(b, filepath.Join(b.TempDir(), "outbox.db"), Options{})
	batch := make([]syncproto.Tap, 1000)
	for i := range batch {
		batch[i] = mkTap(i)
	}
	var total time.Duration
	for range b.N {
		b.StopTimer()
		for range n / len(batch) {
			mustAppend(b, o, batch...)
		}
		through := o.Stats().LastSeq
		b.StartTimer()
		start := time.Now()
		if got, err := o.Ack(through); err != nil || got != n {
			b.Fatalf("Ack(%d) = %d, %v, want %d", through, got, err, n)
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/ack")
}
