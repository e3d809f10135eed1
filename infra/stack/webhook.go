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
	"github.com/waymarkhq/waymark/internal/objects"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/webhook"
)

// Webhook delivery (docs/webhooks.md): the Feedback table's stream feeds
// the deliverer, which queues one message per new feedback on an SQS queue
// and attempts it from there. A failed attempt stays on the queue, hidden
// until its retry is due, for at least webhook.RetryWindow; then it is
// parked in the Feedback table. The dead-letter queue only catches messages
// the deliverer could not handle at all (it crashed on them again and again).
const (
	webhookFunctionName = "webhook"
	webhookLogicalID    = "WebhookFunction"
	// webhookTimeoutSeconds leaves room for a batch of attempts, each
	// bounded by webhook.AttemptTimeout, and the reads before them.
	webhookTimeoutSeconds = 30
	// webhookMaxReceives is far above the attempts of the retry window
	// (about 35 with the longest jitter), so only a message the function
	// fails on without deciding reaches the dead-letter queue.
	webhookMaxReceives = 200
)

// addWebhook adds the queues, the deliverer function and its event sources.
func (s *waymarkStack) addWebhook() {
	dlq := awssqs.NewQueue(s.stack, jsii.String("WebhookDeadLetterQueue"), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: s.key,
		EnforceSSL:          jsii.Bool(true),
		RetentionPeriod:     awscdk.Duration_Days(jsii.Number(14)),
	})
	queue := awssqs.NewQueue(s.stack, jsii.String("WebhookQueue"), &awssqs.QueueProps{
		Encryption:          awssqs.QueueEncryption_KMS,
		EncryptionMasterKey: s.key,
		// SQS reuses a data key for this long, so a busy queue makes one
		// KMS call per 5 minutes rather than one per message.
		DataKeyReuse:      awscdk.Duration_Minutes(jsii.Number(5)),
		EnforceSSL:        jsii.Bool(true),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(6 * webhookTimeoutSeconds)),
		// The retry window plus the longest hiding of a message, with a day
		// to spare.
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(4)),
		DeadLetterQueue: &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(webhookMaxReceives)},
	})
	s.webhookDLQ = dlq

	physical := map[string]string{}
	for name, t := range s.tables {
		physical[name] = *t.TableName()
	}
	env := config.Config{Tables: physical, KMSKeyID: *s.key.KeyArn(), LogLevel: functionLogLevel}.Env()
	env[config.EnvDynamoDBEndpoint], env[config.EnvKMSEndpoint] = "", ""
	env[buildinfo.EnvVar] = functionCommits(s.opts.AssetRoot)[webhookFunctionName]
	env[config.EnvWebhookQueueURL] = *queue.QueueUrl()
	env[config.EnvAttachmentsBucket] = *s.bucket.BucketName()

	logs := awslogs.NewLogGroup(s.stack, jsii.String(webhookLogicalID+"Logs"), &awslogs.LogGroupProps{
		Retention:     logRetention,
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	role := awsiam.NewRole(s.stack, jsii.String(webhookLogicalID+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("Waymark webhook deliverer"),
	})
	logs.GrantWrite(role)
	s.grantWebhook(role, queue)
	fn := awslambda.NewFunction(s.stack, jsii.String(webhookLogicalID), &awslambda.FunctionProps{
		Description:  jsii.String("Waymark webhook deliverer: Feedback stream -> queue -> receivers"),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(s.opts.AssetRoot, webhookFunctionName)), nil),
		MemorySize:   jsii.Number(functionMemoryMB),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(webhookTimeoutSeconds)),
		Tracing:      awslambda.Tracing_ACTIVE,
		Environment:  jsiiStrings(env),
		LogGroup:     logs,
		Role:         role,
	})
	fn.Node().DefaultChild().(awslambda.CfnFunction).OverrideLogicalId(jsii.String(webhookLogicalID))
	s.webhookFunction = fn

	// Mappings without the CDK's event-source classes, which would add
	// their own broader grants; grantWebhook gave exactly what they use.
	feedback := s.tables[schema.FeedbackTable]
	awslambda.NewEventSourceMapping(s.stack, jsii.String("WebhookStreamSource"), &awslambda.EventSourceMappingProps{
		Target:             fn,
		EventSourceArn:     feedback.TableStreamArn(),
		StartingPosition:   awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:          jsii.Number(100),
		MaxBatchingWindow:  awscdk.Duration_Seconds(jsii.Number(0)),
		RetryAttempts:      jsii.Number(-1),
		BisectBatchOnError: jsii.Bool(true),
		// New items, and items time to live removed (their attachment
		// files are deleted); erasure's removals, which delete the files
		// themselves, do not invoke the function.
		Filters: &[]*map[string]interface{}{
			awslambda.FilterCriteria_Filter(&map[string]interface{}{"eventName": awslambda.FilterRule_IsEqual("INSERT")}),
			awslambda.FilterCriteria_Filter(&map[string]interface{}{
				"eventName": awslambda.FilterRule_IsEqual("REMOVE"),
				"userIdentity": map[string]interface{}{
					"type":        awslambda.FilterRule_IsEqual("Service"),
					"principalId": awslambda.FilterRule_IsEqual("dynamodb.amazonaws.com"),
				},
			}),
		},
	})
	awslambda.NewEventSourceMapping(s.stack, jsii.String("WebhookQueueSource"), &awslambda.EventSourceMappingProps{
		Target:                  fn,
		EventSourceArn:          queue.QueueArn(),
		BatchSize:               jsii.Number(10),
		ReportBatchItemFailures: jsii.Bool(true),
	})
}

