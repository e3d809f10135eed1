// Package dynamo is Waymark's DynamoDB store. It turns domain values into
// items and back, sealing personal data with the envelope on the way in and
// opening it on the way out, and maps DynamoDB failures to domain errors.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// DynamoDB is the part of the DynamoDB client the store uses.
type DynamoDB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

var _ DynamoDB = (*dynamodb.Client)(nil)

// Sealer is the part of the envelope the store uses.
type Sealer interface {
	SealingKey(ctx context.Context, workspace string) (*envelope.Key, error)
	OpeningKey(ctx context.Context, workspace string, wrapped []byte) (*envelope.Key, error)
	// Offer passes on the sealing key a workspace read found published.
	Offer(ctx context.Context, workspace string, wrapped []byte, at time.Time)
}

var _ Sealer = (*envelope.Envelope)(nil)

// Store reads and writes Waymark's tables.
type Store struct {
	db     DynamoDB
	sealer Sealer
	// tables maps logical table names to physical ones.
	tables map[string]string
	// transactItems bounds a transaction (LimitTransactions; 0: DynamoDB's).
	transactItems int
}

// New builds a Store.
func New(db DynamoDB, sealer Sealer, tables map[string]string) *Store {
	return &Store{db: db, sealer: sealer, tables: tables}
}

func (s *Store) table(logical string) *string { return aws.String(s.tables[logical]) }

// Attribute names shared by several tables.
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrDataKey   = "dk"
	attrVersion   = "v"
	attrRequest   = "req"
	attrExpiresAt = schema.TTLAttribute
)

// sealer binds values of one item to their place while they are sealed or
// opened with one data key.
type itemSealer struct {
	key    *envelope.Key
	table  string
	pk, sk string
}

func (i itemSealer) seal(attr string, plaintext []byte) types.AttributeValue {
	return &types.AttributeValueMemberB{Value: i.key.Seal(envelope.AAD(i.table, i.pk, i.sk, attr), plaintext)}
}

func (i itemSealer) open(item map[string]types.AttributeValue, attr string) ([]byte, bool, error) {
	v, ok := item[attr].(*types.AttributeValueMemberB)
	if !ok {
		return nil, false, nil
	}
	plain, err := i.key.Open(envelope.AAD(i.table, i.pk, i.sk, attr), v.Value)
	if err != nil {
		return nil, false, fmt.Errorf("dynamo: open %s.%s: %w", i.table, attr, err)
	}
	return plain, true, nil
}

func (s *Store) sealerFor(ctx context.Context, workspace, table, pk, sk string) (itemSealer, error) {
	key, err := s.sealer.SealingKey(ctx, workspace)
	if err != nil {
		return itemSealer{}, mapSealError(err)
	}
	return itemSealer{key: key, table: table, pk: pk, sk: sk}, nil
}

func (s *Store) openerFor(ctx context.Context, workspace, table, pk, sk string, item map[string]types.AttributeValue) (itemSealer, error) {
	dk, ok := item[attrDataKey].(*types.AttributeValueMemberB)
	if !ok {
		return itemSealer{}, fmt.Errorf("dynamo: %s item has no data key", table)
	}
	key, err := s.sealer.OpeningKey(ctx, workspace, dk.Value)
	if err != nil {
		return itemSealer{}, mapSealError(err)
	}
	return itemSealer{key: key, table: table, pk: pk, sk: sk}, nil
}

// mapSealError maps a failure of the envelope: a KMS failure is classed as
// a DynamoDB one is (classify), so KMS unreachable, throttled or refusing
// (a key policy or a disabled key: a deployment fault) answers as those do;
// the request's time running out while it waits for a key shared with
// another request is as if its own KMS call had; anything else (a value
// that does not open) stays internal.
func mapSealError(err error) error {
	if errors.Is(err, envelope.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return classify("kms", err)
	}
	return err
}

