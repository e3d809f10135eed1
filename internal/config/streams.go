package config

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// StreamsClient builds the DynamoDB Streams client of the local webhook
// deliverer (internal/webhook) and of the local content analytics'
// aggregator (internal/analytics): DynamoDB Local serves streams on its own
// endpoint. Deployed, Lambda reads the stream and no client is needed.
func (c Config) StreamsClient(_ context.Context) (*dynamodbstreams.Client, error) {
	awsCfg, err := c.awsConfig()
	if err != nil {
		return nil, err
	}
	return dynamodbstreams.NewFromConfig(awsCfg, func(o *dynamodbstreams.Options) {
		o.Retryer = Retryer()
		if c.DynamoDBEndpoint != "" {
			o.BaseEndpoint = aws.String(c.DynamoDBEndpoint)
		}
	}), nil
}

// EnvWebhookQueueURL is the URL of the deployed webhook deliverer's queue.
const EnvWebhookQueueURL = "WEBHOOK_QUEUE_URL"

// SQSClient builds the deployed webhook deliverer's SQS client.
func (c Config) SQSClient(_ context.Context) (*sqs.Client, error) {
	awsCfg, err := c.awsConfig()
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.Retryer = Retryer() }), nil
}
