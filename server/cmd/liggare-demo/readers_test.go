package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/lineproto"
	"github.com/liggare/liggare/firmware-bridge/osdp"
	"github.com/liggare/liggare/firmware-bridge/pn532"
)

func TestReaderKinds(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    []string
		wantErr bool
	}{
		{in: "mix", want: []string{"osdp", "pn532", "line"}},
		{in: "sim", want: []string{"sim"}},
		{in: "pn532", want: []string{"pn532"}},
		{in: "line, osdp", want: []string{"line", "osdp"}},
		{in: "osdp,sim", wantErr: true},
		{in: "wiegand", wantErr: true},
	} {
		got, err := readerKinds(tc.in)
		if (err != nil) != tc.wantErr || !slices.Equal(got, tc.want) {
			t.Errorf("readerKinds(%q) = %q, %v; want %q (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

// TestKioskSpecs: each kiosk's --reader is one its driver accepts, on the
// path its simulator links.
func TestKioskSpecs(t *testing.T) {
	cfg := config{workers: 30, interval: 4 * time.Second}
	parse := map[string]func(string) (string, error){
		readerOSDP: func(s string) (string, error) {
			c, err := osdp.ParseConfig(s)
			if err == nil && c.PDs[0].Addr != demoOSDPAddr {
				t.Errorf("%s: address %d, want %d", s, c.PDs[0].Addr, demoOSDPAddr)
			}
			return c.Device, err
		},
		readerPN532: func(s string) (string, error) { c, err := pn532.ParseConfig(s); return c.Path, err },
		readerLine:  func(s string) (string, error) { c, err := lineproto.ParseConfig(s); return c.Port.Path, err },
	}
	for kind, p := range parse {
		k := newKiosk("demo-1", kind, "/tmp/demo/reader-1", cfg)
		path, err := p(k.spec)
		if err != nil || path != k.link {
			t.Errorf("%s kiosk: --reader %s gives path %q, %v; want %q", kind, k.spec, path, err, k.link)
		}
		args := strings.Join(k.simulateArgs(cfg), " ")
		if !strings.Contains(args, "simulate --protocol "+kind+" --link /tmp/demo/reader-1 --cards 30 --interval 4s") {
			t.Errorf("%s kiosk: liggare-bridge %s", kind, args)
		}
	}
	if k := newKiosk("demo-1", readerSim, "/tmp/demo/reader-1", cfg); k.spec != "sim:workers=30,interval=4s,prefix=AB" || k.link != "" {
		t.Errorf("sim kiosk: %+v", k)
	}
}
