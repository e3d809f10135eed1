package dynamo

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Pending events. A writer that loses the race for a content item does not
// rewrite it: it records its event on the item as a pending event, with an
// update that conflicts with no other writer's. The update adds the event's
// fingerprint to `claims`, the set of the fingerprints of every event the
// item holds (applied or pending), on the condition that it is not there
// yet, and appends the event to `pend`. A write of the item (PutContent),
// conditional on the version it read as before, adds the fingerprints of the
// events it applies to `claims` on the condition that none is there, and
// folds in the pending events it read (they are applied to its state) by
// removing them from `pend` by position: events recorded after its read
// stay. Every read applies the pending events to the item. So a duplicate,
// whichever way either copy is recorded, finds its fingerprint claimed.

// pendAttr is one entry of the clear `pend` list: what applying the event
// needs besides its content item, when it was recorded and by which
// request. Survey answers, which are sealed, are never pending.
type pendAttr struct {
	ID        string `dynamodbav:"id"`
	Action    string `dynamodbav:"action"`
	At        int64  `dynamodbav:"at"`
	Step      string `dynamodbav:"step,omitempty"`
	Item      string `dynamodbav:"item,omitempty"`
	AppliedAt int64  `dynamodbav:"appliedAt"`
	Request   string `dynamodbav:"req"`
}

func fingerprintBytes(fp waymark.Fingerprint) []byte {
	return binary.BigEndian.AppendUint64(nil, uint64(fp))
}

// claimsOf is the `claims` set of an item that holds seen.
func claimsOf(seen []waymark.Seen) types.AttributeValue {
	set := make([][]byte, len(seen))
	for i, s := range seen {
		set[i] = fingerprintBytes(s.Fingerprint)
	}
	return &types.AttributeValueMemberBS{Value: set}
}

// readPending decodes the pending events of an item.
func readPending(item map[string]types.AttributeValue) ([]pendAttr, error) {
	av, ok := item["pend"]
	if !ok {
		return nil, nil
	}
	var pend []pendAttr
	if err := attributevalue.Unmarshal(av, &pend); err != nil {
		return nil, fmt.Errorf("dynamo: pending events: %w", err)
	}
	return pend, nil
}

// applyPending applies the pending events of an item to its state, in the
// order they were recorded.
func applyPending(c *waymark.ContentItem, pend []pendAttr) {
	sort.SliceStable(pend, func(i, j int) bool { return pend[i].AppliedAt < pend[j].AppliedAt })
	for _, p := range pend {
		ev := waymark.Event{ID: p.ID, Kind: c.Key.Kind, ContentID: c.Key.ID, Action: waymark.Action(p.Action),
			At: time.Unix(0, p.At).UTC(), Step: p.Step, Item: p.Item}
		c.Apply(ev, time.Unix(p.AppliedAt, 0))
		c.Pending = append(c.Pending, waymark.FingerprintOf(p.ID))
	}
}

// RecordPending records an event on its content item as a pending event,
// for a writer that lost the race for the item. It reports whether this
// request recorded it: false when the item already holds the event. A
// repeat of this request's own update (the SDK retried it after losing the
// answer) is told apart by the request id the pending event carries. An
// item past its retention, or written before pending events existed, takes
// none: the result is waymark.ErrConflict, and the caller writes it over.
func (s *Store) RecordPending(ctx context.Context, ws *waymark.Workspace, userKey string, ev waymark.Event, requestID string, now time.Time) (bool, error) {
	if ev.Answer != nil {
		return false, fmt.Errorf("dynamo: a survey answer is never a pending event")
	}
	fp := fingerprintBytes(waymark.FingerprintOf(ev.ID))
	entry, err := attributevalue.Marshal([]pendAttr{{ID: ev.ID, Action: string(ev.Action), At: unixNanos(ev.At),
		Step: ev.Step, Item: ev.Item, AppliedAt: now.Unix(), Request: requestID}})
	if err != nil {
		return false, fmt.Errorf("dynamo: pending event: %w", err)
	}
	values := map[string]types.AttributeValue{
		":ev": entry, ":none": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		":fp": &types.AttributeValueMemberB{Value: fp}, ":fps": &types.AttributeValueMemberBS{Value: [][]byte{fp}},
		":now": number(now.Unix()),
	}
	update := "SET pend = list_append(if_not_exists(pend, :none), :ev)"
	update = withExpiry(update, values, ws.ExpiresAt(now)) + " ADD claims :fps"
	key := map[string]types.AttributeValue{attrPK: str(userKey), attrSK: str(sortKey(ev.Key()))}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        s.table(schema.ContentStateTable),
		Key:              key,
		UpdateExpression: aws.String(update),
		// An item written before claims existed has its fingerprints in
		// `seen` only: it is written over (once), not given pending events.
		ConditionExpression: aws.String("NOT contains(claims, :fp) AND (attribute_not_exists(expiresAt) OR expiresAt >= :now)" +
			" AND (attribute_exists(claims) OR attribute_not_exists(seen))"),
		ExpressionAttributeValues: values,
	})
	if err = mapError("record pending event", err); !errors.Is(err, waymark.ErrConflict) {
		return err == nil, err
	}
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: s.table(schema.ContentStateTable), Key: key, ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, mapError("get content state", err)
	}
	_, claimed := out.Item["claims"]
	_, seen := out.Item["seen"]
	if exp := getInt(out.Item, attrExpiresAt); exp > 0 && exp < now.Unix() || seen && !claimed {
		return false, waymark.ErrConflict
	}
	pend, err := readPending(out.Item)
	if err != nil {
		return false, err
	}
	for _, p := range pend {
		if p.ID == ev.ID {
			return p.Request == requestID, nil
		}
	}
	// Applied by a write of the item (by another request, or folded in
	// since): a duplicate, as far as this request can tell.
	return false, nil
}
