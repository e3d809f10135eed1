package stack

import (
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/awscalls"
	"github.com/waymarkhq/waymark/internal/deployed"
	"github.com/waymarkhq/waymark/internal/iampolicy"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// operatorPrincipal stands for whoever the operator attaches the operator
// policy to.
const operatorPrincipal = "arn:aws:iam::" + testAccount + ":user/operator"

// caller is a principal of the stack with its identity policies.
type caller struct {
	arn      string
	policies []iampolicy.Policy
}

// callers are the stack's functions' roles, by function name, and the
// operator with the operator policy.
func callers(t *testing.T, tpl iampolicy.Template) map[string]caller {
	t.Helper()
	out := map[string]caller{}
	for _, f := range routes.Functions() {
		role := ref(tpl.Properties(f.LogicalID)["Role"])
		arn, err := tpl.Arn(role)
		if err != nil {
			t.Fatal(err)
		}
		policies, err := tpl.RolePolicies(role)
		if err != nil {
			t.Fatalf("%s: %v", f.Name, err)
		}
		out[f.Name] = caller{arn: arn, policies: policies}
	}
	// The functions no route serves: the webhook deliverer and the
	// analytics aggregator.
	for name, logicalID := range map[string]string{webhookFunctionName: webhookLogicalID, routes.Analytics.Name: routes.Analytics.LogicalID} {
		role := ref(tpl.Properties(logicalID)["Role"])
		arn, err := tpl.Arn(role)
		if err != nil {
			t.Fatal(err)
		}
		policies, err := tpl.RolePolicies(role)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out[name] = caller{arn: arn, policies: policies}
	}
	policy, err := tpl.ManagedPolicy(operatorPolicyID)
	if err != nil {
		t.Fatal(err)
	}
	out[awscalls.Operator] = caller{arn: operatorPrincipal, policies: []iampolicy.Policy{policy}}
	return out
}

// requestsOf turns a recorded call into the authorization requests AWS makes
// for it in the stack's account and region: the call itself, with the key's
// ARN or the table's, and for a DynamoDB call the uses of the table key that
// DynamoDB makes with the caller's permissions (kms:ViaService).
func requestsOf(tpl iampolicy.Template, key string, c awscalls.Call, principal string) ([]iampolicy.Request, error) {
	r := iampolicy.Request{Principal: principal, Action: c.Action, Context: map[string][]string{}}
	for k, v := range c.Context {
		r.Context[k] = v
	}
	service := strings.SplitN(c.Action, ":", 2)[0]
	switch {
	case c.Resource == awscalls.KeyResource:
		r.Resource = key
	case strings.HasPrefix(c.Resource, "table/"):
		parts := strings.SplitN(strings.TrimPrefix(c.Resource, "table/"), "/", 2)
		id := parts[0] // a table no schema declares: no ARN, an error
		for _, st := range schema.All() {
			if st.Name == parts[0] {
				id = tableLogicalID(st)
			}
		}
		arn, err := tpl.Arn(id)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", c.Resource, err)
		}
		r.Resource = arn
		if len(parts) == 2 {
			r.Resource += "/" + parts[1]
		}
	case c.Resource == "stack":
		r.Resource = tpl.StackID()
	case c.Resource == awscalls.BucketResource || strings.HasPrefix(c.Resource, awscalls.BucketResource+"/"):
		arn, err := tpl.Arn(attachmentsBucketID)
		if err != nil {
			return nil, err
		}
		r.Resource = arn + strings.TrimPrefix(c.Resource, awscalls.BucketResource)
	default:
		r.Resource = c.Resource
	}
	if service == "kms" {
		r.Context["kms:CallerAccount"] = []string{tpl.Account}
	}
	out := []iampolicy.Request{r}
	// "Protecting data with SSE-KMS": S3 uses the key as the caller, a data
	// key to write an object and a decrypt to read one.
	keyUse := map[string]string{"s3:PutObject": "kms:GenerateDataKey", "s3:GetObject": "kms:Decrypt"}[c.Action]
	if keyUse != "" {
		out = append(out, iampolicy.Request{Principal: principal, Action: keyUse, Resource: key, Context: map[string][]string{
			"kms:ViaService":    {"s3." + tpl.Region + ".amazonaws.com"},
			"kms:CallerAccount": {tpl.Account},
		}})
	}
	if service == "dynamodb" {
		// "How Amazon DynamoDB uses AWS KMS": with a customer-managed key,
		// DynamoDB calls Decrypt (for the table key) and DescribeKey as the
		// caller.
		for _, a := range []string{"kms:Decrypt", "kms:DescribeKey"} {
			out = append(out, iampolicy.Request{Principal: principal, Action: a, Resource: key, Context: map[string][]string{
				"kms:ViaService":    {"dynamodb." + tpl.Region + ".amazonaws.com"},
				"kms:CallerAccount": {tpl.Account},
			}})
		}
	}
	return out, nil
}

