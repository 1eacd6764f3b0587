package syncproto

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// bootID is the Linux boot_id of the terminal in the golden messages.
const bootID = "0b5f9c1e-6d2a-4e7b-9f30-2a8c5d71e4b6"

// golden is one representative instance of every message type, with every
// field set. Its wire bytes are in testdata/golden/<name>.cbor and are the
// protocol's reference: a change to them is a change to the protocol.
var golden = []struct {
	name string
	msg  Message
}{
	{"hello", &Hello{
		ProtocolVersion: 1,
		TerminalID:      "t-0042",
		StoreEpoch:      1772409600,
		AgentVersion:    "1.0.0",
		Clock:           Clock{WallMicros: 1795241523123456, BootID: bootID, MonoNanos: 7384512000000},
		OutboxDepth:     2,
	}},
	{"hello_v2", &Hello{
		ProtocolVersion: 2,
		TerminalID:      "t-0042",
		StoreEpoch:      1772409600,
		AgentVersion:    "1.1.0",
		Clock:           Clock{WallMicros: 1795241523123456, BootID: bootID, MonoNanos: 7384512000000},
		OutboxDepth:     2,
		CardCursor:      1180,
		OutboxAcked:     40,
	}},
	{"welcome", &Welcome{
		ProtocolVersion:   1,
		ServerMicros:      1795241524608456,
		AckedThrough:      40,
		MaxBatchTaps:      1024,
		MaxInFlight:       4,
		ClockOffsetMicros: 1482000,
	}},
	{"batch", &Batch{
		BatchID: 1,
		Taps: []Tap{
			{
				Seq:    41,
				CardID: "04A1B2C3D4E580",
				Clock:  Clock{WallMicros: 1795238895402117, BootID: bootID, MonoNanos: 4756790661000},
				Reader: "in",
				Answer: "accepted",
			},
			{
				Seq:    42,
				CardID: "04C2D3E4F5A681",
				Clock:  Clock{WallMicros: 1795238904618930, BootID: bootID, MonoNanos: 4766007474000},
				Reader: "out",
				Answer: "blocked_id06",
			},
		},
	}},
	{"ack", &Ack{
		BatchID:      1,
		AckedThrough: 42,
		Rejected:     []Rejection{{Seq: 42, Code: RejectConflict, Reason: "identity held with other content"}},
	}},
	{"status", &Status{
		Clock:               Clock{WallMicros: 1795241583123456, BootID: bootID, MonoNanos: 7444512000000},
		OutboxDepth:         1,
		OldestUnackedMicros: 1795238904618930,
		ReaderState:         "ok",
		Alarms:              []string{"clock_skew"},
	}},
	{"cardupdate", &CardUpdate{
		Cursor: 1207,
		Reset:  true,
		Final:  true,
		Cards: []CardInfo{
			{CardID: "AB0123456789", Name: "Åsa Öberg", Employer: "Bygg AB", Status: CardActive},
			{CardID: "04A1B2C3D4E580", Name: "Åsa Öberg", Employer: "Bygg AB", Status: CardActive},
			{CardID: "CD0000000001", Name: "Pedro Silva", Employer: "El AB", Status: CardBlockedSite},
			{CardID: "EF0000000002", Removed: true},
		},
	}},
	{"cardack", &CardAck{Cursor: 1207}},
	{"error", &Error{
		Code:    ErrorCodeVersion,
		Message: "terminal speaks up to 1, server 2 to 3",
	}},
}

func goldenPath(name string) string {
	return filepath.Join("testdata", "golden", name+".cbor")
}

// readGolden returns the wire bytes of a golden message.
func readGolden(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(goldenPath(name))
	if err != nil {
		tb.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	return b
}

func TestGoldenCoversEveryType(t *testing.T) {
	seen := map[MsgType]bool{}
	for _, g := range golden {
		seen[g.msg.MsgType()] = true
	}
	for typ := TypeHello; typ <= TypeError; typ++ {
		if !seen[typ] {
			t.Errorf("no golden message of type %s", typ)
		}
	}
}

func TestGoldenEncode(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			got, err := Encode(g.msg)
			if err != nil {
				t.Fatalf("Encode(%+v): %v", g.msg, err)
			}
			if *update {
				if err := os.MkdirAll(filepath.Dir(goldenPath(g.name)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(goldenPath(g.name), got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := readGolden(t, g.name)
			if !bytes.Equal(got, want) {
				t.Errorf("Encode(%+v) =\n%x\nwant (%s)\n%x", g.msg, got, goldenPath(g.name), want)
			}
		})
	}
}

func TestGoldenDecode(t *testing.T) {
	for _, g := range golden {
		t.Run(g.name, func(t *testing.T) {
			data := readGolden(t, g.name)
			got, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode(%x): %v", data, err)
			}
			if diff := cmp.Diff(g.msg, got); diff != "" {
				t.Errorf("Decode(%x) mismatch (-want +got):\n%s", data, diff)
			}
		})
	}
}

// exampleRE matches the line introducing a worked example in doc.go.
var exampleRE = regexp.MustCompile(`testdata/golden/(\w+)\.cbor`)

// TestDocExamples keeps the worked examples in doc.go true: each block of
// hex following a line naming a golden file must spell that file's bytes.
func TestDocExamples(t *testing.T) {
	f, err := os.Open("doc.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	examples := map[string]*strings.Builder{}
	var cur *strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := exampleRE.FindStringSubmatch(line); m != nil {
			cur = &strings.Builder{}
			examples[m[1]] = cur
			continue
		}
		if cur == nil {
			continue
		}
		code, ok := strings.CutPrefix(line, "//\t")
		if !ok {
			if line != "//" && cur.Len() > 0 {
				cur = nil
			}
			continue
		}
		code, _, _ = strings.Cut(code, "#")
		for _, tok := range strings.Fields(code) {
			cur.WriteString(tok)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(examples) < 2 {
		t.Fatalf("found %d worked examples in doc.go, want at least 2", len(examples))
	}
	for name, hexText := range examples {
		got, err := hex.DecodeString(hexText.String())
		if err != nil {
			t.Errorf("doc.go example %s: %v", name, err)
			continue
		}
		if want := readGolden(t, name); !bytes.Equal(got, want) {
			t.Errorf("doc.go example %s =\n%x\nwant (%s)\n%x", name, got, goldenPath(name), want)
		}
	}
}
