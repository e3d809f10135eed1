// Package iampolicy evaluates IAM policy documents the way AWS does for one
// request, so that tests can prove that the calls Waymark makes are allowed
// by the policies its CloudFormation template grants. Neither DynamoDB Local
// nor local-kms checks any permission: without this, a missing grant shows
// only once deployed.
//
// It is test tooling: nothing that ships in a Lambda imports it. It is
// written here rather than taken from a library because none fits: AWS's
// policy simulator (SimulatePrincipalPolicy, and Go CLIs around it such as
// aws-iam-policy-sim) is an online API that needs an account;
// github.com/micahhausler/aws-iam-policy has Go types for policies but no
// evaluation; the offline evaluators are Rust (iam-rs) or TypeScript
// (@cloud-copilot/iam-simulate), or buried in a storage server
// (SeaweedFS's policy engine). The part of IAM that Waymark's policies use
// is small: Allow/Deny, Action/NotAction, Resource/NotResource, Principal
// for resource policies, and the condition operators of comparator and
// Null. Anything else is an error, never a silent allow.
package iampolicy

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Request is one authorization request: an action on a resource, with the
// condition keys the request carries. Context keys are matched without
// regard to case, as IAM does; values are case-sensitive.
type Request struct {
	// Principal is the ARN of the caller (a role), or for a service the
	// service principal such as "cloudwatch.amazonaws.com".
	Principal string
	// Action is "service:Operation", for example "dynamodb:GetItem".
	Action   string
	Resource string
	// Context maps a condition key to its values (one for a single-valued
	// key, any number for a multivalued one such as dynamodb:Attributes).
	Context map[string][]string
}

func (r Request) String() string {
	return fmt.Sprintf("%s on %s by %s %v", r.Action, r.Resource, r.Principal, r.Context)
}

// Decision is the outcome of evaluating policies for a request.
type Decision int

const (
	// ImplicitDeny: no statement allows the request.
	ImplicitDeny Decision = iota
	// Allow: a statement allows it and none denies it.
	Allow
	// ExplicitDeny: a statement denies it, whatever allows it.
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allow:
		return "allow"
	case ExplicitDeny:
		return "explicit deny"
	}
	return "implicit deny"
}

// Policy is a parsed policy document.
type Policy struct {
	Statements []Statement
}

// Statement is one statement of a policy. Conditions map an operator
// ("StringEquals", "ForAllValues:StringLike", "ArnLikeIfExists", ...) to
// condition keys and the values the request's values are compared with.
type Statement struct {
	Sid                      string
	Effect                   string
	Principals, NotPrincipal map[string][]string // "AWS", "Service", or "*" → values
	Actions, NotActions      []string
	Resources, NotResources  []string
	Conditions               map[string]map[string][]string
}

// Parse reads a policy document given as decoded JSON (a map, as found in
// a template once its intrinsic functions are resolved) or as JSON text.
func Parse(doc any) (Policy, error) {
	if b, ok := doc.([]byte); ok {
		var m any
		if err := json.Unmarshal(b, &m); err != nil {
			return Policy{}, fmt.Errorf("iampolicy: %w", err)
		}
		doc = m
	}
	m, ok := doc.(map[string]any)
	if !ok {
		return Policy{}, fmt.Errorf("iampolicy: a policy document is an object, got %T", doc)
	}
	var p Policy
	raw := m["Statement"]
	if _, one := raw.(map[string]any); one {
		raw = []any{raw}
	}
	list, ok := raw.([]any)
	if !ok {
		return Policy{}, fmt.Errorf("iampolicy: Statement is %T", m["Statement"])
	}
	for i, s := range list {
		st, err := parseStatement(s)
		if err != nil {
			return Policy{}, fmt.Errorf("iampolicy: statement %d: %w", i, err)
		}
		p.Statements = append(p.Statements, st)
	}
	return p, nil
}

func parseStatement(v any) (Statement, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return Statement{}, fmt.Errorf("a statement is an object, got %T", v)
	}
	known := map[string]bool{"Sid": true, "Effect": true, "Principal": true, "NotPrincipal": true, "Action": true,
		"NotAction": true, "Resource": true, "NotResource": true, "Condition": true}
	for k := range m {
		if !known[k] {
			return Statement{}, fmt.Errorf("unknown element %q", k)
		}
	}
	sid, _ := m["Sid"].(string)
	effect, _ := m["Effect"].(string)
	st := Statement{Sid: sid, Effect: effect}
	if st.Effect != "Allow" && st.Effect != "Deny" {
		return Statement{}, fmt.Errorf("Effect %q", st.Effect)
	}
	var err error
	for _, f := range []struct {
		key string
		to  *[]string
	}{{"Action", &st.Actions}, {"NotAction", &st.NotActions}, {"Resource", &st.Resources}, {"NotResource", &st.NotResources}} {
		if m[f.key] == nil {
			continue
		}
		if *f.to, err = stringList(m[f.key]); err != nil {
			return Statement{}, fmt.Errorf("%s: %w", f.key, err)
		}
	}
	if (len(st.Actions) == 0) == (len(st.NotActions) == 0) {
		return Statement{}, fmt.Errorf("needs exactly one of Action and NotAction")
	}
	if st.Principals, err = principals(m["Principal"]); err != nil {
		return Statement{}, fmt.Errorf("Principal: %w", err)
	}
	if st.NotPrincipal, err = principals(m["NotPrincipal"]); err != nil {
		return Statement{}, fmt.Errorf("NotPrincipal: %w", err)
	}
	if c, ok := m["Condition"].(map[string]any); ok {
		st.Conditions = map[string]map[string][]string{}
		for op, keys := range c {
			km, ok := keys.(map[string]any)
			if !ok {
				return Statement{}, fmt.Errorf("Condition %s is %T", op, keys)
			}
			st.Conditions[op] = map[string][]string{}
			for k, vals := range km {
				if st.Conditions[op][k], err = stringList(vals); err != nil {
					return Statement{}, fmt.Errorf("Condition %s %s: %w", op, k, err)
				}
			}
		}
	} else if m["Condition"] != nil {
		return Statement{}, fmt.Errorf("Condition is %T", m["Condition"])
	}
	return st, nil
}

