package technician

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/liggare/liggare/firmware-bridge/serialport"
)

// list prints the machine's serial ports, then, for each DIR given, the
// symbolic links in it that lead to a terminal device (a simulator's
// --link, a udev rule's own name).
func list(args []string, out, stderr io.Writer) error {
	fs := newFlags("list", "[DIR...]", stderr)
	dirs, err := parseArgs(fs, args, 0, 1<<20)
	if err != nil {
		return err
	}
	ports, err := serialport.List()
	if err != nil {
		return err
	}
	for _, dir := range dirs {
		links, err := ttyLinks(dir)
		if err != nil {
			return err
		}
		ports = append(ports, links...)
	}
	if len(ports) == 0 {
		fmt.Fprintln(out, "no serial ports found (is the reader plugged in? dmesg shows what the kernel saw)")
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PORT\tKIND\tDEVICE")
	for _, p := range ports {
		target := ""
		if p.Target != "" {
			target = "-> " + p.Target
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", p.Path, p.Kind, target)
	}
	return tw.Flush()
}

// ttyLinks returns the symbolic links in dir that resolve to a character
// device, as serialport.Info of kind "link".
func ttyLinks(dir string) ([]serialport.Info, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	var out []serialport.Info
	for _, e := range entries {
		if e.Type()&os.ModeSymlink == 0 {
			continue
		}
		p := filepath.Join(dir, e.Name())
		target, err := filepath.EvalSymlinks(p)
		if err != nil {
			continue // dangling: the device is gone (a reader unplugged)
		}
		if fi, err := os.Stat(target); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
			continue
		}
		out = append(out, serialport.Info{Path: p, Target: target, Kind: "link"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}
