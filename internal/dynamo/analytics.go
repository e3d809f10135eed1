package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Content analytics counters. A counter item is written by the aggregator
// once per stream batch that touches it (the batch's transitions merged),
// with a condition on the last sequence number of the batch's stream shard
// that it applied: the shards' records are processed in order, one batch
// at a time per shard, so the records of a shard applied to an item are
// exactly those up to that number, and a batch delivered again (a retry, a
// bisected half, the SDK repeating a write whose answer was lost) adds only
// what the item has not applied. This costs nothing per user and one write
// per counter item per batch; per-user marker items would cost a write per
// transition and action.

// shardMarkWidth is the width sequence numbers are padded to, so that they
// compare as strings (DynamoDB Streams' are 21–40 digits).
const shardMarkWidth = 40

// shardMarkLifetime is how long a shard's mark is kept after its last
// write: a stream keeps records 24 hours, so a record older than a mark that
// old can never come again, and a shard that resumes writing starts over.
const shardMarkLifetime = 25 * time.Hour

// CounterKey names one counter item: a content item's all-time counters
// (Date "") or those of one UTC day.
type CounterKey struct {
	Workspace string
	Content   waymark.ContentKey
	Date      string
}

func (k CounterKey) item() map[string]types.AttributeValue {
	if k.Date == "" {
		return map[string]types.AttributeValue{attrPK: str(k.Workspace + "#totals"), attrSK: str(sortKey(k.Content))}
	}
	return map[string]types.AttributeValue{attrPK: str(k.Workspace + "#" + sortKey(k.Content)), attrSK: str(k.Date)}
}

// Contribution is what one stream record adds to a counter item.
type Contribution struct {
	Seq    string
	Counts waymark.Counts
}

func padSeq(seq string) (string, error) {
	if seq == "" || len(seq) > shardMarkWidth || strings.Trim(seq, "0123456789") != "" {
		return "", fmt.Errorf("dynamo: stream sequence number %q", seq)
	}
	return strings.Repeat("0", shardMarkWidth-len(seq)) + seq, nil
}

// shardName is the short name of a stream shard in the `q` map.
func shardName(shard string) string {
	sum := sha256.Sum256([]byte(shard))
	return hex.EncodeToString(sum[:5])
}

// AddCounts applies the contributions of one batch of a stream shard, in
// sequence order, to one counter item, skipping those it applied already.
func (s *Store) AddCounts(ctx context.Context, shard string, key CounterKey, contribs []Contribution, now time.Time) error {
	for i := range contribs {
		padded, err := padSeq(contribs[i].Seq)
		if err != nil {
			return err
		}
		contribs[i].Seq = padded
	}
	sort.SliceStable(contribs, func(i, j int) bool { return contribs[i].Seq < contribs[j].Seq })
	h := shardName(shard)
	// First try: nothing of the batch applied yet (the shard's mark is below
	// its first record).
	cond := "attribute_not_exists(q.#h) OR q.#h < :first"
	values := map[string]types.AttributeValue{":first": str(contribs[0].Seq)}
	for attempt := 0; ; attempt++ {
		if len(contribs) == 0 {
			return nil
		}
		err := s.addCounts(ctx, h, key, contribs, cond, values, now)
		if err == nil || !errors.Is(err, waymark.ErrConflict) || attempt > 8 {
			return err
		}
		// Part of the batch was applied before (a retried batch): read the
		// mark and apply only what follows it, over that very mark.
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: s.table(schema.AnalyticsTable), Key: key.item(), ConsistentRead: aws.Bool(true),
		})
		if err != nil {
			return mapError("get counters", err)
		}
		mark := shardMarks(out.Item)[h]
		applied, _, _ := strings.Cut(mark, ":")
		kept := contribs[:0]
		for _, c := range contribs {
			if c.Seq > applied {
				kept = append(kept, c)
			}
		}
		contribs = kept
		if mark == "" {
			cond, values = "attribute_not_exists(q.#h)", map[string]types.AttributeValue{}
		} else {
			cond, values = "q.#h = :mark", map[string]types.AttributeValue{":mark": str(mark)}
		}
	}
}

