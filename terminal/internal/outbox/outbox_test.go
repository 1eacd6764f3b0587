package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/liggare/liggare/syncproto"
)

// openTest opens an outbox at path and closes it when the test ends.
func openTest(t testing.TB, path string, opts Options) *Outbox {
	t.Helper()
	o, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s) = %v", path, err)
	}
	t.Cleanup(func() {
		if err := o.Close(); err != nil {
			t.Errorf("Close() = %v", err)
		}
	})
	return o
}

func tempPath(t testing.TB) string {
	t.Helper()
	return filepath.Join(t.TempDir(), "outbox.db")
}

// mkTap returns a tap whose content is derived from i.
func mkTap(i int) syncproto.Tap {
	return syncproto.Tap{
		CardID: fmt.Sprintf("card-%06d", i),
		Clock: syncproto.Clock{
			WallMicros: 1_790_000_000_000_000 + int64(i)*1000,
			BootID:     "0f6c3b1e-6a53-4c8e-9a51-3f1f0f2a7c11",
			MonoNanos:  int64(i) * 1_000_000,
		},
		Reader: []string{"", "in", "out"}[i%3],
		Answer: "accepted",
	}
}

// withSeq returns t with Seq set, for building expected values.
func withSeq(t syncproto.Tap, seq uint64) syncproto.Tap {
	t.Seq = seq
	return t
}

func mustAppend(t testing.TB, o *Outbox, taps ...syncproto.Tap) []syncproto.Tap {
	t.Helper()
	got, err := o.Append(context.Background(), taps...)
	if err != nil {
		t.Fatalf("Append(%d taps) = %v", len(taps), err)
	}
	return got
}

func mustPending(t testing.TB, o *Outbox, after uint64, max int) []syncproto.Tap {
	t.Helper()
	got, err := o.Pending(after, max)
	if err != nil {
		t.Fatalf("Pending(%d, %d) = %v", after, max, err)
	}
	return got
}

func mustAck(t testing.TB, o *Outbox, through uint64, want int) {
	t.Helper()
	n, err := o.Ack(through)
	if err != nil || n != want {
		t.Fatalf("Ack(%d) = %d, %v, want %d, nil", through, n, err, want)
	}
}

// checkDB runs bbolt's consistency check over the whole file.
func checkDB(t testing.TB, o *Outbox) {
	t.Helper()
	err := o.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("bbolt check of %s: %v", o.path, err)
	}
}

func checkStats(t testing.TB, o *Outbox, want Stats) {
	t.Helper()
	if diff := cmp.Diff(want, o.Stats()); diff != "" {
		t.Fatalf("Stats() mismatch (-want +got):\n%s", diff)
	}
}

func TestAppendPendingAck(t *testing.T) {
	o := openTest(t, tempPath(t), Options{})
	if e := o.Epoch(); e <= 0 {
		t.Fatalf("Epoch() = %d, want > 0", e)
	}
	checkStats(t, o, Stats{})

	var want []syncproto.Tap
	for i := range 3 {
		got := mustAppend(t, o, mkTap(i))
		w := []syncproto.Tap{withSeq(mkTap(i), uint64(i+1))}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Fatalf("Append(tap %d) mismatch (-want +got):\n%s", i, diff)
		}
		want = append(want, w...)
	}
	got := mustAppend(t, o, mkTap(3), mkTap(4))
	w := []syncproto.Tap{withSeq(mkTap(3), 4), withSeq(mkTap(4), 5)}
	if diff := cmp.Diff(w, got); diff != "" {
		t.Fatalf("Append(2 taps) mismatch (-want +got):\n%s", diff)
	}
	want = append(want, w...)

	if diff := cmp.Diff(want, mustPending(t, o, 0, 100)); diff != "" {
		t.Fatalf("Pending(0, 100) mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[2:4], mustPending(t, o, 2, 2)); diff != "" {
		t.Fatalf("Pending(2, 2) mismatch (-want +got):\n%s", diff)
	}
	if got := mustPending(t, o, 5, 10); len(got) != 0 {
		t.Fatalf("Pending(5, 10) = %v, want none", got)
	}
	checkStats(t, o, Stats{Depth: 5, LastSeq: 5, OldestWallMicros: mkTap(0).Clock.WallMicros})

	mustAck(t, o, 2, 2)
	if diff := cmp.Diff(want[2:], mustPending(t, o, 0, 100)); diff != "" {
		t.Fatalf("Pending(0, 100) after Ack(2) mismatch (-want +got):\n%s", diff)
	}
	checkStats(t, o, Stats{Depth: 3, LastSeq: 5, AckedThrough: 2, OldestWallMicros: mkTap(2).Clock.WallMicros})

	mustAck(t, o, 5, 3)
	checkStats(t, o, Stats{LastSeq: 5, AckedThrough: 5})
	checkDB(t, o)
}

