package dynamo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Pending inputs: how identifies of one user stay exact under contention
// without retrying one another out. The profile is sealed, so DynamoDB
// cannot add to a prop or union an array itself; an identify writes the
// whole user item over the version it read (PutUser). One that loses that
// race does not read and rewrite again: it records its input, sealed, at
// the end of the item's `pin` list (RecordPendingInput), an update that
// conflicts with no other recorder. It bumps the version, so a writer that
// read the item before cannot overwrite the input; every read applies the
// inputs waiting in `pin` to the profile, in the order they were recorded
// (userFromItem); and the next whole write, which is over the version that
// read them, stores the profile with them applied and without `pin`. So each
// input is applied exactly once, in one order every reader agrees on: 25
// parallel {"$add":1} add 25 with one write each round trip, not 25 rounds.
//
// `pinReq` lists the request ids of the inputs waiting and of the last
// folded ones: an SDK retry of a record whose answer was lost finds its id
// there and is not applied twice.
const (
	attrPendingInputs   = "pin"
	attrPendingRequests = "pinReq"
	// maxPendingInputs bounds the inputs waiting on one user item, and
	// maxPendingInputBytes one input, so that a user item stays far below
	// DynamoDB's 400 KB (32 × 4 KB beside a profile of at most the 64 KB a
	// body holds). Past either, the identify writes the item over instead.
	maxPendingInputs     = 32
	maxPendingInputBytes = 4 << 10
	// keptFoldedRequests is how many request ids of folded inputs a write
	// keeps in pinReq (a repeat of a record comes within its request, so
	// only the latest matter).
	keptFoldedRequests = 64
)

// pendingInput is one entry of `pin`: an identify input (without the
// username) sealed under the item's data key or one of its own, bound to
// the item and the request that recorded it.
type pendingInput struct {
	// DataKey is left out when the entry is sealed under the item's dk.
	DataKey []byte `dynamodbav:"dk,omitempty"`
	Input   []byte `dynamodbav:"in"`
	Request string `dynamodbav:"req"`
}

func pendingInputAAD(userKey, requestID string) []byte {
	return envelope.AAD(schema.UsersTable, userKey, "", attrPendingInputs+"/"+requestID)
}

// RecordPendingInput records an identify input beside the user's profile,
// for an identify that lost the race for the user item (see above), and
// records the visit. It returns waymark.ErrConflict when the item cannot
// take it (no item, past its retention, too many inputs waiting, the input
// too large): the caller writes the user over instead.
func (s *Store) RecordPendingInput(ctx context.Context, ws *waymark.Workspace, userKey string, in waymark.UserInput, requestID string, now time.Time) error {
	// The item names the user already.
	in.Username = ""
	plain, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("dynamo: pending input: %w", err)
	}
	if len(plain) > maxPendingInputBytes {
		return waymark.ErrConflict
	}
	sealer, err := s.sealerFor(ctx, ws.Code, schema.UsersTable, userKey, "")
	if err != nil {
		return err
	}
	entry := pendingInput{Input: sealer.key.Seal(pendingInputAAD(userKey, requestID), plain), Request: requestID}
	values := map[string]types.AttributeValue{
		":none": &types.AttributeValueMemberL{Value: []types.AttributeValue{}},
		":req":  str(requestID), ":reqs": &types.AttributeValueMemberL{Value: []types.AttributeValue{str(requestID)}},
		":now": str(waymark.FormatTime(now)), ":nowUnix": number(now.Unix()), ":one": number(1),
		":max": number(maxPendingInputs),
	}
	update := "SET pin = list_append(if_not_exists(pin, :none), :in), pinReq = list_append(if_not_exists(pinReq, :none), :reqs), " +
		"lastSeenAt = :now, v = v + :one"
	// The input is no longer the last the profile took: the repeat
	// shortcut must not skip the next identify.
	remove := attrLastInput
	if set, rm := expiryClauses(values, ws.ExpiresAt(now)); set != "" {
		update += ", " + set
	} else {
		remove += ", " + rm
	}
	cond := "attribute_exists(pk) AND (attribute_not_exists(expiresAt) OR expiresAt >= :nowUnix)" +
		" AND (attribute_not_exists(pin) OR size(pin) < :max) AND NOT contains(pinReq, :req)"
	key := map[string]types.AttributeValue{attrPK: str(userKey)}
	// Every write of the item is charged by its size, so the entry leaves
	// out its data key when it is the item's own (as it mostly is: function
	// instances share the workspace's sealing key); only an item sealed
	// under another key takes the entry with its key, on a second try.
	for _, withKey := range []bool{false, true} {
		entryCond := cond + " AND dk = :dk"
		delete(values, ":dk")
		if withKey {
			entry.DataKey, entryCond = sealer.key.Wrapped, cond
		} else {
			values[":dk"] = &types.AttributeValueMemberB{Value: sealer.key.Wrapped}
		}
		av, err := attributevalue.Marshal([]pendingInput{entry})
		if err != nil {
			return fmt.Errorf("dynamo: pending input: %w", err)
		}
		values[":in"] = av
		_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 s.table(schema.UsersTable),
			Key:                       key,
			UpdateExpression:          aws.String(update + " REMOVE " + remove),
			ConditionExpression:       aws.String(entryCond),
			ExpressionAttributeValues: values,
		})
		if err = mapError("record pending input", err); !errors.Is(err, waymark.ErrConflict) {
			return err
		}
		// Our own record, applied but unanswered and retried by the SDK;
		// an item sealed under another key; or one that cannot take it.
		out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
			TableName: s.table(schema.UsersTable), Key: key, ConsistentRead: aws.Bool(true),
			ProjectionExpression: aws.String(attrPendingRequests + ", " + attrDataKey),
		})
		if err != nil {
			return mapError("get user", err)
		}
		if slices.Contains(pendingRequests(out.Item), requestID) {
			return nil
		}
		dk, ok := out.Item[attrDataKey].(*types.AttributeValueMemberB)
		if !ok || bytes.Equal(dk.Value, sealer.key.Wrapped) {
			break
		}
	}
	return waymark.ErrConflict
}

