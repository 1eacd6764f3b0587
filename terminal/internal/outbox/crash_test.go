package outbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/liggare/liggare/syncproto"
)

// The crash test re-runs this test binary as a child that appends taps until
// it is killed. The child reports on stdout, one line per fact, only after
// the fact is durable:
//
//	open <epoch>      the outbox is open
//	seq <tap as JSON> Append returned this tap
//	ack <through>     Ack(through) returned
const (
	crashPathEnv  = "OUTBOX_CRASH_CHILD" // the outbox file; set only in the child
	crashRoundEnv = "OUTBOX_CRASH_ROUND"
)

// TestCrashChild is the child process of TestCrashSIGKILL; run on its own it
// skips.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("helper process for TestCrashSIGKILL")
	}
	round := os.Getenv(crashRoundEnv)
	var mu sync.Mutex
	say := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		// One write per line, well under PIPE_BUF: a kill never leaves
		// half a line followed by another line.
		if _, err := fmt.Fprintf(os.Stdout, format+"\n", args...); err != nil {
			os.Exit(4)
		}
	}
	fail := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, format+"\n", args...)
		os.Exit(3)
	}

	o, err := Open(path, Options{})
	if err != nil {
		fail("Open: %v", err)
	}
	say("open %d", o.Epoch())

	// Appenders of one, two and three taps at a time, so that kills land
	// inside group commits of several requests.
	for g := range 4 {
		go func() {
			for i := 0; ; i++ {
				taps := make([]syncproto.Tap, 1+(g+i)%3)
				for j := range taps {
					taps[j] = syncproto.Tap{
						CardID: fmt.Sprintf("r%s-g%d-i%d-j%d", round, g, i, j),
						Clock: syncproto.Clock{
							WallMicros: time.Now().UnixMicro(),
							BootID:     "crash-round-" + round,
							MonoNanos:  int64(i),
						},
						Reader: strconv.Itoa(g),
					}
				}
				got, err := o.Append(context.Background(), taps...)
				if err != nil {
					fail("Append: %v", err)
				}
				for _, tap := range got {
					b, err := json.Marshal(tap)
					if err != nil {
						fail("json: %v", err)
					}
					say("seq %s", b)
				}
			}
		}()
	}
	// An uplink stand-in: acknowledge all but the last 100 taps whenever
	// more than 300 wait, so kills also land inside Ack.
	for range o.Notify() {
		st := o.Stats()
		if st.Depth > 300 {
			through := st.LastSeq - 100
			if _, err := o.Ack(through); err != nil {
				fail("Ack: %v", err)
			}
			say("ack %d", through)
		}
	}
}

// childReport is what one child said before it died.
type childReport struct {
	epoch int64
	taps  []syncproto.Tap
	acked uint64
}

// parseChild reads the child's stdout to EOF. A last line without its
// newline was cut by the kill and is ignored. first is closed at the first
// reported tap.
func parseChild(r io.Reader, first chan<- struct{}) (childReport, error) {
	var rep childReport
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return rep, nil
			}
			return rep, err
		}
		kind, arg, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch kind {
		case "open":
			if rep.epoch, err = strconv.ParseInt(arg, 10, 64); err != nil {
				return rep, fmt.Errorf("line %q: %v", line, err)
			}
		case "seq":
			var tap syncproto.Tap
			if err := json.Unmarshal([]byte(arg), &tap); err != nil {
				return rep, fmt.Errorf("line %q: %v", line, err)
			}
			if len(rep.taps) == 0 {
				close(first)
			}
			rep.taps = append(rep.taps, tap)
		case "ack":
			n, err := strconv.ParseUint(arg, 10, 64)
			if err != nil {
				return rep, fmt.Errorf("line %q: %v", line, err)
			}
			rep.acked = max(rep.acked, n)
		}
	}
}

