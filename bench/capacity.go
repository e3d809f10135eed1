package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/waymarkhq/waymark/internal/fakeclock"
)

// usage is what one request consumed.
type usage struct {
	name        string
	reads       float64 // read request units
	writes      float64 // write request units, the table's and its indexes'
	indexWrites float64 // of writes, those of global secondary indexes
	// trips is the sequential DynamoDB round trips on the request's
	// critical path (phases).
	trips int
	// calls lists each DynamoDB call with its units, † marking those
	// computed by AWS's rule rather than read from the local engine.
	calls  []string
	answer map[string]any
}

// measureUsage serves one request on a graph whose probe asks for capacity.
//
// DynamoDB Local reports the capacity of GetItem, PutItem, UpdateItem and
// Query as the service charges it (machine notes), global index writes
// included, with one exception seen here: a Query that finds nothing is
// reported as 0, where AWS's rule for reads is that a read request consumes
// at least one unit of its kind (1 strongly consistent, ½ eventually
// consistent) even when nothing is found; that minimum is applied. The
// engine's transaction figures are wrong, and BatchGetItem's not asked:
// both are priced by AWS's rules (unitsByRule).
func measureUsage(ctx context.Context, g *graph, name string, r request) (usage, error) {
	rec := &recorder{}
	resp, err := g.serve(ctx, r, rec)
	if err != nil {
		return usage{}, fmt.Errorf("%s: %w", name, err)
	}
	u := usage{name: name}
	var dynamoCalls []*call
	for _, c := range rec.snapshot() {
		if c.service != "dynamodb" {
			continue
		}
		dynamoCalls = append(dynamoCalls, c)
		units := c.units
		mark := ""
		if c.conditionFailed {
			units, mark = failedWriteUnits, "‡"
		}
		if rule, ok := unitsByRule(c.input); ok {
			units, mark = rule, "†"
		}
		if read, consistent := readKind(c.input); read {
			if least := minReadUnits(consistent); units < least {
				units, mark = least, "†"
			}
			u.reads += units
		} else {
			u.writes += units
			u.indexWrites += c.indexUnits
		}
		u.calls = append(u.calls, c.op+" "+formatUnits(units)+mark)
	}
	for _, p := range phases(dynamoCalls) {
		u.trips = max(u.trips, p+1)
	}
	if err := json.Unmarshal([]byte(resp.Body), &u.answer); err != nil {
		return usage{}, fmt.Errorf("%s: answer: %w", name, err)
	}
	return u, nil
}

// unitsByRule prices the calls whose units the local engine reports wrong
// or not at all, by AWS's documented rules for items under 1 KB: a
// transaction 2 write units per item (identify changing a user's groups),
// a strongly consistent BatchGetItem 1 read unit per key asked (the
// groups an identify names).
func unitsByRule(input any) (float64, bool) {
	switch in := input.(type) {
	case *dynamodb.TransactWriteItemsInput:
		return 2 * float64(len(in.TransactItems)), true
	case *dynamodb.BatchGetItemInput:
		keys := 0
		for _, k := range in.RequestItems {
			keys += len(k.Keys)
		}
		return float64(keys), true
	}
	return 0, false
}

// failedWriteUnits applies AWS's rule for a conditional write whose
// condition fails, which the local engine does not report: it consumes the
// write units of the existing item's size, at least one. The items it
// meets here (identify's check of a user) are under 1 KB: the same user's
// PutItem reports 1 unit.
const failedWriteUnits = 1

// readKind says whether a DynamoDB input is a read, and a strongly
// consistent one.
func readKind(input any) (read, consistent bool) {
	switch in := input.(type) {
	case *dynamodb.GetItemInput:
		return true, aws.ToBool(in.ConsistentRead)
	case *dynamodb.QueryInput:
		return true, aws.ToBool(in.ConsistentRead)
	case *dynamodb.BatchGetItemInput:
		return true, true
	}
	return false, false
}

func minReadUnits(consistent bool) float64 {
	if consistent {
		return 1
	}
	return 0.5
}

