// Package deployed finds the deployed stacks of Waymark through their
// CloudFormation outputs, for the operator CLI. It is kept out of the
// functions' packages so that they do not link the CloudFormation client.
package deployed

import (
	"context"
	"fmt"
	"sort"
	"strings"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Regions maps the short region names of the deployable stacks to AWS
// regions. Each stack is independent: a workspace's data stays in its region.
var Regions = map[string]string{"eu": "eu-central-1", "us": "us-east-1"}

// StackName is the CloudFormation name of the stack of a short region.
func StackName(short string) string { return "Waymark-" + short }

// Stack outputs the CLI reads (the CDK stack defines them).
const (
	OutputKMSKeyARN = "KmsKeyArn"
	OutputAPIURL    = "ApiUrl"
	// OutputAttachmentsBucket names the bucket of feedback attachments.
	OutputAttachmentsBucket = "AttachmentsBucketName"
)

// TableOutput is the stack output that names a table.
func TableOutput(logical string) string { return logical + "TableName" }

// Stack is what the CLI needs of a deployed stack.
type Stack struct {
	// Config points at the stack's tables and key.
	Config config.Config
	// APIURL is the base URL of its API.
	APIURL string
}

// Find reads the stack of a short region name from its outputs, with the
// AWS default credential chain.
func Find(ctx context.Context, short string) (*Stack, error) {
	region, ok := Regions[short]
	if !ok {
		names := make([]string, 0, len(Regions))
		for n := range Regions {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("unknown region %q: use one of %s", short, strings.Join(names, ", "))
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(region))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	out, err := cloudformation.NewFromConfig(awsCfg).DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: &[]string{StackName(short)}[0]})
	if err != nil {
		return nil, fmt.Errorf("read stack %s in %s: %w", StackName(short), region, err)
	}
	if len(out.Stacks) != 1 {
		return nil, fmt.Errorf("stack %s not found in %s", StackName(short), region)
	}
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		if o.OutputKey != nil && o.OutputValue != nil {
			outputs[*o.OutputKey] = *o.OutputValue
		}
	}
	cfg := config.Config{Tables: map[string]string{}, KMSKeyID: outputs[OutputKMSKeyARN], AttachmentsBucket: outputs[OutputAttachmentsBucket], AWS: &awsCfg}
	for _, t := range schema.All() {
		name := outputs[TableOutput(t.Name)]
		if name == "" {
			return nil, fmt.Errorf("stack %s has no output %s: deploy the current version", StackName(short), TableOutput(t.Name))
		}
		cfg.Tables[t.Name] = name
	}
	if cfg.KMSKeyID == "" {
		return nil, fmt.Errorf("stack %s has no output %s", StackName(short), OutputKMSKeyARN)
	}
	// Erasure must reach the users' files: a stack without the bucket's
	// output predates attachments.
	if cfg.AttachmentsBucket == "" {
		return nil, fmt.Errorf("stack %s has no output %s: deploy the current version", StackName(short), OutputAttachmentsBucket)
	}
	return &Stack{Config: cfg, APIURL: outputs[OutputAPIURL]}, nil
}