func TestAppendLeavesInputAlone(t *testing.T) {
	o := openTest(t, tempPath(t), Options{})
	in := []syncproto.Tap{mkTap(1), mkTap(2)}
	mustAppend(t, o, in...)
	if diff := cmp.Diff([]syncproto.Tap{mkTap(1), mkTap(2)}, in); diff != "" {
		t.Fatalf("Append changed its argument (-want +got):\n%s", diff)
	}
	got, err := o.Append(context.Background())
	if err != nil || len(got) != 0 {
		t.Fatalf("Append() = %v, %v, want none, nil", got, err)
	}
}

func TestConcurrentAppend(t *testing.T) {
	const writers, perWriter = 8, 500
	o := openTest(t, tempPath(t), Options{})

	var mu sync.Mutex
	bySeq := make(map[uint64]syncproto.Tap)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				in := mkTap(w*perWriter + i)
				got, err := o.Append(context.Background(), in)
				if err != nil {
					t.Errorf("Append = %v", err)
					return
				}
				mu.Lock()
				if prev, dup := bySeq[got[0].Seq]; dup {
					t.Errorf("seq %d given twice: %v and %v", got[0].Seq, prev, got[0])
				}
				bySeq[got[0].Seq] = withSeq(in, got[0].Seq)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	const n = writers * perWriter
	var want []syncproto.Tap
	for seq := uint64(1); seq <= n; seq++ {
		tap, ok := bySeq[seq]
		if !ok {
			t.Fatalf("seq %d never returned: seqs are not contiguous", seq)
		}
		want = append(want, tap)
	}
	if diff := cmp.Diff(want, mustPending(t, o, 0, 2*n)); diff != "" {
		t.Fatalf("Pending mismatch (-want +got):\n%s", diff)
	}
	if st := o.Stats(); st.Depth != n || st.LastSeq != n {
		t.Fatalf("Stats() = %+v, want Depth and LastSeq %d", st, n)
	}
	t.Logf("%d taps in %d commits", n, o.commits.Load())
	checkDB(t, o)
}

func TestFull(t *testing.T) {
	o := openTest(t, tempPath(t), Options{MaxPending: 5})
	ctx := context.Background()
	mustAppend(t, o, mkTap(1), mkTap(2), mkTap(3))

	if _, err := o.Append(ctx, mkTap(4), mkTap(5), mkTap(6)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append(3 taps at depth 3 of 5) = %v, want ErrFull", err)
	}
	if st := o.Stats(); !st.Full || st.Depth != 3 || st.LastSeq != 3 {
		t.Fatalf("Stats() after refusal = %+v, want Full, Depth 3, LastSeq 3", st)
	}
	// A smaller request still fits, and takes the next seqs: the refused
	// taps consumed none.
	got := mustAppend(t, o, mkTap(4), mkTap(5))
	if got[0].Seq != 4 || got[1].Seq != 5 {
		t.Fatalf("Append after refusal got seqs %d, %d, want 4, 5", got[0].Seq, got[1].Seq)
	}
	if _, err := o.Append(ctx, mkTap(6)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append(1 tap at depth 5 of 5) = %v, want ErrFull", err)
	}

	// Nothing was dropped.
	var want []syncproto.Tap
	for i := 1; i <= 5; i++ {
		want = append(want, withSeq(mkTap(i), uint64(i)))
	}
	if diff := cmp.Diff(want, mustPending(t, o, 0, 100)); diff != "" {
		t.Fatalf("Pending when full mismatch (-want +got):\n%s", diff)
	}

	mustAck(t, o, 2, 2)
	if st := o.Stats(); st.Full {
		t.Fatalf("Stats() after Ack made room = %+v, want not Full", st)
	}
	got = mustAppend(t, o, mkTap(6), mkTap(7))
	if got[0].Seq != 6 || got[1].Seq != 7 {
		t.Fatalf("Append after Ack got seqs %d, %d, want 6, 7", got[0].Seq, got[1].Seq)
	}
	if st := o.Stats(); !st.Full || st.Depth != 5 {
		t.Fatalf("Stats() at the limit = %+v, want Full, Depth 5", st)
	}
}

