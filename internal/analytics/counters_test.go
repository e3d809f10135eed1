package analytics_test

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"context"
	"reflect"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// TestAddCountsAppliesEachRecordOnce delivers one shard's records the ways
// Lambda may deliver them again (the same batch, a bisected half, a batch
// reaching further) and checks each counts once; another shard's records
// count beside them.
func TestAddCountsAppliesEachRecordOnce(t *testing.T) {
	store, _ := aggregatorStore(t, nil)
	ctx := context.Background()
	key := dynamo.CounterKey{Workspace: "ws-counters", Content: waymark.ContentKey{Kind: waymark.KindTour, ID: "t1"}}
	rec := func(seq string, n int64) dynamo.Contribution {
		return dynamo.Contribution{Seq: seq, Counts: waymark.Counts{"started": n}}
	}
	deliveries := []struct {
		shard   string
		batch   []dynamo.Contribution
		wantSum int64
	}{
		{"shard-a", []dynamo.Contribution{rec("100", 1), rec("200", 2), rec("300", 4)}, 7},
		{"shard-a", []dynamo.Contribution{rec("100", 1), rec("200", 2), rec("300", 4)}, 7},                  // the same batch
		{"shard-a", []dynamo.Contribution{rec("200", 2)}, 7},                                                // a bisected half
		{"shard-a", []dynamo.Contribution{rec("300", 4), rec("400", 8), rec("1000", 16)}, 31},               // reaching further
		{"shard-b", []dynamo.Contribution{rec("150", 32)}, 63},                                              // another shard
		{"shard-b", []dynamo.Contribution{rec("150", 32), rec("99999999999999999999999", 64)}, 127},         // a longer number
		{"shard-a", []dynamo.Contribution{rec("1000", 16), rec("99999999999999999999999999999", 128)}, 255}, // past a long one
	}
	for i, d := range deliveries {
		if err := store.AddCounts(ctx, d.shard, key, d.batch, time.Now()); err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		totals, err := store.WorkspaceCounters(ctx, "ws-counters")
		if err != nil {
			t.Fatal(err)
		}
		if got := totals[key.Content]; !reflect.DeepEqual(got, waymark.Counts{"started": d.wantSum}) {
			t.Fatalf("after delivery %d: %v, want started %d", i, got, d.wantSum)
		}
	}
}

// TestShardMarksOfIdleShardsArePruned checks that a counter item forgets
// the mark of a shard idle for more than a day (the stream can no longer
// deliver its records), so items do not grow as shards come and go.
func TestShardMarksOfIdleShardsArePruned(t *testing.T) {
	store, db := aggregatorStore(t, nil)
	ctx := context.Background()
	key := dynamo.CounterKey{Workspace: "ws-prune", Content: waymark.ContentKey{Kind: waymark.KindHint, ID: "h1"}}
	add := func(shard, seq string, at time.Time) {
		t.Helper()
		if err := store.AddCounts(ctx, shard, key, []dynamo.Contribution{{Seq: seq, Counts: waymark.Counts{"displays": 1}}}, at); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	add("old-shard", "10", start.Add(-26*time.Hour))
	add("new-shard", "20", start)
	marks := shardMarkCount(t, db, "ws-prune#totals", "hint#h1")
	if marks != 1 {
		t.Fatalf("%d shard marks after the idle shard's expiry, want 1", marks)
	}
}

func shardMarkCount(t *testing.T, db *dynamodb.Client, pk, sk string) int {
	t.Helper()
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(stack.Config().Tables["Analytics"]),
		Key:       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}},
	})
	if err != nil {
		t.Fatal(err)
	}
	q, _ := out.Item["q"].(*types.AttributeValueMemberM)
	if q == nil {
		t.Fatal("no shard marks")
	}
	return len(q.Value)
}
