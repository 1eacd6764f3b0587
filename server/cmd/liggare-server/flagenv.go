package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// flagSet is a flag.FlagSet whose flags may also come from the environment:
// a flag given on the command line wins, then its variable, then its
// default. A secret's variable may instead name a file holding the value
// (VAR_FILE), so that the value stays out of the process environment and
// unit files. The same table documents both (deploy/README.md, checked by a
// test), so documentation and code cannot drift apart.
type flagSet struct {
	*flag.FlagSet
	env    map[string]string // flag name -> variable
	secret map[string]bool   // flag name -> VAR_FILE is read too
}

func newFlagSet(name string) *flagSet {
	f := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), env: map[string]string{}, secret: map[string]bool{}}
	f.Usage = func() {
		fmt.Fprintf(f.Output(), "Usage of %s:\n", f.Name())
		f.printDefaults(f.Output())
	}
	return f
}

// bind lets the environment variable set the flag.
func (f *flagSet) bind(name, variable string) {
	if f.Lookup(name) == nil {
		panic("bind: no flag " + name)
	}
	f.env[name] = variable
}

// bindSecret is bind for a secret: VARIABLE_FILE may name a file holding it.
func (f *flagSet) bindSecret(name, variable string) {
	f.bind(name, variable)
	f.secret[name] = true
}

// parse parses args, then fills the flags not given from the environment.
func (f *flagSet) parse(args []string, getenv func(string) string) error {
	if err := f.Parse(args); err != nil {
		return err
	}
	given := map[string]bool{}
	f.Visit(func(fl *flag.Flag) { given[fl.Name] = true })
	for name, variable := range f.env {
		if given[name] {
			continue
		}
		v := getenv(variable)
		if v == "" && f.secret[name] {
			if path := getenv(variable + "_FILE"); path != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					return fmt.Errorf("%s_FILE: %w", variable, err)
				}
				v = strings.TrimSpace(string(b))
			}
		}
		if v == "" {
			continue
		}
		if err := f.Set(name, v); err != nil {
			return fmt.Errorf("%s=%q: %w", variable, v, err)
		}
	}
	return nil
}

// variables names the flag's environment variables, for documentation.
func (f *flagSet) variables(name string) []string {
	v, ok := f.env[name]
	if !ok {
		return nil
	}
	if f.secret[name] {
		return []string{v, v + "_FILE"}
	}
	return []string{v}
}

func (f *flagSet) printDefaults(w io.Writer) {
	f.VisitAll(func(fl *flag.Flag) {
		fmt.Fprintf(w, "  --%s", fl.Name)
		if vars := f.variables(fl.Name); len(vars) > 0 {
			fmt.Fprintf(w, " (env %s)", strings.Join(vars, ", "))
		}
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "0s" {
			fmt.Fprintf(w, " (default %s)", fl.DefValue)
		}
		fmt.Fprintf(w, "\n    \t%s\n", fl.Usage)
	})
}

// markdown renders the flags as a Markdown table: flag, environment,
// default, meaning.
func (f *flagSet) markdown() string {
	var b strings.Builder
	b.WriteString("| flag | environment | default | meaning |\n|---|---|---|---|\n")
	var names []string
	f.VisitAll(func(fl *flag.Flag) { names = append(names, fl.Name) })
	sort.Strings(names)
	for _, name := range names {
		fl := f.Lookup(name)
		var vars []string
		for _, v := range f.variables(name) {
			vars = append(vars, "`"+v+"`")
		}
		def := ""
		if fl.DefValue != "" && fl.DefValue != "false" && fl.DefValue != "0" && fl.DefValue != "0s" {
			def = "`" + fl.DefValue + "`"
		}
		fmt.Fprintf(&b, "| `--%s` | %s | %s | %s |\n", name, strings.Join(vars, ", "), def,
			strings.ReplaceAll(fl.Usage, "|", `\|`))
	}
	return b.String()
}
