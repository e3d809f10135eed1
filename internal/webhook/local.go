package webhook

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/waymarkhq/waymark/internal/schema"
)

// Local runs deliveries for `waymark dev` and the tests over DynamoDB
// Local: new feedback comes from the Feedback table's stream, as deployed,
// and each attempt is the deployed Deliverer's. What SQS does deployed
// (holding a failed delivery until its retry is due) is done here in
// memory: the SQS emulator on the module proxy (goaws v0.4.5) speaks only
// SQS's old query protocol, which the SDK no longer sends
// (docs/webhooks.md). Retries pending when `waymark dev` stops are lost,
// and feedback written while it is stopped is not delivered.
//
// Removed feedback items have their attachment files deleted, as deployed
// for items time to live removes. DynamoDB Local runs no time to live and
// its stream records carry no identity, so here every removal counts: the
// only other remover, erasure, has deleted the files already.
type Local struct {
	deliverer *Deliverer
	streams   *dynamodbstreams.Client
	table     string
	// Objects, when set, is the attachments bucket where the files of
	// removed feedback are deleted.
	Objects Objects
	// expired are the files still to delete (a failed delete is tried
	// again at the next poll).
	expired []string
	// OnOutcome, when set, sees every attempt's outcome (tests, bench).
	OnOutcome func(dl Delivery, attempt int, out Outcome)

	mu       sync.Mutex
	due      dueHeap
	inflight int
	slots    chan struct{}
}

// LocalPoll is how often the stream and the due retries are looked at.
const LocalPoll = 25 * time.Millisecond

// localWorkers bounds concurrent attempts; a dead receiver's slow attempts
// take a few of them and the others keep flowing.
const localWorkers = 32

// NewLocal builds the local runner of the table's stream.
func NewLocal(d *Deliverer, streams *dynamodbstreams.Client, table string) *Local {
	return &Local{deliverer: d, streams: streams, table: table, slots: make(chan struct{}, localWorkers)}
}

type scheduled struct {
	at      time.Time
	dl      Delivery
	attempt int
}

type dueHeap []scheduled

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(scheduled)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (l *Local) schedule(s scheduled) {
	l.mu.Lock()
	heap.Push(&l.due, s)
	l.mu.Unlock()
}

// Enqueue queues a delivery for an attempt now (a redelivery).
func (l *Local) Enqueue(dl Delivery) {
	l.schedule(scheduled{at: l.deliverer.Now(), dl: dl, attempt: 1})
}

// Pending is the number of deliveries queued or being attempted.
func (l *Local) Pending() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.due) + l.inflight
}

// NextDue is when the earliest queued delivery is due (zero if none).
func (l *Local) NextDue() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.due) == 0 {
		return time.Time{}
	}
	return l.due[0].at
}

// Run reads the stream from now on and makes attempts until ctx ends.
func (l *Local) Run(ctx context.Context) error {
	reader, err := l.openStream(ctx)
	if ctx.Err() != nil {
		// Stopped while it was opening the stream: a stop, not a failure.
		return nil
	}
	if err != nil {
		return err
	}
	ticker := time.NewTicker(LocalPoll)
	defer ticker.Stop()
	for {
		deliveries, expired := reader.read(ctx, l.deliverer.Now())
		for _, dl := range deliveries {
			l.schedule(scheduled{at: dl.Queued, dl: dl, attempt: 1})
		}
		l.deleteExpired(ctx, expired)
		l.dispatch(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// deleteExpired deletes the files of removed feedback, keeping those it
// could not delete for the next poll.
func (l *Local) deleteExpired(ctx context.Context, keys []string) {
	if l.Objects == nil {
		return
	}
	pending := append(l.expired, keys...)
	l.expired = nil
	for _, key := range pending {
		if err := l.Objects.Delete(ctx, key); err != nil {
			l.deliverer.Log.Warn("webhook: delete expired attachment", "error", err.Error())
			l.expired = append(l.expired, key)
		}
	}
}

func (l *Local) dispatch(ctx context.Context) {
	now := l.deliverer.Now()
	for {
		l.mu.Lock()
		if len(l.due) == 0 || l.due[0].at.After(now) {
			l.mu.Unlock()
			return
		}
		s := heap.Pop(&l.due).(scheduled)
		l.inflight++
		l.mu.Unlock()
		l.slots <- struct{}{}
		go func() {
			defer func() { <-l.slots }()
			out, err := l.deliverer.Attempt(ctx, s.dl, s.attempt)
			next := scheduled{dl: s.dl, attempt: s.attempt + 1, at: l.deliverer.Now().Add(out.RetryAfter)}
			if err != nil {
				// Parking failed: try the attempt again later, as SQS would.
				next.attempt, next.at = s.attempt, l.deliverer.Now().Add(l.deliverer.Schedule.Delay(s.attempt))
			}
			l.mu.Lock()
			l.inflight--
			if err != nil || out.Result == Retry {
				heap.Push(&l.due, next)
			}
			l.mu.Unlock()
			if l.OnOutcome != nil && err == nil {
				l.OnOutcome(s.dl, s.attempt, out)
			}
		}()
	}
}

// streamReader follows every shard of a stream.
type streamReader struct {
	client    *dynamodbstreams.Client
	arn       string
	iterators map[string]*string // shard id -> next iterator; nil once closed
	polls     int
	closed    bool // a shard closed since the last discovery
}

func (l *Local) openStream(ctx context.Context) (*streamReader, error) {
	out, err := l.streams.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: aws.String(l.table)})
	if err != nil {
		return nil, fmt.Errorf("webhook: list streams of %s: %w", l.table, err)
	}
	if len(out.Streams) == 0 {
		return nil, fmt.Errorf("webhook: table %s has no stream", l.table)
	}
	r := &streamReader{client: l.streams, arn: aws.ToString(out.Streams[len(out.Streams)-1].StreamArn), iterators: map[string]*string{}}
	// Shards open now are read from their end: feedback written before the
	// runner started is not delivered again at every start.
	return r, r.discover(ctx, types.ShardIteratorTypeLatest)
}

func (r *streamReader) discover(ctx context.Context, from types.ShardIteratorType) error {
	desc, err := r.client.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(r.arn)})
	if err != nil {
		return fmt.Errorf("webhook: describe stream: %w", err)
	}
	for _, shard := range desc.StreamDescription.Shards {
		id := aws.ToString(shard.ShardId)
		if _, known := r.iterators[id]; known {
			continue
		}
		it, err := r.client.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
			StreamArn: aws.String(r.arn), ShardId: shard.ShardId, ShardIteratorType: from,
		})
		if err != nil {
			return fmt.Errorf("webhook: shard iterator: %w", err)
		}
		r.iterators[id] = it.ShardIterator
	}
	return nil
}

