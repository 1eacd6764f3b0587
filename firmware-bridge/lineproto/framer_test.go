package lineproto

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// render writes events as text for comparison: lines quoted, others by name.
func render(evs []event) []string {
	var out []string
	for _, ev := range evs {
		switch ev.kind {
		case evLine:
			out = append(out, string(ev.line))
		case evOverlong:
			out = append(out, "<overlong>")
		case evTruncated:
			out = append(out, "<truncated>")
		case evNoise:
			out = append(out, "<noise>")
		}
	}
	return out
}

func TestFramer(t *testing.T) {
	long := strings.Repeat("A", MaxLineLen+1)
	full := strings.Repeat("A", MaxLineLen)
	for _, tc := range []struct {
		name    string
		framing Framing
		in      string
		gap     bool // end with a silence
		want    []string
	}{
		{"auto crlf", FrameAuto, "AB\r\nCD\r\n", false, []string{"AB", "CD"}},
		{"auto mixed", FrameAuto, "AB\rCD\nEF\n\r\n", false, []string{"AB", "CD", "EF"}},
		{"auto blank lines", FrameAuto, "\r\n \r\n\n", false, nil},
		{"cr", FrameCR, "AB\rCD\r", false, []string{"AB", "CD"}},
		{"cr keeps lf", FrameCR, "AB\r\nCD\r", false, []string{"AB", "\nCD"}},
		{"lf", FrameLF, "AB\nCD\r\n", false, []string{"AB", "CD\r"}},
		{"crlf", FrameCRLF, "AB\r\nCD\r\n", false, []string{"AB", "CD"}},
		{"crlf lone cr", FrameCRLF, "A\rB\r\n", false, []string{"A\rB"}},
		{"crlf lone lf", FrameCRLF, "A\nB\r\n", false, []string{"A\nB"}},
		{"crlf cr cr lf", FrameCRLF, "AB\r\r\n", false, []string{"AB\r"}},
		{"stx", FrameSTX, "\x02AB\x03\r\n\x02CD\x03", false, []string{"AB", "CD"}},
		{"stx noise", FrameSTX, "xy\x02AB\x03zz\x02CD\x03", false, []string{"<noise>", "AB", "<noise>", "CD"}},
		{"stx restart", FrameSTX, "\x02AB\x02CD\x03", false, []string{"<truncated>", "CD"}},
		{"stx etx outside", FrameSTX, "\x03\x02AB\x03", false, []string{"<noise>", "AB"}},
		{"stx cr inside", FrameSTX, "\x02A\rB\x03", false, []string{"A\rB"}},
		{"max", FrameAuto, full + "\n", false, []string{full}},
		{"overlong", FrameAuto, long + "\nAB\n", false, []string{"<overlong>", "AB"}},
		{"overlong stx", FrameSTX, "\x02" + long + "\x03\x02AB\x03", false, []string{"<overlong>", "AB"}},
		{"overlong restart", FrameSTX, "\x02" + long + "\x02AB\x03", false, []string{"<overlong>", "AB"}},
		{"partial then gap", FrameAuto, "AB\nCD", true, []string{"AB", "<truncated>"}},
		{"overlong then gap", FrameAuto, long, true, []string{"<overlong>"}},
		{"stx open then gap", FrameSTX, "\x02", true, []string{"<truncated>"}},
		{"crlf pending cr then gap", FrameCRLF, "AB\r\n\r", true, []string{"AB"}},
		{"nothing then gap", FrameAuto, "", true, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Whole, then byte by byte: chunking never matters.
			for _, chunk := range []int{len(tc.in), 1} {
				f := newFramer(tc.framing)
				var got []string
				for i := 0; i < len(tc.in); i += max1(chunk) {
					got = append(got, render(f.feed([]byte(tc.in[i:min(i+max1(chunk), len(tc.in))])))...)
				}
				if tc.gap {
					got = append(got, render(f.gap())...)
				}
				if diff := cmp.Diff(tc.want, got); diff != "" {
					t.Errorf("framer(%v, %q, chunk %d) (-want +got):\n%s", tc.framing, tc.in, chunk, diff)
				}
			}
		})
	}
}

func max1(n int) int { return max(n, 1) }

// FuzzFramer: any input in any chunking gives the same events, and no line
// passes MaxLineLen.
func FuzzFramer(f *testing.F) {
	f.Add([]byte("04A1B2C3\r\n"), uint8(0), uint8(3))
	f.Add([]byte("\x02AB\x03xx\x02"), uint8(FrameSTX), uint8(1))
	f.Add([]byte(strings.Repeat("A", 100)+"\r\n"), uint8(FrameCRLF), uint8(7))
	f.Fuzz(func(t *testing.T, in []byte, framing uint8, chunk uint8) {
		fr := Framing(framing % 5)
		whole := render(newFramer(fr).feed(in))
		f := newFramer(fr)
		var parts []string
		step := int(chunk)%16 + 1
		for i := 0; i < len(in); i += step {
			parts = append(parts, render(f.feed(in[i:min(i+step, len(in))]))...)
		}
		if diff := cmp.Diff(whole, parts); diff != "" {
			t.Fatalf("chunking changed events (-whole +chunked):\n%s", diff)
		}
		for _, l := range whole {
			if len(l) > MaxLineLen {
				t.Fatalf("line of %d bytes passed MaxLineLen", len(l))
			}
		}
	})
}
