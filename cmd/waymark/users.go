package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func init() {
	register("user export", "print everything stored about a user as JSON (USERNAME)", runUserExport)
	register("user delete", "erase users from every table (USERNAME...)", runUserDelete)
	register("feedback list", "list a workspace's feedback, newest first", runFeedbackList)
}

// appFailure turns an application error into a message for the operator.
func appFailure(err error) error {
	if e := waymark.AsError(err); e.Code != waymark.EInternal {
		if e.Code == waymark.EInvalidArgument {
			return usageError("%s", e.Message)
		}
		return fmt.Errorf("%s: %s", e.Code, e.Message)
	}
	return err
}

func runUserExport(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("user export", flag.ContinueOnError)
	code := fs.String("workspace", "", "workspace code (required)")
	positional, help, err := parseArgs(fs, "USERNAME", args, stdout)
	if help || err != nil {
		return err
	}
	if *code == "" || len(positional) != 1 {
		return usageError("user export: give --workspace CODE and one USERNAME")
	}
	graph, ws, err := openWorkspace(ctx, g, *code)
	if err != nil {
		return err
	}
	export, err := graph.Service.ExportOf(ctx, ws, &service.ExportRequest{Username: positional[0]})
	if err != nil {
		return appFailure(err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(export)
}

func runUserDelete(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("user delete", flag.ContinueOnError)
	code := fs.String("workspace", "", "workspace code (required)")
	asJSON := fs.Bool("json", false, "print JSON")
	positional, help, err := parseArgs(fs, "USERNAME...", args, stdout)
	if help || err != nil {
		return err
	}
	if *code == "" || len(positional) == 0 {
		return usageError("user delete: give --workspace CODE and at least one USERNAME")
	}
	graph, ws, err := openWorkspace(ctx, g, *code)
	if err != nil {
		return err
	}
	total := service.EraseResult{}
	for start := 0; start < len(positional); start += service.MaxErasePerCall {
		batch := positional[start:min(start+service.MaxErasePerCall, len(positional))]
		res, err := graph.Service.EraseOf(ctx, ws, &service.EraseRequest{Usernames: batch})
		if err != nil {
			return appFailure(err)
		}
		total.Users += res.Users
		total.Items += res.Items
		total.Attachments += res.Attachments
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(total)
	}
	_, err = fmt.Fprintf(stdout, "erased %d of %d users (%d items, %d attachment files)\n", total.Users, len(positional), total.Items, total.Attachments)
	return err
}

func runFeedbackList(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("feedback list", flag.ContinueOnError)
	code := fs.String("workspace", "", "workspace code (required)")
	since := fs.String("since", "", "only feedback from this RFC 3339 time on")
	limit := fs.Int("limit", 0, "at most this many items (0: all)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if *code == "" {
		return usageError("feedback list: --workspace is required")
	}
	graph, ws, err := openWorkspace(ctx, g, *code)
	if err != nil {
		return err
	}
	items := []service.FeedbackItem{}
	q := service.FeedbackQuery{Since: *since, Limit: fmt.Sprint(service.MaxFeedbackPage)}
	for pages := 1; ; pages++ {
		page, err := graph.Service.FeedbackOf(ctx, ws, q)
		if err != nil {
			return appFailure(err)
		}
		items = append(items, page.Items...)
		if *limit > 0 && len(items) >= *limit {
			items = items[:*limit]
			break
		}
		if page.NextCursor == "" {
			break
		}
		// A long listing tells the operator it is progressing.
		fmt.Fprintf(stderr, "… %d items so far\n", len(items))
		q.Cursor = page.NextCursor
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(items)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CREATED\tUSER\tRATING\tCATEGORY\tTEXT")
	for _, it := range items {
		rating := ""
		if it.Rating != nil {
			rating = fmt.Sprint(*it.Rating)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", it.CreatedAt, it.Username, rating, it.Category, oneLine(it.Text, 60))
	}
	return tw.Flush()
}

// oneLine shortens text to one line of at most n characters for a table.
func oneLine(text string, n int) string {
	runes := []rune(text)
	for i, r := range runes {
		if r == '\n' || r == '\r' || r == '\t' {
			runes[i] = ' '
		}
	}
	if len(runes) > n {
		return string(runes[:n-1]) + "…"
	}
	return string(runes)
}
