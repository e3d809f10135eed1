package stack

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/iampolicy"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Synthesizing is expensive (seconds per app), so each configuration is
// synthesized once per test binary and every test reads the result.

// The placeholder bootstraps let the tests synthesize without `make build`.
var assetRoot, outRoot string

func TestMain(m *testing.M) {
	code := func() int {
		var err error
		if outRoot, err = os.MkdirTemp("", "waymark-infra-test-"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(outRoot)
		assetRoot = filepath.Join(outRoot, "build")
		for _, name := range append(functionNames(), webhookFunctionName, routes.Analytics.Name) {
			dir := filepath.Join(assetRoot, name)
			if err := os.MkdirAll(dir, 0o755); err == nil {
				err = os.WriteFile(filepath.Join(dir, "bootstrap"), []byte("placeholder "+name), 0o755)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		defer jsii.Close()
		return m.Run()
	}()
	os.Exit(code)
}

func functionNames() []string {
	var names []string
	for _, f := range routes.Functions() {
		names = append(names, f.Name)
	}
	return names
}

// synthesized is one configuration's app after synthesis.
type synthesized struct {
	stacks     []awscdk.Stack
	templates  map[string]map[string]interface{} // by stack name
	stackNames []string
	deps       map[string][]string // stack name -> ids of the artifacts it depends on
	err        error
}

func synth(context map[string]interface{}, account string) *synthesized {
	out := &synthesized{templates: map[string]map[string]interface{}{}, deps: map[string][]string{}}
	ctx, err := cdkJSONContext()
	if err != nil {
		out.err = err
		return out
	}
	ctx[CtxAssetRoot] = assetRoot
	ctx["aws:cdk:enable-asset-metadata"] = true
	for k, v := range context {
		ctx[k] = v
	}
	dir, err := os.MkdirTemp(outRoot, "cdk.out-")
	if err != nil {
		out.err = err
		return out
	}
	// Build reads the account the way the CLI passes it.
	if account == "" {
		os.Unsetenv("CDK_DEFAULT_ACCOUNT")
	} else {
		os.Setenv("CDK_DEFAULT_ACCOUNT", account)
		defer os.Unsetenv("CDK_DEFAULT_ACCOUNT")
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(dir)})
	if out.stacks, out.err = Build(app); out.err != nil {
		return out
	}
	assembly := app.Synth(nil)
	for _, a := range *assembly.Stacks() {
		name := *a.StackName()
		out.stackNames = append(out.stackNames, name)
		for _, d := range *a.Dependencies() {
			out.deps[name] = append(out.deps[name], *d.Id())
		}
	}
	for _, s := range out.stacks {
		out.templates[*s.StackName()] = *assertions.Template_FromStack(s, nil).ToJSON()
	}
	return out
}

// cdkJSONContext is the context of the repository's cdk.json (the CDK's
// feature flags), which the CLI gives the app: the tests synthesize the
// stacks `cdk synth` and `cdk deploy` make, not those of the flags' defaults.
func cdkJSONContext() (map[string]interface{}, error) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "cdk.json"))
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	if cfg.Context == nil {
		cfg.Context = map[string]interface{}{}
	}
	return cfg.Context, nil
}

var (
	fullOnce, defaultOnce sync.Once
	full, defaults        *synthesized
)

// Full context: both regions, an alarm e-mail, throttling given the way the
// CLI (strings) and cdk.json (numbers) give it, and a custom domain per
// region (the plain keys for the EU, the region-prefixed keys for the US).
const (
	testAccount  = "111111111111"
	testBurst    = 50
	testRate     = 25
	testEmail    = "ops@example.com"
	testEUDomain = "api.eu.example.com"
	testUSDomain = "api.us.example.com"
	testEUCert   = "arn:aws:acm:eu-central-1:111111111111:certificate/11111111-1111-1111-1111-111111111111"
	testUSCert   = "arn:aws:acm:us-east-1:111111111111:certificate/22222222-2222-2222-2222-222222222222"
)

func fullApp(t *testing.T) *synthesized {
	t.Helper()
	fullOnce.Do(func() {
		full = synth(map[string]interface{}{
			CtxRegions:                "eu,us",
			CtxAlarmEmail:             testEmail,
			CtxThrottleBurst:          fmt.Sprint(testBurst),
			CtxThrottleRate:           float64(testRate),
			CtxDomainName:             testEUDomain,
			CtxCertificateArn:         testEUCert,
			"us." + CtxDomainName:     testUSDomain,
			"us." + CtxCertificateArn: testUSCert,
		}, testAccount)
	})
	if full.err != nil {
		t.Fatalf("synth: %v", full.err)
	}
	return full
}

func defaultApp(t *testing.T) *synthesized {
	t.Helper()
	defaultOnce.Do(func() { defaults = synth(nil, "") })
	if defaults.err != nil {
		t.Fatalf("synth: %v", defaults.err)
	}
	return defaults
}

