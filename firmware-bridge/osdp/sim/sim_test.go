package sim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"

	"github.com/liggare/liggare/firmware-bridge/osdp"
)

// exchange sends a command to p and returns its reply, or nil.
func exchange(t testing.TB, p *PD, f osdp.Frame) *osdp.Frame {
	t.Helper()
	b, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, err := osdp.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	out := p.handle(cmd)
	if out == nil {
		return nil
	}
	reply, _, err := osdp.Parse(out)
	if err != nil {
		t.Fatalf("reply %x: %v", out, err)
	}
	return &reply
}

func TestSequence(t *testing.T) {
	p := New(Config{Addr: 1})
	if r := exchange(t, p, osdp.Frame{Addr: 1, Seq: 1, Code: osdp.CmdPOLL}); r == nil || r.Code != osdp.ReplyNAK || r.Data[0] != byte(osdp.NAKSequence) {
		t.Errorf("poll with sequence 1 after power-up: reply %+v, want NAK(sequence)", r)
	}
	if r := exchange(t, p, osdp.Frame{Addr: 1, Seq: 0, Code: osdp.CmdID, Data: []byte{0}}); r == nil || r.Code != osdp.ReplyPDID || !r.Reply || r.Addr != 1 {
		t.Errorf("ID: reply %+v, want PDID from address 1", r)
	}
	p.Present([]byte{1, 2, 3, 4})
	first := exchange(t, p, osdp.Frame{Addr: 1, Seq: 1, Code: osdp.CmdPOLL})
	again := exchange(t, p, osdp.Frame{Addr: 1, Seq: 1, Code: osdp.CmdPOLL})
	if first == nil || first.Code != osdp.ReplyRAW || again == nil || !bytes.Equal(first.Raw, again.Raw) {
		t.Errorf("poll and repeat: %+v, %+v; want the same RAW twice", first, again)
	}
	if p.Pending() != 1 {
		t.Errorf("Pending = %d before the CP moved on, want 1", p.Pending())
	}
	if r := exchange(t, p, osdp.Frame{Addr: 1, Seq: 2, Code: osdp.CmdPOLL}); r == nil || r.Code != osdp.ReplyACK {
		t.Errorf("next poll: %+v, want ACK", r)
	}
	if p.Pending() != 0 {
		t.Errorf("Pending = %d, want 0", p.Pending())
	}
	if r := exchange(t, p, osdp.Frame{Addr: 1, Seq: 3, Code: 0x7A}); r == nil || r.Code != osdp.ReplyNAK || r.Data[0] != byte(osdp.NAKUnknownCmd) {
		t.Errorf("unknown command: %+v, want NAK(unknown)", r)
	}
}

func TestServeUnplug(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	p := New(Config{Addr: 1})
	done := make(chan error, 1)
	go func() { done <- p.Serve(context.Background(), b) }()
	cmd, _ := (&osdp.Frame{Addr: 1, Code: osdp.CmdID, Data: []byte{0}}).Append(nil)
	if _, err := a.Write(cmd); err != nil {
		t.Fatal(err)
	}
	f, err := osdp.NewFrameReader(a).ReadFrame()
	if err != nil || f.Code != osdp.ReplyPDID {
		t.Fatalf("ReadFrame = %+v, %v", f, err)
	}
	if err := p.Unplug(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrUnplugged) {
		t.Errorf("Serve = %v, want ErrUnplugged", err)
	}
}

// FuzzHandle feeds arbitrary packets to a simulated reader, in clear and
// with the secure channel open: nothing may panic.
func FuzzHandle(f *testing.F) {
	for _, fr := range []osdp.Frame{
		{Addr: 1, Code: osdp.CmdID, Data: []byte{0}},
		{Addr: 1, Seq: 1, Code: osdp.CmdLED, Data: osdp.LED{}.Marshal()},
		{Addr: 1, Seq: 1, Code: osdp.CmdBUZ, Data: osdp.Buzzer{}.Marshal()},
		{Addr: 1, Seq: 1, SCB: []byte{osdp.SCS11, 0}, Code: osdp.CmdCHLNG, Data: make([]byte, 8)},
		{Addr: 1, Seq: 2, SCB: []byte{osdp.SCS13, 0}, Code: osdp.CmdSCRYPT, Data: make([]byte, 16)},
		{Addr: 1, Seq: 2, SCB: []byte{osdp.SCS17}, Code: osdp.CmdKEYSET, Data: make([]byte, 32), MAC: make([]byte, 4)},
	} {
		b, _ := fr.Append(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, _, err := osdp.Parse(b)
		if err != nil {
			return
		}
		p := New(Config{Addr: 1, Secure: true})
		p.Present([]byte{1, 2, 3, 4})
		_ = p.handle(fr)
		// Open a channel in install mode, then the same packet again.
		var rndA [8]byte
		chl := exchange(t, p, osdp.Frame{Addr: 1, Seq: 0, SCB: []byte{osdp.SCS11, 0}, Code: osdp.CmdCHLNG, Data: rndA[:]})
		if chl == nil || chl.Code != osdp.ReplyCCRYPT {
			t.Fatalf("CHLNG: %+v", chl)
		}
		var rndB [8]byte
		copy(rndB[:], chl.Data[8:16])
		s := osdp.NewSession(osdp.DefaultKey(), rndA, rndB)
		if r := exchange(t, p, osdp.Frame{Addr: 1, Seq: 1, SCB: []byte{osdp.SCS13, 0}, Code: osdp.CmdSCRYPT, Data: s.ServerCryptogram()}); r == nil || r.Code != osdp.ReplyRMACI {
			t.Fatalf("SCRYPT: %+v", r)
		}
		_ = p.handle(fr)
	})
}