// TestCrashSIGKILL kills a writing child at random moments and checks after
// each kill that everything the child was told is durable is there, that
// the file is sound, and that sequences go on without gap or reuse.
func TestCrashSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	const rounds = 20
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	path := tempPath(t)

	want := make(map[uint64]syncproto.Tap) // every tap ever reported durable
	var epoch int64
	var maxAcked, lastSeq uint64
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashPathEnv+"="+path, fmt.Sprintf("%s=%d", crashRoundEnv, round))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		first := make(chan struct{})
		parsed := make(chan childReport, 1)
		parseErr := make(chan error, 1)
		go func() {
			rep, err := parseChild(stdout, first)
			parsed <- rep
			parseErr <- err
		}()

		// Every fourth round is killed at any moment after start, even
		// during Open; the others once they have stored something.
		var delay time.Duration
		if round%4 == 0 {
			delay = time.Duration(rng.Int64N(int64(150 * time.Millisecond)))
		} else {
			select {
			case <-first:
			case <-time.After(time.Minute):
				cmd.Process.Kill()
				t.Fatalf("round %d: child stored nothing in a minute; stderr:\n%s", round, stderr.String())
			}
			delay = time.Duration(rng.Int64N(int64(30 * time.Millisecond)))
		}
		time.Sleep(delay) // the random moment of the kill, not synchronisation
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("round %d: kill: %v", round, err)
		}
		rep := <-parsed
		if err := <-parseErr; err != nil {
			t.Fatalf("round %d: reading child: %v", round, err)
		}
		err = cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("round %d: child ended by itself (%v) instead of by SIGKILL; stderr:\n%s", round, err, stderr.String())
		}
		t.Logf("round %d: killed after %v, child reported %d taps, acked through %d", round, delay, len(rep.taps), rep.acked)

		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// Killed while creating the file: it must have said nothing.
			if epoch != 0 || rep.epoch != 0 || len(rep.taps) != 0 {
				t.Fatalf("round %d: file missing, but the child reported epoch %d and %d taps", round, rep.epoch, len(rep.taps))
			}
			continue
		}
		for _, tap := range rep.taps {
			if prev, ok := want[tap.Seq]; ok {
				t.Fatalf("round %d: seq %d reported again: was %+v, now %+v", round, tap.Seq, prev, tap)
			}
			want[tap.Seq] = tap
		}
		maxAcked = max(maxAcked, rep.acked)

		epoch, lastSeq = checkAfterCrash(t, round, path, epoch, rep.epoch, lastSeq, maxAcked, want)
	}
	if len(want) == 0 {
		t.Fatal("no child ever stored a tap")
	}
}

// checkAfterCrash opens the file a killed child left, checks it, appends
// one tap, and returns the epoch and the new last seq.
func checkAfterCrash(t *testing.T, round int, path string, epoch, childEpoch int64, prevLast, maxAcked uint64, want map[uint64]syncproto.Tap) (int64, uint64) {
	t.Helper()
	o, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("round %d: Open after kill = %v", round, err)
	}
	defer func() {
		if err := o.Close(); err != nil {
			t.Fatalf("round %d: Close() = %v", round, err)
		}
	}()
	if epoch == 0 {
		epoch = o.Epoch()
	}
	if o.Epoch() != epoch || (childEpoch != 0 && childEpoch != epoch) {
		t.Fatalf("round %d: epoch %d, child saw %d, want %d", round, o.Epoch(), childEpoch, epoch)
	}
	checkDB(t, o)

	st := o.Stats()
	if st.LastSeq < prevLast || st.AckedThrough < maxAcked {
		t.Fatalf("round %d: Stats() = %+v went back: last seq was %d, acked through %d was reported",
			round, st, prevLast, maxAcked)
	}
	taps := mustPending(t, o, 0, int(st.Depth)+1)
	if uint64(len(taps)) != st.Depth {
		t.Fatalf("round %d: %d pending taps, Stats().Depth %d", round, len(taps), st.Depth)
	}
	for i, tap := range taps {
		if wantSeq := st.AckedThrough + 1 + uint64(i); tap.Seq != wantSeq {
			t.Fatalf("round %d: pending tap %d has seq %d, want %d (gap or duplicate)", round, i, tap.Seq, wantSeq)
		}
	}
	for seq, w := range want {
		if seq > st.LastSeq {
			t.Fatalf("round %d: reported seq %d is beyond last seq %d", round, seq, st.LastSeq)
		}
		if seq <= st.AckedThrough {
			continue // acknowledged and compacted away
		}
		if diff := cmp.Diff(w, taps[seq-st.AckedThrough-1]); diff != "" {
			t.Fatalf("round %d: tap %d mismatch (-reported +stored):\n%s", round, seq, diff)
		}
	}

	tap := mkTap(int(st.LastSeq))
	got := mustAppend(t, o, tap)
	if got[0].Seq != st.LastSeq+1 {
		t.Fatalf("round %d: Append after reopen got seq %d, want %d", round, got[0].Seq, st.LastSeq+1)
	}
	want[got[0].Seq] = got[0]
	return epoch, got[0].Seq
}
