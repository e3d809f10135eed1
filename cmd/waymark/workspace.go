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

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/deployed"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

func init() {
	register("workspace create", "create a workspace; print its code, HMAC secret and a server key", runWorkspaceCreate)
	register("workspace list", "list the workspaces", runWorkspaceList)
	register("workspace show", "show one workspace (CODE)", runWorkspaceShow)
	register("workspace update", "change origins, identity verification, its HMAC message form or retention (CODE)", runWorkspaceUpdate)
	register("workspace rotate-hmac", "replace the identity-verification secret (CODE)", runWorkspaceRotateHMAC)
	register("workspace add-key", "add a server API key (CODE)", runWorkspaceAddKey)
	register("workspace revoke-key", "revoke a server API key (CODE KEY_ID)", runWorkspaceRevokeKey)
	register("workspace disable", "refuse every call of a workspace (CODE)", runWorkspaceDisable)
}

// openGraph connects to the stack the global flags name: the local one of
// `waymark dev`, or a deployed one through its CloudFormation outputs.
func openGraph(ctx context.Context, g globals) (*wiring.Graph, error) {
	var cfg config.Config
	if g.local {
		dir, err := stateDir()
		if err != nil {
			return nil, err
		}
		state, err := devstack.Load(dir)
		if err != nil {
			return nil, err
		}
		cfg = state.Config()
	} else {
		stack, err := deployed.Find(ctx, g.region)
		if err != nil {
			return nil, err
		}
		cfg = stack.Config
	}
	return wiring.New(ctx, cfg, wiring.Logger(io.Discard, "error"))
}

// loadWorkspace reads a workspace by code; an unknown code is a failure
// with a clear message.
func loadWorkspace(ctx context.Context, graph *wiring.Graph, code string) (*waymark.Workspace, error) {
	ws, err := graph.Store.GetWorkspace(ctx, code)
	if errors.Is(err, waymark.ErrNotFound) {
		return nil, fmt.Errorf("no workspace %q", code)
	}
	return ws, err
}

// openWorkspace connects to the stack and reads one workspace.
func openWorkspace(ctx context.Context, g globals, code string) (*wiring.Graph, *waymark.Workspace, error) {
	graph, err := openGraph(ctx, g)
	if err != nil {
		return nil, nil, err
	}
	ws, err := loadWorkspace(ctx, graph, code)
	return graph, ws, err
}

// parseCode parses the flags of a command that takes one workspace CODE.
func parseCode(fs *flag.FlagSet, args []string, stdout io.Writer) (string, bool, error) {
	positional, help, err := parseArgs(fs, "CODE", args, stdout)
	if help || err != nil {
		return "", help, err
	}
	if len(positional) != 1 {
		return "", false, usageError("%s: give exactly one workspace CODE", fs.Name())
	}
	return positional[0], false, nil
}

type createdWorkspace struct {
	Code       string `json:"code"`
	HMACSecret string `json:"hmacSecret"`
	SecretKey  string `json:"secretKey"`
}

