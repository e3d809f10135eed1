// Package analytics turns the ContentState table's stream into the content
// analytics counters: each stream record is a transition of one user's
// content item (old image to new image); waymark.Transition says what it
// adds; the store applies a batch's additions, merged per counter item,
// exactly once (dynamo.Store.AddCounts). The deployed aggregator is a Lambda
// fed by an event source mapping (HandleLambda); `waymark dev` and the tests
// feed it from DynamoDB Local's stream (Poller). The request path never
// waits for it.
package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Record is one stream record of the ContentState table.
type Record struct {
	Seq string
	// At is when the record was written: its transition counts on that
	// UTC day.
	At       time.Time
	Old, New map[string]types.AttributeValue
}

// Aggregator applies batches of stream records to the counters.
type Aggregator struct {
	store *dynamo.Store
	log   *slog.Logger
	now   func() time.Time
}

// New builds an aggregator over a store.
func New(store *dynamo.Store, log *slog.Logger) *Aggregator {
	return &Aggregator{store: store, log: log, now: time.Now}
}

// Process applies one batch of records of one stream shard, given in the
// shard's order. A failure leaves the batch to be delivered again, whole or
// in part: what was applied is not applied twice.
func (a *Aggregator) Process(ctx context.Context, shard string, records []Record) error {
	perItem := map[dynamo.CounterKey][]dynamo.Contribution{}
	for _, r := range records {
		ws, key, counts, err := a.transition(ctx, r)
		if err != nil {
			return err
		}
		if len(counts) == 0 {
			continue
		}
		day := r.At.UTC().Format(waymark.DateLayout)
		for _, k := range []dynamo.CounterKey{{Workspace: ws, Content: key}, {Workspace: ws, Content: key, Date: day}} {
			perItem[k] = append(perItem[k], dynamo.Contribution{Seq: r.Seq, Counts: counts})
		}
	}
	keys := make([]dynamo.CounterKey, 0, len(perItem))
	for k := range perItem {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
	for _, k := range keys {
		if err := a.store.AddCounts(ctx, shard, k, perItem[k], a.now()); err != nil {
			return err
		}
	}
	a.log.Debug("analytics batch", slog.Int("records", len(records)), slog.Int("counterItems", len(keys)))
	return nil
}

// transition decodes a record's images and what the change adds.
func (a *Aggregator) transition(ctx context.Context, r Record) (string, waymark.ContentKey, waymark.Counts, error) {
	if r.New == nil {
		// Erased or expired: past contributions stay.
		return "", waymark.ContentKey{}, nil, nil
	}
	now, ws, ok, err := dynamo.ContentImage(r.New)
	if err != nil || !ok {
		return "", waymark.ContentKey{}, nil, err
	}
	var old *waymark.ContentItem
	if r.Old != nil {
		if old, _, _, err = dynamo.ContentImage(r.Old); err != nil {
			return "", waymark.ContentKey{}, nil, err
		}
	}
	var oldAnswer, newAnswer string
	if now.Key.Kind == waymark.KindSurvey && dynamo.AnswerChanged(r.Old, r.New) {
		if oldAnswer, err = a.answerKey(ctx, ws, r.Old); err != nil {
			return "", waymark.ContentKey{}, nil, err
		}
		if newAnswer, err = a.answerKey(ctx, ws, r.New); err != nil {
			return "", waymark.ContentKey{}, nil, err
		}
	}
	return ws, now.Key, waymark.Transition(old, now, oldAnswer, newAnswer), nil
}

// answerKey opens an image's survey answer and returns how it counts ("" for
// none, or for an answer that is not counted: free text is opened here, in
// memory, and dropped).
func (a *Aggregator) answerKey(ctx context.Context, ws string, item map[string]types.AttributeValue) (string, error) {
	if item == nil {
		return "", nil
	}
	answer, err := a.store.OpenAnswer(ctx, ws, item)
	if err != nil {
		return "", err
	}
	key, _ := waymark.AnswerKey(answer)
	return key, nil
}
