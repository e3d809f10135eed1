package dynamo

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// attrGroups is the user item's set of the keys of its groups: the user's
// side of its memberships, written with the membership items in one
// transaction.
const attrGroups = "groups"

func getStrings(item map[string]types.AttributeValue, attr string) []string {
	if v, ok := item[attr].(*types.AttributeValueMemberSS); ok {
		return v.Value
	}
	return nil
}

func groupItemKey(groupKey string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(groupKey), attrSK: str(schema.GroupItemSK)}
}

func membershipKey(groupKey, userKey string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(groupKey), attrSK: str(schema.GroupMemberPrefix + userKey)}
}

// GetGroups reads the groups of the given keys with one strongly consistent
// BatchGetItem (keys are at most waymark.MaxGroupsPerUser), opened; a group
// not stored is absent from the answer.
func (s *Store) GetGroups(ctx context.Context, ws *waymark.Workspace, keys []string) (map[string]*waymark.Group, error) {
	out := make(map[string]*waymark.Group, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	request := &types.KeysAndAttributes{ConsistentRead: aws.Bool(true)}
	for _, k := range keys {
		request.Keys = append(request.Keys, groupItemKey(k))
	}
	name := s.tables[schema.GroupsTable]
	pending := map[string]types.KeysAndAttributes{name: *request}
	for attempt := 0; len(pending) > 0; attempt++ {
		if attempt == 10 {
			return nil, fmt.Errorf("%w: get groups: unprocessed keys after 10 attempts", waymark.ErrThrottled())
		}
		if attempt > 0 {
			time.Sleep(time.Duration(50*attempt) * time.Millisecond)
		}
		res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
		if err != nil {
			return nil, mapError("get groups", err)
		}
		for _, item := range res.Responses[name] {
			g, err := s.groupFromItem(ctx, ws, item)
			if err != nil {
				return nil, err
			}
			out[g.Key] = g
		}
		pending = res.UnprocessedKeys
	}
	return out, nil
}

// GetGroup reads one group; a group never stored is waymark.ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, ws *waymark.Workspace, key string) (*waymark.Group, error) {
	groups, err := s.GetGroups(ctx, ws, []string{key})
	if err != nil {
		return nil, err
	}
	g, ok := groups[key]
	if !ok {
		return nil, waymark.ErrNotFound
	}
	return g, nil
}

func (s *Store) groupFromItem(ctx context.Context, ws *waymark.Workspace, item map[string]types.AttributeValue) (*waymark.Group, error) {
	pk := getString(item, attrPK)
	opener, err := s.openerFor(ctx, ws.Code, schema.GroupsTable, pk, schema.GroupItemSK, item)
	if err != nil {
		return nil, err
	}
	g := &waymark.Group{Key: pk, Version: getInt(item, attrVersion), ExpiresAt: getInt(item, attrExpiresAt)}
	id, _, err := opener.open(item, "id")
	if err != nil {
		return nil, err
	}
	g.ID = string(id)
	props, ok, err := opener.open(item, "props")
	if err != nil {
		return nil, err
	}
	if ok {
		dec := json.NewDecoder(bytes.NewReader(props))
		dec.UseNumber()
		if err := dec.Decode(&g.Props); err != nil {
			return nil, fmt.Errorf("dynamo: group props: %w", err)
		}
	}
	return g, nil
}

// PutGroup writes the whole group item over the version it was read at (0
// for a new group), sealing its id and props; requestID marks the write
// (GroupWrittenBy).
func (s *Store) PutGroup(ctx context.Context, ws *waymark.Workspace, g *waymark.Group, requestID string, now time.Time) error {
	sealer, err := s.sealerFor(ctx, ws.Code, schema.GroupsTable, g.Key, schema.GroupItemSK)
	if err != nil {
		return err
	}
	item := groupItemKey(g.Key)
	item["id"] = sealer.seal("id", []byte(g.ID))
	item[attrDataKey] = &types.AttributeValueMemberB{Value: sealer.key.Wrapped}
	item[attrVersion] = number(g.Version + 1)
	item[attrRequest] = str(requestID)
	if len(g.Props) > 0 {
		props, err := json.Marshal(g.Props)
		if err != nil {
			return fmt.Errorf("dynamo: group props: %w", err)
		}
		item["props"] = sealer.seal("props", props)
	}
	g.ExpiresAt = ws.ExpiresAt(now)
	putExpiry(item, g.ExpiresAt)
	if err := s.putOverVersion(ctx, schema.GroupsTable, item, g.Version, "put group"); err != nil {
		return err
	}
	g.Version++
	return nil
}

// GroupWrittenBy reports whether the group item's last write was the given
// request's (so a conflict after an SDK retry was our own success).
func (s *Store) GroupWrittenBy(ctx context.Context, key, requestID string) (bool, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            s.table(schema.GroupsTable),
		Key:                  groupItemKey(key),
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String(attrRequest),
	})
	if err != nil {
		return false, mapError("get group", err)
	}
	return getString(out.Item, attrRequest) == requestID, nil
}