func runWorkspaceCreate(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace create", flag.ContinueOnError)
	name := fs.String("name", "", "display name of the workspace (required)")
	verify := fs.Bool("identity-verification", false, "require an HMAC of the username on every call")
	hmacExpiration := fs.String("hmac-expiration", string(waymark.HMACExpirationRequired),
		"message form of identity verification: required (username|expiration) or none (username)")
	origins := fs.String("origins", "", "comma-separated allow-list of browser origins (empty: any)")
	retention := fs.Int("retention", 0, "days of inactivity after which a user's data expires (0: kept)")
	asJSON := fs.Bool("json", false, "print JSON")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	if *name == "" {
		return usageError("workspace create: --name is required")
	}
	ws, key, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{
		Name: *name, IdentityVerification: *verify, HMACExpiration: waymark.HMACExpiration(*hmacExpiration), Origins: splitList(*origins), RetentionDays: *retention,
	}, time.Now())
	if err != nil {
		return usageError("workspace create: %s", waymark.AsError(err).Message)
	}
	graph, err := openGraph(ctx, g)
	if err != nil {
		return err
	}
	if err := graph.Store.PutWorkspace(ctx, ws); err != nil {
		return fmt.Errorf("create workspace: %w", err)
	}
	out := createdWorkspace{Code: ws.Code, HMACSecret: ws.HMACSecret, SecretKey: key}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(out)
	}
	_, err = fmt.Fprintf(stdout, "workspace:    %s\nhmac secret:  %s\nsecret key:   %s\n\nThe secret key is shown only now; store it safely.\n", out.Code, out.HMACSecret, out.SecretKey)
	return err
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// workspaceView is what the CLI shows of a workspace: never its secrets.
type workspaceView struct {
	Code                 string    `json:"code"`
	Name                 string    `json:"name"`
	CreatedAt            string    `json:"createdAt"`
	IdentityVerification bool      `json:"identityVerification"`
	HMACExpiration       string    `json:"hmacExpiration"`
	Origins              []string  `json:"origins"`
	RetentionDays        int       `json:"retentionDays"`
	Disabled             bool      `json:"disabled"`
	Keys                 []keyView `json:"keys"`
	// AllowedProps and AllowedGroupProps are the prop keys stored (data
	// minimization); empty: any.
	AllowedProps      []string `json:"allowedProps"`
	AllowedGroupProps []string `json:"allowedGroupProps"`
	// Webhook shows where deliveries go, never the signing secret.
	Webhook *webhookView `json:"webhook,omitempty"`
}

type keyView struct {
	ID        string `json:"id"`
	CreatedAt string `json:"createdAt"`
	RevokedAt string `json:"revokedAt,omitempty"`
}

func viewOf(ws *waymark.Workspace) workspaceView {
	v := workspaceView{Code: ws.Code, Name: ws.Name, CreatedAt: waymark.FormatTime(ws.CreatedAt), IdentityVerification: ws.IdentityVerification,
		HMACExpiration: string(ws.HMACExpiration), Origins: append([]string{}, ws.Origins...), RetentionDays: ws.RetentionDays, Disabled: ws.Disabled, Keys: []keyView{},
		AllowedProps: append([]string{}, ws.AllowedProps...), AllowedGroupProps: append([]string{}, ws.AllowedGroupProps...)}
	if ws.Webhook != nil {
		v.Webhook = &webhookView{URL: ws.Webhook.URL, Format: string(ws.Webhook.Format)}
	}
	for _, k := range ws.Keys {
		v.Keys = append(v.Keys, keyView{ID: k.ID, CreatedAt: waymark.FormatTime(k.CreatedAt), RevokedAt: waymark.FormatTime(k.RevokedAt)})
	}
	return v
}