// unrecordedOperatorCalls are the operator's calls no test can make,
// because they need AWS: deployed.Find's DescribeStacks.
var unrecordedOperatorCalls = []awscalls.Call{
	{Caller: awscalls.Operator, Action: "cloudformation:DescribeStacks", Resource: "stack"},
}

// Every AWS call the integration suite (internal/apigw) made, recorded by
// SDK middleware with the function whose handler made it, is allowed in both
// stacks by the synthesized policies: the function's role policies, the
// operator policy for the operator's calls, and for KMS the key policy. The
// local engines check no permission; this is where a call that the stack
// does not grant fails before a deploy. make test runs it after the suite
// (awscalls.CheckEnv names the suite's file).
func TestRecordedCallsAreGranted(t *testing.T) {
	path := os.Getenv(awscalls.CheckEnv)
	if path == "" {
		t.Skipf("%s is not set: make test sets it once the integration suite has recorded its calls", awscalls.CheckEnv)
	}
	recorded, err := awscalls.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Other suites' calls (the webhook deliverer's, internal/webhook, and the
	// analytics aggregator's, internal/analytics).
	others, err := awscalls.SuitePaths(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range others {
		calls, err := awscalls.ReadFile(other)
		if err != nil {
			t.Fatal(err)
		}
		recorded = append(recorded, calls...)
	}
	seen := map[string]bool{}
	for _, c := range recorded {
		seen[c.Caller] = true
	}
	if !seen[webhookFunctionName] {
		t.Errorf("no call of the webhook deliverer was recorded (internal/webhook's suite writes %s)", awscalls.SuitePath(path, webhookFunctionName))
	}
	if !seen[routes.Analytics.Name] {
		t.Errorf("no call of the analytics aggregator was recorded (internal/analytics's suite writes %s)", awscalls.SuitePath(path, routes.Analytics.Name))
	}
	for _, f := range routes.Functions() {
		if len(f.Tables) == 0 && !f.UsesKMS {
			// Nothing to record: it calls no AWS service (the snippet).
			continue
		}
		if !seen[f.Name] {
			t.Errorf("no call of the %s function was recorded: is the suite's recorder in its clients?", f.Name)
		}
	}
	calls := append(recorded, unrecordedOperatorCalls...)
	app := fullApp(t)
	for _, r := range Regions {
		t.Run(r.Code, func(t *testing.T) {
			tpl, err := iampolicy.NewTemplate(app.templates[StackName(r)], deployed.StackName(r.Code), testAccount, r.Name)
			if err != nil {
				t.Fatal(err)
			}
			keyID := keyID(t, template(app.templates[StackName(r)]))
			key, err := tpl.Arn(keyID)
			if err != nil {
				t.Fatal(err)
			}
			keyPolicy, err := tpl.ResourcePolicy(keyID, "KeyPolicy")
			if err != nil {
				t.Fatal(err)
			}
			principals := callers(t, tpl)
			triples, requests := map[string]bool{}, 0
			var denied []string
			for _, c := range calls {
				p, ok := principals[c.Caller]
				if !ok {
					t.Errorf("call by %q, which is no function of the stack", c.Caller)
					continue
				}
				reqs, err := requestsOf(tpl, key, c, p.arn)
				if err != nil {
					t.Error(err)
					continue
				}
				for _, req := range reqs {
					requests++
					triples[c.Caller+" "+req.Action+" "+req.Resource] = true
					var resource *iampolicy.Policy
					isKMS := strings.HasPrefix(req.Action, "kms:")
					if isKMS {
						resource = &keyPolicy
					}
					d, err := iampolicy.Authorize(req, p.policies, resource, isKMS)
					if err != nil || d != iampolicy.Allow {
						denied = append(denied, fmt.Sprintf("%s: %s (%v)", c.Caller, req, firstNonNil(err, d)))
					}
				}
			}
			sort.Strings(denied)
			for _, d := range denied {
				t.Errorf("denied on AWS: %s", d)
			}
			t.Logf("%s: %d recorded calls, %d authorization requests, %d distinct (function, action, resource) triples checked",
				StackName(r), len(calls), requests, len(triples))
		})
	}
}

func firstNonNil(err error, d iampolicy.Decision) any {
	if err != nil {
		return err
	}
	return d
}