// eachStack runs f on both stacks of the full configuration.
func eachStack(t *testing.T, f func(t *testing.T, r Region, tpl template)) {
	app := fullApp(t)
	for _, r := range Regions {
		t.Run(r.Code, func(t *testing.T) { f(t, r, template(app.templates[StackName(r)])) })
	}
}

// template is a synthesized CloudFormation template.
type template map[string]interface{}

func (tpl template) resources() map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for id, r := range tpl["Resources"].(map[string]interface{}) {
		out[id] = r.(map[string]interface{})
	}
	return out
}

func (tpl template) ofType(typ string) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for id, r := range tpl.resources() {
		if r["Type"] == typ {
			out[id] = r
		}
	}
	return out
}

func (tpl template) resource(t *testing.T, id, typ string) map[string]interface{} {
	t.Helper()
	r, ok := tpl.resources()[id]
	if !ok {
		t.Fatalf("no resource %s", id)
	}
	if r["Type"] != typ {
		t.Fatalf("%s is a %v, want %s", id, r["Type"], typ)
	}
	return r
}

func props(r map[string]interface{}) map[string]interface{} {
	p, _ := r["Properties"].(map[string]interface{})
	return p
}

// ref returns the logical id behind {"Ref": id} or {"Fn::GetAtt": [id, attr]}.
func ref(v interface{}) string {
	m, ok := v.(map[string]interface{})
	if !ok {
		return ""
	}
	if id, ok := m["Ref"].(string); ok {
		return id
	}
	if ga, ok := m["Fn::GetAtt"].([]interface{}); ok && len(ga) == 2 {
		return ga[0].(string)
	}
	return ""
}

func getAtt(id, attr string) interface{} {
	return map[string]interface{}{"Fn::GetAtt": []interface{}{id, attr}}
}

func list(v interface{}) []interface{} {
	if l, ok := v.([]interface{}); ok {
		return l
	}
	return []interface{}{v}
}

func strs(v interface{}) []string {
	var out []string
	for _, x := range list(v) {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func toJSON(v interface{}) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func equalJSON(a, b interface{}) bool { return toJSON(a) == toJSON(b) }

func sameSet(a, b []string) bool {
	a, b = append([]string{}, a...), append([]string{}, b...)
	sort.Strings(a)
	sort.Strings(b)
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func keyID(t *testing.T, tpl template) string {
	t.Helper()
	keys := tpl.ofType("AWS::KMS::Key")
	if len(keys) != 1 {
		t.Fatalf("%d KMS keys, want 1", len(keys))
	}
	for id := range keys {
		return id
	}
	return ""
}

func TestWithoutRegionsOnlyTheEUStack(t *testing.T) {
	app := defaultApp(t)
	if len(app.stackNames) != 1 || app.stackNames[0] != "Waymark-eu" {
		t.Fatalf("stacks %v, want [Waymark-eu]", app.stackNames)
	}
	if got := *app.stacks[0].Region(); got != "eu-central-1" {
		t.Errorf("region %s, want eu-central-1", got)
	}
	tpl := template(app.templates["Waymark-eu"])
	if n := len(tpl.ofType("AWS::ApiGatewayV2::DomainName")); n != 0 {
		t.Errorf("%d custom domains without -c domainName", n)
	}
	if n := len(tpl.ofType("AWS::SNS::Subscription")); n != 0 {
		t.Errorf("%d subscriptions without -c alarmEmail", n)
	}
	for _, stage := range tpl.ofType("AWS::ApiGatewayV2::Stage") {
		s := props(stage)["DefaultRouteSettings"].(map[string]interface{})
		if s["ThrottlingBurstLimit"] != float64(DefaultThrottleBurst) || s["ThrottlingRateLimit"] != float64(DefaultThrottleRate) {
			t.Errorf("default throttling %v, want burst %d rate %d", s, DefaultThrottleBurst, DefaultThrottleRate)
		}
	}
}

func TestBothRegionsOnRequest(t *testing.T) {
	app := fullApp(t)
	want := []string{"Waymark-eu", "Waymark-us"}
	if !sameSet(app.stackNames, want) {
		t.Fatalf("stacks %v, want %v", app.stackNames, want)
	}
	for i, r := range Regions {
		s := app.stacks[i]
		if *s.StackName() != StackName(r) || *s.Region() != r.Name || *s.Account() != testAccount {
			t.Errorf("stack %s in %s/%s, want %s in %s/%s", *s.StackName(), *s.Account(), *s.Region(), StackName(r), testAccount, r.Name)
		}
	}
}

func TestEveryTableRouteAndFunctionFromTheSharedDefinitions(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		for typ, want := range map[string]int{
			"AWS::DynamoDB::Table":       len(schema.All()),
			"AWS::Lambda::Function":      len(routes.Functions()) + 2, // and the webhook deliverer and the analytics aggregator
			"AWS::ApiGatewayV2::Route":   len(routes.Table()),
			"AWS::ApiGatewayV2::Api":     1,
			"AWS::CloudWatch::Dashboard": 1,
		} {
			if got := len(tpl.ofType(typ)); got != want {
				t.Errorf("%d %s, want %d", got, typ, want)
			}
		}
	})
}

func TestKeyRotationAliasAndPolicy(t *testing.T) {
	crypto := regexp.MustCompile(`^kms:(Encrypt|Decrypt|ReEncrypt|GenerateDataKey|CreateGrant|\*)`)
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		id := keyID(t, tpl)
		key := tpl.resources()[id]
		p := props(key)
		if p["EnableKeyRotation"] != true {
			t.Errorf("key rotation %v", p["EnableKeyRotation"])
		}
		if key["DeletionPolicy"] != "Retain" {
			t.Errorf("key deletion policy %v, want Retain (the retained tables need it)", key["DeletionPolicy"])
		}
		aliases := tpl.ofType("AWS::KMS::Alias")
		if len(aliases) != 1 {
			t.Fatalf("%d aliases", len(aliases))
		}
		for _, a := range aliases {
			if ref(props(a)["TargetKeyId"]) != id || props(a)["AliasName"] != "alias/waymark" {
				t.Errorf("alias %v", props(a))
			}
		}
		var fieldKeys bool
		for _, st := range list(p["KeyPolicy"].(map[string]interface{})["Statement"]) {
			st := st.(map[string]interface{})
			principal := toJSON(st["Principal"])
			if !strings.Contains(principal, ":root") || strings.Contains(principal, `"*"`) {
				t.Errorf("key policy principal %s: only the account may be trusted", principal)
			}
			for _, a := range strs(st["Action"]) {
				if crypto.MatchString(a) && st["Condition"] == nil {
					t.Errorf("key policy allows %s without a condition", a)
				}
				if a == "kms:CreateGrant" && !strings.Contains(toJSON(st["Condition"]), "dynamodb."+r.Name+".amazonaws.com") {
					t.Errorf("key policy allows CreateGrant outside DynamoDB")
				}
			}
			if equalJSON(st["Condition"], fieldKeyCondition()) && sameSet(strs(st["Action"]), fieldKeyActions) {
				fieldKeys = true
			}
		}
		if !fieldKeys {
			t.Errorf("key policy has no field data-key statement with the %s=%s condition", envelope.ContextPurposeKey, envelope.ContextPurpose)
		}
	})
}