// grantWebhook gives the deliverer's role what it uses and no more: read
// the stream, read a workspace's webhook and a feedback item, write parked
// deliveries only (their partition key is fixed), open (never seal) sealed
// fields, use its queue, and delete (never read) the attachment files of
// expired feedback.
func (s *waymarkStack) grantWebhook(role awsiam.Role, queue awssqs.Queue) {
	workspaces, feedback := s.tables[schema.WorkspacesTable], s.tables[schema.FeedbackTable]
	add := func(sid string, actions []string, resources []*string, conditions map[string]interface{}) {
		props := &awsiam.PolicyStatementProps{Sid: jsii.String(sid), Actions: jsii.Strings(actions...), Resources: &resources}
		if conditions != nil {
			props.Conditions = toPtr(conditions)
		}
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(props))
	}
	add("ReadFeedbackStream", []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"},
		[]*string{feedback.TableStreamArn()}, nil)
	add("ReadWebhook", []string{"dynamodb:GetItem"}, []*string{workspaces.TableArn()}, nil)
	add("ReadFeedback", []string{"dynamodb:GetItem"}, []*string{feedback.TableArn()}, nil)
	add("ParkDeliveries", []string{"dynamodb:PutItem"}, []*string{feedback.TableArn()}, map[string]interface{}{
		"ForAllValues:StringLike": map[string]interface{}{"dynamodb:LeadingKeys": []string{schema.ParkedDeliveryPrefix + "*"}},
	})
	add("TableKeyThroughDynamoDB", []string{"kms:Decrypt", "kms:DescribeKey"}, []*string{s.key.KeyArn()}, viaDynamoDB(s.region))
	add("OpenFields", []string{"kms:Decrypt"}, []*string{s.key.KeyArn()}, fieldKeyCondition())
	add("UseQueue", []string{"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"},
		[]*string{queue.QueueArn()}, nil)
	add("QueueKeyThroughSQS", []string{"kms:GenerateDataKey", "kms:Decrypt"}, []*string{s.key.KeyArn()}, viaSQS(s.region))
	add("DeleteExpiredAttachments", []string{"s3:DeleteObject"}, []*string{s.objectsUnder(objects.AttachmentsPrefix)}, nil)
	suppress(role, objectWildcards)
}

// viaSQS limits a KMS permission to calls SQS makes for the queues'
// encryption in this stack's region.
func viaSQS(r Region) map[string]interface{} {
	return map[string]interface{}{
		"StringEquals": map[string]interface{}{"kms:ViaService": "sqs." + r.Name + ".amazonaws.com"},
	}
}

// addWebhookAlarms pages when a delivery is parked (the receiver failed for
// the whole retry window: someone should look and redeliver) or a message
// reached the dead-letter queue, and when the deliverer fails.
func (s *waymarkStack) addWebhookAlarms(alarm func(id, description string, metric awscloudwatch.IMetric, threshold float64), period awscdk.Duration) {
	parked := awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
		Namespace:  jsii.String(webhook.MetricNamespace),
		MetricName: jsii.String(webhook.MetricParked),
		Statistic:  jsii.String("Sum"),
		Period:     period,
		Label:      jsii.String("parked deliveries"),
	})
	alarm("WebhookParkedAlarm", "A webhook delivery was parked after failing for 24 hours (waymark workspace deliveries CODE)", parked, 1)
	alarm("WebhookDeadLetterAlarm", "A webhook queue message reached the dead-letter queue",
		s.webhookDLQ.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: period}), 1)
	alarm(webhookLogicalID+"ErrorsAlarm", "The webhook function failed (crash or timeout)", sum(s.webhookFunction.MetricErrors(nil), "errors", period), 1)
}

// viaSQSFromAccount is viaSQS for the key policy, which also pins the
// calling account.
func viaSQSFromAccount(r Region) map[string]interface{} {
	c := viaSQS(r)
	c["StringEquals"].(map[string]interface{})["kms:CallerAccount"] = awscdk.Aws_ACCOUNT_ID()
	return c
}
