package reader

import (
	"testing"
	"time"
)

func TestCardID(t *testing.T) {
	for _, tc := range []struct {
		uid    []byte
		number string
		want   string
	}{
		{[]byte{0x04, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6}, "", "04A1B2C3D4E5F6"},
		{[]byte{0x04, 0xa1}, "ab-0123-456789", "AB0123456789"},
		{nil, " AB 0123456789 ", "AB0123456789"},
		{[]byte{0xde, 0xad, 0xbe, 0xef}, "--", "DEADBEEF"},
	} {
		if got := CardID(tc.uid, tc.number); got != tc.want {
			t.Errorf("CardID(%x, %q) = %q, want %q", tc.uid, tc.number, got, tc.want)
		}
	}
}

func TestHoldOff(t *testing.T) {
	h := &HoldOff{Window: 2 * time.Second}
	t0 := time.Date(2026, 11, 21, 7, 0, 0, 0, time.UTC)
	steps := []struct {
		card string
		at   time.Duration
		want bool
	}{
		{"A", 0, true},
		{"A", 500 * time.Millisecond, false}, // held against the reader
		{"A", 2 * time.Second, false},        // still held: each sighting extends
		{"B", 2 * time.Second, true},         // another card
		{"A", 5 * time.Second, true},         // lifted and presented again
	}
	for _, s := range steps {
		if got := h.Fresh(s.card, t0.Add(s.at)); got != s.want {
			t.Errorf("Fresh(%s, +%v) = %v, want %v", s.card, s.at, got, s.want)
		}
	}
}
