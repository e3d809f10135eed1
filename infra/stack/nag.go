package stack

import (
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/waymarkhq/waymark/internal/routes"
)

// suppression is one accepted cdk-nag finding with the reason it is accepted.
type suppression struct {
	Rule   string
	Reason string
	// AppliesTo narrows the suppression to these findings of the rule (for
	// IAM5, the wildcard it flagged); empty means the whole rule.
	AppliesTo []string
}

// Suppressions accepted on every route of the API.
var routeSuppressions = []suppression{{
	Rule: "AwsSolutions-APIG4",
	Reason: "The routes cannot use IAM or Cognito authorization: the public snippet routes are called from " +
		"browsers of anonymous end users and are authorized in the function by workspace code, origin allow-list " +
		"and (when identity verification is on) the HMAC of the username; the server routes are authorized in the " +
		"function by a hashed workspace secret key sent as a Bearer token.",
}}

// Suppressions accepted on every function's role.
var roleSuppressions = []suppression{{
	Rule: "AwsSolutions-IAM5",
	Reason: "Active X-Ray tracing needs xray:PutTraceSegments and xray:PutTelemetryRecords, which support no " +
		"resource-level permissions, so their resource is \"*\". Every DynamoDB and KMS statement names its table, " +
		"index or key (checked by the infra tests).",
	AppliesTo: []string{"Resource::*"},
}}

// suppressNagFindings attaches the accepted findings to the resources they
// concern, so any other finding still fails the synth.
func (s *waymarkStack) suppressNagFindings() {
	// APIG4 looks only at routes, and every route of the API is a child of it.
	suppress(s.api, routeSuppressions)
	for _, f := range routes.Functions() {
		suppress(s.functions[f.Name].Role(), roleSuppressions)
	}
	suppress(s.webhookFunction.Role(), roleSuppressions)
	suppress(s.analyticsFunction.Role(), roleSuppressions)
	suppress(s.analyticsFailures, []suppression{{
		Rule: "AwsSolutions-SQS3",
		Reason: "The analytics failure queue is the on-failure destination of the ContentState stream's mapping: it plays " +
			"the dead-letter queue's part (a stream source cannot have one), and its messages are only read by an operator.",
	}})
}

func suppress(construct interface{}, list []suppression) {
	out := make([]*cdknag.NagPackSuppression, len(list))
	for i, sp := range list {
		n := &cdknag.NagPackSuppression{Id: jsii.String(sp.Rule), Reason: jsii.String(sp.Reason)}
		if len(sp.AppliesTo) > 0 {
			applies := make([]interface{}, len(sp.AppliesTo))
			for j, a := range sp.AppliesTo {
				applies[j] = a
			}
			n.AppliesTo = &applies
		}
		out[i] = n
	}
	cdknag.NagSuppressions_AddResourceSuppressions(construct, &out, jsii.Bool(true))
}