func TestAck(t *testing.T) {
	o := openTest(t, tempPath(t), Options{})
	for i := 1; i <= 10; i++ {
		mustAppend(t, o, mkTap(i))
	}
	for _, step := range []struct {
		through   uint64
		deleted   int
		wantAcked uint64
	}{
		{0, 0, 0},   // nothing acknowledged yet
		{3, 3, 3},   // partial
		{3, 0, 3},   // repeated: idempotent
		{2, 0, 3},   // an older, overtaken Ack
		{7, 4, 7},   // further
		{10, 3, 10}, // everything
	} {
		mustAck(t, o, step.through, step.deleted)
		if st := o.Stats(); st.AckedThrough != step.wantAcked || st.Depth != 10-step.wantAcked {
			t.Fatalf("Stats() after Ack(%d) = %+v, want AckedThrough %d", step.through, st, step.wantAcked)
		}
	}
	// An Ack beyond LastSeq deletes nothing and says so: taps appended
	// later were never sent, whatever the server claims.
	got := mustAppend(t, o, mkTap(11))
	if n, err := o.Ack(100); !errors.Is(err, ErrAckBeyondLast) || n != 0 {
		t.Fatalf("Ack(100) = %d, %v; want 0, ErrAckBeyondLast", n, err)
	}
	if diff := cmp.Diff(got, mustPending(t, o, 0, 10)); diff != "" {
		t.Fatalf("Pending after Ack(100) mismatch (-want +got):\n%s", diff)
	}
	checkDB(t, o)
}

// TestRebase: an outbox restored from an older copy moves its pending taps
// to a new epoch, in order, from sequence 1, durably.
func TestRebase(t *testing.T) {
	path := tempPath(t)
	o := openTest(t, path, Options{})
	for i := 1; i <= 8; i++ {
		mustAppend(t, o, mkTap(i))
	}
	mustAck(t, o, 5, 5)
	oldEpoch := o.Epoch()
	epoch, n, err := o.Rebase()
	if err != nil || n != 3 || epoch == oldEpoch || o.Epoch() != epoch {
		t.Fatalf("Rebase = %d, %d, %v (old epoch %d)", epoch, n, err, oldEpoch)
	}
	want := []syncproto.Tap{withSeq(mkTap(6), 1), withSeq(mkTap(7), 2), withSeq(mkTap(8), 3)}
	if diff := cmp.Diff(want, mustPending(t, o, 0, 10)); diff != "" {
		t.Fatalf("Pending after Rebase (-want +got):\n%s", diff)
	}
	if st := o.Stats(); st.LastSeq != 3 || st.AckedThrough != 0 || st.Depth != 3 {
		t.Fatalf("Stats after Rebase = %+v", st)
	}
	if got := mustAppend(t, o, mkTap(9)); got[0].Seq != 4 {
		t.Fatalf("next Append got seq %d, want 4", got[0].Seq)
	}
	checkDB(t, o)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	re := openTest(t, path, Options{})
	if re.Epoch() != epoch || re.Stats().Depth != 4 {
		t.Fatalf("reopened: epoch %d depth %d, want %d and 4", re.Epoch(), re.Stats().Depth, epoch)
	}
}

func TestAckLargeRange(t *testing.T) {
	const n = 20_000
	o := openTest(t, tempPath(t), Options{})
	batch := make([]syncproto.Tap, 1000)
	for i := 0; i < n; i += len(batch) {
		for j := range batch {
			batch[j] = mkTap(i + j)
		}
		mustAppend(t, o, batch...)
	}
	mustAck(t, o, n-1, n-1)
	want := []syncproto.Tap{withSeq(mkTap(n-1), n)}
	if diff := cmp.Diff(want, mustPending(t, o, 0, 10)); diff != "" {
		t.Fatalf("Pending after Ack(%d) mismatch (-want +got):\n%s", n-1, diff)
	}
	checkStats(t, o, Stats{Depth: 1, LastSeq: n, AckedThrough: n - 1, OldestWallMicros: mkTap(n - 1).Clock.WallMicros})
	checkDB(t, o)
}

