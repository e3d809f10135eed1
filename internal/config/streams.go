package config

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
)

// StreamsClient builds the DynamoDB Streams client of the local webhook
// deliverer (internal/webhook): DynamoDB Local serves streams on its own
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
