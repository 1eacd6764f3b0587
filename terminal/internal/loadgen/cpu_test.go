package loadgen

import (
	"testing"
	"time"
)

func TestParseSchedstat(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"1364927 89595 12\n", 89595, true},
		{"0 0 0", 0, true},
		{"1364927 89595", 0, false},
		{"1364927 x 12", 0, false},
		{"1364927 -5 12", 0, false},
		{"", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSchedstat([]byte(tt.in))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseSchedstat(%q) = %v, %v, want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		in         string
		busy, idle time.Duration
		wantErr    bool
	}{
		// user nice system idle iowait irq softirq steal guest guest_nice
		{"cpu  100 20 30 400 5 1 2 3 0 0\ncpu0 50 10 15 200 2 0 1 1 0 0\n", 156 * clockTick, 405 * clockTick, false},
		{"cpu 1 2 3 4 5 6 7 8", 27 * clockTick, 9 * clockTick, false},
		{"cpu 1 2 3 4 5 6 7", 0, 0, true},
		{"cpu0 1 2 3 4 5 6 7 8 9 10", 0, 0, true},
		{"cpu 1 2 x 4 5 6 7 8 9 10", 0, 0, true},
		{"", 0, 0, true},
	}
	for _, tt := range tests {
		busy, idle, err := parseProcStat([]byte(tt.in))
		if busy != tt.busy || idle != tt.idle || (err != nil) != tt.wantErr {
			t.Errorf("parseProcStat(%q) = %v, %v, %v; want %v, %v, error %v", tt.in, busy, idle, err, tt.busy, tt.idle, tt.wantErr)
		}
	}
}
