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
