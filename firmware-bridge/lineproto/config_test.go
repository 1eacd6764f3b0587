package lineproto

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/liggare/liggare/firmware-bridge/reader"
	"github.com/liggare/liggare/firmware-bridge/serialport"
)

func TestParseConfig(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Config
	}{
		{"line:/dev/ttyACM0", Config{Port: serialport.Config{Path: "/dev/ttyACM0"}}},
		{"line:/dev/ttyACM0?baud=9600&frame=crlf&order=reverse", Config{
			Port:    serialport.Config{Path: "/dev/ttyACM0", Baud: 9600},
			Framing: FrameCRLF,
			Format:  Format{Order: Reversed},
		}},
		{"line:/dev/serial/by-id/usb-X-if00?frame=STX&prefix=UID%3A&suffix=%20OK&uidlen=4,7&holdoff=3s&timeout=200ms&name=in&parity=e&stopbits=2&accepted=1b47310d&failed=07", Config{
			Port:    serialport.Config{Path: "/dev/serial/by-id/usb-X-if00", ReadTimeout: 200 * time.Millisecond, Parity: serialport.ParityEven, StopBits: 2},
			Framing: FrameSTX,
			Format:  Format{Prefix: "UID:", Suffix: " OK", UIDLengths: []int{4, 7}},
			HoldOff: 3 * time.Second,
			Name:    "in",
			Feedback: map[reader.Outcome][]byte{
				reader.Accepted:    {0x1b, 0x47, 0x31, 0x0d},
				reader.NotRecorded: {0x07},
			},
		}},
	} {
		got, err := ParseConfig(tc.spec)
		if err != nil {
			t.Errorf("ParseConfig(%q) = %v", tc.spec, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseConfig(%q) (-want +got):\n%s", tc.spec, diff)
		}
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, spec := range []string{
		"",
		"/dev/ttyACM0",
		"osdp:/dev/ttyUSB0",
		"line:",
		"line:?baud=9600",
		"line:/dev/x?bogus=1",
		"line:/dev/x?baud=fast",
		"line:/dev/x?baud=1&baud=2",
		"line:/dev/x?frame=etx",
		"line:/dev/x?order=big",
		"line:/dev/x?parity=m",
		"line:/dev/x?uidlen=4,x",
		"line:/dev/x?uidlen=0",
		"line:/dev/x?holdoff=-1s",
		"line:/dev/x?holdoff=soon",
		"line:/dev/x?accepted=zz",
		"line:/dev/x?%zz",
	} {
		if c, err := ParseConfig(spec); !errors.Is(err, ErrConfig) {
			t.Errorf("ParseConfig(%q) = %+v, %v, want ErrConfig", spec, c, err)
		}
	}
}

func TestNewBadConfig(t *testing.T) {
	for _, c := range []Config{
		{Port: serialport.Config{Path: "/dev/x"}, Framing: 9},
		{Port: serialport.Config{Path: "/dev/x", Baud: 12345}},
		{Port: serialport.Config{}},
		{Port: serialport.Config{Path: "/dev/x"}, Format: Format{Order: 7}},
	} {
		if _, err := New(c); !errors.Is(err, ErrConfig) && !errors.Is(err, serialport.ErrConfig) {
			t.Errorf("New(%+v) = %v, want a config error", c, err)
		}
	}
}
