package ingest

import (
	"testing"
	"time"

	"github.com/liggare/liggare/syncproto"
)

func TestEventTime(t *testing.T) {
	received := t0.Add(time.Hour)
	for _, tc := range []struct {
		name       string
		helloWall  time.Time
		tap        syncproto.Clock
		want       time.Time
		wantSource TimeSource
	}{
		{
			name:       "clock right: device time",
			helloWall:  t0.Add(2 * time.Second),
			tap:        syncproto.Clock{WallMicros: t0.Add(-time.Hour).UnixMicro(), BootID: "old-boot"},
			want:       t0.Add(-time.Hour),
			wantSource: TimeDevice,
		},
		{
			name:       "clock off, same boot: monotonic from the Hello",
			helloWall:  time.Date(1970, 1, 1, 0, 5, 0, 0, time.UTC),
			tap:        syncproto.Clock{WallMicros: 10, BootID: "boot-1", MonoNanos: 1e12 - 90e9},
			want:       t0.Add(-90 * time.Second),
			wantSource: TimeOffset,
		},
		{
			name:       "clock off, same boot, after the Hello",
			helloWall:  t0.Add(-time.Hour),
			tap:        syncproto.Clock{WallMicros: 10, BootID: "boot-1", MonoNanos: 1e12 + 5e9},
			want:       t0.Add(5 * time.Second),
			wantSource: TimeOffset,
		},
		{
			name:       "clock off, earlier boot: receive time",
			helloWall:  t0.Add(-time.Hour),
			tap:        syncproto.Clock{WallMicros: 10, BootID: "boot-0", MonoNanos: 5},
			want:       received,
			wantSource: TimeReceived,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Session{
				HelloClock:    syncproto.Clock{WallMicros: tc.helloWall.UnixMicro(), BootID: "boot-1", MonoNanos: 1e12},
				HelloReceived: t0,
			}
			got, src := s.EventTime(tc.tap, received)
			if !got.Equal(tc.want) || src != tc.wantSource {
				t.Errorf("EventTime(%+v) = %v, %s; want %v, %s", tc.tap, got, src, tc.want, tc.wantSource)
			}
		})
	}
}
