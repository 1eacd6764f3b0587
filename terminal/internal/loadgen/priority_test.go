package loadgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeKernel points the autogroup files at a directory of the test's:
// the switch holds enabled ("" for no file), the process's group
// self ("" for an empty file, as in a cgroup of its own).
func fakeKernel(t *testing.T, enabled, self string) (selfPath string) {
	t.Helper()
	dir := t.TempDir()
	oldSwitch, oldSelf := autogroupSwitch, selfAutogroup
	t.Cleanup(func() { autogroupSwitch, selfAutogroup = oldSwitch, oldSelf })
	autogroupSwitch = filepath.Join(dir, "sched_autogroup_enabled")
	selfAutogroup = filepath.Join(dir, "autogroup")
	if enabled != "" {
		if err := os.WriteFile(autogroupSwitch, []byte(enabled+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(selfAutogroup, []byte(self), 0o644); err != nil {
		t.Fatal(err)
	}
	return selfAutogroup
}

// TestFavourSelfByKernel runs FavourSelf against each state the kernel
// can be in. The CI machines run tests in a cgroup of their own, where
// /proc/self/autogroup is empty: the children's nice is what weighs.
func TestFavourSelfByKernel(t *testing.T) {
	for _, tc := range []struct {
		name, enabled, self string
		want                string // in the description
		wantNice            string // the group file afterwards, "" = unchanged
	}{
		{name: "no autogroup in the kernel", enabled: "", self: "", want: "nice +3"},
		{name: "autogroup off", enabled: "0", self: "/autogroup-7 nice 0\n", want: "nice +3"},
		{name: "in a cgroup of its own", enabled: "1", self: "", want: "nice +3"},
		{name: "in a session group", enabled: "1", self: "/autogroup-7 nice 0\n", want: "load generator's session at nice -3", wantNice: "-3"},
		{name: "at the floor", enabled: "1", self: "/autogroup-7 nice -19\n", want: "at nice -20", wantNice: "-20"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := fakeKernel(t, tc.enabled, tc.self)
			how, undo, err := FavourSelf(3)
			if err != nil || !strings.Contains(how, tc.want) {
				t.Fatalf("FavourSelf(3) = %q, %v, want a description with %q", how, err, tc.want)
			}
			b, _ := os.ReadFile(path)
			if tc.wantNice == "" {
				if string(b) != tc.self {
					t.Errorf("the group file went from %q to %q, want it untouched", tc.self, b)
				}
			} else if string(b) != tc.wantNice {
				t.Errorf("the group file holds %q, want %q", b, tc.wantNice)
			}
			undo()
			if tc.wantNice != "" {
				b, _ := os.ReadFile(path)
				if want := strings.Fields(tc.self)[2]; string(b) != want {
					t.Errorf("after undo the group file holds %q, want %q", b, want)
				}
			}
		})
	}
}

func TestFavourSelfRefusesAnUnknownGroupFile(t *testing.T) {
	fakeKernel(t, "1", "autogroup says hello\n")
	if how, _, err := FavourSelf(3); err == nil {
		t.Fatalf("FavourSelf(3) = %q, want an error for a file it cannot read", how)
	}
}

// TestFavourSelf raises this process's session group on this machine's
// kernel and puts it back. Without CAP_SYS_NICE the group stays where it
// was, and the report says why.
func TestFavourSelf(t *testing.T) {
	how, undo, err := FavourSelf(0)
	if err != nil || how == "" {
		t.Fatalf("FavourSelf(0) = %q, %v, want a description and no error", how, err)
	}
	undo()
	old, grouped, err := autogroupNice()
	if err != nil {
		t.Fatal(err)
	}
	if !grouped {
		how, undo, err := FavourSelf(3)
		undo()
		if err != nil || !strings.Contains(how, "nice +3") {
			t.Errorf("FavourSelf(3) without autogroup = %q, %v, want the children's nice +3", how, err)
		}
		return
	}
	how, undo, err = FavourSelf(3)
	if err != nil {
		t.Fatalf("FavourSelf(3): %v", err)
	}
	raised, _, err := autogroupNice()
	undo()
	if err != nil {
		t.Fatal(err)
	}
	back, _, err := autogroupNice()
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