// PutUserMemberships is PutUser for an identify that names the user's
// groups (u.Groups): when they differ from the ones the user item was read
// with (before), the user item, the membership items it adds and the
// ones it removes are written in one transaction, so that a user item and
// its groups' membership items always agree however many identifies race.
// The transaction holds one item per membership changed besides the user's
// (at most 2 × waymark.MaxGroupsPerUser + 1).
func (s *Store) PutUserMemberships(ctx context.Context, ws *waymark.Workspace, u *waymark.User, before []string, requestID string, now time.Time) error {
	added, removed := diff(before, u.Groups), diff(u.Groups, before)
	if len(added) == 0 && len(removed) == 0 {
		return s.PutUser(ctx, ws, u, requestID, now)
	}
	item, err := s.userItem(ctx, ws, u, requestID, now)
	if err != nil {
		return err
	}
	cond, values := versionCondition(u.Version)
	users, groups := s.table(schema.UsersTable), s.table(schema.GroupsTable)
	var ops []types.TransactWriteItem
	for _, g := range added {
		membership := membershipKey(g, u.Key)
		putExpiry(membership, u.ExpiresAt)
		ops = append(ops, types.TransactWriteItem{Put: &types.Put{TableName: groups, Item: membership}})
	}
	for _, g := range removed {
		ops = append(ops, types.TransactWriteItem{Delete: &types.Delete{TableName: groups, Key: membershipKey(g, u.Key)}})
	}
	// Where transactions are shorter than one change (DynamoDB Local's
	// 10 items, see LimitTransactions), the first ones carry part of the
	// memberships, each under the check of the user's version, and the last
	// the rest with the user item: not one atomic write any more, but none
	// of them applies over a user another request changed.
	for chunk := 0; ; chunk++ {
		n := min(len(ops), s.maxTransactItems()-1)
		writes := append([]types.TransactWriteItem{}, ops[:n]...)
		ops = ops[n:]
		if len(ops) > 0 {
			writes = append(writes, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				TableName: users, Key: map[string]types.AttributeValue{attrPK: str(u.Key)},
				ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
			}})
		} else {
			writes = append(writes, types.TransactWriteItem{Put: &types.Put{
				TableName: users, Item: item, ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
			}})
		}
		_, err = s.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
			TransactItems: writes,
			// The SDK may send the transaction again when its answer was
			// lost: the token makes the repeat succeed without applying it
			// twice.
			ClientRequestToken: aws.String(transactionToken(requestID, u.Version, chunk)),
		})
		if err != nil {
			return mapTransactionError("put user memberships", err)
		}
		if len(ops) == 0 {
			break
		}
	}
	u.Version++
	return nil
}

// MaxTransactItems is how many items a DynamoDB transaction takes.
const MaxTransactItems = 100

// LimitTransactions makes the store's transactions hold at most n items,
// for an engine that takes fewer than DynamoDB (DynamoDB Local: 10).
func (s *Store) LimitTransactions(n int) { s.transactItems = n }

func (s *Store) maxTransactItems() int {
	if s.transactItems > 1 {
		return s.transactItems
	}
	return MaxTransactItems
}

// transactionToken is the idempotency token of one write of a request over
// one version (and one part of it): at most 36 characters, whatever the request id's length.
func transactionToken(requestID string, version int64, chunk int) string {
	sum := sha256.Sum256([]byte(requestID + "#" + strconv.FormatInt(version, 10) + "#" + strconv.Itoa(chunk)))
	return hex.EncodeToString(sum[:16])
}

// mapTransactionError maps a failed transaction: cancelled by a failed
// condition or by a transaction on the same items, it is a conflict the
// caller resolves by reading again.
func mapTransactionError(op string, err error) error {
	var cancelled *types.TransactionCanceledException
	if errors.As(err, &cancelled) {
		for _, r := range cancelled.CancellationReasons {
			if c := aws.ToString(r.Code); c == "ConditionalCheckFailed" || c == "TransactionConflict" {
				return waymark.ErrConflict
			}
		}
	}
	var inProgress *types.TransactionConflictException
	if errors.As(err, &inProgress) {
		return waymark.ErrConflict
	}
	return mapError(op, err)
}

// diff is the keys of b that a does not hold.
func diff(a, b []string) []string {
	var out []string
	for _, k := range b {
		if !slices.Contains(a, k) {
			out = append(out, k)
		}
	}
	return out
}

// RefreshGroupsExpiry moves the expiry of a user's membership items and of
// their groups' items to expiresAt (0: kept for ever), so that the
// memberships and groups of an active user outlive the retention as the
// user does. An item erased meanwhile stays erased.
func (s *Store) RefreshGroupsExpiry(ctx context.Context, userKey string, groups []string, expiresAt int64) error {
	errs := make([]error, 2*len(groups))
	done := make(chan struct{}, len(errs))
	for i, g := range groups {
		for j, key := range []map[string]types.AttributeValue{membershipKey(g, userKey), groupItemKey(g)} {
			go func() {
				defer func() { done <- struct{}{} }()
				errs[2*i+j] = s.setExpiry(ctx, schema.GroupsTable, key, expiresAt)
			}()
		}
	}
	for range errs {
		<-done
	}
	return errors.Join(errs...)
}

