// Package flagenvtest checks a command's flag documentation against its
// flagenv.FlagSets, from the command's tests.
package flagenvtest

import (
	"os"
	"strings"
	"testing"

	"github.com/liggare/liggare/internal/flagenv"
)

// CheckREADME checks that the Markdown file at path documents each flag set
// between its markers, "<!-- BEGIN flags NAME -->" and "<!-- END flags NAME
// -->", exactly as Markdown renders it; with update it rewrites the tables
// instead. A command's test calls it with the sets the file documents.
func CheckREADME(t testing.TB, path string, sets map[string]*flagenv.FlagSet, update bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for name, f := range sets {
		begin, end := "<!-- BEGIN flags "+name+" -->\n", "<!-- END flags "+name+" -->"
		i := strings.Index(text, begin)
		j := strings.Index(text, end)
		if i < 0 || j < i {
			t.Errorf("%s: no section %q ... %q", path, begin, end)
			continue
		}
		got, want := text[i+len(begin):j], f.Markdown()
		if got == want {
			continue
		}
		if update {
			text = text[:i+len(begin)] + want + text[j:]
			continue
		}
		t.Errorf("%s: the flags of %s are not as documented (go test -run TestREADMEFlags -update rewrites them)\ngot:\n%s\nwant:\n%s",
			path, name, got, want)
	}
	if update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