func pendingRequests(item map[string]types.AttributeValue) []string {
	var reqs []string
	if av, ok := item[attrPendingRequests]; ok {
		// A list of strings, as written above: nothing else to fail on.
		_ = attributevalue.Unmarshal(av, &reqs)
	}
	return reqs
}

// applyPendingInputs applies the inputs waiting on a user item to its
// opened profile, in the order they were recorded. An input that no longer
// merges (the props it adds meet the limits only now, beside inputs
// recorded meanwhile) is left out: it was checked against the profile its
// identify read, and the limits hold over every stored profile.
func (s *Store) applyPendingInputs(ctx context.Context, ws *waymark.Workspace, u *waymark.User, item map[string]types.AttributeValue) error {
	u.Folded = pendingRequests(item)
	av, ok := item[attrPendingInputs]
	if !ok {
		return nil
	}
	var pend []pendingInput
	if err := attributevalue.Unmarshal(av, &pend); err != nil {
		return fmt.Errorf("dynamo: pending inputs: %w", err)
	}
	for _, p := range pend {
		wrapped := p.DataKey
		if len(wrapped) == 0 {
			dk, _ := item[attrDataKey].(*types.AttributeValueMemberB)
			if dk == nil {
				return fmt.Errorf("dynamo: user item has pending inputs but no data key")
			}
			wrapped = dk.Value
		}
		key, err := s.sealer.OpeningKey(ctx, ws.Code, wrapped)
		if err != nil {
			return mapSealError(err)
		}
		plain, err := key.Open(pendingInputAAD(u.Key, p.Request), p.Input)
		if err != nil {
			return fmt.Errorf("dynamo: open pending input: %w", err)
		}
		var in waymark.UserInput
		dec := json.NewDecoder(bytes.NewReader(plain))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			return fmt.Errorf("dynamo: pending input: %w", err)
		}
		if profile, err := u.Profile.Merge(in, ws.AllowedProps); err == nil {
			u.Profile = profile
		}
	}
	return nil
}

// foldedRequests is the pinReq a whole write of the user keeps: the latest
// request ids of the inputs it folded in.
func foldedRequests(u *waymark.User) types.AttributeValue {
	reqs := u.Folded[max(0, len(u.Folded)-keptFoldedRequests):]
	list := make([]types.AttributeValue, len(reqs))
	for i, r := range reqs {
		list[i] = str(r)
	}
	return &types.AttributeValueMemberL{Value: list}
}
