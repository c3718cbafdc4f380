package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// entry is a command's lines in the usage table: the one that names it
// and its subcommands, and those under it.
func entry(name string) string {
	var out []string
	for _, l := range strings.Split(usage, "\n") {
		switch {
		case strings.HasPrefix(l, "  "+name+" ") || l == "  "+name:
			out = append(out, l)
		case len(out) > 0 && strings.HasPrefix(l, "    "):
			out = append(out, l)
		case len(out) > 0:
			return strings.Join(out, "\n")
		}
	}
	return strings.Join(out, "\n")
}

// hasSubcommands tells whether the usage table lists subcommands of name
// (members list|add|…).
func hasSubcommands(name string) bool {
	fields := strings.Fields(entry(name))
	return len(fields) > 1 && strings.Contains(fields[1], "|")
}

// isHelp tells whether an argument asks for help.
func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "help" }

// commandHelp prints what a command with subcommands does and lists them.
func commandHelp(w io.Writer, name string) {
	fmt.Fprintf(w, "usage: covid-node %s <subcommand> [flags]\n\n%s\n\nRun 'covid-node %s <subcommand> -h' for the flags of a subcommand.\n",
		name, entry(name), name)
}

// describe gives a flag set a usage that says what its command does
// (from the usage table) before its flags.
func describe(fs *flag.FlagSet, name string) {
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "usage: covid-node %s [flags]\n", name)
		if e := entry(strings.Fields(name)[0]); e != "" {
			fmt.Fprintf(w, "\n%s\n", e)
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
	}
}
