package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
)

// list prints an admin answer for people, as tables, or with --json as
// the API gave it, for scripts.
func list(ctx context.Context, name, path string, args []string, stdout io.Writer) error {
	var asJSON bool
	c, err := subcommand(name, args, jsonFlag(&asJSON))
	if err != nil {
		return err
	}
	var out json.RawMessage
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return err
	}
	if asJSON {
		return printJSON(stdout, out)
	}
	return printTables(stdout, out)
}

// jsonFlag is the --json flag of a command that prints for people.
func jsonFlag(asJSON *bool) func(*flag.FlagSet) {
	return func(fs *flag.FlagSet) {
		fs.BoolVar(asJSON, "json", false, "print the answer as JSON, for scripts, instead of tables")
	}
}

// printTables prints a JSON object for people: each list of objects in it
// as a table under its name, the rest as "name  value" lines.
func printTables(w io.Writer, raw json.RawMessage) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var top map[string]any
	if err := dec.Decode(&top); err != nil {
		return fmt.Errorf("the answer is not a JSON object: %w", err)
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range top {
			if !yield(k) {
				return
			}
		}
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	var tables []string
	for _, k := range names {
		if _, ok := objects(top[k]); ok {
			tables = append(tables, k)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\n", k, cell(top[k]))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, k := range tables {
		rows, _ := objects(top[k])
		if len(names) > 1 {
			fmt.Fprintf(w, "\n%s:\n", strings.ToUpper(k))
		}
		if err := printTable(w, rows); err != nil {
			return err
		}
	}
	return nil
}

// objects is v as a list of objects, if it is one.
func objects(v any) ([]map[string]any, bool) {
	list, ok := v.([]any)
	if !ok {
		return nil, false
	}
	rows := make([]map[string]any, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, false
		}
		rows = append(rows, m)
	}
	return rows, true
}

// leading are the columns that name a row, shown first when present.
var leading = []string{"id", "name", "email", "region", "origin", "issuer", "provider", "kind"}

// printTable prints rows under a header of their keys, those that name a
// row first, then the others in order.
func printTable(w io.Writer, rows []map[string]any) error {
	if len(rows) == 0 {
		_, err := fmt.Fprintln(w, "(none)")
		return err
	}
	var cols []string
	for _, r := range rows {
		for k := range r {
			if !slices.Contains(cols, k) {
				cols = append(cols, k)
			}
		}
	}
	slices.SortFunc(cols, func(a, b string) int {
		ia, ib := slices.Index(leading, a), slices.Index(leading, b)
		switch {
		case ia >= 0 && ib >= 0:
			return ia - ib
		case ia >= 0:
			return -1
		case ib >= 0:
			return 1
		}
		return strings.Compare(a, b)
	})
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.ToUpper(strings.Join(cols, "\t")))
	for _, r := range rows {
		vals := make([]string, len(cols))
		for i, c := range cols {
			vals[i] = cell(r[c])
		}
		fmt.Fprintln(tw, strings.Join(vals, "\t"))
	}
	return tw.Flush()
}

// cell is a value as a table shows it: text as it is, nothing for null,
// lists of text joined by commas, anything else as compact JSON.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		return fmt.Sprint(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				b, _ := json.Marshal(v)
				return string(b)
			}
			parts[i] = s
		}
		return strings.Join(parts, ",")
	}
	b, _ := json.Marshal(v)
	return string(b)
}
