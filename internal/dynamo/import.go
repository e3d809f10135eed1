package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// The bulk import's write path: one consistent BatchGetItem per 100 users
// finds those already stored, and one BatchWriteItem per 25 new users
// writes them whole, several calls in flight at once. Users already stored
// take identify's conditional path instead (the service decides).

// DynamoDB's limits on one batch call.
const (
	batchGetKeys  = 100
	batchWriteOps = 25
)

// importCallsInFlight bounds the batch calls one import makes at once: enough
// to hide a round trip's latency, few enough not to throttle a table that
// other requests write too.
const importCallsInFlight = 16

// batchAttempts bounds how often a batch's unprocessed part (DynamoDB's
// throttling of a batch) is sent again before the import answers throttled.
const batchAttempts = 10

// StoredInput is what an import needs to know of a user already stored: the
// digest of the identify input its profile last took and its expiry.
type StoredInput struct {
	Digest    string
	ExpiresAt int64
}

// StoredInputs reads, with consistent batch reads, which of the users are
// stored and the input each last took; a user not stored is not in the
// answer. Only the key, the digest and the expiry are read: nothing sealed.
func (s *Store) StoredInputs(ctx context.Context, userKeys []string) (map[string]StoredInput, error) {
	chunks := chunk(userKeys, batchGetKeys)
	found := make([][]map[string]types.AttributeValue, len(chunks))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(importCallsInFlight)
	table := s.tables[schema.UsersTable]
	for i, keys := range chunks {
		g.Go(func() error {
			request := types.KeysAndAttributes{
				ConsistentRead:       aws.Bool(true),
				ProjectionExpression: aws.String("pk, " + attrLastInput + ", " + attrExpiresAt),
			}
			for _, k := range keys {
				request.Keys = append(request.Keys, map[string]types.AttributeValue{attrPK: str(k)})
			}
			pending := map[string]types.KeysAndAttributes{table: request}
			for attempt := 0; len(pending) > 0; attempt++ {
				if err := pauseBeforeRetry(gctx, attempt, "read users"); err != nil {
					return err
				}
				out, err := s.db.BatchGetItem(gctx, &dynamodb.BatchGetItemInput{RequestItems: pending})
				if err != nil {
					return mapError("read users", err)
				}
				found[i] = append(found[i], out.Responses[table]...)
				pending = out.UnprocessedKeys
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := map[string]StoredInput{}
	for _, items := range found {
		for _, item := range items {
			out[getString(item, attrPK)] = StoredInput{Digest: getString(item, attrLastInput), ExpiresAt: getInt(item, attrExpiresAt)}
		}
	}
	return out, nil
}

// PutNewUsers writes users not stored yet, each item whole (sealed under the
// instance's data key, like PutUser's), 25 to a BatchWriteItem. The write is
// unconditional: the caller found the users absent a moment before (see
// service.ImportOf for what that leaves open). A repeat of it (an SDK retry,
// the caller's retry) writes the same items again, which is harmless.
func (s *Store) PutNewUsers(ctx context.Context, ws *waymark.Workspace, users []*waymark.User, requestID string, now time.Time) error {
	// Sealed first, all of them: an unreachable KMS fails the import before
	// anything is written.
	items := make([]map[string]types.AttributeValue, len(users))
	for i, u := range users {
		if u.Version != 0 {
			return fmt.Errorf("dynamo: import: user at version %d is not new", u.Version)
		}
		item, err := s.userItem(ctx, ws, u, requestID, now)
		if err != nil {
			return err
		}
		items[i] = item
	}
	table := s.tables[schema.UsersTable]
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(importCallsInFlight)
	for _, batch := range chunk(items, batchWriteOps) {
		g.Go(func() error {
			requests := make([]types.WriteRequest, len(batch))
			for i, item := range batch {
				requests[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
			}
			pending := map[string][]types.WriteRequest{table: requests}
			for attempt := 0; len(pending) > 0; attempt++ {
				if err := pauseBeforeRetry(gctx, attempt, "write users"); err != nil {
					return err
				}
				out, err := s.db.BatchWriteItem(gctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
				if err != nil {
					return mapError("write users", err)
				}
				pending = out.UnprocessedItems
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, u := range users {
		u.Version = 1
	}
	return nil
}

// pauseBeforeRetry waits before the attempt-th send of a batch's
// unprocessed part (none before the first), and gives up as throttled after
// batchAttempts.
func pauseBeforeRetry(ctx context.Context, attempt int, op string) error {
	if attempt == 0 {
		return nil
	}
	if attempt >= batchAttempts {
		return fmt.Errorf("%w: %s: unprocessed after %d attempts", waymark.ErrThrottled(), op, batchAttempts)
	}
	t := time.NewTimer(time.Duration(25<<min(attempt, 5)) * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return classify(op, ctx.Err())
	}
}

func chunk[T any](all []T, size int) [][]T {
	var out [][]T
	for start := 0; start < len(all); start += size {
		out = append(out, all[start:min(start+size, len(all))])
	}
	return out
}