func formatUnits(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// summary renders the units and the calls that consumed them.
func (u usage) summary() string {
	s := fmt.Sprintf("%d round trip(s), %s RRU + %s WRU", u.trips, formatUnits(u.reads), formatUnits(u.writes))
	if u.indexWrites > 0 {
		s += fmt.Sprintf(" (%s for the index)", formatUnits(u.indexWrites))
	}
	return s + ": " + strings.Join(u.calls, " · ")
}

// capacityScenario is a request whose usage is reported, with what it
// needs done before (by the same instance, uncounted) and how far the
// service's clock moves on before it.
type capacityScenario struct {
	name    string
	before  []request
	advance time.Duration
	r       request
}

func capacityScenarios(w workload) []capacityScenario {
	return []capacityScenario{
		{name: "identify, new user", r: w.identify("cap-a@example.com", "pro")},
		// A page load: the day's visit is already recorded (dynamo.VisitResolution).
		{name: "identify, returning, unchanged, the day already recorded", r: w.identify("cap-a@example.com", "pro")},
		// After the clock's jump the instance reads the workspace again (its
		// secrets are cached for a while, not a day): the warm-up does that
		// uncounted, as it happens once per instance, not per request.
		{name: "identify, returning, unchanged, the day's first visit", advance: 24 * time.Hour, before: []request{w.identify("cap-warm@example.com", "pro")}, r: w.identify("cap-a@example.com", "pro")},
		{name: "identify, returning, props changed", r: w.identify("cap-a@example.com", "enterprise")},
		{name: "identify with a group, new user", r: w.identifyGroup("cap-g@example.com", "cap-acme", "pro")},
		{name: "identify with a group, returning, user and group unchanged, the day already recorded", r: w.identifyGroup("cap-g@example.com", "cap-acme", "pro")},
		{name: "identify with a group, returning, user and group unchanged, the day's first visit", advance: 24 * time.Hour, before: []request{w.identify("cap-warm@example.com", "pro")}, r: w.identifyGroup("cap-g@example.com", "cap-acme", "pro")},
		{name: "identify with a group, group props changed", r: w.identifyGroup("cap-g@example.com", "cap-acme", "enterprise")},
		{name: "identify with a group, moved to another group", r: w.identifyGroup("cap-g@example.com", "cap-initech", "enterprise")},
		{name: "events, 1 event", r: w.event1("cap-a@example.com", "cap-one", 1)},
		{name: "events, 25 events over 5 content items", before: []request{w.identify("cap-b@example.com", "pro")}, r: w.events("cap-b@example.com", "cap-batch", 25, 5)},
		{name: "events, the same 25 events again (a retry)", r: w.events("cap-b@example.com", "cap-batch", 25, 5)},
		{name: "events, 25 events over 5 content items that remember 400 events each", before: heavy(w, "cap-d@example.com"), r: w.events("cap-d@example.com", "cap-heavy", 25, 5)},
		{name: "events, 1 event on a content item that remembers 400 events", r: w.event1("cap-d@example.com", "cap-heavy-one", 1)},
		{name: "state, user with 20 content items", before: []request{w.identify("cap-c@example.com", "pro"), w.events("cap-c@example.com", "cap-twenty", 20, 20)}, r: w.state("cap-c@example.com")},
		{name: "feedback", r: w.feedback("cap-a@example.com")},
	}
}

// heavy makes a user whose five content items each remember 400 events (80
// batches of 25), as a hint shown on every page view of a busy user does
// within the idempotency window: each remembered event takes 12 bytes of
// the item.
func heavy(w workload, username string) []request {
	reqs := []request{w.identify(username, "pro")}
	for b := range 80 {
		reqs = append(reqs, w.events(username, fmt.Sprintf("cap-heavy-%d", b), 25, 5))
	}
	return reqs
}

// capacity measures every scenario on one warm instance.
func capacity(ctx context.Context, g *graph, w workload, clock *fakeclock.Clock) ([]usage, error) {
	// Warm: the workspace is read and its secrets unwrapped once per
	// instance, and its sealing key found or published once per 10
	// minutes, not per request.
	if _, err := g.serve(ctx, w.identify("cap-warm@example.com", "pro"), nil); err != nil {
		return nil, err
	}
	var out []usage
	for _, sc := range capacityScenarios(w) {
		clock.Advance(sc.advance)
		for _, r := range sc.before {
			if _, err := g.serve(ctx, r, nil); err != nil {
				return nil, err
			}
		}
		u, err := measureUsage(ctx, g, sc.name, sc.r)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}
