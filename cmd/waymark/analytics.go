package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/waymarkhq/waymark/internal/analytics"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func init() {
	register("analytics", "content analytics: every item's totals, or one item's report (--content K --id ID)", runAnalytics)
	register("analytics report", "write a self-contained HTML page of every content item's charts", runAnalyticsReport)
}

// dayRangeFlags are the --from and --to of a report's UTC days.
func dayRangeFlags(fs *flag.FlagSet) (from, to *string) {
	return fs.String("from", "", "first day (YYYY-MM-DD; default 29 days before --to: 30 days)"),
		fs.String("to", "", "last day (YYYY-MM-DD; default today, UTC)")
}

func runAnalytics(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analytics", flag.ContinueOnError)
	code := fs.String("workspace", "", "workspace code (required)")
	kind := fs.String("content", "", "content kind: tour, hint, announcement, checklist or survey")
	id := fs.String("id", "", "content id (with --content): that item's report")
	from, to := dayRangeFlags(fs)
	asJSON := fs.Bool("json", false, "print the server API's JSON")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if *code == "" {
		return usageError("analytics: --workspace is required")
	}
	graph, ws, err := openWorkspace(ctx, g, *code)
	if err != nil {
		return err
	}
	result, err := graph.Service.AnalyticsOf(ctx, ws, service.AnalyticsQuery{Content: *kind, ContentID: *id, From: *from, To: *to})
	if err != nil {
		return appFailure(err)
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(result)
	}
	switch r := result.(type) {
	case service.AnalyticsList:
		printList(stdout, r)
	case *waymark.ContentAnalytics:
		printReport(stdout, r)
	}
	return nil
}

func printList(w io.Writer, list service.AnalyticsList) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KIND\tID\tUSERS BY ACTION")
	for _, c := range list.Contents {
		line := ""
		for _, a := range waymark.ActionsOf(waymark.Kind(c.Content)) {
			line += fmt.Sprintf("%s %d  ", a, c.Totals[a])
		}
		if c.Displays != nil {
			line += fmt.Sprintf("displays %d", *c.Displays)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", c.Content, c.ContentID, line)
	}
	tw.Flush()
}

// printReport prints one item's tables, each count with a bar scaled to
// the table's largest.
func printReport(w io.Writer, r *waymark.ContentAnalytics) {
	fmt.Fprintf(w, "%s %s, %s to %s (UTC)\n\n", r.Content, r.ContentID, r.From, r.To)
	table := func(title string, keys []string, values map[string]int64) {
		var largest int64
		for _, k := range keys {
			largest = max(largest, values[k])
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "%s\tUSERS\t\n", title)
		for _, k := range keys {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", k, values[k], analytics.Bar(values[k], largest, 40))
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	table("ACTION", waymark.ActionsOf(waymark.Kind(r.Content)), r.Totals)
	if r.Displays != nil {
		fmt.Fprintf(w, "displays: %d\n\n", *r.Displays)
	}
	if len(r.Steps) > 0 {
		table("STEP", analytics.FunnelOrder(r.Steps), r.Steps)
	}
	if len(r.Items) > 0 {
		table("ITEM", analytics.SortedKeys(r.Items), r.Items)
	}
	if len(r.Answers) > 0 {
		table("ANSWER", analytics.SortedKeys(r.Answers), r.Answers)
		if r.NPS != nil {
			fmt.Fprintf(w, "NPS: %d\n\n", *r.NPS)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	actions := waymark.ActionsOf(waymark.Kind(r.Content))
	fmt.Fprint(tw, "DAY")
	for _, a := range actions {
		fmt.Fprintf(tw, "\t%s", a)
	}
	fmt.Fprintln(tw)
	for _, d := range r.Days {
		line, any := fmt.Sprint(d["date"]), false
		for _, a := range actions {
			n, _ := d[a].(int64)
			any = any || n != 0
			line += fmt.Sprintf("\t%d", n)
		}
		if any {
			fmt.Fprintln(tw, line)
		}
	}
	tw.Flush()
}

func runAnalyticsReport(ctx context.Context, g globals, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("analytics report", flag.ContinueOnError)
	code := fs.String("workspace", "", "workspace code (required)")
	out := fs.String("out", "", "HTML file to write (required)")
	from, to := dayRangeFlags(fs)
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if *code == "" || *out == "" {
		return usageError("analytics report: --workspace and --out are required")
	}
	graph, ws, err := openWorkspace(ctx, g, *code)
	if err != nil {
		return err
	}
	listed, err := graph.Service.AnalyticsOf(ctx, ws, service.AnalyticsQuery{})
	if err != nil {
		return appFailure(err)
	}
	var reports []*waymark.ContentAnalytics
	for _, c := range listed.(service.AnalyticsList).Contents {
		r, err := graph.Service.AnalyticsOf(ctx, ws, service.AnalyticsQuery{Content: c.Content, ContentID: c.ContentID, From: *from, To: *to})
		if err != nil {
			return appFailure(err)
		}
		reports = append(reports, r.(*waymark.ContentAnalytics))
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	if err := analytics.WriteReport(f, ws.Code, reports); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "wrote %s (%d content items)\n", *out, len(reports))
	return err
}
