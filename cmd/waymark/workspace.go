package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// openStore connects to the stack the global flags name.
func openStore(ctx context.Context, g globals) (*dynamo.Store, error) {
	if !g.local {
		return nil, usageError("name the stack: --local for the one `make dev` runs (deployed stacks are reached through the server API)")
	}
	dir, err := stateDir()
	if err != nil {
		return nil, err
	}
	state, err := devstack.Load(dir)
	if err != nil {
		return nil, err
	}
	graph, err := wiring.New(ctx, state.Config(), wiring.Logger(io.Discard, "error"))
	if err != nil {
		return nil, err
	}
	return graph.Store, nil
}

type createdWorkspace struct {
	Code       string `json:"code"`
	HMACSecret string `json:"hmacSecret"`
	SecretKey  string `json:"secretKey"`
}

func init() {
	register("workspace create", "create a workspace; print its code, HMAC secret and a server key", runWorkspaceCreate)
}

func runWorkspaceCreate(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace create", flag.ContinueOnError)
	name := fs.String("name", "", "display name of the workspace (required)")
	verify := fs.Bool("identity-verification", false, "require an HMAC of the username on every call")
	origins := fs.String("origins", "", "comma-separated allow-list of browser origins (empty: any)")
	retention := fs.Int("retention", 0, "days of inactivity after which a user's data expires (0: kept)")
	asJSON := fs.Bool("json", false, "print JSON")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if *name == "" {
		return usageError("workspace create: --name is required")
	}
	var originList []string
	if *origins != "" {
		originList = strings.Split(*origins, ",")
	}
	ws, key, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{
		Name: *name, IdentityVerification: *verify, Origins: originList, RetentionDays: *retention,
	}, time.Now())
	if err != nil {
		return usageError("workspace create: %s", waymark.AsError(err).Message)
	}
	store, err := openStore(ctx, g)
	if err != nil {
		return err
	}
	if err := store.PutWorkspace(ctx, ws); err != nil {
		return fmt.Errorf("create workspace: %w", err)
	}
	out := createdWorkspace{Code: ws.Code, HMACSecret: ws.HMACSecret, SecretKey: key}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	_, err = fmt.Fprintf(stdout, "workspace:    %s\nhmac secret:  %s\nsecret key:   %s\n\nThe secret key is shown only now; store it safely.\n", out.Code, out.HMACSecret, out.SecretKey)
	return err
}
