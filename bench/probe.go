package main

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"
)

// call is one SDK operation a request made, as seen by the probe middleware
// at the Initialize step: the whole operation, retries included.
type call struct {
	service string // "dynamodb" or "kms"
	op      string // GetItem, Query, Decrypt, ...
	input   any
	start   time.Time
	end     time.Time
	// units is the capacity DynamoDB reported (when it was asked to), and
	// indexUnits the global indexes' share of it.
	units      float64
	indexUnits float64
	// conditionFailed marks a conditional write whose condition did not
	// hold (a request may expect that: identify's repeat check).
	conditionFailed bool
}

// recorder collects the calls made on behalf of one request (for the KMS
// count, of a whole run of requests). The probe finds it in the context the
// handler passes down to the SDK, so calls of concurrent requests never mix.
type recorder struct {
	mu    sync.Mutex
	calls []*call
}

type recorderKey struct{}

func withRecorder(ctx context.Context, r *recorder) context.Context {
	return context.WithValue(ctx, recorderKey{}, r)
}

func (r *recorder) add(c *call) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
}

// snapshot returns the calls in the order they started.
func (r *recorder) snapshot() []*call {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.calls)
	slices.SortStableFunc(out, func(a, b *call) int { return a.start.Compare(b.start) })
	return out
}

// probe is SDK middleware for the DynamoDB and KMS clients of a wired
// Waymark. It records every operation into the request's recorder and,
// when capacity is on, asks DynamoDB for the capacity each operation
// consumed (ReturnConsumedCapacity=INDEXES: the total and the share of each
// index) and reads it from the output.
type probe struct {
	capacity bool
}

func (p probe) dynamoOption(o *dynamodb.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("benchProbe", p.handle("dynamodb")), middleware.After)
	})
}

func (p probe) kmsOption(o *kms.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("benchProbe", p.handle("kms")), middleware.After)
	})
}

func (p probe) handle(service string) func(context.Context, middleware.InitializeInput, middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
	return func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		rec, _ := ctx.Value(recorderKey{}).(*recorder)
		if p.capacity {
			askCapacity(in.Parameters)
		}
		c := &call{service: service, op: awsmiddleware.GetOperationName(ctx), input: in.Parameters, start: time.Now()}
		out, md, err := next.HandleInitialize(ctx, in)
		c.end = time.Now()
		var failed *types.ConditionalCheckFailedException
		if errors.As(err, &failed) {
			c.conditionFailed = true
		}
		if err == nil {
			if cc := consumed(out.Result); cc != nil {
				c.units = deref(cc.CapacityUnits)
				for _, ix := range cc.GlobalSecondaryIndexes {
					c.indexUnits += deref(ix.CapacityUnits)
				}
			}
		}
		if rec != nil {
			rec.add(c)
		}
		return out, md, err
	}
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// askCapacity sets ReturnConsumedCapacity on the inputs of the operations
// the store makes on the measured routes.
func askCapacity(input any) {
	const mode = types.ReturnConsumedCapacityIndexes
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		in.ReturnConsumedCapacity = mode
	case *dynamodb.PutItemInput:
		in.ReturnConsumedCapacity = mode
	case *dynamodb.UpdateItemInput:
		in.ReturnConsumedCapacity = mode
	case *dynamodb.QueryInput:
		in.ReturnConsumedCapacity = mode
	case *dynamodb.DeleteItemInput:
		in.ReturnConsumedCapacity = mode
	}
}

func consumed(output any) *types.ConsumedCapacity {
	switch out := output.(type) {
	case *dynamodb.GetItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.PutItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.UpdateItemOutput:
		return out.ConsumedCapacity
	case *dynamodb.QueryOutput:
		return out.ConsumedCapacity
	case *dynamodb.DeleteItemOutput:
		return out.ConsumedCapacity
	}
	return nil
}

// phases gives each call the number of sequential round trips that
// precede it: a call that starts after another ended depends on it; calls
// that overlap ran in parallel. The largest phase plus one is the number of
// round trips on the request's critical path.
func phases(calls []*call) []int {
	ph := make([]int, len(calls))
	for i, c := range calls {
		for j, d := range calls {
			if j != i && !d.end.After(c.start) && ph[j]+1 > ph[i] {
				ph[i] = ph[j] + 1
			}
		}
	}
	return ph
}
