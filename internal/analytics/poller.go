package analytics

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	streamtypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// Poller feeds the aggregator from a table's stream the way Lambda's event
// source mapping does deployed: each shard read in order from its oldest
// record, one batch at a time, a failed batch delivered again until it
// succeeds, a child shard only after its parent is drained. `waymark dev`
// and the tests run it over DynamoDB Local, whose stream speaks the same API.
type Poller struct {
	streams *dynamodbstreams.Client
	agg     *Aggregator
	table   string
	log     *slog.Logger
	// Interval is the pause after an empty read of an open shard.
	Interval  time.Duration
	processed atomic.Int64
	failures  atomic.Int64

	mu      sync.Mutex
	started map[string]bool
	done    map[string]bool
}

// NewPoller builds a poller of the stream of the table named table.
func NewPoller(streams *dynamodbstreams.Client, agg *Aggregator, table string, log *slog.Logger) *Poller {
	return &Poller{streams: streams, agg: agg, table: table, log: log, Interval: 100 * time.Millisecond,
		started: map[string]bool{}, done: map[string]bool{}}
}

// Processed counts the records applied so far.
func (p *Poller) Processed() int64 { return p.processed.Load() }

// Failures counts the batches that failed and were delivered again.
func (p *Poller) Failures() int64 { return p.failures.Load() }

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	arn, err := p.streamARN(ctx)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		shards, err := p.shards(ctx, arn)
		if err != nil && ctx.Err() == nil {
			p.log.Warn("analytics: describe stream", slog.String("error", err.Error()))
		}
		known := map[string]bool{}
		for _, s := range shards {
			known[aws.ToString(s.ShardId)] = true
		}
		p.mu.Lock()
		for _, s := range shards {
			id, parent := aws.ToString(s.ShardId), aws.ToString(s.ParentShardId)
			if p.started[id] || parent != "" && known[parent] && !p.done[parent] {
				continue
			}
			p.started[id] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.readShard(ctx, arn, id)
			}()
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

func (p *Poller) streamARN(ctx context.Context) (string, error) {
	for {
		out, err := p.streams.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{TableName: aws.String(p.table)})
		if err != nil {
			return "", fmt.Errorf("analytics: list streams of %s: %w", p.table, err)
		}
		if n := len(out.Streams); n > 0 {
			return aws.ToString(out.Streams[n-1].StreamArn), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("analytics: table %s has no stream", p.table)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (p *Poller) shards(ctx context.Context, arn string) ([]streamtypes.Shard, error) {
	var shards []streamtypes.Shard
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(arn)}
	for {
		out, err := p.streams.DescribeStream(ctx, in)
		if err != nil {
			return shards, err
		}
		shards = append(shards, out.StreamDescription.Shards...)
		if out.StreamDescription.LastEvaluatedShardId == nil {
			return shards, nil
		}
		in.ExclusiveStartShardId = out.StreamDescription.LastEvaluatedShardId
	}
}

// readShard reads one shard to its end (a closed shard) or until ctx ends.
func (p *Poller) readShard(ctx context.Context, arn, shard string) {
	var iterator *string
	last := "" // sequence number of the last record applied
	for ctx.Err() == nil {
		if iterator == nil {
			// A new iterator after the last record applied: at start, and
			// after a failed read (DynamoDB Local refuses to read an empty
			// shard from its trim horizon; iterators expire).
			in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(arn), ShardId: aws.String(shard),
				ShardIteratorType: streamtypes.ShardIteratorTypeTrimHorizon}
			if last != "" {
				in.ShardIteratorType, in.SequenceNumber = streamtypes.ShardIteratorTypeAfterSequenceNumber, aws.String(last)
			}
			it, err := p.streams.GetShardIterator(ctx, in)
			if err != nil {
				p.pause(ctx)
				continue
			}
			iterator = it.ShardIterator
		}
		out, err := p.streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: iterator, Limit: aws.Int32(1000)})
		if err != nil {
			iterator = nil
			p.pause(ctx)
			continue
		}
		if len(out.Records) > 0 {
			records := make([]Record, 0, len(out.Records))
			for _, r := range out.Records {
				records = append(records, streamRecord(r))
			}
			for ctx.Err() == nil {
				if err := p.agg.Process(ctx, shard, records); err == nil {
					p.processed.Add(int64(len(records)))
					last = records[len(records)-1].Seq
					break
				} else if ctx.Err() == nil {
					p.failures.Add(1)
					p.log.Warn("analytics: batch failed, delivering it again", slog.String("error", err.Error()))
					p.pause(ctx)
				}
			}
		} else {
			p.pause(ctx)
		}
		if out.NextShardIterator == nil {
			// The shard is closed and read to its end.
			p.mu.Lock()
			p.done[shard] = true
			p.mu.Unlock()
			return
		}
		iterator = out.NextShardIterator
	}
}

func (p *Poller) pause(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(p.Interval):
	}
}

func streamRecord(r streamtypes.Record) Record {
	rec := Record{At: time.Now().UTC()}
	if d := r.Dynamodb; d != nil {
		rec.Seq = aws.ToString(d.SequenceNumber)
		if d.ApproximateCreationDateTime != nil {
			rec.At = d.ApproximateCreationDateTime.UTC()
		}
		rec.Old, rec.New = streamImage(d.OldImage), streamImage(d.NewImage)
	}
	return rec
}

// The streams API has its own attribute value type, the same shape as the
// DynamoDB API's.

func streamImage(image map[string]streamtypes.AttributeValue) map[string]types.AttributeValue {
	if image == nil {
		return nil
	}
	out := make(map[string]types.AttributeValue, len(image))
	for k, v := range image {
		out[k] = streamValue(v)
	}
	return out
}

func streamValue(v streamtypes.AttributeValue) types.AttributeValue {
	switch v := v.(type) {
	case *streamtypes.AttributeValueMemberS:
		return &types.AttributeValueMemberS{Value: v.Value}
	case *streamtypes.AttributeValueMemberN:
		return &types.AttributeValueMemberN{Value: v.Value}
	case *streamtypes.AttributeValueMemberB:
		return &types.AttributeValueMemberB{Value: v.Value}
	case *streamtypes.AttributeValueMemberBOOL:
		return &types.AttributeValueMemberBOOL{Value: v.Value}
	case *streamtypes.AttributeValueMemberNULL:
		return &types.AttributeValueMemberNULL{Value: v.Value}
	case *streamtypes.AttributeValueMemberSS:
		return &types.AttributeValueMemberSS{Value: v.Value}
	case *streamtypes.AttributeValueMemberNS:
		return &types.AttributeValueMemberNS{Value: v.Value}
	case *streamtypes.AttributeValueMemberBS:
		return &types.AttributeValueMemberBS{Value: v.Value}
	case *streamtypes.AttributeValueMemberL:
		list := make([]types.AttributeValue, 0, len(v.Value))
		for _, x := range v.Value {
			list = append(list, streamValue(x))
		}
		return &types.AttributeValueMemberL{Value: list}
	case *streamtypes.AttributeValueMemberM:
		return &types.AttributeValueMemberM{Value: streamImage(v.Value)}
	}
	return &types.AttributeValueMemberNULL{Value: true}
}