func TestTables(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		key := keyID(t, tpl)
		for _, st := range schema.All() {
			res := tpl.resource(t, tableLogicalID(st), "AWS::DynamoDB::Table")
			p := props(res)
			if res["DeletionPolicy"] != "Retain" || res["UpdateReplacePolicy"] != "Retain" {
				t.Errorf("%s removal policy %v/%v, want Retain", st.Name, res["DeletionPolicy"], res["UpdateReplacePolicy"])
			}
			checks := map[string]interface{}{
				"SSESpecification":                 map[string]interface{}{"KMSMasterKeyId": getAtt(key, "Arn"), "SSEEnabled": true, "SSEType": "KMS"},
				"PointInTimeRecoverySpecification": map[string]interface{}{"PointInTimeRecoveryEnabled": true},
				"DeletionProtectionEnabled":        true,
				"TimeToLiveSpecification":          map[string]interface{}{"AttributeName": schema.TTLAttribute, "Enabled": true},
				"BillingMode":                      "PAY_PER_REQUEST",
			}
			for k, want := range checks {
				if !equalJSON(p[k], want) {
					t.Errorf("%s %s = %s, want %s", st.Name, k, toJSON(p[k]), toJSON(want))
				}
			}
			keys := []interface{}{map[string]interface{}{"AttributeName": st.PartitionKey.Name, "KeyType": "HASH"}}
			if st.SortKey != nil {
				keys = append(keys, map[string]interface{}{"AttributeName": st.SortKey.Name, "KeyType": "RANGE"})
			}
			if !equalJSON(p["KeySchema"], keys) {
				t.Errorf("%s key schema %s", st.Name, toJSON(p["KeySchema"]))
			}
			var indexes []string
			for _, g := range list(p["GlobalSecondaryIndexes"]) {
				if g, ok := g.(map[string]interface{}); ok {
					indexes = append(indexes, g["IndexName"].(string)+" "+toJSON(g["Projection"]))
				}
			}
			var want []string
			for _, g := range st.GlobalIndexes {
				want = append(want, g.Name+` {"ProjectionType":"ALL"}`)
			}
			if !sameSet(indexes, want) {
				t.Errorf("%s indexes %v, want %v", st.Name, indexes, want)
			}
		}
	})
}