func (s *Store) setExpiry(ctx context.Context, table string, key map[string]types.AttributeValue, expiresAt int64) error {
	values := map[string]types.AttributeValue{}
	set, remove := expiryClauses(values, expiresAt)
	update := "REMOVE " + remove
	if set != "" {
		update = "SET " + set
	}
	in := &dynamodb.UpdateItemInput{
		TableName:           s.table(table),
		Key:                 key,
		UpdateExpression:    aws.String(update),
		ConditionExpression: aws.String("attribute_exists(pk)"),
	}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	_, err := s.db.UpdateItem(ctx, in)
	if err = mapError("refresh group expiry", err); errors.Is(err, waymark.ErrConflict) {
		return nil
	}
	return err
}

// CountMembers counts a group's membership items (a strongly consistent
// Query of the group's partition that returns no items).
func (s *Store) CountMembers(ctx context.Context, groupKey string) (int, error) {
	in := &dynamodb.QueryInput{
		TableName:              s.table(schema.GroupsTable),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :member)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(groupKey), ":member": str(schema.GroupMemberPrefix),
		},
		Select:         types.SelectCount,
		ConsistentRead: aws.Bool(true),
	}
	n := 0
	for {
		out, err := s.db.Query(ctx, in)
		if err != nil {
			return 0, mapError("count members", err)
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// EraseGroup deletes a group: its group item, every membership item, and
// the group from each member's user item (which then takes its next
// identify afresh). It answers how many items of the Groups table it
// deleted; 0 for a group not stored. Idempotent.
func (s *Store) EraseGroup(ctx context.Context, groupKey string) (int, error) {
	keys, err := s.queryPartitionKeys(ctx, schema.Groups, groupKey)
	if err != nil {
		return 0, err
	}
	for _, key := range keys {
		sk := getString(key, attrSK)
		if len(sk) <= len(schema.GroupMemberPrefix) || sk[:len(schema.GroupMemberPrefix)] != schema.GroupMemberPrefix {
			continue
		}
		// The version moves so that an identify that read the user
		// before this write conflicts instead of writing the group back
		// without its membership item.
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 s.table(schema.UsersTable),
			Key:                       map[string]types.AttributeValue{attrPK: str(sk[len(schema.GroupMemberPrefix):])},
			UpdateExpression:          aws.String("DELETE " + attrGroups + " :g SET v = v + :one REMOVE " + attrLastInput),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":g": &types.AttributeValueMemberSS{Value: []string{groupKey}}, ":one": number(1)},
		})
		if err = mapError("remove group from user", err); err != nil && !errors.Is(err, waymark.ErrConflict) {
			return 0, err
		}
	}
	if err := s.deleteAll(ctx, schema.GroupsTable, keys); err != nil {
		return 0, err
	}
	return len(keys), nil
}

// EraseMemberships deletes the membership items of a user (the user's
// erasure, before its user item goes), found from the user item's groups.
func (s *Store) EraseMemberships(ctx context.Context, userKey string) (int, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            s.table(schema.UsersTable),
		Key:                  map[string]types.AttributeValue{attrPK: str(userKey)},
		ConsistentRead:       aws.Bool(true),
		ProjectionExpression: aws.String(attrGroups),
	})
	if err != nil {
		return 0, mapError("get user groups", err)
	}
	groups := getStrings(out.Item, attrGroups)
	keys := make([]map[string]types.AttributeValue, len(groups))
	for i, g := range groups {
		keys[i] = membershipKey(g, userKey)
	}
	if err := s.deleteAll(ctx, schema.GroupsTable, keys); err != nil {
		return 0, err
	}
	return len(keys), nil
}

// deleteAll deletes items of one table by key with BatchWriteItem (25 at a
// time); what it leaves unprocessed (throttling) is sent again after a pause.
func (s *Store) deleteAll(ctx context.Context, table string, keys []map[string]types.AttributeValue) error {
	name := s.tables[table]
	for start := 0; start < len(keys); start += 25 {
		var batch []types.WriteRequest
		for _, key := range keys[start:min(start+25, len(keys))] {
			batch = append(batch, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key}})
		}
		requests := map[string][]types.WriteRequest{name: batch}
		for attempt := 0; len(requests) > 0; attempt++ {
			if attempt == 10 {
				return fmt.Errorf("%w: erase: unprocessed deletes after 10 attempts", waymark.ErrThrottled())
			}
			if attempt > 0 {
				time.Sleep(time.Duration(50*attempt) * time.Millisecond)
			}
			out, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: requests})
			if err != nil {
				return mapError("erase", err)
			}
			requests = out.UnprocessedItems
		}
	}
	return nil
}
