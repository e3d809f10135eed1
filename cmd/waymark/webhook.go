package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/waymarkhq/waymark/internal/waymark"
)

func init() {
	register("workspace rotate-webhook-secret", "replace the secret that signs webhook deliveries (CODE)", runWorkspaceRotateWebhookSecret)
	register("workspace deliveries", "list the parked webhook deliveries (CODE)", runWorkspaceDeliveries)
	register("workspace redeliver", "queue a parked webhook delivery again, with its id (CODE DELIVERY_ID)", runWorkspaceRedeliver)
}

type webhookView struct {
	URL    string `json:"url"`
	Format string `json:"format"`
}

// webhookOptions are the webhook flags of `workspace update`.
type webhookOptions struct {
	url, format *string
}

func webhookFlags(fs *flag.FlagSet) webhookOptions {
	return webhookOptions{
		url:    fs.String("webhook-url", "", "deliver new feedback to this https:// URL (prints a new signing secret); \"\" removes the webhook"),
		format: fs.String("webhook-format", "", "body of the deliveries: json (default, signed document) or slack (incoming webhook)"),
	}
}

// given says whether a webhook flag was on the command line (an empty
// --webhook-url is a request too: remove the webhook).
func (o webhookOptions) given(fs *flag.FlagSet) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "webhook-url" || f.Name == "webhook-format" })
	return set
}

func runWebhookUpdate(ctx context.Context, g globals, code string, o webhookOptions, stdout io.Writer, asJSON bool) error {
	format, err := waymark.ParseWebhookFormat(*o.format)
	if err != nil {
		return usageError("workspace update: --webhook-format takes json or slack")
	}
	if !g.local && strings.HasPrefix(strings.ToLower(*o.url), "http://") {
		// The deployed deliverer would refuse it at every attempt.
		return usageError("workspace update: a deployed stack delivers to https:// URLs only")
	}
	var secret string
	ws, err := changeWorkspace(ctx, g, code, func(ws *waymark.Workspace) error {
		if *o.url == "" && *o.format != "" && ws.Webhook != nil {
			// Only the format changes: the secret stays.
			ws.Webhook.Format = format
			return nil
		}
		s, err := ws.SetWebhook(*o.url, format)
		if err != nil {
			return usageError("workspace update: %s", waymark.AsError(err).Message)
		}
		secret = s
		return nil
	})
	if err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(stdout).Encode(map[string]any{"workspace": viewOf(ws), "webhookSecret": secret})
	}
	if err := printWorkspace(stdout, ws, false); err != nil {
		return err
	}
	switch {
	case secret != "":
		_, err = fmt.Fprintf(stdout, "\nwebhook signing secret: %s\nIt is shown only now; the receiver verifies waymark-signature with it (docs/webhooks.md).\n", secret)
	case ws.Webhook == nil:
		_, err = fmt.Fprintln(stdout, "\nwebhook removed: new feedback is no longer delivered")
	}
	return err
}

func runWorkspaceRotateWebhookSecret(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace rotate-webhook-secret", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	var secret string
	if _, err := changeWorkspace(ctx, g, code, func(ws *waymark.Workspace) error {
		s, err := ws.RotateWebhookSecret()
		if err != nil {
			return usageError("workspace rotate-webhook-secret: %s", waymark.AsError(err).Message)
		}
		secret = s
		return nil
	}); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"code": code, "webhookSecret": secret})
	}
	_, err = fmt.Fprintf(stdout, "new webhook signing secret: %s\nDeliveries are signed with it from the next attempt on.\n", secret)
	return err
}

type deliveryView struct {
	ID        string `json:"id"`
	FirstAt   string `json:"firstAt"`
	ParkedAt  string `json:"parkedAt"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"lastError"`
}

func runWorkspaceDeliveries(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace deliveries", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	graph, _, err := openWorkspace(ctx, g, code)
	if err != nil {
		return err
	}
	parked, err := graph.Store.ParkedDeliveries(ctx, code)
	if err != nil {
		return err
	}
	views := make([]deliveryView, 0, len(parked))
	for _, p := range parked {
		views = append(views, deliveryView{ID: p.ID, FirstAt: waymark.FormatTime(p.FirstAt), ParkedAt: waymark.FormatTime(p.ParkedAt), Attempts: p.Attempts, LastError: p.LastError})
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(views)
	}
	if len(views) == 0 {
		_, err := fmt.Fprintln(stdout, "no parked deliveries")
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DELIVERY\tFIRST QUEUED\tPARKED\tATTEMPTS\tLAST ERROR")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", v.ID, v.FirstAt, v.ParkedAt, v.Attempts, v.LastError)
	}
	return tw.Flush()
}

func runWorkspaceRedeliver(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace redeliver", flag.ContinueOnError)
	positional, help, err := parseArgs(fs, "CODE DELIVERY_ID", args, stdout)
	if help || err != nil {
		return err
	}
	if len(positional) != 2 {
		return usageError("workspace redeliver: give the workspace CODE and the DELIVERY_ID")
	}
	code, id := positional[0], positional[1]
	graph, _, err := openWorkspace(ctx, g, code)
	if err != nil {
		return err
	}
	parked, err := graph.Store.GetParkedDelivery(ctx, code, id)
	if errors.Is(err, waymark.ErrNotFound) {
		return fmt.Errorf("no parked delivery %q in workspace %q (see workspace deliveries)", id, code)
	}
	if err != nil {
		return err
	}
	if err := graph.Store.RequeueDelivery(ctx, *parked, time.Now()); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "delivery %s queued again (same id; a new 24-hour retry window)\n", id)
	return err
}