func TestFunctions(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		key := keyID(t, tpl)
		wantEnv := map[string]interface{}{config.EnvKMSKeyID: getAtt(key, "Arn"), config.EnvLogLevel: "info",
			config.EnvDynamoDBEndpoint: "", config.EnvKMSEndpoint: ""}
		for _, st := range schema.All() {
			wantEnv[st.EnvVar] = map[string]interface{}{"Ref": tableLogicalID(st)}
		}
		// The tests' placeholder bootstraps are no Go binaries: no commit.
		wantEnv[buildinfo.EnvVar] = buildinfo.Unknown
		for _, f := range routes.Functions() {
			res := tpl.resource(t, f.LogicalID, "AWS::Lambda::Function")
			p := props(res)
			wantEnv := wantEnv
			if f.Bucket != 0 {
				// Only the functions that handle attachments name the bucket.
				wantEnv = maps.Clone(wantEnv)
				wantEnv[config.EnvAttachmentsBucket] = map[string]interface{}{"Ref": attachmentsBucketID}
				wantEnv[config.EnvS3Endpoint] = ""
			}
			for k, want := range map[string]interface{}{
				"Runtime":       "provided.al2023",
				"Architectures": []interface{}{"arm64"},
				"Handler":       "bootstrap",
				"MemorySize":    float64(functionMemoryMB),
				"TracingConfig": map[string]interface{}{"Mode": "Active"},
				"Environment":   map[string]interface{}{"Variables": wantEnv},
			} {
				if !equalJSON(p[k], want) {
					t.Errorf("%s %s = %s, want %s", f.LogicalID, k, toJSON(p[k]), toJSON(want))
				}
			}
			if timeout, _ := p["Timeout"].(float64); timeout <= 0 || timeout > 10 {
				t.Errorf("%s timeout %v s, want a short one (<= 10 s)", f.LogicalID, p["Timeout"])
			}
			logs := ref(p["LoggingConfig"].(map[string]interface{})["LogGroup"])
			if got := props(tpl.resource(t, logs, "AWS::Logs::LogGroup"))["RetentionInDays"]; got != float64(30) {
				t.Errorf("%s log retention %v, want 30 days", f.LogicalID, got)
			}
			// `sam local invoke` finds the code through this metadata.
			md := res["Metadata"].(map[string]interface{})
			if path, _ := md["aws:asset:path"].(string); !strings.HasPrefix(path, "asset.") || md["aws:asset:property"] != "Code" {
				t.Errorf("%s asset metadata %v", f.LogicalID, md)
			}
		}
	})
}

// statements returns the policy statements attached to a function's role,
// failing on managed or inline role policies (everything goes through the
// role's one AWS::IAM::Policy).
func statements(t *testing.T, tpl template, fn string) []map[string]interface{} {
	t.Helper()
	role := ref(props(tpl.resources()[fn])["Role"])
	rp := props(tpl.resource(t, role, "AWS::IAM::Role"))
	if rp["ManagedPolicyArns"] != nil || rp["Policies"] != nil {
		t.Errorf("%s role has managed or inline policies: %v %v", fn, rp["ManagedPolicyArns"], rp["Policies"])
	}
	var out []map[string]interface{}
	for _, p := range tpl.ofType("AWS::IAM::Policy") {
		attached := false
		for _, r := range list(props(p)["Roles"]) {
			attached = attached || ref(r) == role
		}
		if !attached {
			continue
		}
		for _, st := range list(props(p)["PolicyDocument"].(map[string]interface{})["Statement"]) {
			out = append(out, st.(map[string]interface{}))
		}
	}
	return out
}

func TestLeastPrivilegeIAM(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		key := keyID(t, tpl)
		byLogicalID := map[string]schema.Table{}
		for _, st := range schema.All() {
			byLogicalID[tableLogicalID(st)] = st
		}
		for _, f := range routes.Functions() {
			// granted[table] holds the actions on the table itself; indexes[table]
			// the index names Query is allowed on.
			granted, indexes := map[string][]string{}, map[string][]string{}
			// narrow[table] is the narrow write the role may make on the
			// table (publish the sealing key, refresh an expiry), under the
			// condition that confines it to that.
			narrow := map[string]routes.Access{}
			var fieldKeys bool
			for _, st := range statements(t, tpl, f.LogicalID) {
				actions := strs(st["Action"])
				for _, res := range list(st["Resource"]) {
					service := strings.SplitN(actions[0], ":", 2)[0]
					if res == "*" {
						if service != "xray" {
							t.Errorf("%s: %v on resource *", f.LogicalID, actions)
						}
						continue
					}
					switch service {
					case "dynamodb":
						if id := ref(res); id != "" && st["Condition"] != nil {
							table := byLogicalID[id]
							level := f.Tables[table.Name]
							if !sameSet(actions, narrowUpdateActions) || !equalJSON(st["Condition"], narrowUpdateCondition(level, table)) {
								t.Errorf("%s: %v on %s with condition %s", f.LogicalID, actions, table.Name, toJSON(st["Condition"]))
							}
							narrow[table.Name] = level
							continue
						}
						if id := ref(res); id != "" {
							granted[byLogicalID[id].Name] = append(granted[byLogicalID[id].Name], actions...)
							continue
						}
						// An index ARN: {"Fn::Join": ["", [table ARN, "/index/<name>"]]}.
						parts := res.(map[string]interface{})["Fn::Join"].([]interface{})[1].([]interface{})
						name := byLogicalID[ref(parts[0])].Name
						indexes[name] = append(indexes[name], strings.TrimPrefix(parts[1].(string), "/index/"))
						if !sameSet(actions, []string{"dynamodb:Query"}) {
							t.Errorf("%s: %v on an index of %s, want Query only", f.LogicalID, actions, name)
						}
					case "kms":
						if ref(res) != key {
							t.Errorf("%s: %v on %v, want the stack's key", f.LogicalID, actions, res)
						}
						switch {
						case equalJSON(st["Condition"], fieldKeyCondition()):
							fieldKeys = fieldKeys || sameSet(actions, fieldKeyActions)
						case equalJSON(st["Condition"], viaDynamoDB(r)):
						case equalJSON(st["Condition"], viaS3(r)) && f.Bucket != 0:
							// The bucket's encryption (TestBucketGrants).
						default:
							t.Errorf("%s: %v with condition %s", f.LogicalID, actions, toJSON(st["Condition"]))
						}
					}
				}
			}
			for _, st := range schema.All() {
				access, ok := f.Tables[st.Name]
				var want, wantIndexes []string
				if ok {
					want = append(want, readActions...)
					if access == routes.ReadWrite {
						want = append(want, writeActions...)
					}
					for _, g := range st.GlobalIndexes {
						wantIndexes = append(wantIndexes, g.Name)
					}
				}
				if !sameSet(granted[st.Name], want) {
					t.Errorf("%s on %s: %v, want %v", f.LogicalID, st.Name, granted[st.Name], want)
				}
				wantNarrow := routes.Access(0)
				if ok && routes.NarrowAttributes(access, st) != nil {
					wantNarrow = access
				}
				if narrow[st.Name] != wantNarrow {
					t.Errorf("%s's narrow write on %s: %v, want %v", f.LogicalID, st.Name, narrow[st.Name], wantNarrow)
				}
				if !sameSet(indexes[st.Name], wantIndexes) {
					t.Errorf("%s on the indexes of %s: %v, want %v", f.LogicalID, st.Name, indexes[st.Name], wantIndexes)
				}
			}
			if fieldKeys != f.UsesKMS {
				t.Errorf("%s field data keys granted %v, uses KMS %v", f.LogicalID, fieldKeys, f.UsesKMS)
			}
		}
	})
}