func printWorkspace(stdout io.Writer, ws *waymark.Workspace, asJSON bool) error {
	v := viewOf(ws)
	if asJSON {
		return json.NewEncoder(stdout).Encode(v)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	origins := strings.Join(v.Origins, ", ")
	if origins == "" {
		origins = "(any)"
	}
	retention := "kept"
	if v.RetentionDays > 0 {
		retention = fmt.Sprintf("%d days of inactivity", v.RetentionDays)
	}
	hmacMessage := fmt.Sprintf("%s (expiration %s)", ws.HMACExpiration.Message(), ws.HMACExpiration)
	if ws.HMACExpiration == waymark.HMACExpirationOptional {
		hmacMessage += "; legacy: a user named \"a|9\" can sign in as \"a\", choose required or none"
	}
	fmt.Fprintf(tw, "code\t%s\nname\t%s\ncreated\t%s\nidentity verification\t%v\nhmac message\t%s\norigins\t%s\nretention\t%s\ndisabled\t%v\n",
		v.Code, v.Name, v.CreatedAt, v.IdentityVerification, hmacMessage, origins, retention, v.Disabled)
	fmt.Fprintf(tw, "allowed props\t%s\nallowed group props\t%s\n", allowListText(v.AllowedProps), allowListText(v.AllowedGroupProps))
	if v.Webhook != nil {
		fmt.Fprintf(tw, "webhook\t%s (%s)\n", v.Webhook.URL, v.Webhook.Format)
	}
	for _, k := range v.Keys {
		state := "active"
		if k.RevokedAt != "" {
			state = "revoked " + k.RevokedAt
		}
		fmt.Fprintf(tw, "key %s\tcreated %s, %s\n", k.ID, k.CreatedAt, state)
	}
	return tw.Flush()
}

func runWorkspaceList(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace list", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	if help, err := parseFlags(fs, args, stdout); help || err != nil {
		return err
	}
	graph, err := openGraph(ctx, g)
	if err != nil {
		return err
	}
	all, err := graph.Store.ListWorkspaces(ctx)
	if err != nil {
		return err
	}
	views := make([]workspaceView, 0, len(all))
	for _, ws := range all {
		views = append(views, viewOf(ws))
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(views)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CODE\tNAME\tVERIFICATION\tORIGINS\tRETENTION\tDISABLED")
	for _, v := range views {
		fmt.Fprintf(tw, "%s\t%s\t%v\t%d\t%d\t%v\n", v.Code, v.Name, v.IdentityVerification, len(v.Origins), v.RetentionDays, v.Disabled)
	}
	return tw.Flush()
}

func runWorkspaceShow(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace show", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	_, ws, err := openWorkspace(ctx, g, code)
	if err != nil {
		return err
	}
	return printWorkspace(stdout, ws, *asJSON)
}

// changeWorkspace reads a workspace, lets change alter it and writes it back
// over the version read, so two operators cannot overwrite each other.
func changeWorkspace(ctx context.Context, g globals, code string, change func(*waymark.Workspace) error) (*waymark.Workspace, error) {
	graph, ws, err := openWorkspace(ctx, g, code)
	if err != nil {
		return nil, err
	}
	if err := change(ws); err != nil {
		return nil, err
	}
	if err := graph.Store.PutWorkspace(ctx, ws); err != nil {
		if errors.Is(err, waymark.ErrConflict) {
			return nil, fmt.Errorf("workspace %q changed meanwhile; run the command again", code)
		}
		return nil, err
	}
	return ws, nil
}

func runWorkspaceUpdate(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace update", flag.ContinueOnError)
	origins := fs.String("origins", "", "comma-separated allow-list of browser origins; \"-\" empties it (any origin)")
	verify := fs.String("identity-verification", "", "on or off")
	hmacExpiration := fs.String("hmac-expiration", "", "message form of identity verification: required (username|expiration), none (username) or optional (both; legacy, ambiguous)")
	retention := fs.Int("retention", -1, "days of inactivity after which a user's data expires (0: kept)")
	var allowedProps, allowedGroupProps allowListFlag
	fs.Var(&allowedProps, "allowed-props", "comma-separated user prop keys stored; others are ignored (\"\" or \"-\": any)")
	fs.Var(&allowedGroupProps, "allowed-group-props", "comma-separated group prop keys stored; others are ignored (\"\" or \"-\": any)")
	hook := webhookFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	for _, f := range []*allowListFlag{&allowedProps, &allowedGroupProps} {
		if f.err != nil {
			return usageError("workspace update: %s", waymark.AsError(f.err).Message)
		}
	}
	if hook.given(fs) {
		if *origins != "" || *verify != "" || *hmacExpiration != "" || *retention >= 0 || allowedProps.set || allowedGroupProps.set {
			return usageError("workspace update: change the webhook in a command of its own")
		}
		return runWebhookUpdate(ctx, g, code, hook, stdout, *asJSON)
	}
	if *verify != "" && *verify != "on" && *verify != "off" {
		return usageError("workspace update: --identity-verification takes on or off")
	}
	var expiration waymark.HMACExpiration
	if *hmacExpiration != "" {
		if expiration, err = waymark.ParseHMACExpiration(*hmacExpiration); err != nil {
			return usageError("workspace update: --hmac-expiration takes required, none or optional")
		}
	}
	if *origins == "" && *verify == "" && expiration == "" && *retention < 0 && !allowedProps.set && !allowedGroupProps.set {
		return usageError("workspace update: nothing to change (--origins, --identity-verification, --hmac-expiration, --retention, --allowed-props, --allowed-group-props)")
	}
	ws, err := changeWorkspace(ctx, g, code, func(ws *waymark.Workspace) error {
		switch *origins {
		case "":
		case "-":
			ws.Origins = nil
		default:
			normalized, err := waymark.NormalizeOrigins(splitList(*origins))
			if err != nil {
				return usageError("workspace update: %s", waymark.AsError(err).Message)
			}
			ws.Origins = normalized
		}
		if *verify != "" {
			ws.IdentityVerification = *verify == "on"
		}
		if expiration != "" {
			ws.HMACExpiration = expiration
		}
		if *retention >= 0 {
			ws.RetentionDays = *retention
		}
		if allowedProps.set {
			ws.AllowedProps = allowedProps.keys
		}
		if allowedGroupProps.set {
			ws.AllowedGroupProps = allowedGroupProps.keys
		}
		return nil
	})
	if err != nil {
		return err
	}
	return printWorkspace(stdout, ws, *asJSON)
}

func runWorkspaceRotateHMAC(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace rotate-hmac", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	var secret string
	if _, err := changeWorkspace(ctx, g, code, func(ws *waymark.Workspace) error {
		secret = ws.RotateHMACSecret()
		return nil
	}); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"code": code, "hmacSecret": secret})
	}
	_, err = fmt.Fprintf(stdout, "new hmac secret: %s\nCalls signed with the old secret are refused from now on (within 30 s on warm functions).\n", secret)
	return err
}

