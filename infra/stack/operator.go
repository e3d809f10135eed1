package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
)

// operatorPolicyID is the logical id of the operator's managed policy; the
// tests and docs/deploy.md name it.
const operatorPolicyID = "OperatorPolicy"

// operatorTableActions are what the CLI (cmd/waymark) does with the tables:
// everything the functions do, and the Scan of `workspace list`.
var operatorTableActions = append(append([]string{"dynamodb:Scan"}, readActions...), writeActions...)

// addOperatorPolicy creates the managed policy that a person or role running
// the operator CLI against this stack needs, and nothing more: find the
// stack (its outputs name the tables and the key), use the tables, let
// DynamoDB use the key for them, and seal and open fields with data keys.
// The stack attaches it to nobody; the operator attaches it to their user,
// group or role (docs/deploy.md).
func (s *waymarkStack) addOperatorPolicy() {
	var tables, indexes []*string
	for _, t := range schema.All() {
		table := s.tables[t.Name]
		tables = append(tables, table.TableArn())
		for _, idx := range t.GlobalIndexes {
			indexes = append(indexes, jsii.String(*table.TableArn()+"/index/"+idx.Name))
		}
	}
	statements := []awsiam.PolicyStatement{
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			// deployed.Find reads the stack's outputs by its name; the
			// stack's id (its ARN) names this stack and no other.
			Sid:       jsii.String("FindStack"),
			Actions:   jsii.Strings("cloudformation:DescribeStacks"),
			Resources: jsii.Strings(*awscdk.Aws_STACK_ID()),
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("Tables"),
			Actions:   jsii.Strings(operatorTableActions...),
			Resources: &tables,
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("TableKeyThroughDynamoDB"),
			Actions:    jsii.Strings("kms:Decrypt", "kms:DescribeKey"),
			Resources:  &[]*string{s.key.KeyArn()},
			Conditions: toPtr(viaDynamoDB(s.region)),
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("FieldDataKeys"),
			Actions:    jsii.Strings(fieldKeyActions...),
			Resources:  &[]*string{s.key.KeyArn()},
			Conditions: toPtr(fieldKeyCondition()),
		}),
	}
	// Erasure (`waymark user delete`) deletes the users' files; export
	// presigns their downloads.
	statements = append(statements,
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("ListAttachments"),
			Actions:   jsii.Strings("s3:ListBucket"),
			Resources: &[]*string{s.bucket.BucketArn()},
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("Attachments"),
			Actions:   jsii.Strings("s3:GetObject", "s3:DeleteObject"),
			Resources: &[]*string{s.objectsUnder(objects.UploadsPrefix), s.objectsUnder(objects.AttachmentsPrefix)},
		}),
		awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("BucketKeyThroughS3"),
			Actions:    jsii.Strings("kms:Decrypt"),
			Resources:  &[]*string{s.key.KeyArn()},
			Conditions: toPtr(viaS3(s.region)),
		}),
	)
	if len(indexes) > 0 {
		statements = append(statements, awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("QueryIndexes"),
			Actions:   jsii.Strings("dynamodb:Query"),
			Resources: &indexes,
		}))
	}
	policy := awsiam.NewManagedPolicy(s.stack, jsii.String(operatorPolicyID), &awsiam.ManagedPolicyProps{
		// Managed policy names are global to the account: the stack name
		// keeps the regions apart.
		ManagedPolicyName: jsii.String(StackName(s.region) + "-operator"),
		Description:       jsii.String("Runs the waymark CLI against " + StackName(s.region) + " (" + s.region.Name + ")"),
		Statements:        &statements,
	})
	policy.Node().DefaultChild().(awsiam.CfnManagedPolicy).OverrideLogicalId(jsii.String(operatorPolicyID))
	suppress(policy, objectWildcards)
	awscdk.NewCfnOutput(s.stack, jsii.String("OperatorPolicyArn"), &awscdk.CfnOutputProps{
		Description: jsii.String("Attach this managed policy to whoever runs the waymark CLI against this stack"),
		Value:       policy.ManagedPolicyArn(),
	})
}