func TestAPI(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		integrations := tpl.ofType("AWS::ApiGatewayV2::Integration")
		routeTargets := map[string]string{}
		for _, rt := range tpl.ofType("AWS::ApiGatewayV2::Route") {
			p := props(rt)
			target := p["Target"].(map[string]interface{})["Fn::Join"].([]interface{})[1].([]interface{})
			integration := integrations[ref(target[1])]
			routeTargets[p["RouteKey"].(string)] = ref(props(integration)["IntegrationUri"])
		}
		logicalIDs := map[string]string{}
		for _, f := range routes.Functions() {
			logicalIDs[f.Name] = f.LogicalID
		}
		for _, r := range routes.Table() {
			if got := routeTargets[r.RouteKey()]; got != logicalIDs[r.Function] {
				t.Errorf("route %s goes to %q, want %s", r.RouteKey(), got, logicalIDs[r.Function])
			}
		}

		for _, api := range tpl.ofType("AWS::ApiGatewayV2::Api") {
			c := routes.CORS
			want := map[string]interface{}{
				"AllowOrigins": c.AllowOrigins, "AllowMethods": c.AllowMethods, "AllowHeaders": c.AllowHeaders,
				"ExposeHeaders": c.ExposeHeaders, "MaxAge": c.MaxAgeSeconds,
			}
			if got := props(api)["CorsConfiguration"]; !equalJSON(got, want) {
				t.Errorf("CORS %s, want %s", toJSON(got), toJSON(want))
			}
			// No browser may send the server API's key: its preflight is refused.
			if allowed := toJSON(props(api)["CorsConfiguration"].(map[string]interface{})["AllowHeaders"]); strings.Contains(strings.ToLower(allowed), "authorization") {
				t.Errorf("CORS allows the Authorization header: %s", allowed)
			}
		}

		stages := tpl.ofType("AWS::ApiGatewayV2::Stage")
		if len(stages) != 1 {
			t.Fatalf("%d stages, want 1", len(stages))
		}
		for _, stage := range stages {
			p := props(stage)
			if p["StageName"] != "$default" || p["AutoDeploy"] != true {
				t.Errorf("stage %v auto-deploy %v", p["StageName"], p["AutoDeploy"])
			}
			want := map[string]interface{}{"ThrottlingBurstLimit": testBurst, "ThrottlingRateLimit": testRate}
			if !equalJSON(p["DefaultRouteSettings"], want) {
				t.Errorf("throttling %s, want %s", toJSON(p["DefaultRouteSettings"]), toJSON(want))
			}
			logs := p["AccessLogSettings"].(map[string]interface{})
			if got := props(tpl.resource(t, ref(logs["DestinationArn"]), "AWS::Logs::LogGroup"))["RetentionInDays"]; got != float64(30) {
				t.Errorf("access log retention %v", got)
			}
			checkAccessLogFormat(t, logs["Format"].(string))
		}
	})
}

