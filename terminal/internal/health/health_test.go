package health

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/liggare/liggare/syncproto"
	"github.com/liggare/liggare/terminal/internal/outbox"
	"github.com/liggare/liggare/terminal/internal/uplink"
)

func TestHealthz(t *testing.T) {
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "outbox.db"), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	link, err := uplink.New(uplink.Config{URL: "ws://127.0.0.1:1/v1/sync", Credential: "gate-1.x"}, ob, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Microsecond)
	if _, err := ob.Append(t.Context(), syncproto.Tap{CardID: "AB0000000001",
		Clock: syncproto.Clock{WallMicros: now.Add(-90 * time.Second).UnixMicro(), BootID: "b", MonoNanos: 1}}); err != nil {
		t.Fatal(err)
	}
	state := "ok"
	src := &Sources{TerminalID: "gate-1", AgentVersion: "test", Outbox: ob, Uplink: link,
		ReaderState: func() string { return state }, Now: func() time.Time { return now }}
	srv := httptest.NewServer(src)
	defer srv.Close()
	get := func() (int, Report) {
		resp, err := http.Get(srv.URL + Path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r Report
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, r
	}
	status, r := get()
	if status != http.StatusOK || !r.OK || r.OutboxDepth != 1 || r.Connected || r.LastAck != nil || r.ClockOffsetMillis != nil ||
		r.OldestUnackedAgeSeconds == nil || *r.OldestUnackedAgeSeconds != 90 || r.TerminalID != "gate-1" || r.StoreEpoch != ob.Epoch() {
		t.Errorf("GET %s = %d %+v", Path, status, r)
	}
	state = "offline"
	if status, r := get(); status != http.StatusServiceUnavailable || r.OK || len(r.Problems) != 1 {
		t.Errorf("with the reader offline: %d %+v, want 503 with one problem", status, r)
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:7070", ":7070"} {
		if _, err := Listen(addr); !errors.Is(err, ErrNotLoopback) {
			t.Errorf("Listen(%q) = %v, want ErrNotLoopback", addr, err)
		}
	}
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
}