func principals(v any) (map[string][]string, error) {
	switch p := v.(type) {
	case nil:
		return nil, nil
	case string:
		if p != "*" {
			return nil, fmt.Errorf("%q: only \"*\" may stand alone", p)
		}
		return map[string][]string{"*": {"*"}}, nil
	case map[string]any:
		out := map[string][]string{}
		for kind, vals := range p {
			l, err := stringList(vals)
			if err != nil {
				return nil, err
			}
			out[kind] = l
		}
		return out, nil
	}
	return nil, fmt.Errorf("type %T", v)
}

// stringList reads a string or a list of strings. Booleans and numbers are
// written as JSON values in some documents ("Bool": {"aws:SecureTransport":
// false}); IAM compares them as their text.
func stringList(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case bool, float64:
		return []string{fmt.Sprint(x)}, nil
	case []any:
		var out []string
		for _, e := range x {
			l, err := stringList(e)
			if err != nil {
				return nil, err
			}
			if len(l) != 1 {
				return nil, fmt.Errorf("nested list")
			}
			out = append(out, l[0])
		}
		return out, nil
	case []string:
		return x, nil
	}
	return nil, fmt.Errorf("%T (%v) is not a string; an unresolved intrinsic function?", v, v)
}

// Evaluate is the policy's own verdict on the request: ExplicitDeny if a
// Deny statement applies, else Allow if an Allow statement applies, else
// ImplicitDeny. An error (an unsupported operator) is never an Allow.
func (p Policy) Evaluate(r Request) (Decision, error) {
	d := ImplicitDeny
	for _, st := range p.Statements {
		applies, err := st.applies(r)
		if err != nil {
			return ExplicitDeny, fmt.Errorf("statement %q: %w", st.Sid, err)
		}
		if !applies {
			continue
		}
		if st.Effect == "Deny" {
			return ExplicitDeny, nil
		}
		d = Allow
	}
	return d, nil
}

func (st Statement) applies(r Request) (bool, error) {
	if st.Principals != nil && !matchPrincipal(st.Principals, r.Principal) {
		return false, nil
	}
	if st.NotPrincipal != nil && matchPrincipal(st.NotPrincipal, r.Principal) {
		return false, nil
	}
	if len(st.Actions) > 0 && !anyMatch(st.Actions, r.Action, true) ||
		len(st.NotActions) > 0 && anyMatch(st.NotActions, r.Action, true) {
		return false, nil
	}
	// A statement of an identity policy without Resource is invalid; one
	// without either in a resource policy means the resource itself.
	if len(st.Resources) > 0 && !anyMatch(st.Resources, r.Resource, false) ||
		len(st.NotResources) > 0 && anyMatch(st.NotResources, r.Resource, false) {
		return false, nil
	}
	for op, keys := range st.Conditions {
		for key, values := range keys {
			ok, err := evalCondition(op, key, values, r.Context)
			if err != nil || !ok {
				return false, err
			}
		}
	}
	return true, nil
}

// matchPrincipal: "*" is anyone; an account ("123456789012" or its root
// ARN) is every principal of that account; otherwise the ARN or service
// principal itself.
func matchPrincipal(ps map[string][]string, principal string) bool {
	for kind, vals := range ps {
		for _, v := range vals {
			switch {
			case v == "*":
				return true
			case kind == "Service" && v == principal:
				return true
			case kind == "AWS" && (v == principal || accountOf(v) != "" && accountOf(v) == accountOf(principal) && isAccount(v)):
				return true
			}
		}
	}
	return false
}

func isAccount(v string) bool { return !strings.HasPrefix(v, "arn:") || strings.HasSuffix(v, ":root") }

// accountOf is the account of an ARN or of a bare account id.
func accountOf(v string) string {
	if !strings.HasPrefix(v, "arn:") {
		if len(v) == 12 {
			return v
		}
		return ""
	}
	parts := strings.SplitN(v, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}

func anyMatch(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		if foldCase {
			p, s = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcard(p, s) {
			return true
		}
	}
	return false
}

// wildcard matches IAM's patterns: * is any run of characters (":" and "/"
// included), ? any one character.
func wildcard(pattern, s string) bool {
	// path.Match would stop * at "/", which IAM's * crosses.
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	p, str := []rune(pattern), []rune(s)
	// Classic two-pointer match with backtracking on the last *.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(str) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == str[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}
