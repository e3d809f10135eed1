package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// The floor of a request is the DynamoDB work it must do: the same calls,
// on the same items, in the same order and with the same parallelism, made
// with the SDK directly, without validation, crypto or JSON.
//
// It is taken from the handler itself: the probe captures the inputs of
// every DynamoDB call a handler request makes, and the floor makes those
// calls again on a shadow user, whose items have gone through exactly the
// same writes as the measured user's (every request of the setup and of
// the run is replayed on it too). So the conditional writes the handler
// made (attribute_not_exists, v = :expected) hold for the floor as well,
// and both read and write items of the same sizes.

// floorRequest is a captured handler request made ready to be replayed:
// its calls, grouped by phase (calls of one phase run in parallel, phases
// run one after the other).
type floorRequest struct {
	levels [][]func(context.Context) error
	calls  int
}

// newFloorRequest prepares the replay of a request's DynamoDB calls with
// the user's key swapped for its shadow's.
func newFloorRequest(db *dynamodb.Client, calls []*call, userKey, shadowKey string) (*floorRequest, error) {
	var dyn []*call
	for _, c := range calls {
		if c.service == "dynamodb" {
			dyn = append(dyn, c)
		}
	}
	ph := phases(dyn)
	fr := &floorRequest{calls: len(dyn)}
	if len(dyn) > 0 {
		fr.levels = make([][]func(context.Context) error, slices.Max(ph)+1)
	}
	for i, c := range dyn {
		fn, err := replayCall(db, c, userKey, shadowKey)
		if err != nil {
			return nil, err
		}
		if c.conditionFailed {
			fn = expectConditionFailure(c.op, fn)
		}
		fr.levels[ph[i]] = append(fr.levels[ph[i]], fn)
	}
	return fr, nil
}

// expectConditionFailure replays a conditional write whose condition failed
// for the handler: it must fail the same way for the shadow, or the two
// users' items have parted.
func expectConditionFailure(op string, fn func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := fn(ctx)
		var failed *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &failed):
			return nil
		case err == nil:
			return fmt.Errorf("floor: %s succeeded on the shadow user where the handler's condition failed", op)
		}
		return err
	}
}

