package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// DynamoDB actions per access level. Read is what a state or workspace
// lookup needs; ReadWrite adds the writes, batch writes and the condition
// checks of transactions (TransactWriteItems has no action of its own).
var (
	readActions  = []string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:BatchGetItem"}
	writeActions = []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem"}
)

// narrowUpdateActions is the write of the narrow access levels
// (routes.ReadPublishKey, routes.ReadRefreshExpiry): an UpdateItem that
// narrowUpdateCondition confines to the attributes the level may change (and
// the item's key, which every request names), so that a function that
// publishes a workspace's sealing key cannot change its secrets, origins or
// state, and one that refreshes an item's expiry cannot change the item.
var narrowUpdateActions = []string{"dynamodb:UpdateItem"}

func narrowUpdateCondition(level routes.Access, t schema.Table) map[string]interface{} {
	return map[string]interface{}{
		"ForAllValues:StringEquals": map[string]interface{}{
			"dynamodb:Attributes": routes.NarrowAttributes(level, t),
		},
		// The update answers with nothing (ReturnValues NONE); reading is
		// granted apart.
		"StringEqualsIfExists": map[string]interface{}{
			"dynamodb:ReturnValues": "NONE",
		},
	}
}

// narrowUpdateSids name the statements of the narrow levels, by level.
var narrowUpdateSids = map[routes.Access]string{
	routes.ReadPublishKey:    "PublishSealingKey",
	routes.ReadRefreshExpiry: "RefreshExpiry",
}

// fieldKeyActions are what field encryption calls: a data key to seal new
// values, and the unwrapping of a stored one to open them.
var fieldKeyActions = []string{"kms:GenerateDataKey", "kms:Decrypt"}

// fieldKeyCondition is the condition every use of the key for field
// encryption must meet, in the key policy and in the functions' policies: the
// data key is requested for Waymark's fields, not for anything else.
func fieldKeyCondition() map[string]interface{} {
	return map[string]interface{}{
		"StringEquals": map[string]interface{}{
			"kms:EncryptionContext:" + envelope.ContextPurposeKey: envelope.ContextPurpose,
		},
	}
}

// viaDynamoDB limits a KMS permission to calls DynamoDB makes for the
// tables' encryption at rest in this stack's region.
func viaDynamoDB(r Region) map[string]interface{} {
	return map[string]interface{}{
		"StringEquals": map[string]interface{}{
			"kms:ViaService": "dynamodb." + r.Name + ".amazonaws.com",
		},
	}
}

// viaDynamoDBFromAccount is viaDynamoDB for the key policy, which also pins
// the calling account (its principal is the account, not one role).
func viaDynamoDBFromAccount(r Region) map[string]interface{} {
	c := viaDynamoDB(r)
	c["StringEquals"].(map[string]interface{})["kms:CallerAccount"] = awscdk.Aws_ACCOUNT_ID()
	return c
}

// viaS3FromAccount is viaS3 for the key policy, pinning the calling account.
func viaS3FromAccount(r Region) map[string]interface{} {
	c := viaS3(r)
	c["StringEquals"].(map[string]interface{})["kms:CallerAccount"] = awscdk.Aws_ACCOUNT_ID()
	return c
}

