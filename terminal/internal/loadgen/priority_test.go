package loadgen

import (
	"os"
	"strings"
	"testing"
)

// TestFavourSelf raises this process's session group and puts it back.
// Without CAP_SYS_NICE the group stays where it was, and the report says
// why.
func TestFavourSelf(t *testing.T) {
	how, undo, err := FavourSelf(0)
	if err != nil || how == "" {
		t.Fatalf("FavourSelf(0) = %q, %v, want a description and no error", how, err)
	}
	undo()
	if !autogroupEnabled() {
		how, undo, err := FavourSelf(3)
		undo()
		if err != nil || !strings.Contains(how, "nice +3") {
			t.Errorf("FavourSelf(3) without autogroup = %q, %v, want the children's nice +3", how, err)
		}
		return
	}
	old, err := autogroupNice()
	if err != nil {
		t.Fatal(err)
	}
	how, undo, err = FavourSelf(3)
	if err != nil {
		t.Fatalf("FavourSelf(3): %v", err)
	}
	raised, err := autogroupNice()
	undo()
	if err != nil {
		t.Fatal(err)
	}
	back, err := autogroupNice()
	if err != nil {
		t.Fatal(err)
	}
	if back != old {
		t.Errorf("session group's nice after undo = %d, want %d as before", back, old)
	}
	if strings.Contains(how, "CAP_SYS_NICE") {
		if raised != old {
			t.Errorf("FavourSelf(3) = %q, but the group's nice went from %d to %d", how, old, raised)
		}
		return
	}
	if want := max(old-3, -20); raised != want {
		t.Errorf("session group's nice after FavourSelf(3) = %d (%q), want %d", raised, how, want)
	}
}

func TestAutogroupNice(t *testing.T) {
	if _, err := os.Stat(selfAutogroup); err != nil {
		t.Skipf("no %s: the kernel has no autogroup", selfAutogroup)
	}
	if _, err := autogroupNice(); err != nil {
		t.Errorf("autogroupNice: %v", err)
	}
}
