package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// ListWorkspaces reads every workspace (operator CLI; a deployment holds few).
func (s *Store) ListWorkspaces(ctx context.Context) ([]*waymark.Workspace, error) {
	var out []*waymark.Workspace
	pages := dynamodb.NewScanPaginator(s.db, &dynamodb.ScanInput{TableName: s.table(schema.WorkspacesTable), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, mapError("scan workspaces", err)
		}
		for _, item := range page.Items {
			ws, err := s.workspaceFromItem(ctx, item)
			if err != nil {
				return nil, err
			}
			out = append(out, ws)
		}
	}
	return out, nil
}

// FeedbackMonth is the index partition of a workspace's feedback of one month.
func FeedbackMonth(code string, t time.Time) string { return code + "#" + t.UTC().Format("2006-01") }

// FeedbackPosition is where a listing of one month stopped.
type FeedbackPosition struct {
	PK string `json:"p"`
	SK string `json:"s"`
}

// ListFeedback reads up to limit feedback items of one month of the
// workspace, newest first, after the given position, down to since.
func (s *Store) ListFeedback(ctx context.Context, ws *waymark.Workspace, month string, after *FeedbackPosition, since time.Time, limit int) ([]*waymark.Feedback, *FeedbackPosition, error) {
	in := &dynamodb.QueryInput{
		TableName:                 s.table(schema.FeedbackTable),
		IndexName:                 aws.String(schema.FeedbackByWorkspaceIndex),
		KeyConditionExpression:    aws.String("wsMonth = :m AND sk >= :since"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":m": str(month), ":since": str(since.UTC().Format(feedbackTimeLayout))},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(int32(limit)),
	}
	if after != nil {
		in.ExclusiveStartKey = map[string]types.AttributeValue{"wsMonth": str(month), attrPK: str(after.PK), attrSK: str(after.SK)}
	}
	out, err := s.db.Query(ctx, in)
	if err != nil {
		return nil, nil, mapError("list feedback", err)
	}
	items, err := s.openFeedback(ctx, ws, out.Items)
	if err != nil {
		return nil, nil, err
	}
	var next *FeedbackPosition
	if len(out.LastEvaluatedKey) > 0 {
		next = &FeedbackPosition{PK: getString(out.LastEvaluatedKey, attrPK), SK: getString(out.LastEvaluatedKey, attrSK)}
	}
	return items, next, nil
}

// UserFeedback reads every feedback item of one user, oldest first.
func (s *Store) UserFeedback(ctx context.Context, ws *waymark.Workspace, userKey string) ([]*waymark.Feedback, error) {
	items, err := s.queryPartition(ctx, schema.FeedbackTable, userKey, "")
	if err != nil {
		return nil, err
	}
	return s.openFeedback(ctx, ws, items)
}

func (s *Store) openFeedback(ctx context.Context, ws *waymark.Workspace, items []map[string]types.AttributeValue) ([]*waymark.Feedback, error) {
	out := make([]*waymark.Feedback, 0, len(items))
	for _, item := range items {
		pk, sk := getString(item, attrPK), getString(item, attrSK)
		opener, err := s.openerFor(ctx, ws.Code, schema.FeedbackTable, pk, sk, item)
		if err != nil {
			return nil, err
		}
		fb := &waymark.Feedback{
			ID: getString(item, "id"), UserKey: pk, Category: getString(item, "category"),
			CreatedAt: getTime(item, "createdAt"), ExpiresAt: getInt(item, attrExpiresAt),
		}
		if _, ok := item["rating"]; ok {
			r := int(getInt(item, "rating"))
			fb.Rating = &r
		}
		for attr, dst := range map[string]*string{"username": &fb.Username, "text": &fb.Text} {
			v, _, err := opener.open(item, attr)
			if err != nil {
				return nil, err
			}
			*dst = string(v)
		}
		env, ok, err := opener.open(item, "environment")
		if err != nil {
			return nil, err
		}
		if ok {
			fb.Environment = &waymark.Environment{}
			if err := json.Unmarshal(env, fb.Environment); err != nil {
				return nil, fmt.Errorf("dynamo: feedback environment: %w", err)
			}
		}
		if list, ok := item[attrAttachments]; ok {
			if err := attributevalue.UnmarshalWithOptions(list, &fb.Attachments, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" }); err != nil {
				return nil, fmt.Errorf("dynamo: feedback attachments: %w", err)
			}
		}
		out = append(out, fb)
	}
	return out, nil
}