// checkAccessLogFormat parses the format as the JSON line it produces and
// checks it names no variable that could hold a user identifier or a body.
func checkAccessLogFormat(t *testing.T, format string) {
	t.Helper()
	// messageString is substituted quoted; stand in a string to parse.
	var fields map[string]string
	if err := json.Unmarshal([]byte(strings.ReplaceAll(format, "$context.error.messageString", `"x"`)), &fields); err != nil {
		t.Fatalf("access log format is not JSON: %v\n%s", err, format)
	}
	for _, need := range []string{"requestId", "status", "routeKey"} {
		if fields[need] == "" {
			t.Errorf("access log lacks %s", need)
		}
	}
	forbidden := regexp.MustCompile(`(?i)identity|sourceip|useragent|authorizer|\.path|requestbody|body|querystring|username|cognito|\$input|\$request`)
	for name, v := range fields {
		if forbidden.MatchString(v) {
			t.Errorf("access log field %s = %s may carry user data", name, v)
		}
	}
	for _, v := range regexp.MustCompile(`\$[a-zA-Z.]+`).FindAllString(format, -1) {
		if forbidden.MatchString(v) {
			t.Errorf("access log uses %s", v)
		}
	}
}

func TestDomainWithTLS12(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		name, cert := testEUDomain, testEUCert
		if r.Code == "us" {
			name, cert = testUSDomain, testUSCert
		}
		domains := tpl.ofType("AWS::ApiGatewayV2::DomainName")
		if len(domains) != 1 {
			t.Fatalf("%d domains", len(domains))
		}
		for id, d := range domains {
			p := props(d)
			want := []interface{}{map[string]interface{}{
				"CertificateArn": cert, "EndpointType": "REGIONAL", "SecurityPolicy": "TLS_1_2",
			}}
			if p["DomainName"] != name || !equalJSON(p["DomainNameConfigurations"], want) {
				t.Errorf("domain %v %s, want %s %s", p["DomainName"], toJSON(p["DomainNameConfigurations"]), name, toJSON(want))
			}
			mapped := false
			for _, m := range tpl.ofType("AWS::ApiGatewayV2::ApiMapping") {
				mapped = mapped || ref(props(m)["DomainName"]) == id
			}
			if !mapped {
				t.Errorf("domain %s is not mapped to the API", name)
			}
		}
	})
}

func TestAlarmsAndDashboard(t *testing.T) {
	eachStack(t, func(t *testing.T, _ Region, tpl template) {
		topics := tpl.ofType("AWS::SNS::Topic")
		if len(topics) != 1 {
			t.Fatalf("%d topics", len(topics))
		}
		var topic string
		for id := range topics {
			topic = id
		}
		subs := tpl.ofType("AWS::SNS::Subscription")
		if len(subs) != 1 {
			t.Fatalf("%d subscriptions, want the e-mail one", len(subs))
		}
		for _, s := range subs {
			if p := props(s); p["Protocol"] != "email" || p["Endpoint"] != testEmail || ref(p["TopicArn"]) != topic {
				t.Errorf("subscription %v", p)
			}
		}

		// Each alarm is described by the metric names, dimensions and
		// expressions it evaluates, so the check does not depend on ids.
		var described []string
		for id, a := range tpl.ofType("AWS::CloudWatch::Alarm") {
			p := props(a)
			for _, actions := range []string{"AlarmActions", "OKActions"} {
				if l := list(p[actions]); len(l) != 1 || ref(l[0]) != topic {
					t.Errorf("alarm %s %s %v, want the topic", id, actions, p[actions])
				}
			}
			described = append(described, toJSON(p))
		}
		has := func(what string, parts ...string) {
			t.Helper()
			for _, d := range described {
				all := true
				for _, p := range parts {
					all = all && strings.Contains(d, p)
				}
				if all {
					return
				}
			}
			t.Errorf("no alarm on %s", what)
		}
		has("API 5xx rate", `"MetricName":"5xx"`, `"MetricName":"Count"`, "100 * FILL(errors, 0) / requests")
		for _, f := range routes.Functions() {
			fn := `{"Name":"FunctionName","Value":{"Ref":"` + f.LogicalID + `"}}`
			has(f.Name+" errors", `"MetricName":"Errors"`, fn)
			has(f.Name+" throttles", `"MetricName":"Throttles"`, fn)
		}
		for _, st := range schema.All() {
			table := `{"Name":"TableName","Value":{"Ref":"` + tableLogicalID(st) + `"}}`
			has(st.Name+" system errors", `"MetricName":"SystemErrors"`, table, "FILL(")
			has(st.Name+" throttled requests", `"MetricName":"ThrottledRequests"`, table, "FILL(")
		}
		has("KMS throttling", `"Namespace":"AWS/Usage"`, `"Value":"CryptographicOperationsSymmetric"`, "SERVICE_QUOTA(usage)")
	})
}

// regionPattern matches anything shaped like an AWS region name.
var regionPattern = regexp.MustCompile(`\b(us|eu|ap|sa|ca|me|af|il|mx|cn)-(gov-)?(north|south|east|west|central|northeast|southeast|northwest|southwest)-\d\b`)

