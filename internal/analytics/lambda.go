package analytics

import (
	"context"
	"fmt"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// HandleLambda is the deployed aggregator: the event source mapping on the
// ContentState stream uses a tumbling window so that each invocation names
// its shard (a plain DynamoDB stream event does not), which the exactly-once
// marks need. An error makes Lambda deliver the batch again.
func (a *Aggregator) HandleLambda(ctx context.Context, ev events.DynamoDBTimeWindowEvent) (events.DynamoDBTimeWindowEventResponse, error) {
	records := make([]Record, 0, len(ev.Records))
	for _, r := range ev.Records {
		old, err := lambdaImage(r.Change.OldImage)
		if err != nil {
			return events.DynamoDBTimeWindowEventResponse{}, err
		}
		now, err := lambdaImage(r.Change.NewImage)
		if err != nil {
			return events.DynamoDBTimeWindowEventResponse{}, err
		}
		records = append(records, Record{Seq: r.Change.SequenceNumber, At: r.Change.ApproximateCreationDateTime.UTC(), Old: old, New: now})
	}
	if len(records) == 0 {
		return events.DynamoDBTimeWindowEventResponse{}, nil
	}
	return events.DynamoDBTimeWindowEventResponse{}, a.Process(ctx, ev.ShardID, records)
}

// The Lambda event carries images in its own attribute value type; the
// store reads the SDK's. The conversion is written out here: neither
// library provides it.

func lambdaImage(image map[string]events.DynamoDBAttributeValue) (map[string]types.AttributeValue, error) {
	if image == nil {
		return nil, nil
	}
	out := make(map[string]types.AttributeValue, len(image))
	for k, v := range image {
		av, err := lambdaValue(v)
		if err != nil {
			return nil, fmt.Errorf("analytics: attribute %s: %w", k, err)
		}
		out[k] = av
	}
	return out, nil
}

func lambdaValue(v events.DynamoDBAttributeValue) (types.AttributeValue, error) {
	switch v.DataType() {
	case events.DataTypeString:
		return &types.AttributeValueMemberS{Value: v.String()}, nil
	case events.DataTypeNumber:
		return &types.AttributeValueMemberN{Value: v.Number()}, nil
	case events.DataTypeBinary:
		return &types.AttributeValueMemberB{Value: v.Binary()}, nil
	case events.DataTypeBoolean:
		return &types.AttributeValueMemberBOOL{Value: v.Boolean()}, nil
	case events.DataTypeNull:
		return &types.AttributeValueMemberNULL{Value: true}, nil
	case events.DataTypeStringSet:
		return &types.AttributeValueMemberSS{Value: v.StringSet()}, nil
	case events.DataTypeNumberSet:
		return &types.AttributeValueMemberNS{Value: v.NumberSet()}, nil
	case events.DataTypeBinarySet:
		return &types.AttributeValueMemberBS{Value: v.BinarySet()}, nil
	case events.DataTypeList:
		list := make([]types.AttributeValue, 0, len(v.List()))
		for _, x := range v.List() {
			av, err := lambdaValue(x)
			if err != nil {
				return nil, err
			}
			list = append(list, av)
		}
		return &types.AttributeValueMemberL{Value: list}, nil
	case events.DataTypeMap:
		m, err := lambdaImage(v.Map())
		if err != nil {
			return nil, err
		}
		return &types.AttributeValueMemberM{Value: m}, nil
	}
	return nil, fmt.Errorf("unknown attribute type %v", v.DataType())
}