// SurveyAnswers opens the sealed survey answers of a user, by survey id.
func (s *Store) SurveyAnswers(ctx context.Context, ws *waymark.Workspace, userKey string) (map[string]any, error) {
	items, err := s.queryPartition(ctx, schema.ContentStateTable, userKey, string(waymark.KindSurvey)+"#")
	if err != nil {
		return nil, err
	}
	answers := map[string]any{}
	for _, item := range items {
		if _, ok := item["answer"]; !ok {
			continue
		}
		answer, err := s.OpenAnswer(ctx, ws.Code, item)
		if err != nil {
			return nil, err
		}
		key, _ := parseSortKey(getString(item, attrSK))
		answers[key.ID] = answer
	}
	return answers, nil
}

// queryPartition reads every item of one partition (consistently), whose sort
// key starts with prefix when one is given.
func (s *Store) queryPartition(ctx context.Context, table, pk, prefix string) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:                 s.table(table),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ConsistentRead:            aws.Bool(true),
	}
	if prefix != "" {
		in.KeyConditionExpression = aws.String("pk = :pk AND begins_with(sk, :prefix)")
		in.ExpressionAttributeValues[":prefix"] = str(prefix)
	}
	return s.queryAll(ctx, "query "+table, in)
}

// queryAll reads every page of a query, with the SDK's paginator.
func (s *Store) queryAll(ctx context.Context, op string, in *dynamodb.QueryInput) ([]map[string]types.AttributeValue, error) {
	var items []map[string]types.AttributeValue
	pages := dynamodb.NewQueryPaginator(s.db, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return nil, mapError(op, err)
		}
		items = append(items, out.Items...)
	}
	return items, nil
}

// EraseUser deletes every item of a user in every table: content state with
// its idempotency fingerprints, feedback, and the user item. It returns how
// many items it deleted; erasing a user with no items deletes nothing.
func (s *Store) EraseUser(ctx context.Context, userKey string) (int, error) {
	type doomed struct {
		table string
		key   map[string]types.AttributeValue
	}
	var all []doomed
	for _, t := range schema.All() {
		// The Groups table is partitioned by group: EraseMemberships
		// finds a user's items there.
		if t.Name == schema.WorkspacesTable || t.Name == schema.GroupsTable {
			continue
		}
		items, err := s.queryPartitionKeys(ctx, t, userKey)
		if err != nil {
			return 0, err
		}
		for _, key := range items {
			all = append(all, doomed{table: t.Name, key: key})
		}
	}
	// BatchWriteItem takes at most 25 requests; what it leaves unprocessed
	// (throttling) is sent again after a pause.
	for start := 0; start < len(all); start += 25 {
		batch := all[start:min(start+25, len(all))]
		requests := map[string][]types.WriteRequest{}
		for _, d := range batch {
			name := s.tables[d.table]
			requests[name] = append(requests[name], types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: d.key}})
		}
		for attempt := 0; len(requests) > 0; attempt++ {
			if attempt == 10 {
				return 0, fmt.Errorf("%w: erase: unprocessed deletes after 10 attempts", waymark.ErrThrottled())
			}
			if attempt > 0 {
				time.Sleep(time.Duration(50*attempt) * time.Millisecond)
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: requests})
			if err != nil {
				return 0, mapError("erase user", err)
			}
			requests = out.UnprocessedItems
		}
	}
	return len(all), nil
}

func (s *Store) queryPartitionKeys(ctx context.Context, t schema.Table, pk string) ([]map[string]types.AttributeValue, error) {
	projection := t.PartitionKey.Name
	if t.SortKey != nil {
		projection += ", " + t.SortKey.Name
	}
	return s.queryAll(ctx, "query "+t.Name, &dynamodb.QueryInput{
		TableName:                 s.table(t.Name),
		KeyConditionExpression:    aws.String(t.PartitionKey.Name + " = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(pk)},
		ProjectionExpression:      aws.String(projection),
		ConsistentRead:            aws.Bool(true),
	})
}