func TestReopen(t *testing.T) {
	path := tempPath(t)
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	epoch := o.Epoch()
	for i := 1; i <= 10; i++ {
		mustAppend(t, o, mkTap(i))
	}
	mustAck(t, o, 4, 4)
	if err := o.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	o, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.Epoch() != epoch {
		t.Fatalf("Epoch() after reopen = %d, want %d", o.Epoch(), epoch)
	}
	checkStats(t, o, Stats{Depth: 6, LastSeq: 10, AckedThrough: 4, OldestWallMicros: mkTap(5).Clock.WallMicros})
	if got := mustAppend(t, o, mkTap(11)); got[0].Seq != 11 {
		t.Fatalf("Append after reopen got seq %d, want 11", got[0].Seq)
	}
	mustAck(t, o, 11, 7)
	if err := o.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}

	// Every tap acknowledged: the sequence still continues.
	o = openTest(t, path, Options{})
	checkStats(t, o, Stats{LastSeq: 11, AckedThrough: 11})
	if got := mustAppend(t, o, mkTap(12)); got[0].Seq != 12 {
		t.Fatalf("Append after reopen of empty outbox got seq %d, want 12", got[0].Seq)
	}
	checkDB(t, o)
}

func TestNewFileNewEpoch(t *testing.T) {
	path := tempPath(t)
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := o.Epoch()
	mustAppend(t, o, mkTap(1), mkTap(2))
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}

	o = openTest(t, path, Options{})
	if o.Epoch() == first || o.Epoch() <= 0 {
		t.Fatalf("Epoch() of a new file = %d, want positive and not %d", o.Epoch(), first)
	}
	if got := mustAppend(t, o, mkTap(3)); got[0].Seq != 1 {
		t.Fatalf("first Append in a new file got seq %d, want 1", got[0].Seq)
	}
}

func TestCreateLeavesOnlyTheFile(t *testing.T) {
	path := tempPath(t)
	openTest(t, path, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode = %v, want 0600", perm)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{filepath.Base(path)}, names); diff != "" {
		t.Errorf("directory after Open mismatch (-want +got):\n%s", diff)
	}
}

func TestNotify(t *testing.T) {
	o := openTest(t, tempPath(t), Options{MaxPending: 2})
	pending := func() bool {
		select {
		case <-o.Notify():
			return true
		default:
			return false
		}
	}
	if pending() {
		t.Fatal("Notify signalled before any Append")
	}
	mustAppend(t, o, mkTap(1))
	mustAppend(t, o, mkTap(2))
	if !pending() {
		t.Fatal("Notify not signalled after Append")
	}
	if pending() {
		t.Fatal("Notify signalled twice: it must hold at most one signal")
	}
	if _, err := o.Append(context.Background(), mkTap(3)); !errors.Is(err, ErrFull) {
		t.Fatalf("Append when full = %v, want ErrFull", err)
	}
	mustAck(t, o, 1, 1)
	if pending() {
		t.Fatal("Notify signalled by a refused Append or an Ack")
	}
}

