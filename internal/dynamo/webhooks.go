package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Attributes of a workspace's webhook.
const (
	attrWebhookURL    = "webhookUrl"
	attrWebhookFormat = "webhookFormat"
	attrWebhookSecret = "webhookSecret"
)

// parkedRetention is how long a parked delivery stays listed.
const parkedRetention = 30 * 24 * time.Hour

func openWebhook(opener itemSealer, item map[string]types.AttributeValue) (*waymark.Webhook, error) {
	url := getString(item, attrWebhookURL)
	if url == "" {
		return nil, nil
	}
	secret, _, err := opener.open(item, attrWebhookSecret)
	if err != nil {
		return nil, err
	}
	return &waymark.Webhook{URL: url, Format: waymark.WebhookFormat(getString(item, attrWebhookFormat)), Secret: string(secret)}, nil
}

// GetWebhook reads a workspace's webhook and opens its signing secret only:
// the deliverer never reads the workspace's other secrets. No webhook (or
// no workspace) is nil.
func (s *Store) GetWebhook(ctx context.Context, code string) (*waymark.Webhook, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:                s.table(schema.WorkspacesTable),
		Key:                      map[string]types.AttributeValue{"code": str(code)},
		ProjectionExpression:     aws.String("#u, #f, #s, #dk"),
		ExpressionAttributeNames: map[string]string{"#u": attrWebhookURL, "#f": attrWebhookFormat, "#s": attrWebhookSecret, "#dk": attrDataKey},
		ConsistentRead:           aws.Bool(true),
	})
	if err != nil {
		return nil, mapError("get webhook", err)
	}
	if out.Item == nil || getString(out.Item, attrWebhookURL) == "" {
		return nil, nil
	}
	opener, err := s.openerFor(ctx, code, schema.WorkspacesTable, code, "", out.Item)
	if err != nil {
		return nil, err
	}
	return openWebhook(opener, out.Item)
}

// GetFeedback reads one feedback item by its key and opens it; an item
// gone (erased, expired) is waymark.ErrNotFound.
func (s *Store) GetFeedback(ctx context.Context, workspace, pk, sk string) (*waymark.Feedback, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table(schema.FeedbackTable),
		Key:            map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, mapError("get feedback", err)
	}
	if out.Item == nil {
		return nil, waymark.ErrNotFound
	}
	items, err := s.openFeedback(ctx, &waymark.Workspace{Code: workspace}, []map[string]types.AttributeValue{out.Item})
	if err != nil {
		return nil, err
	}
	return items[0], nil
}

// ParkedDelivery is a webhook delivery that failed for the whole retry
// window, kept for the operator to see and redeliver.
type ParkedDelivery struct {
	ID         string
	Workspace  string
	FeedbackPK string
	FeedbackSK string
	FirstAt    time.Time
	ParkedAt   time.Time
	Attempts   int
	LastError  string
}

func parkedPK(workspace string) string { return schema.ParkedDeliveryPrefix + workspace }

// ParkDelivery records a parked delivery; parking one twice (a retried
// write, a second failure after a redelivery) overwrites it.
func (s *Store) ParkDelivery(ctx context.Context, p ParkedDelivery) error {
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: s.table(schema.FeedbackTable),
		Item: map[string]types.AttributeValue{
			attrPK:        str(parkedPK(p.Workspace)),
			attrSK:        str(p.ID),
			"fpk":         str(p.FeedbackPK),
			"fsk":         str(p.FeedbackSK),
			"firstAt":     str(waymark.FormatTime(p.FirstAt)),
			"parkedAt":    str(waymark.FormatTime(p.ParkedAt)),
			"attempts":    number(p.Attempts),
			"lastError":   str(p.LastError),
			attrExpiresAt: number(p.ParkedAt.Add(parkedRetention).Unix()),
		},
	})
	return mapError("park delivery", err)
}

// ParkedDeliveries lists a workspace's parked deliveries, by id.
func (s *Store) ParkedDeliveries(ctx context.Context, workspace string) ([]ParkedDelivery, error) {
	items, err := s.queryPartition(ctx, schema.FeedbackTable, parkedPK(workspace), "")
	if err != nil {
		return nil, err
	}
	out := make([]ParkedDelivery, 0, len(items))
	for _, item := range items {
		out = append(out, parkedFromItem(workspace, item))
	}
	return out, nil
}

// GetParkedDelivery reads one parked delivery; unknown is waymark.ErrNotFound.
func (s *Store) GetParkedDelivery(ctx context.Context, workspace, id string) (*ParkedDelivery, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      s.table(schema.FeedbackTable),
		Key:            map[string]types.AttributeValue{attrPK: str(parkedPK(workspace)), attrSK: str(id)},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, mapError("get parked delivery", err)
	}
	if out.Item == nil {
		return nil, waymark.ErrNotFound
	}
	p := parkedFromItem(workspace, out.Item)
	return &p, nil
}

func parkedFromItem(workspace string, item map[string]types.AttributeValue) ParkedDelivery {
	return ParkedDelivery{
		ID: getString(item, attrSK), Workspace: workspace,
		FeedbackPK: getString(item, "fpk"), FeedbackSK: getString(item, "fsk"),
		FirstAt: getTime(item, "firstAt"), ParkedAt: getTime(item, "parkedAt"),
		Attempts: int(getInt(item, "attempts")), LastError: getString(item, "lastError"),
	}
}

// RequeueDelivery queues a parked delivery again, with the same id: it
// writes a requeue item, whose arrival on the table's stream queues the
// delivery as new feedback's does (deployed and under `waymark dev` alike,
// so the operator needs no access to the queue), and removes the parked
// one. The requeue item expires after a day.
func (s *Store) RequeueDelivery(ctx context.Context, p ParkedDelivery, now time.Time) error {
	table := s.tables[schema.FeedbackTable]
	requeue := map[string]types.AttributeValue{
		attrPK:        str(schema.RequeuedDeliveryPrefix + p.Workspace),
		attrSK:        str(p.ID),
		"fpk":         str(p.FeedbackPK),
		"fsk":         str(p.FeedbackSK),
		"firstAt":     str(waymark.FormatTime(now)),
		attrExpiresAt: number(now.Add(24 * time.Hour).Unix()),
	}
	out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: {
		{PutRequest: &types.PutRequest{Item: requeue}},
		{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{attrPK: str(parkedPK(p.Workspace)), attrSK: str(p.ID)}}},
	}}})
	if err != nil {
		return mapError("requeue delivery", err)
	}
	if len(out.UnprocessedItems) > 0 {
		return fmt.Errorf("%w: requeue delivery: left unprocessed", waymark.ErrThrottled())
	}
	return nil
}
