package main

import (
	"cmp"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/url"
	"strings"
	"text/template"

	"github.com/waymarkhq/waymark/internal/deployed"
	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/snippetjs"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func init() {
	register("workspace install-snippet", "print the browser installation of a workspace, ready to paste (CODE)", runInstallSnippet)
}

// Placeholders the customer replaces in the printed installation. They are
// strings, not code, so that a page with the installation pasted as printed
// still loads; the README says to replace them.
const (
	usernamePlaceholder = "REPLACE-WITH-THE-USERNAME"
	hashPlaceholder     = "REPLACE-WITH-THE-HASH"
	// The expiration is a number in the call; the placeholder is a string
	// so that the page fails loudly until it is replaced.
	expirationPlaceholder = "REPLACE-WITH-THE-EXPIRATION"
)

// installation is the snippet's stub-queue installation: it records the
// region's endpoint and queues the calls made before waymark.js has loaded,
// identifies the user, and loads waymark.js without blocking the page, with
// Subresource Integrity so that the browser runs those bytes or none.
// Values in the script are JSON strings, which are JavaScript string
// literals that cannot close the script element (json.Marshal escapes < and
// >); values in attributes are HTML-escaped.
var installation = template.Must(template.New("installation").Funcs(template.FuncMap{"str": jsString, "attr": html.EscapeString}).Parse(`<!-- Waymark: workspace {{.Code}}, {{.Region}} stack. Paste it into every page, in <head>. -->
<script>
  (function (w) {
    var m = (w.waymark = w.waymark || { q: [], e: {} });
    m.e.{{.Region}} = {{str .Endpoint}};
    ["init", "track", "feedback", "on", "once"].forEach(function (f) {
      m[f] = m[f] || function () { m.q.push([f, arguments]); };
    });
  })(window);
  waymark.init({{str .Code}}, {
    region: {{str .Region}},
    // The signed-in user: a unique, stable username (required); email,
    // firstname, lastname, role, signUpAt and props are optional.
    user: { username: {{str .Username}} },
{{- if .Verified}}
{{- if .SignsExpiration}}
    // Identity verification is on: your server computes, for each page,
    // hex(HMAC-SHA256(the workspace's HMAC secret, "username|expiration"))
    // with an expiration (unix seconds) at most 7 days ahead.
    hmac: { hash: {{str .Hash}}, expiration: {{str .Expiration}} },
{{- else}}
    // Identity verification is on: your server computes
    // hex(HMAC-SHA256(the workspace's HMAC secret, {{.HMACMessage}})) for the page.
    hmac: { hash: {{str .Hash}} },
{{- end}}
{{- end}}
  });
</script>
<script async src="{{attr .Script}}" integrity="{{attr .Integrity}}" crossorigin="anonymous"></script>
`))

type installationValues struct {
	Code, Region, Endpoint, Script, Integrity, Username, Hash string
	Verified                                                  bool
	// SignsExpiration is set when the workspace requires an expiration;
	// HMACMessage names the message otherwise.
	SignsExpiration         bool
	Expiration, HMACMessage string
}

func runInstallSnippet(ctx context.Context, g globals, args []string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("workspace install-snippet", flag.ContinueOnError)
	region := fs.String("region", g.region, "the stack that holds the workspace: eu or us")
	endpoint := fs.String("endpoint", "", "the API's URL (default: the stack's ApiUrl output; with --local, the running stack's API)")
	script := fs.String("script", "", "where pages load waymark.js from (default: the API's /waymark.js; a copy you host must be this version's snippet/waymark.js, which the integrity hash pins)")
	code, help, err := parseCode(fs, args, stdout)
	if help || err != nil {
		return err
	}
	if err := waymark.ValidateWorkspaceCode("code", code); err != nil {
		return usageError("workspace install-snippet: %s", waymark.AsError(err).Message)
	}
	if _, ok := deployed.Regions[*region]; !ok {
		return usageError("workspace install-snippet: --region must be eu or us")
	}

	// The workspace is read from the stack the installation will call, so
	// that a code from another region (whose data never leaves it) or a
	// typo is caught now rather than as 404s in customers' browsers.
	graph, err := openGraph(ctx, globals{local: g.local, region: *region})
	if err != nil {
		return err
	}
	ws, err := loadWorkspace(ctx, graph, code)
	if err != nil {
		return err
	}
	api := *endpoint
	if api == "" && g.local {
		dir, err := stateDir()
		if err != nil {
			return err
		}
		state, err := devstack.Load(dir)
		if err != nil {
			return err
		}
		api = state.API
	} else if api == "" {
		if api, err = stackAPIURL(ctx, *region); err != nil {
			return err
		}
	}
	if api, err = checkEndpoint(api); err != nil {
		return usageError("workspace install-snippet: %v", err)
	}
	// The stack serves the waymark.js this command was built with: the
	// integrity hash is of the embedded bytes, and the URL names their
	// version so that a browser's cached copy is never of another one.
	return installation.Execute(stdout, installationValues{
		Code: ws.Code, Region: *region, Endpoint: api, Script: cmp.Or(*script, snippetjs.URL(api)), Integrity: snippetjs.Integrity,
		Username: usernamePlaceholder, Hash: hashPlaceholder, Verified: ws.IdentityVerification,
		SignsExpiration: ws.HMACExpiration == waymark.HMACExpirationRequired, Expiration: expirationPlaceholder,
		HMACMessage: ws.HMACExpiration.Message(),
	})
}

// checkEndpoint accepts the API's base URL: HTTPS, as browsers reach the
// deployed API, or plain HTTP to a loopback address (a local stack). The
// snippet appends /v1/..., so a trailing slash is dropped.
func checkEndpoint(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return "", fmt.Errorf("--endpoint %q is not an http(s) URL", raw)
	}
	if u.Scheme == "http" && !isLoopback(u.Hostname()) {
		return "", fmt.Errorf("--endpoint %q: browsers must reach the API over HTTPS", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("--endpoint %q: give the base URL, without a query", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// stackAPIURL reads the API's URL from the outputs of the region's stack.
func stackAPIURL(ctx context.Context, short string) (string, error) {
	stack, err := deployed.Find(ctx, short)
	if err != nil {
		return "", fmt.Errorf("%w (or give --endpoint)", err)
	}
	if stack.APIURL == "" {
		return "", fmt.Errorf("stack %s has no output %s (or give --endpoint)", deployed.StackName(short), deployed.OutputAPIURL)
	}
	return stack.APIURL, nil
}

// jsString is s as a JavaScript string literal; see installation.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
