package sim

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/pn532"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// host is the test's end of the line: it writes raw bytes and reads frames.
type host struct {
	t      *testing.T
	conn   net.Conn
	parser pn532.Parser
}

func serve(t *testing.T, s *Sim) *host {
	t.Helper()
	a, b := net.Pipe()
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.Serve(ctx, b); err != nil && !errors.Is(err, ErrUnplugged) {
			t.Errorf("Serve = %v", err)
		}
	})
	t.Cleanup(func() {
		cancel()
		a.Close()
		wg.Wait()
	})
	return &host{t: t, conn: a}
}

func (h *host) send(wire string) {
	h.t.Helper()
	if _, err := h.conn.Write(unhex(h.t, wire)); err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

// expect reads frames until it has len(want) of them and compares their
// wire bytes; a frame that does not come within a second is a failure.
func (h *host) expect(want ...string) {
	h.t.Helper()
	for _, w := range want {
		f := h.next()
		got, _ := f.MarshalBinary()
		if !bytes.Equal(got, unhex(h.t, w)) {
			h.t.Fatalf("frame % X, want %s", got, w)
		}
	}
}

func (h *host) next() pn532.Frame {
	h.t.Helper()
	buf := make([]byte, 256)
	for {
		f, err := h.parser.Next()
		if err == nil {
			return f
		}
		if !errors.Is(err, pn532.ErrIncomplete) {
			h.t.Fatalf("bad frame from the simulator: %v", err)
		}
		_ = h.conn.SetReadDeadline(time.Now().Add(time.Second))
		n, err := h.conn.Read(buf)
		if err != nil {
			h.t.Fatalf("read: %v", err)
		}
		h.parser.Write(buf[:n])
	}
}

// expectNothing checks that no frame comes within 50 ms.
func (h *host) expectNothing() {
	h.t.Helper()
	_ = h.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 64)
	if n, err := h.conn.Read(buf); err == nil {
		h.t.Fatalf("unexpected bytes % X", buf[:n])
	}
}

const (
	ack       = "00 00 FF 00 FF 00"
	nack      = "00 00 FF FF 00 00"
	getFW     = "00 00 FF 02 FE D4 02 2A 00"
	fwV16     = "00 00 FF 06 FA D5 03 32 01 06 07 E8 00"
	samConfig = "00 00 FF 03 FD D4 14 01 17 00"
	samResp   = "00 00 FF 02 FE D5 15 16 00"
	listA     = "00 00 FF 04 FC D4 4A 01 00 E1 00"
	noTarget  = "00 00 FF 03 FD D5 4B 00 E0 00"
)

func TestWakeAndSAMFirst(t *testing.T) {
	s := New(Config{})
	h := serve(t, s)
	h.send(getFW) // asleep: ignored
	h.expectNothing()
	h.send("55 55 00 00 00 " + getFW) // awake, but low-battery mode until SAMConfiguration
	h.expectNothing()
	h.send(samConfig)
	h.expect(ack, samResp)
	h.send(getFW)
	h.expect(ack, fwV16)
	h.send(listA)
	h.expect(ack, noTarget)
	if st := s.Stats(); st.Wakes != 1 || st.SAMConfigs != 1 || st.Ignored != 1 || st.Polls != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestCardAndFaults(t *testing.T) {
	s := New(Config{})
	h := serve(t, s)
	h.send("55 55 00 00 00 " + samConfig)
	h.expect(ack, samResp)
	s.Present([]byte{0x04, 0xA1, 0xB2, 0xC3, 0xD4, 0xE5, 0xF6})
	card := "00 00 FF 15 EB D5 4B 01 01 03 44 20 07 04 A1 B2 C3 D4 E5 F6 06 75 77 81 02 80 B2 00"
	h.send(listA)
	h.expect(ack, card)

	// The host's NACK: the last response again.
	h.send(nack)
	h.expect(card)

	s.Inject(NACK, BadDCS, Deaf)
	h.send(listA)
	h.expect(nack)
	h.send(listA)
	h.expect(ack)
	_, err := h.parser.Next()
	for errors.Is(err, pn532.ErrIncomplete) {
		buf := make([]byte, 64)
		_ = h.conn.SetReadDeadline(time.Now().Add(time.Second))
		n, rerr := h.conn.Read(buf)
		if rerr != nil {
			t.Fatalf("read: %v", rerr)
		}
		h.parser.Write(buf[:n])
		_, err = h.parser.Next()
	}
	if !errors.Is(err, pn532.ErrDataChecksum) {
		t.Fatalf("BadDCS fault gave %v, want ErrDataChecksum", err)
	}
	h.parser.Reset()
	h.send(listA)
	h.expectNothing() // Deaf
	s.Remove()
	h.send(listA)
	h.expect(ack, noTarget)
	// A corrupted host frame is dropped unanswered.
	h.send("00 00 FF 04 FC D4 4A 01 00 E2 00")
	h.expectNothing()
	if st := s.Stats(); st.NACKsSent != 1 || st.NACKsHeard != 1 || st.BadFrames != 1 || st.Faults != 3 {
		t.Errorf("stats %+v", st)
	}
}

func TestSilenceAndUnplug(t *testing.T) {
	s := New(Config{})
	h := serve(t, s)
	h.send("55 55 00 00 00 " + samConfig)
	h.expect(ack, samResp)
	s.Silence(true)
	h.send(getFW)
	h.expectNothing()
	s.Silence(false) // back asleep
	h.send(getFW)
	h.expectNothing()
	h.send("55 55 00 00 00 " + samConfig)
	h.expect(ack, samResp)
	s.Unplug()
	buf := make([]byte, 8)
	_ = h.conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := h.conn.Read(buf); err == nil {
		t.Error("read after Unplug succeeded")
	}
}

func TestGPIO(t *testing.T) {
	s := New(Config{})
	h := serve(t, s)
	h.send("55 55 00 00 00 " + samConfig)
	h.expect(ack, samResp)
	write, _ := pn532.CommandFrame(pn532.CmdWriteGPIO, 0x80|0x04, 0x00).MarshalBinary()
	h.send(hex.EncodeToString(write))
	h.expect(ack, "00 00 FF 02 FE D5 0F 1C 00")
	if st := s.Stats(); st.P3 != 0x04 || st.GPIOWrites != 1 {
		t.Errorf("stats %+v: want P3 04 after one write", st)
	}
}

// FuzzReceive feeds the simulator arbitrary host bytes: it must not panic,
// and everything it answers must parse.
func FuzzReceive(f *testing.F) {
	f.Add(unhex(f, "55 55 00 00 00 "+samConfig+getFW+listA))
	f.Add(unhex(f, "55 "+samConfig+nack+"00 00 FF 03 FD D4 0E 80 00 9E 00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		s := New(Config{})
		s.Present([]byte{1, 2, 3, 4})
		var out bytes.Buffer
		var p pn532.Parser
		if err := s.receive(&out, &p, append([]byte{0x55}, in...)); err != nil {
			t.Fatal(err)
		}
		var q pn532.Parser
		q.Write(out.Bytes())
		for {
			_, err := q.Next()
			if errors.Is(err, pn532.ErrIncomplete) {
				break
			}
			if err != nil {
				t.Fatalf("simulator wrote a bad frame: %v in % X", err, out.Bytes())
			}
		}
	})
}