func TestAppendContext(t *testing.T) {
	o := openTest(t, tempPath(t), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Append(ctx, mkTap(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append(canceled ctx) = %v, want context.Canceled", err)
	}
	if st := o.Stats(); st.LastSeq != 0 {
		t.Fatalf("Stats() after canceled Append = %+v, want nothing stored", st)
	}
}

func TestClosed(t *testing.T) {
	o, err := Open(tempPath(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, o, mkTap(1))
	if err := o.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
	if err := o.Close(); err != nil {
		t.Fatalf("second Close() = %v", err)
	}
	if _, err := o.Append(context.Background(), mkTap(2)); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if _, err := o.Pending(0, 10); !errors.Is(err, ErrClosed) {
		t.Errorf("Pending after Close = %v, want ErrClosed", err)
	}
	if _, err := o.Ack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Ack after Close = %v, want ErrClosed", err)
	}
}

func TestPendingArguments(t *testing.T) {
	o := openTest(t, tempPath(t), Options{})
	mustAppend(t, o, mkTap(1))
	if _, err := o.Pending(0, 0); err == nil {
		t.Error("Pending(0, 0) = nil error, want an error")
	}
	if got := mustPending(t, o, math.MaxUint64, 10); len(got) != 0 {
		t.Errorf("Pending(MaxUint64, 10) = %v, want none", got)
	}
}

func TestOpenLocked(t *testing.T) {
	path := tempPath(t)
	openTest(t, path, Options{})
	o, err := Open(path, Options{})
	if err == nil {
		o.Close()
		t.Fatal("second Open of a held file succeeded")
	}
	if !errors.Is(err, berrors.ErrTimeout) || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("second Open = %v, want a lock error wrapping berrors.ErrTimeout", err)
	}
}

func TestOpenRefusesDamagedFiles(t *testing.T) {
	// Each case damages a fresh outbox holding taps 1..3 with 1 acknowledged.
	for _, tc := range []struct {
		name   string
		damage func(tx *bolt.Tx) error
	}{
		{"no meta bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketMeta) }},
		{"no taps bucket", func(tx *bolt.Tx) error { return tx.DeleteBucket(bucketTaps) }},
		{"no epoch", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Delete(keyEpoch) }},
		{"zero epoch", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyEpoch, u64(0)) }},
		{"short last_seq", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyLastSeq, []byte{3}) }},
		{"last_seq behind taps", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyLastSeq, u64(2)) }},
		{"acked beyond last", func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyAckedThrough, u64(4)) }},
		{"gap", func(tx *bolt.Tx) error { return tx.Bucket(bucketTaps).Delete(u64(2)) }},
		{"bad record", func(tx *bolt.Tx) error { return tx.Bucket(bucketTaps).Put(u64(3), []byte{9, 9}) }},
		{"bad first record", func(tx *bolt.Tx) error { return tx.Bucket(bucketTaps).Put(u64(2), []byte{recordV1, 0xff}) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			o, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			mustAppend(t, o, mkTap(1), mkTap(2), mkTap(3))
			mustAck(t, o, 1, 1)
			if err := o.db.Update(tc.damage); err != nil {
				t.Fatalf("damage: %v", err)
			}
			if err := o.Close(); err != nil {
				t.Fatal(err)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}

			o, err = Open(path, Options{})
			if tc.name == "bad record" {
				// Only the first record is decoded at Open; the others
				// are caught when read.
				if err != nil {
					t.Fatalf("Open = %v", err)
				}
				defer o.Close()
				if _, err := o.Pending(0, 10); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("Pending over a bad record = %v, want ErrCorrupt", err)
				}
				return
			}
			if err == nil {
				o.Close()
				t.Fatal("Open of a damaged file succeeded")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open = %v, want ErrCorrupt", err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("Open changed a damaged file")
			}
		})
	}
}

func TestOpenRefusesForeignFiles(t *testing.T) {
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"text", []byte("not a bbolt file, but something a person put here\n")},
		{"empty bbolt file", nil}, // made below
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := tempPath(t)
			if tc.content != nil {
				if err := os.WriteFile(path, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				db, err := bolt.Open(path, 0o600, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			o, err := Open(path, Options{})
			if err == nil {
				o.Close()
				t.Fatal("Open of a foreign file succeeded")
			}
			t.Logf("Open = %v", err)
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before, after) {
				t.Fatal("Open changed a foreign file")
			}
		})
	}
}

// TestWriteError fills a file that bbolt may not grow, as a full disk would,
// and checks that the failed Append stored nothing and consumed no seq.
func TestWriteError(t *testing.T) {
	path := tempPath(t)
	o := openTest(t, path, Options{maxFileBytes: 256 << 10})
	batch := make([]syncproto.Tap, 200)
	var werr error
	var stored []syncproto.Tap
	for i := 0; werr == nil; i += len(batch) {
		if i > 100_000 {
			t.Fatal("the file never filled up")
		}
		for j := range batch {
			batch[j] = mkTap(i + j)
		}
		var got []syncproto.Tap
		got, werr = o.Append(context.Background(), batch...)
		stored = append(stored, got...)
	}
	if errors.Is(werr, ErrFull) || !strings.HasPrefix(werr.Error(), "outbox: append: ") {
		t.Fatalf("Append on a full disk = %v, want a wrapped write error", werr)
	}
	t.Logf("Append on a full disk = %v after %d taps", werr, len(stored))
	n := uint64(len(stored))
	checkStats(t, o, Stats{Depth: n, LastSeq: n, OldestWallMicros: mkTap(0).Clock.WallMicros})
	if diff := cmp.Diff(stored, mustPending(t, o, 0, len(stored)+len(batch))); diff != "" {
		t.Fatalf("Pending after a failed Append mismatch (-want +got):\n%s", diff)
	}
	checkDB(t, o)

	// Acknowledging frees pages; the sequence resumes without a gap.
	mustAck(t, o, n, int(n))
	got := mustAppend(t, o, mkTap(1))
	if got[0].Seq != n+1 {
		t.Fatalf("Append after Ack got seq %d, want %d", got[0].Seq, n+1)
	}
}
