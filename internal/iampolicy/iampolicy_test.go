package iampolicy

import (
	"testing"
)

const (
	account = "123456789012"
	role    = "arn:aws:iam::123456789012:role/app"
	table   = "arn:aws:dynamodb:eu-central-1:123456789012:table/Users"
	key     = "arn:aws:kms:eu-central-1:123456789012:key/k1"
	topic   = "arn:aws:sns:eu-central-1:123456789012:alarms"
)

func mustParse(t *testing.T, doc string) Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("parse %s: %v", doc, err)
	}
	return p
}

// Cases from IAM's documentation: "Policy evaluation logic", "IAM JSON
// policy elements: Condition operators", "Multivalued context keys", and
// the DynamoDB and KMS condition-key examples.
func TestEvaluate(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		req    Request
		want   Decision
	}{
		{"no statement applies: implicit deny",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"` + table + `"}}`,
			Request{Action: "dynamodb:PutItem", Resource: table}, ImplicitDeny},
		{"allow",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"` + table + `"}}`,
			Request{Action: "dynamodb:GetItem", Resource: table}, Allow},
		{"an explicit deny overrides an allow",
			`{"Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},{"Effect":"Deny","Action":"dynamodb:DeleteItem","Resource":"` + table + `"}]}`,
			Request{Action: "dynamodb:DeleteItem", Resource: table}, ExplicitDeny},
		{"actions match without regard to case",
			`{"Statement":{"Effect":"Allow","Action":"DynamoDB:getitem","Resource":"` + table + `"}}`,
			Request{Action: "dynamodb:GetItem", Resource: table}, Allow},
		{"action wildcard",
			`{"Statement":{"Effect":"Allow","Action":"kms:GenerateDataKey*","Resource":"*"}}`,
			Request{Action: "kms:GenerateDataKeyWithoutPlaintext", Resource: key}, Allow},
		{"action wildcard does not reach another service",
			`{"Statement":{"Effect":"Allow","Action":"kms:*","Resource":"*"}}`,
			Request{Action: "dynamodb:GetItem", Resource: table}, ImplicitDeny},
		{"resource wildcard crosses / ",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:Query","Resource":"` + table + `/index/*"}}`,
			Request{Action: "dynamodb:Query", Resource: table + "/index/byUser"}, Allow},
		{"a table's ARN does not grant its indexes",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:Query","Resource":"` + table + `"}}`,
			Request{Action: "dynamodb:Query", Resource: table + "/index/byUser"}, ImplicitDeny},
		{"resources are case-sensitive",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:eu-central-1:123456789012:table/users"}}`,
			Request{Action: "dynamodb:GetItem", Resource: table}, ImplicitDeny},
		{"? matches one character",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"arn:aws:dynamodb:eu-central-1:123456789012:table/User?"}}`,
			Request{Action: "dynamodb:GetItem", Resource: table}, Allow},
		{"NotAction allows everything else",
			`{"Statement":{"Effect":"Allow","NotAction":"dynamodb:DeleteItem","Resource":"*"}}`,
			Request{Action: "dynamodb:PutItem", Resource: table}, Allow},
		{"NotAction excludes what it names",
			`{"Statement":{"Effect":"Allow","NotAction":"dynamodb:Delete*","Resource":"*"}}`,
			Request{Action: "dynamodb:DeleteItem", Resource: table}, ImplicitDeny},
		{"NotResource with Deny denies every other resource",
			`{"Statement":[{"Effect":"Allow","Action":"dynamodb:*","Resource":"*"},{"Effect":"Deny","Action":"dynamodb:*","NotResource":"` + table + `"}]}`,
			Request{Action: "dynamodb:GetItem", Resource: table + "x"}, ExplicitDeny},
		{"StringEquals on a key the request carries",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:purpose":"waymark-field"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key, Context: map[string][]string{"kms:EncryptionContext:purpose": {"waymark-field"}}}, Allow},
		{"condition keys match without regard to case, values with it",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"KMS:ViaService":"dynamodb.eu-central-1.amazonaws.com"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key, Context: map[string][]string{"kms:ViaService": {"DYNAMODB.eu-central-1.amazonaws.com"}}}, ImplicitDeny},
		{"StringEquals fails on a missing key",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"dynamodb.eu-central-1.amazonaws.com"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key}, ImplicitDeny},
		{"StringEquals: any of the policy's values (OR)",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":["s3.eu-central-1.amazonaws.com","dynamodb.eu-central-1.amazonaws.com"]}}}}`,
			Request{Action: "kms:Decrypt", Resource: key, Context: map[string][]string{"kms:ViaService": {"dynamodb.eu-central-1.amazonaws.com"}}}, Allow},
		{"keys of one operator and several operators all must hold (AND)",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"dynamodb.eu-central-1.amazonaws.com","kms:CallerAccount":"123456789012"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key, Context: map[string][]string{"kms:ViaService": {"dynamodb.eu-central-1.amazonaws.com"}}}, ImplicitDeny},
		{"IfExists holds on a missing key",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:UpdateItem","Resource":"*","Condition":{"StringEqualsIfExists":{"dynamodb:ReturnValues":"NONE"}}}}`,
			Request{Action: "dynamodb:UpdateItem", Resource: table}, Allow},
		{"IfExists still compares a present key",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:UpdateItem","Resource":"*","Condition":{"StringEqualsIfExists":{"dynamodb:ReturnValues":"NONE"}}}}`,
			Request{Action: "dynamodb:UpdateItem", Resource: table, Context: map[string][]string{"dynamodb:ReturnValues": {"ALL_NEW"}}}, ImplicitDeny},
		{"StringNotEquals holds on a missing key",
			`{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:RequestedRegion":"eu-central-1"}}}}`,
			Request{Action: "dynamodb:GetItem", Resource: table}, ExplicitDeny},
		{"ForAllValues: every requested attribute is allowed",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:UpdateItem","Resource":"*","Condition":{"ForAllValues:StringEquals":{"dynamodb:Attributes":["pk","sk","expiresAt"]}}}}`,
			Request{Action: "dynamodb:UpdateItem", Resource: table, Context: map[string][]string{"dynamodb:Attributes": {"pk", "sk", "expiresAt"}}}, Allow},
		{"ForAllValues: one attribute outside the list fails it",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:UpdateItem","Resource":"*","Condition":{"ForAllValues:StringEquals":{"dynamodb:Attributes":["pk","sk","expiresAt"]}}}}`,
			Request{Action: "dynamodb:UpdateItem", Resource: table, Context: map[string][]string{"dynamodb:Attributes": {"pk", "sk", "state"}}}, ImplicitDeny},
		{"ForAllValues holds when the key is missing",
			`{"Statement":{"Effect":"Allow","Action":"dynamodb:UpdateItem","Resource":"*","Condition":{"ForAllValues:StringEquals":{"dynamodb:Attributes":["pk"]}}}}`,
			Request{Action: "dynamodb:UpdateItem", Resource: table}, Allow},
		{"ForAnyValue: one match is enough",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"purpose"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key, Context: map[string][]string{"kms:EncryptionContextKeys": {"workspace", "purpose"}}}, Allow},
		{"ForAnyValue fails when the key is missing",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"purpose"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key}, ImplicitDeny},
		{"StringLike with a wildcard",
			`{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:ViaService":"dynamodb.*.amazonaws.com"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key, Context: map[string][]string{"kms:ViaService": {"dynamodb.us-east-1.amazonaws.com"}}}, Allow},
		{"Null true: the key must be missing",
			`{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Null":{"kms:ViaService":"true"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key}, ExplicitDeny},
		{"Null false: the key must be present",
			`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Null":{"kms:ViaService":"false"}}}}`,
			Request{Action: "kms:Decrypt", Resource: key}, ImplicitDeny},
		{"Bool false denies a request without TLS (the enforceSSL statement)",
			`{"Statement":{"Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":"` + topic + `","Condition":{"Bool":{"aws:SecureTransport":"false"}}}}`,
			Request{Principal: "cloudwatch.amazonaws.com", Action: "sns:Publish", Resource: topic, Context: map[string][]string{"aws:SecureTransport": {"false"}}}, ExplicitDeny},
		{"Bool false does not deny a request over TLS",
			`{"Statement":{"Effect":"Deny","Principal":"*","Action":"sns:Publish","Resource":"` + topic + `","Condition":{"Bool":{"aws:SecureTransport":false}}}}`,
			Request{Principal: "cloudwatch.amazonaws.com", Action: "sns:Publish", Resource: topic, Context: map[string][]string{"aws:SecureTransport": {"true"}}}, ImplicitDeny},
		{"ArnLike on the source ARN",
			`{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Publish","Resource":"` + topic + `","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:cloudwatch:eu-central-1:123456789012:alarm:*"}}}}`,
			Request{Principal: "cloudwatch.amazonaws.com", Action: "sns:Publish", Resource: topic, Context: map[string][]string{"aws:SourceArn": {"arn:aws:cloudwatch:eu-central-1:123456789012:alarm:Api5xx"}}}, Allow},
		{"ArnLike compares part by part: another account fails",
			`{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Publish","Resource":"` + topic + `","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:cloudwatch:eu-central-1:123456789012:alarm:*"}}}}`,
			Request{Principal: "cloudwatch.amazonaws.com", Action: "sns:Publish", Resource: topic, Context: map[string][]string{"aws:SourceArn": {"arn:aws:cloudwatch:eu-central-1:999999999999:alarm:Api5xx"}}}, ImplicitDeny},
		{"a service principal statement does not apply to another service",
			`{"Statement":{"Effect":"Allow","Principal":{"Service":"cloudwatch.amazonaws.com"},"Action":"sns:Publish","Resource":"` + topic + `"}}`,
			Request{Principal: "events.amazonaws.com", Action: "sns:Publish", Resource: topic}, ImplicitDeny},
		{"the account root principal stands for every principal of the account",
			`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:*","Resource":"*"}}`,
			Request{Principal: role, Action: "kms:DescribeKey", Resource: key}, Allow},
		{"another account's root does not",
			`{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:*","Resource":"*"}}`,
			Request{Principal: role, Action: "kms:DescribeKey", Resource: key}, ImplicitDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := mustParse(t, c.policy).Evaluate(c.req)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s: %v, want %v", c.req, got, c.want)
			}
		})
	}
}

func TestUnsupportedOperatorIsAnErrorNotAnAllow(t *testing.T) {
	p := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"dynamodb:Limit":"10"}}}}`)
	if d, err := p.Evaluate(Request{Action: "dynamodb:Query", Resource: table}); err == nil || d == Allow {
		t.Fatalf("%v, %v: want an error", d, err)
	}
}

// KMS: the key policy decides. Naming the account hands the decision to
// IAM; without an IAM allow the request fails, and an identity policy alone
// is not enough either.
func TestAuthorizeKeyPolicy(t *testing.T) {
	accountKeyPolicy := mustParse(t, `{"Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"kms:Decrypt","Resource":"*"}}`)
	rolePolicy := mustParse(t, `{"Statement":{"Effect":"Allow","Principal":{"AWS":"`+role+`"},"Action":"kms:Decrypt","Resource":"*"}}`)
	iamAllow := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"`+key+`"}}`)
	iamDeny := mustParse(t, `{"Statement":{"Effect":"Deny","Action":"kms:*","Resource":"*"}}`)
	nothing := mustParse(t, `{"Statement":{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}}`)
	req := Request{Principal: role, Action: "kms:Decrypt", Resource: key}
	cases := []struct {
		name     string
		identity []Policy
		resource *Policy
		want     Decision
	}{
		{"account in the key policy and an IAM allow", []Policy{iamAllow}, &accountKeyPolicy, Allow},
		{"account in the key policy, no IAM allow", []Policy{nothing}, &accountKeyPolicy, ImplicitDeny},
		{"the role named in the key policy needs no IAM allow", nil, &rolePolicy, Allow},
		{"an IAM allow without the key policy's", []Policy{iamAllow}, &nothing, ImplicitDeny},
		{"an IAM deny wins over the key policy", []Policy{iamDeny}, &rolePolicy, ExplicitDeny},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := Authorize(req, c.identity, c.resource, true)
			if err != nil || got != c.want {
				t.Errorf("%v (%v), want %v", got, err, c.want)
			}
		})
	}
	// Outside KMS, an identity allow suffices.
	if got, _ := Authorize(Request{Principal: role, Action: "dynamodb:GetItem", Resource: table},
		[]Policy{mustParse(t, `{"Statement":{"Effect":"Allow","Action":"dynamodb:GetItem","Resource":"`+table+`"}}`)}, nil, false); got != Allow {
		t.Errorf("identity allow without resource policy: %v", got)
	}
}

func TestResolveTemplate(t *testing.T) {
	tpl, err := NewTemplate(map[string]any{"Resources": map[string]any{
		"UsersTable": map[string]any{"Type": "AWS::DynamoDB::Table"},
		"Topic":      map[string]any{"Type": "AWS::SNS::Topic"},
	}}, "Waymark-eu", account, "eu-central-1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tpl.Resolve(map[string]any{"Fn::Join": []any{"", []any{
		map[string]any{"Fn::GetAtt": []any{"UsersTable", "Arn"}}, "/index/", map[string]any{"Ref": "AWS::Region"}}}})
	if err != nil || got != "arn:aws:dynamodb:eu-central-1:123456789012:table/UsersTable/index/eu-central-1" {
		t.Errorf("Fn::Join: %v, %v", got, err)
	}
	if got, err := tpl.Resolve(map[string]any{"Ref": "Topic"}); err != nil || got != "arn:aws:sns:eu-central-1:123456789012:Topic" {
		t.Errorf("Ref of a topic: %v, %v", got, err)
	}
	if _, err := tpl.Resolve(map[string]any{"Fn::ImportValue": "x"}); err == nil {
		t.Error("an unknown intrinsic function was resolved")
	}
	if _, err := tpl.Resolve(map[string]any{"Ref": "Missing"}); err == nil {
		t.Error("a Ref to a missing resource was resolved")
	}
}
