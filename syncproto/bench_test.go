package syncproto

import (
	"fmt"
	"testing"
)

// benchBatch returns a Batch of n taps shaped like real ones.
func benchBatch(n int) *Batch {
	b := &Batch{BatchID: 7, Taps: make([]Tap, n)}
	for i := range b.Taps {
		b.Taps[i] = Tap{
			Seq:    uint64(1000 + i),
			CardID: fmt.Sprintf("04A1B2C3%06X", i),
			Clock:  Clock{WallMicros: 1795238895402117 + int64(i)*4_000_000, BootID: bootID, MonoNanos: 4756790661000 + int64(i)*4_000_000_000},
			Reader: "in",
			Answer: "accepted",
		}
	}
	return b
}

const benchTaps = 1024

func BenchmarkEncodeBatch(b *testing.B) {
	m := benchBatch(benchTaps)
	b.SetBytes(int64(len(mustEncode(b, m))))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(m); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchTaps)/b.Elapsed().Seconds(), "taps/s")
}

func BenchmarkDecodeBatch(b *testing.B) {
	data := mustEncode(b, benchBatch(benchTaps))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchTaps)/b.Elapsed().Seconds(), "taps/s")
}

// BenchmarkScanBatch is the share of DecodeBatch spent in the pre-scan.
func BenchmarkScanBatch(b *testing.B) {
	data := mustEncode(b, benchBatch(benchTaps))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := scan(data); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*benchTaps)/b.Elapsed().Seconds(), "taps/s")
}
