package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"text/tabwriter"

	"github.com/covid-backend/covid-backend/command"
	"github.com/covid-backend/covid-backend/node"
)

func members(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("members: want list, add, remove or transfer-leadership")
	}
	var id, raftAddr, httpAddr string
	idFlag := func(fs *flag.FlagSet) { fs.StringVar(&id, "id", "", requiredMark+"node id") }
	switch args[0] {
	case "list":
		var asJSON bool
		c, err := subcommand("members list", args[1:], jsonFlag(&asJSON))
		if err != nil {
			return err
		}
		var out struct{ Members []node.Member }
		if err := c.do(ctx, http.MethodGet, node.PathMembers, nil, &out); err != nil {
			return err
		}
		if asJSON {
			return printJSON(stdout, out)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tRAFT\tHTTP\tSUFFRAGE\tLEADER")
		for _, m := range out.Members {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", m.ID, m.RaftAddr, m.HTTPAddr, m.Suffrage, m.Leader)
		}
		return tw.Flush()
	case "add":
		var version uint
		var nonvoter bool
		c, err := subcommand("members add", args[1:], func(fs *flag.FlagSet) {
			fs.BoolVar(&nonvoter, "nonvoter", false, "add it as a read-only edge node (serves reads, forwards writes, never counts toward quorum)")
			idFlag(fs)
			fs.StringVar(&raftAddr, "raft-addr", "", requiredMark+"raft address of the new member")
			fs.StringVar(&httpAddr, "http-addr", "", requiredMark+"HTTP address of the new member")
			fs.UintVar(&version, "command-version", command.Version, "the newest command version the new member's build applies (covid-node version tells)")
		})
		if err != nil {
			return err
		}
		req := node.JoinRequest{ID: id, RaftAddr: raftAddr, HTTPAddr: httpAddr, CommandVersion: uint32(version), Edge: nonvoter}
		if err := c.do(ctx, http.MethodPost, node.PathMembers, req, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s\n", id)
		return nil
	case "remove":
		c, err := subcommand("members remove", args[1:], idFlag)
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodDelete, node.PathMembers+"/"+url.PathEscape(id), nil, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", id)
		return nil
	case "promote":
		c, err := subcommand("members promote", args[1:], idFlag)
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodPost, node.PathMembers+"/promote", map[string]string{"id": id}, nil); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now votes\n", id)
		return nil
	case "transfer-leadership":
		c, err := subcommand("members transfer-leadership", args[1:], func(fs *flag.FlagSet) {
			fs.StringVar(&id, "id", "", "the member to lead (none: the one raft picks)")
		})
		if err != nil {
			return err
		}
		if err := c.do(ctx, http.MethodPost, node.PathMembers+"/transfer-leadership", map[string]string{"id": id}, nil); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "leadership transferred")
		return nil
	}
	return fmt.Errorf("members: unknown subcommand %q", args[0])
}