// addCounts writes the merged contributions under a condition on the
// shard's mark; the first write of an item creates it.
func (s *Store) addCounts(ctx context.Context, h string, key CounterKey, contribs []Contribution, cond string, values map[string]types.AttributeValue, now time.Time) error {
	merged := waymark.Counts{}
	for _, c := range contribs {
		merged.Add(c.Counts)
	}
	mark := contribs[len(contribs)-1].Seq + ":" + strconv.FormatInt(now.Unix(), 10)
	names := map[string]string{"#h": h}
	values[":mark_new"] = str(mark)
	values[":zero"] = number(0)
	set := []string{"q.#h = :mark_new"}
	counters := make([]string, 0, len(merged))
	for name := range merged {
		counters = append(counters, name)
	}
	sort.Strings(counters)
	for i, name := range counters {
		n, v := "#c"+strconv.Itoa(i), ":c"+strconv.Itoa(i)
		names[n] = name
		values[v] = number(merged[name])
		set = append(set, "c."+n+" = if_not_exists(c."+n+", :zero) + "+v)
	}
	expiresAt := int64(0)
	if key.Date != "" {
		day, err := time.Parse(waymark.DateLayout, key.Date)
		if err != nil {
			return fmt.Errorf("dynamo: counter day %q: %w", key.Date, err)
		}
		expiresAt = day.AddDate(0, 0, waymark.AnalyticsDays).Unix()
		values[":exp"] = number(expiresAt)
		set = append(set, "expiresAt = :exp")
	}
	for {
		out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 s.table(schema.AnalyticsTable),
			Key:                       key.item(),
			UpdateExpression:          aws.String("SET " + strings.Join(set, ", ")),
			ConditionExpression:       aws.String(cond),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
			ReturnValues:              types.ReturnValueAllNew,
		})
		if err == nil {
			return s.pruneMarks(ctx, key, shardMarks(out.Attributes), h, now)
		}
		if !missingMaps(err) {
			return mapError("add counters", err)
		}
		// The item does not exist yet: create it, unless another shard's
		// batch just did (then add over it).
		item := key.item()
		counts := map[string]types.AttributeValue{}
		for _, name := range counters {
			counts[name] = number(merged[name])
		}
		item["c"] = &types.AttributeValueMemberM{Value: counts}
		item["q"] = &types.AttributeValueMemberM{Value: map[string]types.AttributeValue{h: str(mark)}}
		putExpiry(item, expiresAt)
		_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: s.table(schema.AnalyticsTable), Item: item,
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		if err = mapError("create counters", err); !errors.Is(err, waymark.ErrConflict) {
			return err
		}
		// Created meanwhile, possibly by this very put whose answer was
		// lost: the update's condition on the mark tells.
	}
}

// missingMaps reports an update refused because the item (and so its
// counter and mark maps) does not exist.
func missingMaps(err error) bool {
	var api smithy.APIError
	return errors.As(err, &api) && api.ErrorCode() == "ValidationException" &&
		strings.Contains(api.ErrorMessage(), "document path")
}

func shardMarks(item map[string]types.AttributeValue) map[string]string {
	marks := map[string]string{}
	if q, ok := item["q"].(*types.AttributeValueMemberM); ok {
		for h, v := range q.Value {
			if s, ok := v.(*types.AttributeValueMemberS); ok {
				marks[h] = s.Value
			}
		}
	}
	return marks
}

// pruneMarks removes the marks of shards that have not written the item for
// shardMarkLifetime, so that the item does not grow as shards come and go.
func (s *Store) pruneMarks(ctx context.Context, key CounterKey, marks map[string]string, current string, now time.Time) error {
	for h, mark := range marks {
		_, at, _ := strings.Cut(mark, ":")
		t, err := strconv.ParseInt(at, 10, 64)
		if h == current || err != nil || now.Sub(time.Unix(t, 0)) < shardMarkLifetime {
			continue
		}
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: s.table(schema.AnalyticsTable), Key: key.item(),
			UpdateExpression:          aws.String("REMOVE q.#h"),
			ConditionExpression:       aws.String("q.#h = :mark"),
			ExpressionAttributeNames:  map[string]string{"#h": h},
			ExpressionAttributeValues: map[string]types.AttributeValue{":mark": str(mark)},
		})
		if err = mapError("prune shard mark", err); err != nil && !errors.Is(err, waymark.ErrConflict) {
			return err
		}
	}
	return nil
}

