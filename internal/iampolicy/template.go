package iampolicy

import (
	"fmt"
	"sort"
	"strings"
)

// Template is a synthesized CloudFormation template whose intrinsic
// functions are resolved for one fixed account and region, so that the
// policies in it can be evaluated against concrete ARNs. A resource's
// physical name is taken to be its logical id: ARNs are then stable and
// tell which resource they name.
type Template struct {
	Account, Region, StackName string
	Resources                  map[string]map[string]any
}

// NewTemplate reads a decoded template of the stack named stackName.
func NewTemplate(tpl map[string]any, stackName, account, region string) (Template, error) {
	res, ok := tpl["Resources"].(map[string]any)
	if !ok {
		return Template{}, fmt.Errorf("iampolicy: the template has no Resources")
	}
	t := Template{Account: account, Region: region, StackName: stackName, Resources: map[string]map[string]any{}}
	for id, r := range res {
		m, ok := r.(map[string]any)
		if !ok {
			return Template{}, fmt.Errorf("iampolicy: resource %s is %T", id, r)
		}
		t.Resources[id] = m
	}
	return t, nil
}

// OfType lists the logical ids of the resources of a type, sorted.
func (t Template) OfType(typ string) []string {
	var out []string
	for id, r := range t.Resources {
		if r["Type"] == typ {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Properties of a resource, unresolved.
func (t Template) Properties(id string) map[string]any {
	p, _ := t.Resources[id]["Properties"].(map[string]any)
	return p
}

// arnFormats are the ARNs of the resource types Waymark's policies name,
// as their Arn attribute (and, where marked, their Ref) gives them.
var arnFormats = map[string]struct {
	format string // %[1]s region, %[2]s account, %[3]s name
	isRef  bool   // Ref gives the ARN too
}{
	"AWS::DynamoDB::Table":    {"arn:aws:dynamodb:%[1]s:%[2]s:table/%[3]s", false},
	"AWS::KMS::Key":           {"arn:aws:kms:%[1]s:%[2]s:key/%[3]s", false},
	"AWS::SNS::Topic":         {"arn:aws:sns:%[1]s:%[2]s:%[3]s", true},
	"AWS::IAM::Role":          {"arn:aws:iam::%[2]s:role/%[3]s", false},
	"AWS::IAM::ManagedPolicy": {"arn:aws:iam::%[2]s:policy/%[3]s", true},
	"AWS::Logs::LogGroup":     {"arn:aws:logs:%[1]s:%[2]s:log-group:%[3]s:*", false},
	"AWS::Lambda::Function":   {"arn:aws:lambda:%[1]s:%[2]s:function:%[3]s", false},
	"AWS::CloudWatch::Alarm":  {"arn:aws:cloudwatch:%[1]s:%[2]s:alarm:%[3]s", false},
	"AWS::SQS::Queue":         {"arn:aws:sqs:%[1]s:%[2]s:%[3]s", false},
	"AWS::S3::Bucket":         {"arn:aws:s3:::%[3]s", false},
}

// StreamLabel stands for the label of a table's stream in its StreamArn,
// which DynamoDB sets when it creates the stream.
const StreamLabel = "2006-01-02T15:04:05.000"

// StackID is the stack's ARN (AWS::StackId), with a fixed id.
func (t Template) StackID() string {
	return fmt.Sprintf("arn:aws:cloudformation:%s:%s:stack/%s/00000000-0000-0000-0000-000000000000", t.Region, t.Account, t.StackName)
}

// Arn is the ARN of a resource of the template.
func (t Template) Arn(id string) (string, error) {
	r, ok := t.Resources[id]
	if !ok {
		return "", fmt.Errorf("iampolicy: no resource %s", id)
	}
	typ, _ := r["Type"].(string)
	f, ok := arnFormats[typ]
	if !ok {
		return "", fmt.Errorf("iampolicy: no ARN format for %s (%s)", id, typ)
	}
	return fmt.Sprintf(f.format, t.Region, t.Account, id), nil
}

// Resolve replaces the intrinsic functions in v: Ref, Fn::GetAtt (Arn),
// Fn::Join, Fn::Select, Fn::Split and the pseudo parameters. Anything else
// is an error, so that no policy is evaluated half-resolved.
func (t Template) Resolve(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := t.Resolve(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if fn == "Ref" || strings.HasPrefix(fn, "Fn::") {
					return t.intrinsic(fn, arg)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := t.Resolve(e)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	}
	return v, nil
}

func (t Template) intrinsic(fn string, arg any) (any, error) {
	switch fn {
	case "Ref":
		name, _ := arg.(string)
		switch name {
		case "AWS::AccountId":
			return t.Account, nil
		case "AWS::Region":
			return t.Region, nil
		case "AWS::Partition":
			return "aws", nil
		case "AWS::URLSuffix":
			return "amazonaws.com", nil
		case "AWS::StackName":
			return t.StackName, nil
		case "AWS::StackId":
			return t.StackID(), nil
		}
		r, ok := t.Resources[name]
		if !ok {
			return nil, fmt.Errorf("iampolicy: Ref to %q, which the template does not hold", name)
		}
		if f, ok := arnFormats[fmt.Sprint(r["Type"])]; ok && f.isRef {
			return t.Arn(name)
		}
		return name, nil
	case "Fn::GetAtt":
		l, _ := arg.([]any)
		if len(l) == 2 && l[1] == "StreamArn" {
			arn, err := t.Arn(fmt.Sprint(l[0]))
			if err != nil {
				return nil, err
			}
			return arn + "/stream/" + StreamLabel, nil
		}
		if len(l) != 2 || l[1] != "Arn" {
			return nil, fmt.Errorf("iampolicy: Fn::GetAtt %v: only Arn and a table's StreamArn are resolved", arg)
		}
		return t.Arn(fmt.Sprint(l[0]))
	case "Fn::Join":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("iampolicy: Fn::Join %v", arg)
		}
		parts, err := t.Resolve(l[1])
		if err != nil {
			return nil, err
		}
		strs, err := stringList(parts)
		if err != nil {
			return nil, err
		}
		return strings.Join(strs, fmt.Sprint(l[0])), nil
	case "Fn::Split":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("iampolicy: Fn::Split %v", arg)
		}
		s, err := t.Resolve(l[1])
		if err != nil {
			return nil, err
		}
		parts := strings.Split(fmt.Sprint(s), fmt.Sprint(l[0]))
		out := make([]any, len(parts))
		for i, p := range parts {
			out[i] = p
		}
		return out, nil
	case "Fn::Select":
		l, _ := arg.([]any)
		if len(l) != 2 {
			return nil, fmt.Errorf("iampolicy: Fn::Select %v", arg)
		}
		list, err := t.Resolve(l[1])
		if err != nil {
			return nil, err
		}
		items, _ := list.([]any)
		var i int
		if _, err := fmt.Sscan(fmt.Sprint(l[0]), &i); err != nil || i < 0 || i >= len(items) {
			return nil, fmt.Errorf("iampolicy: Fn::Select %v", arg)
		}
		return items[i], nil
	}
	return nil, fmt.Errorf("iampolicy: %s is not resolved", fn)
}

// policy resolves and parses a policy document of the template.
func (t Template) policy(doc any) (Policy, error) {
	resolved, err := t.Resolve(doc)
	if err != nil {
		return Policy{}, err
	}
	return Parse(resolved)
}

// ResourcePolicy is the policy document held in a property of a resource,
// such as a KMS key's KeyPolicy.
func (t Template) ResourcePolicy(id, property string) (Policy, error) {
	doc, ok := t.Properties(id)[property]
	if !ok {
		return Policy{}, fmt.Errorf("iampolicy: %s has no %s", id, property)
	}
	return t.policy(doc)
}

// ManagedPolicy is the document of an AWS::IAM::ManagedPolicy of the template.
func (t Template) ManagedPolicy(id string) (Policy, error) {
	if t.Resources[id]["Type"] != "AWS::IAM::ManagedPolicy" {
		return Policy{}, fmt.Errorf("iampolicy: %s is no managed policy", id)
	}
	return t.ResourcePolicy(id, "PolicyDocument")
}

// RolePolicies gathers every identity policy of a role of the template:
// its inline Policies, the AWS::IAM::Policy and AWS::IAM::ManagedPolicy
// resources that list it in Roles, and its ManagedPolicyArns that the
// template defines. A managed policy from outside the template cannot be
// evaluated and is an error.
func (t Template) RolePolicies(role string) ([]Policy, error) {
	if t.Resources[role]["Type"] != "AWS::IAM::Role" {
		return nil, fmt.Errorf("iampolicy: %s is no role", role)
	}
	var out []Policy
	rp := t.Properties(role)
	if inline, ok := rp["Policies"].([]any); ok {
		for _, p := range inline {
			pol, err := t.policy(p.(map[string]any)["PolicyDocument"])
			if err != nil {
				return nil, err
			}
			out = append(out, pol)
		}
	}
	if arns, ok := rp["ManagedPolicyArns"].([]any); ok {
		for _, a := range arns {
			ref, _ := a.(map[string]any)["Ref"].(string)
			if t.Resources[ref]["Type"] != "AWS::IAM::ManagedPolicy" {
				return nil, fmt.Errorf("iampolicy: role %s has managed policy %v from outside the template", role, a)
			}
			pol, err := t.ManagedPolicy(ref)
			if err != nil {
				return nil, err
			}
			out = append(out, pol)
		}
	}
	for _, typ := range []string{"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"} {
		for _, id := range t.OfType(typ) {
			roles, _ := t.Properties(id)["Roles"].([]any)
			for _, r := range roles {
				if m, ok := r.(map[string]any); ok && m["Ref"] == role {
					pol, err := t.ResourcePolicy(id, "PolicyDocument")
					if err != nil {
						return nil, err
					}
					out = append(out, pol)
				}
			}
		}
	}
	return out, nil
}