// mapError turns a DynamoDB failure into a domain error: a failed condition
// is a conflict, the rest is classed by classify.
func mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return waymark.ErrConflict
	}
	return classify("dynamo: "+op, err)
}

// classify maps the failure of an AWS call, after the SDK's retries, to what
// the caller is told (the cause stays in the error, for the log only):
//   - throttling, as the SDK's retryer recognises it: throttled (429), the
//     caller retries later;
//   - an answer with a 5xx status (an internal error, service unavailable,
//     a KMS dependency timeout), no answer at all (connection refused or
//     reset, an answer lost) or the request's time up: unavailable (503),
//     the caller retries later (the clients have no retry quota to spend:
//     config.Retryer);
//   - any other answer (access denied, a key disabled, a request the
//     service rejects): internal (500), a fault of the deployment or of the
//     code that retrying does not mend.
func classify(op string, err error) error {
	if throttled := (retry.ThrottleErrorCode{Codes: retry.DefaultThrottleErrorCodes}).IsErrorThrottle(err); throttled == aws.TrueTernary {
		return fmt.Errorf("%w: %s: %w", waymark.ErrThrottled(), op, err)
	}
	var status interface{ HTTPStatusCode() int }
	if errors.As(err, &status) && status.HTTPStatusCode() >= 500 {
		return fmt.Errorf("%w: %s: %w", waymark.ErrUnavailable("a dependency failed"), op, err)
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("%s: %w", op, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%w: %s: %w", waymark.ErrUnavailable("a dependency did not answer"), op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// The store writes its few condition and update expressions as constant
// strings rather than with the SDK's expression builder: they never vary
// with input (values always go through placeholders), and the builder would
// render the same strings again, with their allocations, on every request of
// the hot path.

// versionCondition makes a write succeed only over the version it read, or
// only when the item does not exist yet (version 0).
func versionCondition(version int64) (string, map[string]types.AttributeValue) {
	if version == 0 {
		return "attribute_not_exists(pk)", nil
	}
	return "v = :expected", map[string]types.AttributeValue{":expected": number(version)}
}

// putOverVersion writes a whole item over the version it was read at (0
// for a new item); what names the write in its error.
func (s *Store) putOverVersion(ctx context.Context, logical string, item map[string]types.AttributeValue, version int64, what string) error {
	cond, values := versionCondition(version)
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 s.table(logical),
		Item:                      item,
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return mapError(what, err)
	}
	return nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func number[T int | int64](n T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(int64(n), 10)}
}

func getString(item map[string]types.AttributeValue, attr string) string {
	if v, ok := item[attr].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func getInt(item map[string]types.AttributeValue, attr string) int64 {
	if v, ok := item[attr].(*types.AttributeValueMemberN); ok {
		n, _ := strconv.ParseInt(v.Value, 10, 64)
		return n
	}
	return 0
}

func getBool(item map[string]types.AttributeValue, attr string) bool {
	v, ok := item[attr].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func getTime(item map[string]types.AttributeValue, attr string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, getString(item, attr))
	return t
}

// withExpiry ends a SET update expression with the item's expiry, or with
// its removal when the workspace keeps data (expiresAt 0).
func withExpiry(update string, values map[string]types.AttributeValue, expiresAt int64) string {
	set, remove := expiryClauses(values, expiresAt)
	if set != "" {
		return update + ", " + set
	}
	return update + " REMOVE " + remove
}

// expiryClauses is the item's expiry as one SET clause, or as the attribute
// to REMOVE when the workspace keeps data (expiresAt 0).
func expiryClauses(values map[string]types.AttributeValue, expiresAt int64) (set, remove string) {
	if expiresAt > 0 {
		values[":exp"] = number(expiresAt)
		return "expiresAt = :exp", ""
	}
	return "", attrExpiresAt
}

func putExpiry(item map[string]types.AttributeValue, expiresAt int64) {
	if expiresAt > 0 {
		item[attrExpiresAt] = number(expiresAt)
	}
}
