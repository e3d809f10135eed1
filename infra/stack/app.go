// Package stack builds Waymark's CDK stacks: one fully independent stack per
// region, each from the shared table schemas (internal/schema), route table
// (internal/routes) and function configuration (internal/config), so that a
// table, route or function is never repeated here by hand.
package stack

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/waymarkhq/waymark/internal/routes"
)

// Region is a region a Waymark stack can be deployed to.
type Region struct {
	// Code is how the operator names it on the command line (-c regions=eu,us)
	// and the suffix of the stack name.
	Code string
	// Name is the AWS region; it is fixed per stack, never taken from the
	// caller's profile, so that data cannot land in another region by accident.
	Name string
}

// Regions lists the regions Waymark can be deployed to, the default first.
var Regions = []Region{
	{Code: "eu", Name: "eu-central-1"},
	{Code: "us", Name: "us-east-1"},
}

// Context keys the app reads (`-c key=value` or cdk.json).
const (
	CtxRegions        = "regions"
	CtxAssetRoot      = "assetRoot"
	CtxThrottleBurst  = "throttleBurst"
	CtxThrottleRate   = "throttleRate"
	CtxAlarmEmail     = "alarmEmail"
	CtxDomainName     = "domainName"
	CtxCertificateArn = "certificateArn"
)

// Defaults of the context values. They live here rather than in cdk.json so
// that `go run ./infra`, `cdk synth` and the tests all get the same stacks.
const (
	DefaultAssetRoot = "build"
	// DefaultThrottleBurst and DefaultThrottleRate bound the whole API (all
	// routes of a stage share them): generous for a snippet that makes a few
	// calls per page view, small enough to cap the bill of a flood.
	DefaultThrottleBurst = 200
	DefaultThrottleRate  = 100
)

// StackName is the name (and CDK id) of the stack of a region; the CLI writes
// its template to cdk.out/<StackName>.template.json.
func StackName(r Region) string { return "Waymark-" + r.Code }

// options is what the stacks are built from, read from the app's context.
type options struct {
	Regions       []Region
	Account       string
	AssetRoot     string
	ThrottleBurst float64
	ThrottleRate  float64
	AlarmEmail    string
	// Domains maps a region code to its custom domain, if it has one.
	Domains map[string]domain
}

// domain is an optional custom domain of one stack's API.
type domain struct {
	Name           string
	CertificateArn string
}

// Build reads the options from the app's context, adds one stack per
// requested region and applies cdk-nag's AWS Solutions checks to all of them.
// It returns the stacks in the order of Regions.
func Build(app awscdk.App) ([]awscdk.Stack, error) {
	opts, err := optionsFromContext(app)
	if err != nil {
		return nil, err
	}
	if err := checkAssets(opts.AssetRoot); err != nil {
		return nil, err
	}
	stacks := make([]awscdk.Stack, 0, len(opts.Regions))
	for _, r := range opts.Regions {
		s, err := newWaymarkStack(app, r, opts)
		if err != nil {
			return nil, err
		}
		stacks = append(stacks, s)
	}
	// Every synth runs the checks; their errors fail `cdk synth`, so a finding
	// is either fixed or suppressed with a reason next to the resource.
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
	return stacks, nil
}

// optionsFromContext reads and validates the context values.
func optionsFromContext(app awscdk.App) (options, error) {
	node := app.Node()
	opts := options{
		// The CLI sets CDK_DEFAULT_ACCOUNT from the caller's credentials; without
		// them (offline synth) the stacks are account-agnostic.
		Account:    os.Getenv("CDK_DEFAULT_ACCOUNT"),
		AssetRoot:  ctxString(node, CtxAssetRoot, DefaultAssetRoot),
		AlarmEmail: ctxString(node, CtxAlarmEmail, ""),
		Domains:    map[string]domain{},
	}
	var err error
	if opts.Regions, err = parseRegions(ctxString(node, CtxRegions, Regions[0].Code)); err != nil {
		return options{}, err
	}
	if opts.ThrottleBurst, err = ctxNumber(node, CtxThrottleBurst, DefaultThrottleBurst); err != nil {
		return options{}, err
	}
	if opts.ThrottleRate, err = ctxNumber(node, CtxThrottleRate, DefaultThrottleRate); err != nil {
		return options{}, err
	}
	if opts.AlarmEmail != "" && !strings.Contains(opts.AlarmEmail, "@") {
		return options{}, fmt.Errorf("infra: %s %q is not an e-mail address", CtxAlarmEmail, opts.AlarmEmail)
	}
	for _, r := range opts.Regions {
		d, err := domainFor(node, r)
		if err != nil {
			return options{}, err
		}
		if d.Name != "" {
			opts.Domains[r.Code] = d
		}
	}
	return opts, nil
}

