package stack

import (
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/waymarkhq/waymark/internal/buildinfo"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/schema"
)

// Content analytics (internal/analytics): the ContentState table's stream
// feeds the aggregator, which adds each batch's transitions to the
// Analytics table's counters exactly once. It serves no route, so, like the
// webhook deliverer, it is built here and not from routes.Functions().
const (
	analyticsStreamSourceID  = "AnalyticsStreamSource"
	analyticsFailureQueueID  = "AnalyticsFailureQueue"
	analyticsTimeoutSeconds  = 30
	analyticsBatchSize       = 100
	analyticsBatchingSeconds = 1
	// analyticsTumblingSeconds: the handler keeps no state across a window;
	// the window is there because only a tumbling-window event names its
	// shard, which the exactly-once marks are keyed by. It does not delay
	// delivery: every batch is invoked as it is ready.
	analyticsTumblingSeconds = 60
	// analyticsRetries bounds how long one failing batch (after bisection,
	// one record) holds its shard back; past it, the batch's description
	// goes to the failure queue and the shard moves on.
	analyticsRetries = 10
)

// addAnalytics adds the aggregator, its failure queue and its stream source.
func (s *waymarkStack) addAnalytics() error {
	f := routes.Analytics
	failures := awssqs.NewQueue(s.stack, jsii.String(analyticsFailureQueueID), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: s.key,
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(14)),
	})
	failures.Node().DefaultChild().(awssqs.CfnQueue).OverrideLogicalId(jsii.String(analyticsFailureQueueID))
	s.analyticsFailures = failures

	physical := map[string]string{}
	for name, t := range s.tables {
		physical[name] = *t.TableName()
	}
	env := config.Config{Tables: physical, KMSKeyID: *s.key.KeyArn(), LogLevel: functionLogLevel}.Env()
	env[config.EnvDynamoDBEndpoint], env[config.EnvKMSEndpoint] = "", ""
	env[buildinfo.EnvVar] = functionCommits(s.opts.AssetRoot)[f.Name]

	logs := awslogs.NewLogGroup(s.stack, jsii.String(f.LogicalID+"Logs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(s.stack, jsii.String(f.LogicalID+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Waymark content analytics aggregator"),
	})
	logs.GrantWrite(role)
	if err := s.grantAnalytics(role, failures); err != nil {
		return err
	}
	fn := awslambda.NewFunction(s.stack, jsii.String(f.LogicalID), &awslambda.FunctionProps{
		Description:  jsii.String("Waymark content analytics: ContentState stream -> Analytics counters"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(s.opts.AssetRoot, f.Name)), nil),
		MemorySize:   jsii.Number(functionMemoryMB),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(analyticsTimeoutSeconds)),
		Tracing:      awslambda.Tracing_ACTIVE,
		Environment:  jsiiStrings(env),
		LogGroup:     logs,
		Role:         role,
	})
	fn.Node().DefaultChild().(awslambda.CfnFunction).OverrideLogicalId(jsii.String(f.LogicalID))
	s.analyticsFunction = fn

	// Without the CDK's event-source and destination classes, which would
	// add their own broader grants (any use of the key for the queue);
	// grantAnalytics gave exactly what the mapping uses. The handler reports
	// no item failures: a batch fails whole, and bisection narrows it down.
	mapping := awslambda.NewEventSourceMapping(s.stack, jsii.String(analyticsStreamSourceID), &awslambda.EventSourceMappingProps{
		Target:             fn,
		EventSourceArn:     s.tables[schema.ContentStateTable].TableStreamArn(),
		StartingPosition:   awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:          jsii.Number(analyticsBatchSize),
		MaxBatchingWindow:  awscdk.Duration_Seconds(jsii.Number(analyticsBatchingSeconds)),
		TumblingWindow:     awscdk.Duration_Seconds(jsii.Number(analyticsTumblingSeconds)),
		RetryAttempts:      jsii.Number(analyticsRetries),
		BisectBatchOnError: jsii.Bool(true),
	})
	cfnMapping := mapping.Node().DefaultChild().(awslambda.CfnEventSourceMapping)
	cfnMapping.AddPropertyOverride(jsii.String("DestinationConfig.OnFailure.Destination"), failures.QueueArn())
	cfnMapping.OverrideLogicalId(jsii.String(analyticsStreamSourceID))
	return nil
}

// grantAnalytics gives the aggregator's role what it uses and no more: the
// tables routes.Analytics declares (the Analytics table, and the table key
// through DynamoDB), the ContentState stream, Decrypt of field data keys (it
// opens survey answers, never seals: not the sealing functions'
// GenerateDataKey) and sending a failed batch's description to its queue.
func (s *waymarkStack) grantAnalytics(role awsiam.Role, failures awssqs.Queue) error {
	tables := routes.Analytics
	tables.UsesKMS = false // its one use of field keys is OpenFields below
	if err := s.grant(tables, role); err != nil {
		return err
	}
	add := func(sid string, actions []string, resources []*string, conditions map[string]interface{}) {
		props := &awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: &resources}
		if conditions != nil {
			props.Conditions = toPtr(conditions)
		}
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(props))
	}
	add("ReadContentStateStream", []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"},
		[]*string{s.tables[schema.ContentStateTable].TableStreamArn()}, nil)
	add("OpenFields", []string{"kms:Decrypt"}, []*string{s.key.KeyArn()}, fieldKeyCondition())
	add("SendFailures", []string{"sqs:SendMessage"}, []*string{failures.QueueArn()}, nil)
	add("QueueKeyThroughSQS", []string{"kms:GenerateDataKey", "kms:Decrypt"}, []*string{s.key.KeyArn()}, viaSQS(s.region))
	return nil
}

// addAnalyticsAlarms pages when the aggregator falls behind the stream (the
// counters go stale: the oldest record it is handed is old), when it fails,
// and when a batch gave up and went to the failure queue (its transitions
// are missing from the counters until it is replayed).
func (s *waymarkStack) addAnalyticsAlarms(alarm func(id, description string, metric awscloudwatch.IMetric, threshold float64), period awscdk.Duration) {
	f := routes.Analytics
	age := s.analyticsFunction.Metric(jsii.String("IteratorAge"), &awscloudwatch.MetricOptions{
		Statistic: jsii.String("Maximum"),
		Period:    period,
		Label:     jsii.String("iterator age (ms)"),
	})
	alarm(f.LogicalID+"IteratorAgeAlarm", "The analytics aggregator is more than 5 minutes behind the ContentState stream", age, analyticsMaxIteratorAgeMs)
	alarm(f.LogicalID+"ErrorsAlarm", "The analytics function failed (crash, timeout or a batch it could not apply)",
		sum(s.analyticsFunction.MetricErrors(nil), "errors", period), 1)
	alarm(analyticsFailureQueueID+"Alarm", "A batch of the ContentState stream was given up by the analytics aggregator",
		s.analyticsFailures.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: period}), 1)
}

// analyticsMaxIteratorAgeMs is how far behind the stream the aggregator may
// fall before it pages: the counters promise freshness within seconds.
const analyticsMaxIteratorAgeMs = 5 * 60 * 1000
