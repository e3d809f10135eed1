package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/analytics"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// analyticsFigures are the content analytics' costs: the aggregator's
// write units per event and per state transition over a realistic mix, the
// read units of a 90-day report, the hottest counter item's share of the
// writes, and how soon an event shows in the counters.
type analyticsFigures struct {
	events, transitions   int64
	writeUnits, readUnits float64
	hottestWrites, writes int
	reportUnits           float64
	freshness             []time.Duration
}

const (
	analyticsUsers   = 40 // each: one 25-event batch, then single-event pages
	analyticsPages   = 10
	freshnessSamples = 100
)

// analyticsCosts runs the aggregator over DynamoDB Local's stream (as `waymark
// dev` does) while the events route takes the mix, recording the
// aggregator's calls with their capacity.
func analyticsCosts(ctx context.Context, cfg config.Config, w workload) (analyticsFigures, error) {
	var fig analyticsFigures
	events, err := newGraph(ctx, cfg, graphOptions{})
	if err != nil {
		return fig, err
	}
	agg, err := newGraph(ctx, cfg, graphOptions{capacity: true})
	if err != nil {
		return fig, err
	}
	streams, err := cfg.StreamsClient(context.Background())
	if err != nil {
		return fig, err
	}
	quiet := wiring.Logger(io.Discard, "info")
	poller := analytics.NewPoller(streams, analytics.New(agg.store, quiet), cfg.Tables[schema.ContentStateTable], quiet)
	rec := &recorder{}
	pollCtx, stop := context.WithCancel(withRecorder(ctx, rec))
	done := make(chan struct{})
	go func() { defer close(done); _ = poller.Run(pollCtx) }()
	defer func() { stop(); <-done }()
	// What earlier parts wrote is aggregated first, then forgotten.
	settle := func() {
		for last := int64(-1); last != poller.Processed(); {
			last = poller.Processed()
			time.Sleep(1500 * time.Millisecond)
		}
	}
	settle()
	before, startCalls := poller.Processed(), len(rec.snapshot())

	for u := range analyticsUsers {
		user := fmt.Sprintf("an-%03d@example.com", u)
		if _, err := events.serve(ctx, w.events(user, "an-batch", 25, 5), nil); err != nil {
			return fig, err
		}
		fig.events += 25
		for p := range analyticsPages {
			if _, err := events.serve(ctx, w.event1(user, fmt.Sprintf("an-page-%d", p), p%5), nil); err != nil {
				return fig, err
			}
			fig.events++
		}
	}
	settle()
	fig.transitions = poller.Processed() - before
	perItem := map[string]int{}
	for _, c := range rec.snapshot()[startCalls:] {
		switch in := c.input.(type) {
		case *dynamodb.UpdateItemInput:
			fig.writeUnits += c.units
			fig.writes++
			pk, _ := in.Key["pk"].(*types.AttributeValueMemberS)
			sk, _ := in.Key["sk"].(*types.AttributeValueMemberS)
			if pk != nil && sk != nil {
				perItem[pk.Value+"|"+sk.Value]++
			}
		case *dynamodb.PutItemInput:
			fig.writeUnits += c.units
			fig.writes++
		default:
			fig.readUnits += c.units
		}
	}
	for _, n := range perItem {
		fig.hottestWrites = max(fig.hottestWrites, n)
	}

	// Freshness: a new user's first event (a tour step), from its 200 to
	// the counters showing one more user at that step.
	for i := range freshnessSamples {
		user := fmt.Sprintf("fresh-%03d@example.com", i)
		key := waymark.ContentKey{Kind: waymark.KindTour, ID: "tour-0"}
		seen := func() (int64, error) {
			all, err := agg.store.WorkspaceCounters(ctx, w.workspace)
			return all[key]["step:card-2"], err
		}
		n0, err := seen()
		if err != nil {
			return fig, err
		}
		if _, err := events.serve(ctx, w.event1(user, "fresh", 0), nil); err != nil {
			return fig, err
		}
		sent := time.Now()
		for {
			n, err := seen()
			if err != nil {
				return fig, err
			}
			if n > n0 {
				break
			}
			if time.Since(sent) > 30*time.Second {
				return fig, fmt.Errorf("analytics: an event did not show within 30 s")
			}
			time.Sleep(5 * time.Millisecond)
		}
		fig.freshness = append(fig.freshness, time.Since(sent))
	}

	// A 90-day report of a tour with six steps, every day counted.
	report := waymark.ContentKey{Kind: waymark.KindTour, ID: "report-90"}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	counts := waymark.Counts{"started": 40, "finished": 25, "skipped": 5}
	for s := range 6 {
		counts[fmt.Sprintf("step:step-%d", s)] = int64(40 - 3*s)
	}
	for d := range 90 {
		day := today.AddDate(0, 0, -d)
		for _, k := range []dynamo.CounterKey{{Workspace: w.workspace, Content: report}, {Workspace: w.workspace, Content: report, Date: day.Format(waymark.DateLayout)}} {
			if err := agg.store.AddCounts(ctx, "bench-shard", k, []dynamo.Contribution{{Seq: fmt.Sprint(1000 + 90 - d), Counts: counts}}, time.Now()); err != nil {
				return fig, err
			}
		}
	}
	readRec := &recorder{}
	if _, _, err := agg.store.ContentCounters(withRecorder(ctx, readRec), w.workspace, report,
		today.AddDate(0, 0, -89).Format(waymark.DateLayout), today.Format(waymark.DateLayout)); err != nil {
		return fig, err
	}
	for _, c := range readRec.snapshot() {
		fig.reportUnits += c.units
	}
	return fig, nil
}

func (f analyticsFigures) render() string {
	var b strings.Builder
	d := slices.Clone(f.freshness)
	slices.Sort(d)
	pct := func(p float64) time.Duration {
		if len(d) == 0 {
			return 0
		}
		return d[min(len(d)-1, int(p*float64(len(d))))]
	}
	fmt.Fprintf(&b, "\n## Content analytics\n\n")
	fmt.Fprintf(&b, "Mix: %d users, each one 25-event batch then %d single-event pages (%d events, %d state transitions); the aggregator over DynamoDB Local's stream.\n\n",
		analyticsUsers, analyticsPages, f.events, f.transitions)
	fmt.Fprintf(&b, "| figure | value |\n|---|---|\n")
	fmt.Fprintf(&b, "| aggregator write units | %.0f (%d writes) |\n", f.writeUnits, f.writes)
	fmt.Fprintf(&b, "| extra WRU per state transition | %.3f (target ≤ 1) |\n", f.writeUnits/float64(max(f.transitions, 1)))
	fmt.Fprintf(&b, "| extra WRU per event | %.3f |\n", f.writeUnits/float64(max(f.events, 1)))
	fmt.Fprintf(&b, "| aggregator read units (retried batches only) | %.1f |\n", f.readUnits)
	fmt.Fprintf(&b, "| writes to the hottest counter item | %d of %d |\n", f.hottestWrites, f.writes)
	fmt.Fprintf(&b, "| RRU of a 90-day report of one tour | %.1f (target ≤ 10) |\n", f.reportUnits)
	fmt.Fprintf(&b, "| freshness, event's 200 to the counters, p50 / p99 (%d samples) | %s / %s |\n",
		len(d), pct(0.5).Round(time.Millisecond), pct(0.99).Round(time.Millisecond))
	return b.String()
}
