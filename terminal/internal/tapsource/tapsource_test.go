package tapsource

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		spec    string
		want    string // %#v-ish summary, or "" for an error
		wantErr string
	}{
		{spec: "sim", want: "sim 8 3s"},
		{spec: "sim:workers=20,interval=500ms,prefix=AB", want: "sim 20 500ms"},
		{spec: "feed:127.0.0.1:7001", want: "feed 127.0.0.1:7001"},
		{spec: "feed:127.0.0.1:7001,answers", want: "feed 127.0.0.1:7001 answers"},
		{spec: "feed:127.0.0.1:7001,colour", wantErr: "unknown feed option"},
		{spec: "feed:,answers", wantErr: "needs an address"},
		{spec: "sim:workers=0", wantErr: "want 1-100000"},
		{spec: "sim:interval=-1s", wantErr: "positive duration"},
		{spec: "sim:colour=red", wantErr: "unknown sim option"},
		{spec: "sim:workers", wantErr: "key=value"},
		{spec: "feed", wantErr: "needs an address"},
		{spec: "osdp:/dev/ttyUSB0", want: "osdp.Driver name=\"\""},
		{spec: "osdp:/dev/ttyUSB0?addr=1&baud=19200&name=in", want: "osdp.Driver name=\"in\""},
		{spec: "pn532:/dev/ttyS0", want: "pn532.Driver name=\"\""},
		{spec: "pn532:/dev/serial/by-id/usb-x?poll=100ms&gpio_beep=P32&name=out", want: "pn532.Driver name=\"out\""},
		{spec: "line:/dev/ttyACM0", want: "lineproto.Driver name=\"\""},
		{spec: "line:/dev/ttyACM0?frame=stx&order=reverse&name=in", want: "lineproto.Driver name=\"in\""},
		{spec: "osdp:", wantErr: "osdp reader needs a device path, e.g. osdp:/dev/ttyUSB0"},
		{spec: "osdp", wantErr: "osdp reader needs a device path"},
		{spec: "pn532:?baud=115200", wantErr: "pn532 reader needs a device path"},
		{spec: "line:", wantErr: "line reader needs a device path"},
		{spec: "osdp:/dev/ttyUSB0?addr=200", wantErr: "tapsource: osdp reader: osdp: bad configuration: addr \"200\""},
		{spec: "osdp:/dev/ttyUSB0?colour=red", wantErr: "unknown parameter \"colour\""},
		{spec: "osdp:/dev/ttyUSB0?key=0011", wantErr: "tapsource: osdp reader: osdp: bad configuration: key"},
		{spec: "osdp:/dev/ttyUSB0?key=000102030405060708090a0b0c0d0e0f&addr=999", wantErr: "addr \"999\""},
		{spec: "pn532:/dev/ttyS0?baud=1234", wantErr: "tapsource: pn532 reader: pn532: config"},
		{spec: "pn532:/dev/ttyS0?gpio_beep=P99", wantErr: "want P30..P35"},
		{spec: "line:/dev/ttyACM0?frame=zigzag", wantErr: "tapsource: line reader: lineproto: bad config: frame"},
		{spec: "line:/dev/ttyACM0?holdoff=-1s", wantErr: "negative hold-off"},
		{spec: "serial:/dev/ttyUSB0", wantErr: "unknown reader \"serial\""},
		{spec: "odsp:/dev/ttyUSB0?key=000102030405060708090a0b0c0d0e0f", wantErr: "unknown reader \"odsp\" (want osdp:PATH"},
	} {
		t.Run(tc.spec, func(t *testing.T) {
			s, err := Parse(tc.spec)
			// A key in the spec never shows in an error.
			if err != nil && strings.Contains(err.Error(), "0001020304") {
				t.Errorf("Parse(%q) error %q repeats the key", tc.spec, err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Parse(%q) = %v, %v; want error containing %q", tc.spec, s, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.spec, err)
			}
			var got string
			switch s := s.(type) {
			case *Driver:
				got = fmt.Sprintf("%T name=%q", s.D, s.Name)
				got = strings.TrimPrefix(got, "*")
			case *Sim:
				got = fmt.Sprintf("sim %d %s", s.Workers, s.Interval)
			case *Feed:
				got = "feed " + s.Addr
				if s.Answers {
					got += " answers"
				}
			}
			if got != tc.want {
				t.Errorf("Parse(%q) = %s, want %s", tc.spec, got, tc.want)
			}
		})
	}
}

func TestFeedAnswersEachLine(t *testing.T) {
	for _, tc := range []struct {
		answers bool
		ok      []string
	}{
		// "ok <seq>" exactly, for clients that parse the rest as the seq.
		{false, []string{"ok 1", "ok 2"}},
		{true, []string{"ok 1 accepted", "ok 2 blocked_id06"}},
	} {
		t.Run(fmt.Sprintf("answers=%v", tc.answers), func(t *testing.T) {
			testFeed(t, &Feed{Addr: "127.0.0.1:0", Answers: tc.answers}, tc.ok)
		})
	}
}

func testFeed(t *testing.T, f *Feed, ok []string) {
	addr, err := f.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var seq uint64
	go func() {
		done <- f.Run(ctx, func(_ context.Context, r Read) Feedback {
			if r.CardID == "FULL" {
				return Feedback{Answer: "outbox_full"}
			}
			seq++
			answer := "accepted"
			if r.Reader == "in" {
				answer = "blocked_id06"
			}
			return Feedback{Recorded: true, Seq: seq, Answer: answer}
		})
	}()
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "AB0000000001\n\nAB0000000002 in\nFULL\n%s\n", strings.Repeat("x", MaxFeedLine+1))
	sc := bufio.NewScanner(c)
	var got []string
	for sc.Scan() {
		got = append(got, sc.Text())
	}
	want := append(ok, "err outbox_full", fmt.Sprintf("err line longer than %d bytes", MaxFeedLine))
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("feed answered %q, want %q", got, want)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}