// keyPolicy is the key's resource policy. It trusts only this account, and
// even there splits the key's uses apart: administration (never
// CreateGrant, which would hand out use without conditions), encryption at
// rest through DynamoDB, and field data keys with the purpose context. Which
// principals of the account may do the last two is decided by IAM: the
// functions' roles below, and the operator's credentials for the CLI. The
// roles are not named here because a role created in the same deployment
// may not be visible to KMS yet when the key policy is validated.
func keyPolicy(r Region) awsiam.PolicyDocument {
	account := awsiam.NewAccountRootPrincipal()
	return awsiam.NewPolicyDocument(&awsiam.PolicyDocumentProps{
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("AdministerKey"),
				Principals: &[]awsiam.IPrincipal{account},
				Actions: jsii.Strings(
					"kms:CreateAlias", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*",
					"kms:Update*", "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*",
					"kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
					"kms:CancelKeyDeletion", "kms:RotateKeyOnDemand"),
				Resources: jsii.Strings("*"),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("EncryptTablesThroughDynamoDB"),
				Principals: &[]awsiam.IPrincipal{account},
				Actions: jsii.Strings("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*",
					"kms:CreateGrant", "kms:DescribeKey"),
				Resources:  jsii.Strings("*"),
				Conditions: toPtr(viaDynamoDBFromAccount(r)),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("EncryptQueuesThroughSQS"),
				Principals: &[]awsiam.IPrincipal{account},
				Actions:    jsii.Strings("kms:GenerateDataKey", "kms:Decrypt"),
				Resources:  jsii.Strings("*"),
				Conditions: toPtr(viaSQSFromAccount(r)),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("EncryptAttachmentsThroughS3"),
				Principals: &[]awsiam.IPrincipal{account},
				Actions:    jsii.Strings("kms:GenerateDataKey", "kms:Decrypt"),
				Resources:  jsii.Strings("*"),
				Conditions: toPtr(viaS3FromAccount(r)),
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("FieldDataKeys"),
				Principals: &[]awsiam.IPrincipal{account},
				Actions:    jsii.Strings(fieldKeyActions...),
				Resources:  jsii.Strings("*"),
				Conditions: toPtr(fieldKeyCondition()),
			}),
		},
	})
}

// grant gives a function's role exactly the table actions its entry in
// routes.Functions() declares, on those tables (and their indexes) only, and
// the key uses that go with them.
func (s *waymarkStack) grant(f routes.Function, role awsiam.Role) error {
	known := map[string]bool{}
	for _, t := range schema.All() {
		known[t.Name] = true
	}
	for name := range f.Tables {
		if !known[name] {
			return fmt.Errorf("infra: function %s names table %q, which schema.All() does not list", f.Name, name)
		}
	}
	// schema.All() fixes the order, so the policy is the same on every synth.
	for _, t := range schema.All() {
		access, ok := f.Tables[t.Name]
		if !ok {
			continue
		}
		table := s.tables[t.Name]
		actions, level := readActions, "Read"
		switch access {
		case routes.Read:
		case routes.ReadPublishKey, routes.ReadRefreshExpiry:
			role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String(narrowUpdateSids[access] + t.Name),
				Actions:    jsii.Strings(narrowUpdateActions...),
				Resources:  &[]*string{table.TableArn()},
				Conditions: toPtr(narrowUpdateCondition(access, t)),
			}))
		case routes.ReadWrite:
			actions, level = append(append([]string{}, readActions...), writeActions...), "ReadWrite"
		default:
			return fmt.Errorf("infra: function %s has unknown access %d to %s", f.Name, access, t.Name)
		}
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String(level + t.Name),
			Actions:   jsii.Strings(actions...),
			Resources: &[]*string{table.TableArn()},
		}))
		if len(t.GlobalIndexes) > 0 {
			indexes := make([]*string, len(t.GlobalIndexes))
			for i, idx := range t.GlobalIndexes {
				indexes[i] = jsii.String(*table.TableArn() + "/index/" + idx.Name)
			}
			role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("Query" + t.Name + "Indexes"),
				Actions:   jsii.Strings("dynamodb:Query"),
				Resources: &indexes,
			}))
		}
	}
	if len(f.Tables) > 0 {
		// DynamoDB may use the key on the caller's behalf for encryption at
		// rest; this statement allows that, and nothing outside DynamoDB.
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("TableKeyThroughDynamoDB"),
			Actions:    jsii.Strings("kms:Decrypt", "kms:DescribeKey"),
			Resources:  &[]*string{s.key.KeyArn()},
			Conditions: toPtr(viaDynamoDB(s.region)),
		}))
	}
	if f.UsesKMS {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:        jsii.String("FieldDataKeys"),
			Actions:    jsii.Strings(fieldKeyActions...),
			Resources:  &[]*string{s.key.KeyArn()},
			Conditions: toPtr(fieldKeyCondition()),
		}))
	}
	return nil
}

func toPtr(m map[string]interface{}) *map[string]interface{} { return &m }