// run makes the calls and returns how long they took.
func (fr *floorRequest) run(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	for _, level := range fr.levels {
		if len(level) == 1 {
			if err := level[0](ctx); err != nil {
				return 0, err
			}
			continue
		}
		errs := make([]error, len(level))
		var wg sync.WaitGroup
		for i, fn := range level {
			wg.Go(func() { errs[i] = fn(ctx) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// replayCall copies a captured input, with the user's key swapped for the
// shadow's wherever it appears as a value, into a call of the same
// operation.
func replayCall(db *dynamodb.Client, c *call, userKey, shadowKey string) (func(context.Context) error, error) {
	swap := func(m map[string]types.AttributeValue) map[string]types.AttributeValue {
		if m == nil {
			return nil
		}
		out := maps.Clone(m)
		for k, v := range out {
			if s, ok := v.(*types.AttributeValueMemberS); ok && s.Value == userKey {
				out[k] = &types.AttributeValueMemberS{Value: shadowKey}
			}
		}
		return out
	}
	switch in := c.input.(type) {
	case *dynamodb.GetItemInput:
		cp := *in
		cp.Key = swap(in.Key)
		return func(ctx context.Context) error { _, err := db.GetItem(ctx, &cp); return err }, nil
	case *dynamodb.PutItemInput:
		cp := *in
		cp.Item, cp.ExpressionAttributeValues = swap(in.Item), swap(in.ExpressionAttributeValues)
		return func(ctx context.Context) error { _, err := db.PutItem(ctx, &cp); return err }, nil
	case *dynamodb.UpdateItemInput:
		cp := *in
		cp.Key, cp.ExpressionAttributeValues = swap(in.Key), swap(in.ExpressionAttributeValues)
		return func(ctx context.Context) error { _, err := db.UpdateItem(ctx, &cp); return err }, nil
	case *dynamodb.QueryInput:
		cp := *in
		cp.ExpressionAttributeValues = swap(in.ExpressionAttributeValues)
		return func(ctx context.Context) error { _, err := db.Query(ctx, &cp); return err }, nil
	}
	return nil, fmt.Errorf("floor: no replay for %s (%T)", c.op, c.input)
}

// twin runs handler requests and their floors side by side.
type twin struct {
	g  *graph
	ws *waymark.Workspace
}

// shadowOf names the floor's user for a measured user.
func shadowOf(username string) string { return "shadow." + username }

// handle serves a request through the handler and prepares its floor.
func (t *twin) handle(ctx context.Context, r request) (time.Duration, *floorRequest, error) {
	rec := &recorder{}
	start := time.Now()
	_, err := t.g.serve(ctx, r, rec)
	d := time.Since(start)
	if err != nil {
		return 0, nil, err
	}
	fr, err := newFloorRequest(t.g.db, rec.snapshot(), t.ws.UserKey(r.username), t.ws.UserKey(shadowOf(r.username)))
	return d, fr, err
}

// mirror serves requests and replays each on the shadow user at once:
// the setup of both users, untimed.
func (t *twin) mirror(ctx context.Context, reqs ...request) error {
	for _, r := range reqs {
		_, fr, err := t.handle(ctx, r)
		if err != nil {
			return err
		}
		if _, err := fr.run(ctx); err != nil {
			return fmt.Errorf("floor of %s: %w", r.function, err)
		}
	}
	return nil
}

// latency is the outcome of one route's run.
type latency struct {
	handler, floor []time.Duration
	// calls is the DynamoDB calls per request, and trips the sequential
	// round trips on its critical path (both of the last request).
	calls, trips int
}

// compare runs warmup+n requests of next through the handler and their
// floors, interleaved: round i serves request i and replays request i-1, in
// an order drawn at random (seeded, so runs are alike). A fixed alternation
// is not enough: measured here, it lined up with a period-two pattern of the
// local engine and put one arm 20-30 % behind the other in an A/A test,
// where random order kept two replays of the same calls within 2 %. Only
// rounds past the warm-up are kept.
func (t *twin) compare(ctx context.Context, warmup, n int, next func(i int) request) (latency, error) {
	var out latency
	var pending *floorRequest
	rnd := rand.New(rand.NewPCG(7, uint64(n)))
	runFloor := func(i int) error {
		if pending == nil {
			return nil
		}
		d, err := pending.run(ctx)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		if i-1 >= warmup {
			out.floor = append(out.floor, d)
		}
		return nil
	}
	for i := range warmup + n + 1 {
		floorFirst := rnd.IntN(2) == 0
		if floorFirst {
			if err := runFloor(i); err != nil {
				return out, err
			}
		}
		var fr *floorRequest
		if i < warmup+n {
			d, f, err := t.handle(ctx, next(i))
			if err != nil {
				return out, err
			}
			if i >= warmup {
				out.handler = append(out.handler, d)
			}
			fr = f
			out.calls, out.trips = f.calls, len(f.levels)
		}
		if !floorFirst {
			if err := runFloor(i); err != nil {
				return out, err
			}
		}
		pending = fr
	}
	return out, nil
}

// percentile returns the p-th percentile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// routeLatency is one route's handler-over-floor run.
type routeLatency struct {
	name string
	latency
}

// handlerOverFloor measures each public route's handler against its floor
// on one warm instance, n requests each after a warm-up, every request on
// one of poolUsers users set up beforehand (and mirrored on their shadows):
// a returning user's page load (identify, unchanged), one event on one of
// five content items, a state read of 20 content items, a feedback message.
func handlerOverFloor(ctx context.Context, cfg config.Config, ws *waymark.Workspace, w workload, n int, progress func(string, ...any)) ([]routeLatency, error) {
	g, err := newGraph(ctx, cfg, graphOptions{})
	if err != nil {
		return nil, err
	}
	t := &twin{g: g, ws: ws}
	user := func(route string, i int) string { return fmt.Sprintf("lat-%s-%03d@example.com", route, i%poolUsers) }
	if err := forEach(poolUsers, 4, func(i int) error {
		return t.mirror(ctx,
			w.identify(user("identify", i), "pro"),
			w.identify(user("events", i), "pro"), w.events(user("events", i), fmt.Sprintf("lat-setup-%d", i), 5, 5),
			w.identify(user("state", i), "pro"), w.events(user("state", i), fmt.Sprintf("lat-state-%d", i), 20, 20),
			w.identify(user("feedback", i), "pro"))
	}); err != nil {
		return nil, err
	}
	var out []routeLatency
	for _, rt := range []struct {
		name string
		next func(i int) request
	}{
		{"identify", func(i int) request { return w.identify(user("identify", i), "pro") }},
		{"events", func(i int) request {
			return w.event1(user("events", i), fmt.Sprintf("lat-%d", i), i/poolUsers)
		}},
		{"state", func(i int) request { return w.state(user("state", i)) }},
		{"feedback", func(i int) request { return w.feedback(user("feedback", i)) }},
	} {
		l, err := t.compare(ctx, warmupRequests, n, rt.next)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rt.name, err)
		}
		out = append(out, routeLatency{rt.name, l})
		progress("handler over floor: %s", rt.name)
	}
	return out, nil
}