func runWorkspaceAddKey(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace add-key", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print JSON")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	var key, id string
	if _, err := changeWorkspace(ctx, g, code, func(ws *waymark.Workspace) error {
		key = ws.AddKey(time.Now())
		id = ws.Keys[len(ws.Keys)-1].ID
		return nil
	}); err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"code": code, "keyId": id, "secretKey": key})
	}
	_, err = fmt.Fprintf(stdout, "key id:      %s\nsecret key:  %s\n\nThe secret key is shown only now; store it safely.\n", id, key)
	return err
}

func runWorkspaceRevokeKey(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace revoke-key", flag.ContinueOnError)
	positional, help, err := parseArgs(fs, "CODE KEY_ID", args, stdout)
	if help || err != nil {
		return err
	}
	if len(positional) != 2 {
		return usageError("workspace revoke-key: give the workspace CODE and the KEY_ID")
	}
	if _, err := changeWorkspace(ctx, g, positional[0], func(ws *waymark.Workspace) error {
		if err := ws.RevokeKey(positional[1], time.Now()); err != nil {
			return usageError("workspace revoke-key: %s", waymark.AsError(err).Message)
		}
		return nil
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "key %s revoked\n", positional[1])
	return err
}

func runWorkspaceDisable(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace disable", flag.ContinueOnError)
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	if _, err := changeWorkspace(ctx, g, code, func(ws *waymark.Workspace) error {
		ws.Disabled = true
		return nil
	}); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "workspace %s disabled: every call answers 403 workspace_disabled (within 30 s on warm functions)\n", code)
	return err
}

// allowListFlag is an allow-list of prop keys given on the command line:
// whether it was given at all (an empty one allows any key), and the keys.
type allowListFlag struct {
	set  bool
	keys waymark.AllowList
	err  error
}

func (f *allowListFlag) String() string { return strings.Join(f.keys, ",") }

func (f *allowListFlag) Set(s string) error {
	f.set, f.keys, f.err = true, nil, nil
	if s == "-" {
		return nil
	}
	f.keys, f.err = waymark.ValidateAllowList("allowed props", splitList(s))
	return nil
}

func allowListText(keys []string) string {
	if len(keys) == 0 {
		return "(any)"
	}
	return strings.Join(keys, ", ")
}