// reopen reads a shard from its oldest record on.
func (r *streamReader) reopen(ctx context.Context, shard string) {
	it, err := r.client.GetShardIterator(ctx, &dynamodbstreams.GetShardIteratorInput{
		StreamArn: aws.String(r.arn), ShardId: aws.String(shard), ShardIteratorType: types.ShardIteratorTypeTrimHorizon,
	})
	if err == nil {
		r.iterators[shard] = it.ShardIterator
	}
}

// read returns the deliveries of the records written since the last read,
// and the attachment files of the feedback items removed since. A failed
// read is tried again at the next poll, from the same iterator.
func (r *streamReader) read(ctx context.Context, now time.Time) ([]Delivery, []string) {
	r.polls++
	if r.polls%40 == 0 || r.closed {
		// New shards appear as DynamoDB splits or rolls them over, which
		// closes the shard before: look at once when one closed.
		if r.discover(ctx, types.ShardIteratorTypeTrimHorizon) == nil {
			r.closed = false
		}
	}
	var out []Delivery
	var expired []string
	for id, it := range r.iterators {
		if it == nil {
			continue
		}
		recs, err := r.client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it})
		if _, trimmed := errors.AsType[*types.TrimmedDataAccessException](err); trimmed {
			// DynamoDB Local answers so for a LATEST iterator of a shard
			// that held no record yet: what it holds now is all new.
			r.reopen(ctx, id)
			continue
		}
		if err != nil {
			continue
		}
		r.iterators[id] = recs.NextShardIterator
		r.closed = r.closed || recs.NextShardIterator == nil
		for _, rec := range recs.Records {
			if rec.EventName == types.OperationTypeRemove && rec.Dynamodb != nil {
				expired = append(expired, streamAttachmentKeys(rec.Dynamodb.OldImage)...)
				continue
			}
			if rec.EventName != types.OperationTypeInsert || rec.Dynamodb == nil {
				continue
			}
			img := rec.Dynamodb.NewImage
			if dl, ok := deliveryOf(func(attr string) string {
				if s, ok := img[attr].(*types.AttributeValueMemberS); ok {
					return s.Value
				}
				return ""
			}, now); ok {
				out = append(out, dl)
			}
		}
	}
	return out, expired
}

// deliveryOf makes the delivery of a new item of the Feedback table from
// its image's string attributes: a feedback item, or a requeued delivery
// (`waymark workspace redeliver`); parked deliveries make none.
func deliveryOf(attr func(string) string, now time.Time) (Delivery, bool) {
	wsMonth, pk, sk, id := attr("wsMonth"), attr("pk"), attr("sk"), attr("id")
	if ws, ok := strings.CutPrefix(pk, schema.RequeuedDeliveryPrefix); ok {
		fpk, fsk := attr("fpk"), attr("fsk")
		if ws == "" || sk == "" || fpk == "" || fsk == "" {
			return Delivery{}, false
		}
		return Delivery{ID: sk, Workspace: ws, FeedbackPK: fpk, FeedbackSK: fsk, Queued: now}, true
	}
	ws, _, ok := cutLast(wsMonth, '#')
	if !ok || pk == "" || sk == "" || id == "" {
		return Delivery{}, false
	}
	return Delivery{ID: DeliveryID(id), Workspace: ws, FeedbackPK: pk, FeedbackSK: sk, Queued: now}, true
}

func cutLast(s string, sep byte) (string, string, bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == sep {
			return s[:i], s[i+1:], i > 0
		}
	}
	return "", "", false
}
