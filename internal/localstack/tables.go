package localstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/schema"
)

// CreateTables creates every table of schema.All() under its physical name in
// tables (logical name -> physical name): on-demand, with its keys and global
// indexes (projection ALL), then turns on time to live on its TTL attribute.
// A table that exists already is kept, after checking that its keys and
// indexes are the schema's; so are its data. It waits until each table is
// active, which DynamoDB Local is at once and the service within seconds.
func CreateTables(ctx context.Context, db *dynamodb.Client, tables map[string]string) error {
	for _, t := range schema.All() {
		name, ok := tables[t.Name]
		if !ok {
			return fmt.Errorf("localstack: no physical name for table %s", t.Name)
		}
		if err := ensureTable(ctx, db, t, name); err != nil {
			return err
		}
		if t.TTLAttribute != "" {
			if err := ensureTTL(ctx, db, name, t.TTLAttribute); err != nil {
				return err
			}
		}
	}
	return nil
}

func ensureTable(ctx context.Context, db *dynamodb.Client, t schema.Table, name string) error {
	_, err := db.CreateTable(ctx, createTableInput(t, name))
	if _, exists := errors.AsType[*types.ResourceInUseException](err); err != nil && !exists {
		return fmt.Errorf("localstack: create table %s: %w", name, err)
	}
	desc, err := waitActive(ctx, db, name)
	if err != nil {
		return err
	}
	if err := checkKeys(t, desc); err != nil {
		return err
	}
	if t.Stream && (desc.StreamSpecification == nil || !aws.ToBool(desc.StreamSpecification.StreamEnabled)) {
		// A table kept from a version without the stream gets it now.
		if _, err := db.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String(name), StreamSpecification: streamSpec()}); err != nil {
			return fmt.Errorf("localstack: enable the stream of %s: %w", name, err)
		}
		_, err = waitActive(ctx, db, name)
		return err
	}
	return nil
}

// streamSpec is the stream a table with schema.Table.Stream has, as
// deployed: new and old images, for the content analytics' transitions.
func streamSpec() *types.StreamSpecification {
	return &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewAndOldImages}
}

func createTableInput(t schema.Table, name string) *dynamodb.CreateTableInput {
	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(name),
		BillingMode: types.BillingModePayPerRequest,
		KeySchema:   keySchema(t.PartitionKey, t.SortKey),
	}
	if t.Stream {
		in.StreamSpecification = streamSpec()
	}
	// Every key attribute of the table and its indexes is defined once,
	// even when an index shares one with the table.
	defined := map[string]bool{}
	define := func(k *schema.KeyAttribute) {
		if k == nil || defined[k.Name] {
			return
		}
		defined[k.Name] = true
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
			AttributeName: aws.String(k.Name),
			AttributeType: types.ScalarAttributeType(k.Type),
		})
	}
	if t.Stream {
		in.StreamSpecification = streamSpec()
	}
	define(&t.PartitionKey)
	define(t.SortKey)
	for _, ix := range t.GlobalIndexes {
		define(&ix.PartitionKey)
		define(ix.SortKey)
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, types.GlobalSecondaryIndex{
			IndexName:  aws.String(ix.Name),
			KeySchema:  keySchema(ix.PartitionKey, ix.SortKey),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		})
	}
	return in
}

func keySchema(pk schema.KeyAttribute, sk *schema.KeyAttribute) []types.KeySchemaElement {
	ks := []types.KeySchemaElement{{AttributeName: aws.String(pk.Name), KeyType: types.KeyTypeHash}}
	if sk != nil {
		ks = append(ks, types.KeySchemaElement{AttributeName: aws.String(sk.Name), KeyType: types.KeyTypeRange})
	}
	return ks
}

// waitActive polls until the table and its indexes are active, backing off
// from 50 ms to 2 s between polls.
func waitActive(ctx context.Context, db *dynamodb.Client, name string) (*types.TableDescription, error) {
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil {
			return nil, fmt.Errorf("localstack: describe table %s: %w", name, err)
		}
		if active(out.Table) {
			return out.Table, nil
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("localstack: table %s not active: %w", name, ctx.Err())
		}
	}
}

func active(t *types.TableDescription) bool {
	if t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, ix := range t.GlobalSecondaryIndexes {
		if ix.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// checkKeys fails when an existing table's keys or indexes differ from the
// schema, which happens with data persisted by an older version: the error
// says so at start instead of as odd failures later.
func checkKeys(t schema.Table, desc *types.TableDescription) error {
	name := aws.ToString(desc.TableName)
	if !sameKeys(desc.KeySchema, keySchema(t.PartitionKey, t.SortKey)) {
		return fmt.Errorf("localstack: table %s exists with other keys than schema %s; remove its data to recreate it", name, t.Name)
	}
	for _, ix := range t.GlobalIndexes {
		i := slices.IndexFunc(desc.GlobalSecondaryIndexes, func(d types.GlobalSecondaryIndexDescription) bool {
			return aws.ToString(d.IndexName) == ix.Name
		})
		if i < 0 || !sameKeys(desc.GlobalSecondaryIndexes[i].KeySchema, keySchema(ix.PartitionKey, ix.SortKey)) {
			return fmt.Errorf("localstack: table %s lacks index %s as schema %s defines it; remove its data to recreate it", name, ix.Name, t.Name)
		}
	}
	return nil
}

func sameKeys(a, b []types.KeySchemaElement) bool {
	return slices.EqualFunc(a, b, func(x, y types.KeySchemaElement) bool {
		return aws.ToString(x.AttributeName) == aws.ToString(y.AttributeName) && x.KeyType == y.KeyType
	})
}

// ensureTTL turns time to live on unless it is on already: the service
// rejects a request that repeats the current setting.
func ensureTTL(ctx context.Context, db *dynamodb.Client, name, attr string) error {
	out, err := db.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return fmt.Errorf("localstack: describe time to live of %s: %w", name, err)
	}
	if d := out.TimeToLiveDescription; d != nil && aws.ToString(d.AttributeName) == attr &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		return nil
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               aws.String(name),
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attr), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("localstack: enable time to live on %s.%s: %w", name, attr, err)
	}
	return nil
}
