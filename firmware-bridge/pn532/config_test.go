package pn532

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Config
	}{
		{"pn532:/dev/ttyS0", Config{Path: "/dev/ttyS0"}},
		{"/dev/ttyS0", Config{Path: "/dev/ttyS0"}},
		{"pn532:/dev/ttyS0?baud=115200", Config{Path: "/dev/ttyS0", Baud: 115200}},
		{"pn532:/dev/ttyS0?hold_off=1s", Config{Path: "/dev/ttyS0", HoldOff: time.Second}}, // the first spelling
		{"pn532:/dev/serial/by-id/usb-FTDI-if00?baud=9600&name=in&holdoff=3s&poll=200ms&gpio_beep=p32",
			Config{Path: "/dev/serial/by-id/usb-FTDI-if00", Baud: 9600, Name: "in", HoldOff: 3 * time.Second,
				PollInterval: 200 * time.Millisecond, Beep: 0x32}},
	} {
		got, err := ParseConfig(tc.in)
		if err != nil {
			t.Errorf("ParseConfig(%q) error %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(Config{}, "Logger", "Open")); diff != "" {
			t.Errorf("ParseConfig(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
	for _, bad := range []string{
		"", "pn532:", "pn532:?baud=115200",
		"pn532:/dev/ttyS0?baud=115201",
		"pn532:/dev/ttyS0?baud=fast",
		"pn532:/dev/ttyS0?baud=9600&baud=115200",
		"pn532:/dev/ttyS0?speed=9600",
		"pn532:/dev/ttyS0?holdoff=-1s",
		"pn532:/dev/ttyS0?holdoff=2h",
		"pn532:/dev/ttyS0?hold_off=2h",
		"pn532:/dev/ttyS0?holdoff=1s&hold_off=1s",
		"pn532:/dev/ttyS0?poll=1ms",
		"pn532:/dev/ttyS0?poll=1h",
		"pn532:/dev/ttyS0?gpio_beep=P36",
		"pn532:/dev/ttyS0?gpio_beep=P7",
		"pn532:/dev/ttyS0?%zz",
	} {
		if _, err := ParseConfig(bad); err == nil {
			t.Errorf("ParseConfig(%q) succeeded, want an error", bad)
		}
	}
}

func TestGPIOPin(t *testing.T) {
	p, err := ParseGPIOPin("P35")
	if err != nil || p != 0x35 || p.String() != "P35" || p.bit() != 0x20 {
		t.Errorf("ParseGPIOPin(P35) = %v (bit %#x), %v", p, p.bit(), err)
	}
	if got := writeGPIOP3(0x3F); !cmp.Equal(got, []byte{0xBF, 0x00}) {
		t.Errorf("writeGPIOP3(3F) = % X, want BF 00", got)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("pn532:/dev/ttyS0?baud=115200&holdoff=2s&poll=150ms&gpio_beep=P32&name=in")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseConfig(s)
		if err != nil {
			return
		}
		if c.Path == "" {
			t.Fatalf("ParseConfig(%q) accepted an empty path", s)
		}
		if err := c.validate(); err != nil {
			t.Fatalf("ParseConfig(%q) = %+v, which does not validate: %v", s, c, err)
		}
	})
}
