package osdp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	keyfile := filepath.Join(dir, "reader.key")
	if err := os.WriteFile(keyfile, []byte("000102030405060708090A0B0C0D0E0F\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := ParseKey("000102030405060708090a0b0c0d0e0f")
	for _, tc := range []struct {
		in   string
		want Config
	}{
		{"osdp:/dev/ttyUSB0", Config{Device: "/dev/ttyUSB0", PDs: []PDConfig{{}}}},
		{"/dev/ttyUSB0?addr=1&baud=9600", Config{Device: "/dev/ttyUSB0", Baud: 9600, PDs: []PDConfig{{Addr: 1}}}},
		{"osdp:/dev/ttyS1?addr=0x7e&baud=115200&name=in", Config{Device: "/dev/ttyS1", Baud: 115200, PDs: []PDConfig{{Addr: 0x7E, Name: "in"}}}},
		{"osdp:/dev/ttyUSB0?addr=2&keyfile=" + keyfile + "&install=1",
			Config{Device: "/dev/ttyUSB0", PDs: []PDConfig{{Addr: 2, Key: key, Install: true}}}},
		{"osdp:/dev/ttyUSB0?key=00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f",
			Config{Device: "/dev/ttyUSB0", PDs: []PDConfig{{Key: key}}}},
		{"osdp:/dev/ttyUSB0?poll=100ms&timeout=300ms&offline=3&holdoff=5s",
			Config{Device: "/dev/ttyUSB0", PollInterval: 100 * time.Millisecond, ReplyTimeout: 300 * time.Millisecond,
				OfflineAfter: 3, HoldOff: 5 * time.Second, PDs: []PDConfig{{}}}},
	} {
		got, err := ParseConfig(tc.in)
		if err != nil {
			t.Errorf("ParseConfig(%q) = %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b Key) bool { return a == b })); diff != "" {
			t.Errorf("ParseConfig(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestParseConfigRefuses(t *testing.T) {
	secret := "0f0e0d0c0b0a09080706050403020100"
	for _, in := range []string{
		"osdp:",
		"osdp:?addr=1",
		"osdp:/dev/x?addr=127",
		"osdp:/dev/x?addr=-1",
		"osdp:/dev/x?baud=1234",
		"osdp:/dev/x?adr=1",
		"osdp:/dev/x?addr=1&addr=2",
		"osdp:/dev/x?key=" + secret + "&keyfile=/k",
		"osdp:/dev/x?key=" + secret[:30],
		"osdp:/dev/x?key=" + strings.Repeat("0", 32),
		"osdp:/dev/x?keyfile=/nonexistent/key",
		"osdp:/dev/x?install=1",
		"osdp:/dev/x?install=maybe&key=" + secret,
		"osdp:/dev/x?poll=0s",
		"osdp:/dev/x?timeout=fast",
		"osdp:/dev/x?offline=0",
		"osdp:/dev/x?key=" + secret + "%zz",
		"osdp:/dev/x?key=" + secret + ";x",
	} {
		_, err := ParseConfig(in)
		if !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%q) = %v, want ErrConfig", in, err)
			continue
		}
		if strings.Contains(err.Error(), secret[:12]) {
			t.Errorf("ParseConfig(%q) error shows the key: %v", in, err)
		}
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add("osdp:/dev/ttyUSB0?addr=1&baud=9600&key=000102030405060708090a0b0c0d0e0f&install=1")
	f.Add("/dev/ttyS0?poll=1s&name=in&offline=3")
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseConfig(s)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("ParseConfig(%q) = %v, want ErrConfig", s, err)
			}
			return
		}
		if cfg.Device == "" || len(cfg.PDs) != 1 || cfg.PDs[0].Addr > MaxAddr {
			t.Errorf("ParseConfig(%q) = %+v", s, cfg)
		}
		if _, err := New(cfg); err != nil {
			t.Errorf("New(ParseConfig(%q)) = %v", s, err)
		}
	})
}