func TestResidency(t *testing.T) {
	app := fullApp(t)
	for _, r := range Regions {
		raw := toJSON(app.templates[StackName(r)])
		for _, found := range regionPattern.FindAllString(raw, -1) {
			if found != r.Name {
				t.Errorf("%s mentions region %s", StackName(r), found)
			}
		}
		if !strings.Contains(raw, r.Name) {
			t.Errorf("%s names no region at all; the test would prove nothing", StackName(r))
		}
		if strings.Contains(raw, "Fn::ImportValue") {
			t.Errorf("%s imports a value from another stack", StackName(r))
		}
		for _, other := range Regions {
			if other != r && strings.Contains(raw, StackName(other)) {
				t.Errorf("%s refers to %s", StackName(r), StackName(other))
			}
		}
		for _, d := range app.deps[StackName(r)] {
			if d != StackName(r)+".assets" {
				t.Errorf("%s depends on %s", StackName(r), d)
			}
		}
	}
}

func TestNagFindingsFixedOrSuppressedWithReason(t *testing.T) {
	app := fullApp(t)
	nag := assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-"))
	for i, s := range app.stacks {
		ann := assertions.Annotations_FromStack(s)
		for _, m := range append(*ann.FindError(jsii.String("*"), nag), *ann.FindWarning(jsii.String("*"), nag)...) {
			t.Errorf("%s: unsuppressed cdk-nag finding at %s: %v", *s.StackName(), *m.Id, m.Entry.Data)
		}
		suppressions := 0
		for id, res := range template(app.templates[StackName(Regions[i])]).resources() {
			md, _ := res["Metadata"].(map[string]interface{})
			nagMD, _ := md["cdk_nag"].(map[string]interface{})
			for _, rule := range list(nagMD["rules_to_suppress"]) {
				rule, ok := rule.(map[string]interface{})
				if !ok {
					continue
				}
				suppressions++
				if reason, _ := rule["reason"].(string); len(reason) < 40 {
					t.Errorf("%s: suppression of %v without a real reason: %q", id, rule["id"], reason)
				}
			}
		}
		if suppressions == 0 {
			t.Errorf("%s: no suppression metadata found; is cdk-nag still applied?", *s.StackName())
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for name, tc := range map[string]struct {
		ctx  map[string]interface{}
		want string
	}{
		"missing bootstrap":      {map[string]interface{}{CtxAssetRoot: filepath.Join(outRoot, "nowhere")}, "make build"},
		"unknown region":         {map[string]interface{}{CtxRegions: "eu,ap"}, `unknown region "ap"`},
		"no region":              {map[string]interface{}{CtxRegions: " , "}, "names no region"},
		"certificate elsewhere":  {map[string]interface{}{CtxRegions: "us", CtxDomainName: testUSDomain, CtxCertificateArn: testEUCert}, "must be in us-east-1"},
		"domain without cert":    {map[string]interface{}{CtxDomainName: testEUDomain}, "needs both"},
		"not a certificate":      {map[string]interface{}{CtxDomainName: testEUDomain, CtxCertificateArn: "arn:aws:iam::1:role/x"}, "not an ACM certificate"},
		"throttle not a number":  {map[string]interface{}{CtxThrottleRate: "fast"}, "not a number"},
		"throttle not positive":  {map[string]interface{}{CtxThrottleBurst: "0"}, "must be positive"},
		"alarm e-mail malformed": {map[string]interface{}{CtxAlarmEmail: "ops"}, "not an e-mail address"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := map[string]interface{}{CtxAssetRoot: assetRoot}
			for k, v := range tc.ctx {
				ctx[k] = v
			}
			app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(filepath.Join(outRoot, "unused"))})
			_, err := Build(app)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// The resource policies the stack writes let in the AWS services that must
// use the resource, and only from this account and region: CloudWatch alarms
// publish to the alarm topic (whose TLS-only policy replaces SNS's default
// one), DynamoDB uses the key for the tables (kms:ViaService), and no
// service outside the stack's design uses the key.
func TestResourcePoliciesAllowTheServicesThatUseThem(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, raw template) {
		tpl, err := iampolicy.NewTemplate(raw, StackName(r), testAccount, r.Name)
		if err != nil {
			t.Fatal(err)
		}
		decide := func(p iampolicy.Policy, req iampolicy.Request) iampolicy.Decision {
			t.Helper()
			d, err := p.Evaluate(req)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}

		topics := tpl.OfType("AWS::SNS::Topic")
		policies := tpl.OfType("AWS::SNS::TopicPolicy")
		if len(topics) != 1 || len(policies) != 1 {
			t.Fatalf("%d topics and %d topic policies, want one each", len(topics), len(policies))
		}
		topicArn, _ := tpl.Arn(topics[0])
		topicPolicy, err := tpl.ResourcePolicy(policies[0], "PolicyDocument")
		if err != nil {
			t.Fatal(err)
		}
		alarm := func(account string, tls bool) iampolicy.Request {
			return iampolicy.Request{Principal: "cloudwatch.amazonaws.com", Action: "sns:Publish", Resource: topicArn, Context: map[string][]string{
				"aws:SourceAccount":   {account},
				"aws:SourceArn":       {"arn:aws:cloudwatch:" + r.Name + ":" + account + ":alarm:Api5xxRateAlarm"},
				"aws:SecureTransport": {fmt.Sprint(tls)},
			}}
		}
		if d := decide(topicPolicy, alarm(testAccount, true)); d != iampolicy.Allow {
			t.Errorf("an alarm of the stack publishing to its topic: %v, want allow", d)
		}
		if d := decide(topicPolicy, alarm("999999999999", true)); d == iampolicy.Allow {
			t.Error("an alarm of another account may publish to the topic")
		}
		if d := decide(topicPolicy, alarm(testAccount, false)); d != iampolicy.ExplicitDeny {
			t.Errorf("a publish without TLS: %v, want explicit deny", d)
		}
		otherRegion := alarm(testAccount, true)
		otherRegion.Context["aws:SourceArn"] = []string{"arn:aws:cloudwatch:ap-south-1:" + testAccount + ":alarm:x"}
		if d := decide(topicPolicy, otherRegion); d == iampolicy.Allow {
			t.Error("an alarm of another region may publish to the topic")
		}

		key := keyID(t, raw)
		keyArn, _ := tpl.Arn(key)
		keyPolicy, err := tpl.ResourcePolicy(key, "KeyPolicy")
		if err != nil {
			t.Fatal(err)
		}
		role := "arn:aws:iam::" + testAccount + ":role/SomeRole"
		via := func(service, action string) iampolicy.Request {
			return iampolicy.Request{Principal: role, Action: action, Resource: keyArn, Context: map[string][]string{
				"kms:ViaService": {service}, "kms:CallerAccount": {testAccount},
			}}
		}
		for _, action := range []string{"kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey", "kms:Encrypt", "kms:CreateGrant"} {
			if d := decide(keyPolicy, via("dynamodb."+r.Name+".amazonaws.com", action)); d != iampolicy.Allow {
				t.Errorf("DynamoDB's %s with the key for a principal of the account: %v, want allow", action, d)
			}
			// S3 encrypts the attachments bucket with the key: a data key
			// to write an object, a decrypt to read one, nothing else.
			s3Use := action == "kms:Decrypt" || action == "kms:GenerateDataKey"
			if d := decide(keyPolicy, via("s3."+r.Name+".amazonaws.com", action)); (d == iampolicy.Allow) != s3Use && action != "kms:DescribeKey" {
				t.Errorf("S3's %s with the key: %v", action, d)
			}
			for _, other := range Regions {
				if other != r && decide(keyPolicy, via("dynamodb."+other.Name+".amazonaws.com", action)) == iampolicy.Allow && action != "kms:DescribeKey" {
					t.Errorf("DynamoDB of %s may %s with the key of %s", other.Name, action, r.Name)
				}
			}
		}
		// Only the tables use the key at rest: no log group or topic is
		// encrypted with it, so CloudWatch Logs and SNS need no place in
		// the key policy. A resource that starts using it must add one.
		for _, typ := range []string{"AWS::Logs::LogGroup", "AWS::SNS::Topic"} {
			for _, id := range tpl.OfType(typ) {
				p := tpl.Properties(id)
				if p["KmsKeyId"] != nil || p["KmsMasterKeyId"] != nil {
					t.Errorf("%s is encrypted with a KMS key: allow its service in the key policy and test it here", id)
				}
			}
		}
	})
}

// The operator policy is attached to nobody by the stack, names only this
// stack's own resources, and grants the CLI's needs (proved call by call in
// calls_test.go) through statements with no wildcard.
func TestOperatorPolicy(t *testing.T) {
	eachStack(t, func(t *testing.T, r Region, tpl template) {
		p := props(tpl.resource(t, operatorPolicyID, "AWS::IAM::ManagedPolicy"))
		if p["ManagedPolicyName"] != StackName(r)+"-operator" {
			t.Errorf("name %v, want %s-operator", p["ManagedPolicyName"], StackName(r))
		}
		for _, k := range []string{"Roles", "Users", "Groups"} {
			if p[k] != nil {
				t.Errorf("the operator policy is attached to %s %v", k, p[k])
			}
		}
		doc := p["PolicyDocument"].(map[string]interface{})
		for _, st := range list(doc["Statement"]) {
			st := st.(map[string]interface{})
			for _, a := range strs(st["Action"]) {
				if strings.Contains(a, "*") {
					t.Errorf("statement %v: wildcard action %s", st["Sid"], a)
				}
			}
			for _, res := range list(st["Resource"]) {
				if s, ok := res.(string); ok {
					t.Errorf("statement %v: resource %q is not one of the stack's", st["Sid"], s)
				}
			}
			if st["Sid"] == "FindStack" && !equalJSON(st["Resource"], map[string]interface{}{"Ref": "AWS::StackId"}) {
				t.Errorf("DescribeStacks on %s, want this stack only", toJSON(st["Resource"]))
			}
		}
	})
}