// parseRegions turns "eu,us" into regions, in the order of Regions and
// without repeats, so that the stacks and their templates are stable.
func parseRegions(s string) ([]Region, error) {
	want := map[string]bool{}
	for _, code := range strings.Split(s, ",") {
		code = strings.TrimSpace(code)
		if code == "" {
			continue
		}
		known := false
		for _, r := range Regions {
			known = known || r.Code == code
		}
		if !known {
			return nil, fmt.Errorf("infra: unknown region %q in -c %s (known: %s)", code, CtxRegions, regionCodes())
		}
		want[code] = true
	}
	var out []Region
	for _, r := range Regions {
		if want[r.Code] {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("infra: -c %s names no region (known: %s)", CtxRegions, regionCodes())
	}
	return out, nil
}

func regionCodes() string {
	codes := make([]string, len(Regions))
	for i, r := range Regions {
		codes[i] = r.Code
	}
	return strings.Join(codes, ", ")
}

// domainFor reads a stack's custom domain: "<code>.domainName" and
// "<code>.certificateArn" when given, else the plain keys. A regional API
// Gateway domain needs its certificate in the stack's own region, so a
// certificate from another region is refused here rather than by
// CloudFormation half-way through a deploy.
func domainFor(node contextReader, r Region) (domain, error) {
	d := domain{
		Name:           ctxString(node, r.Code+"."+CtxDomainName, ctxString(node, CtxDomainName, "")),
		CertificateArn: ctxString(node, r.Code+"."+CtxCertificateArn, ctxString(node, CtxCertificateArn, "")),
	}
	switch {
	case d.Name == "" && d.CertificateArn == "":
		return d, nil
	case d.Name == "" || d.CertificateArn == "":
		return domain{}, fmt.Errorf("infra: %s needs both %s and %s", StackName(r), CtxDomainName, CtxCertificateArn)
	}
	parts := strings.Split(d.CertificateArn, ":")
	if len(parts) < 6 || parts[0] != "arn" || parts[2] != "acm" {
		return domain{}, fmt.Errorf("infra: %s %q is not an ACM certificate ARN", CtxCertificateArn, d.CertificateArn)
	}
	if parts[3] != r.Name {
		return domain{}, fmt.Errorf("infra: the certificate for %s is in %s, it must be in %s (set -c %s.%s=...)",
			StackName(r), parts[3], r.Name, r.Code, CtxCertificateArn)
	}
	return d, nil
}

// checkAssets fails early, with the command to run, when a function's
// bootstrap has not been built: CDK's own error would only name a path.
func checkAssets(root string) error {
	for _, f := range routes.Functions() {
		p := filepath.Join(root, f.Name, "bootstrap")
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("infra: %s is missing: run `make build` first (%v)", p, err)
		}
	}
	return nil
}

// contextReader is the part of a construct node that reads context.
type contextReader interface {
	TryGetContext(key *string) interface{}
}

func ctxString(node contextReader, key, def string) string {
	if v, ok := node.TryGetContext(jsii.String(key)).(string); ok && v != "" {
		return v
	}
	return def
}

// ctxNumber accepts a number (cdk.json) or a string (-c on the command line).
func ctxNumber(node contextReader, key string, def float64) (float64, error) {
	var n float64
	switch v := node.TryGetContext(jsii.String(key)).(type) {
	case nil:
		return def, nil
	case float64:
		n = v
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return 0, fmt.Errorf("infra: -c %s=%q is not a number", key, v)
		}
		n = f
	default:
		return 0, fmt.Errorf("infra: -c %s has type %T, want a number", key, v)
	}
	if n <= 0 {
		return 0, fmt.Errorf("infra: -c %s must be positive, got %v", key, n)
	}
	return n, nil
}