func countsOf(item map[string]types.AttributeValue) waymark.Counts {
	counts := waymark.Counts{}
	if c, ok := item["c"].(*types.AttributeValueMemberM); ok {
		for name, v := range c.Value {
			if n, ok := v.(*types.AttributeValueMemberN); ok {
				counts[name], _ = strconv.ParseInt(n.Value, 10, 64)
			}
		}
	}
	return counts
}

// ContentCounters reads a content item's all-time counters and those of
// the days from..to (dates as waymark.DateLayout), with eventually
// consistent reads: one GetItem and one Query.
func (s *Store) ContentCounters(ctx context.Context, workspace string, content waymark.ContentKey, from, to string) (waymark.Counts, []waymark.DayCounts, error) {
	total := CounterKey{Workspace: workspace, Content: content}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: s.table(schema.AnalyticsTable), Key: total.item()})
	if err != nil {
		return nil, nil, mapError("get counters", err)
	}
	day := CounterKey{Workspace: workspace, Content: content, Date: from}.item()
	items, err := s.queryAll(ctx, "query day counters", &dynamodb.QueryInput{
		TableName:              s.table(schema.AnalyticsTable),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": day[attrPK], ":from": str(from), ":to": str(to),
		},
		ProjectionExpression: aws.String("sk, c"),
	})
	if err != nil {
		return nil, nil, err
	}
	days := make([]waymark.DayCounts, 0, len(items))
	for _, it := range items {
		days = append(days, waymark.DayCounts{Date: getString(it, attrSK), Counts: countsOf(it)})
	}
	return countsOf(out.Item), days, nil
}

// WorkspaceCounters reads the all-time counters of every content item of a
// workspace (one Query).
func (s *Store) WorkspaceCounters(ctx context.Context, workspace string) (map[waymark.ContentKey]waymark.Counts, error) {
	items, err := s.queryAll(ctx, "query counters", &dynamodb.QueryInput{
		TableName:                 s.table(schema.AnalyticsTable),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(workspace + "#totals")},
		ProjectionExpression:      aws.String("sk, c"),
	})
	if err != nil {
		return nil, err
	}
	out := make(map[waymark.ContentKey]waymark.Counts, len(items))
	for _, it := range items {
		if key, ok := parseSortKey(getString(it, attrSK)); ok {
			out[key] = countsOf(it)
		}
	}
	return out, nil
}

// ContentImage decodes a stream image of a content-state item as a read
// does, its pending events applied; it returns the workspace code and user
// key too. ok is false for an item that is not a content item.
func ContentImage(item map[string]types.AttributeValue) (c *waymark.ContentItem, workspace string, ok bool, err error) {
	pk := getString(item, attrPK)
	workspace, _, hasCode := strings.Cut(pk, "#")
	if _, isContent := parseSortKey(getString(item, attrSK)); !isContent || !hasCode {
		return nil, "", false, nil
	}
	c, err = contentFromItem(item)
	return c, workspace, err == nil, err
}

// AnswerChanged reports whether two images of a content item hold different
// sealed answers (a write that does not answer copies the sealed bytes).
func AnswerChanged(old, now map[string]types.AttributeValue) bool {
	a, _ := old["answer"].(*types.AttributeValueMemberB)
	b, _ := now["answer"].(*types.AttributeValueMemberB)
	if a == nil || b == nil {
		return a != b
	}
	return !bytes.Equal(a.Value, b.Value)
}

// OpenAnswer opens the survey answer of a content-state item or stream
// image (nil when it holds none): for a user's export, and for the content
// analytics, which count scalar answers.
func (s *Store) OpenAnswer(ctx context.Context, workspace string, item map[string]types.AttributeValue) (any, error) {
	if _, ok := item["answer"]; !ok {
		return nil, nil
	}
	opener, err := s.openerFor(ctx, workspace, schema.ContentStateTable, getString(item, attrPK), getString(item, attrSK), item)
	if err != nil {
		return nil, err
	}
	plain, _, err := opener.open(item, "answer")
	if err != nil {
		return nil, err
	}
	var answer any
	if err := json.Unmarshal(plain, &answer); err != nil {
		return nil, fmt.Errorf("dynamo: survey answer: %w", err)
	}
	return answer, nil
}
