package dynamo

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Attributes of a workspace item that publish its current sealing key.
const (
	attrSealKey   = schema.SealKeyAttribute
	attrSealKeyAt = schema.SealKeyAtAttribute
)

// KeyBoard publishes each workspace's current sealing key on its item in the
// Workspaces table, where every function instance reads it with the
// workspace.
type KeyBoard struct {
	db    DynamoDB
	table *string
}

var _ envelope.KeyBoard = (*KeyBoard)(nil)

// NewKeyBoard builds the board over the Workspaces table of tables.
func NewKeyBoard(db DynamoDB, tables map[string]string) *KeyBoard {
	return &KeyBoard{db: db, table: aws.String(tables[schema.WorkspacesTable])}
}

// CurrentSealingKey reads the workspace's published sealing key.
func (b *KeyBoard) CurrentSealingKey(ctx context.Context, workspace string) ([]byte, time.Time, error) {
	out, err := b.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:            b.table,
		Key:                  map[string]types.AttributeValue{"code": str(workspace)},
		ProjectionExpression: aws.String(attrSealKey + ", " + attrSealKeyAt),
		ConsistentRead:       aws.Bool(true),
	})
	if err != nil {
		return nil, time.Time{}, mapError("read sealing key", err)
	}
	wrapped, at := publishedSealingKey(out.Item)
	return wrapped, at, nil
}

// PublishSealingKey replaces prev with next, by a conditional write that
// loses to any other instance's replacement of prev. A workspace that does
// not exist (yet) publishes nothing.
func (b *KeyBoard) PublishSealingKey(ctx context.Context, workspace string, next []byte, at time.Time, prev []byte) (bool, error) {
	values := map[string]types.AttributeValue{
		":next": &types.AttributeValueMemberB{Value: next},
		":at":   str(waymark.FormatTime(at)),
	}
	cond := "attribute_exists(code) AND attribute_not_exists(" + attrSealKey + ")"
	if prev != nil {
		cond = attrSealKey + " = :prev"
		values[":prev"] = &types.AttributeValueMemberB{Value: prev}
	}
	_, err := b.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 b.table,
		Key:                       map[string]types.AttributeValue{"code": str(workspace)},
		UpdateExpression:          aws.String("SET " + attrSealKey + " = :next, " + attrSealKeyAt + " = :at"),
		ConditionExpression:       aws.String(cond),
		ExpressionAttributeValues: values,
	})
	if err := mapError("publish sealing key", err); err != nil {
		if errors.Is(err, waymark.ErrConflict) {
			return false, nil
		}
		return false, err
	}
	return true, nil
}

func publishedSealingKey(item map[string]types.AttributeValue) ([]byte, time.Time) {
	wrapped, ok := item[attrSealKey].(*types.AttributeValueMemberB)
	if !ok {
		return nil, time.Time{}
	}
	return wrapped.Value, getTime(item, attrSealKeyAt)
}
