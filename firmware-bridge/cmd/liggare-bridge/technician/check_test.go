package technician

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/liggare/liggare/firmware-bridge/reader"
)

// stateDriver is a reader.Driver whose State the test sets.
type stateDriver struct{ st reader.State }

func (d *stateDriver) Run(ctx context.Context, _ reader.Handler) error { <-ctx.Done(); return nil }
func (d *stateDriver) State() reader.State                             { return d.st }

// TestCheckSeesAQuickReopen: a port that went away and was open again
// between two checks is reported as offline, then online; the checks alone
// saw it online both times.
func TestCheckSeesAQuickReopen(t *testing.T) {
	drv := &stateDriver{st: reader.State{Online: true, Model: "line reader"}}
	var out strings.Builder
	s := &session{dev: &device{drv: drv}, out: &out, started: time.Now()}
	s.check(true)
	drv.st.Reopens, drv.st.LastError = 1, "lineproto: truncated frame"
	s.check(true)
	s.check(true) // nothing new
	got := out.String()
	if strings.Count(got, "reader online") != 2 || strings.Count(got, "reader offline  lineproto: truncated frame") != 1 {
		t.Errorf("output:\n%s\nwant online, offline with the error, online", got)
	}
}
