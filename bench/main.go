// Command bench measures what a Waymark request costs, against the bare
// DynamoDB calls it makes, in one run on one machine (`make bench`): handler
// latency over its floor, CPU and allocations without I/O, capacity units,
// KMS calls per 10 000 writes, DynamoDB round trips, cold start against a
// hello-world Lambda, binary sizes, the local gateway's throughput and
// parallel writers on one content item. It
// starts its own DynamoDB Local and local-kms, prints one table and writes
// it, with the machine, Go version and date, to bench/results.md.
//
// The parts run one after the other, never side by side, and everything
// that compiles is built first: the machine is small and noisy, so each
// comparison is made within one part, as a ratio.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/waymark"
)

func main() {
	out := flag.String("out", "bench/results.md", "file the results are written to")
	requests := flag.Int("requests", 2000, "requests per route for handler over floor")
	writes := flag.Int("writes", 10000, "writes for the KMS count")
	rounds := flag.Int("rounds", 10, "cold starts of each function")
	load := flag.Duration("load", 20*time.Second, "duration of the throughput run")
	analyticsOnly := flag.Bool("analytics-only", false, "measure only the content analytics (printed, not written)")
	importUsers := flag.Int("import-users", 10000, "users of the bulk import's run")
	webhookOnly := flag.Bool("webhook-only", false, "measure only the webhook delivery latency and print it")
	flag.Parse()
	cfg := runConfig{out: *out, requests: *requests, writes: *writes, rounds: *rounds, load: *load, importUsers: *importUsers, analyticsOnly: *analyticsOnly}
	if *webhookOnly {
		if err := runWebhookOnly(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type runConfig struct {
	out      string
	requests int
	writes   int
	rounds   int
	load     time.Duration
	// importUsers is the size of the bulk import's run.
	importUsers int
	// analyticsOnly runs only the content analytics part.
	analyticsOnly bool
}

// benchWorkspace is the workspace every request names: no identity
// verification, no origin list, no retention, as a workspace starts.
const benchWorkspace = "bench"

// Sizes of the runs.
const (
	warmupRequests = 200 // per route, before handler over floor is measured
	poolUsers      = 100 // users each route's requests cycle through
	kmsUsers       = 300 // users the KMS count's writes cycle through
	loadClients    = 16
)

func run(rc runConfig) error {
	began := time.Now()
	ctx := context.Background()
	progress := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "bench %5.1fs  %s\n", time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}

	// Builds and engines first, side by side: nothing is measured yet.
	dir, err := os.MkdirTemp("", "waymark-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var (
		bins              builds
		stack             *localstack.Stack
		buildErr, stackEr error
		wg                sync.WaitGroup
	)
	startCtx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()
	if !rc.analyticsOnly {
		wg.Go(func() { bins, buildErr = buildAll(startCtx, dir) })
	}
	wg.Go(func() { stack, stackEr = localstack.Start(startCtx, localstack.Options{TablePrefix: "bench-"}) })
	wg.Wait()
	if stack != nil {
		defer stack.Stop()
	}
	if err := errors.Join(buildErr, stackEr); err != nil {
		return err
	}
	progress("built the functions; DynamoDB Local and local-kms are up")

	cfg := stack.Config()
	// The workspace is created by the CLI, and other is another instance
	// that writes the users the measured instances find, as the rest of a
	// fleet would: each seals under data keys of its own.
	cli, err := newGraph(ctx, cfg, graphOptions{})
	if err != nil {
		return err
	}
	other, err := newGraph(ctx, cfg, graphOptions{})
	if err != nil {
		return err
	}
	ws, serverKey, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Code: benchWorkspace, Name: "Bench"}, time.Now())
	if err != nil {
		return err
	}
	if err := cli.store.PutWorkspace(ctx, ws); err != nil {
		return err
	}
	w := workload{workspace: benchWorkspace}
	res := &results{began: began}
	// The content analytics come first: their aggregator counts every
	// record of the ContentState stream, and after the other parts the
	// stream still holds thousands of theirs (a run that measured them last
	// counted 15 801 records for 1 400 events).
	analyticsFig, err := analyticsCosts(ctx, cfg, w)
	if err != nil {
		return err
	}
	progress("content analytics")
	if rc.analyticsOnly {
		fmt.Println(analyticsFig.render())
		return nil
	}

	clock := fakeclock.New(time.Now())
	capGraph, err := newGraph(ctx, cfg, graphOptions{capacity: true, now: clock.Now})
	if err != nil {
		return err
	}
	if res.usage, err = capacity(ctx, capGraph, w, clock); err != nil {
		return err
	}
	progress("capacity units and round trips")

	if res.cpu, err = cpuBenchmarks(ctx, cfg, other, w); err != nil {
		return err
	}
	progress("in-process benchmarks")

	if res.latency, err = handlerOverFloor(ctx, cfg, ws, w, rc.requests, progress); err != nil {
		return err
	}

	kmsUsersList := make([]string, kmsUsers)
	for i := range kmsUsersList {
		kmsUsersList[i] = fmt.Sprintf("kms-%03d@example.com", i)
	}
	if err := forEach(len(kmsUsersList), 8, func(i int) error {
		_, err := other.serve(ctx, w.identify(kmsUsersList[i], "pro"), nil)
		return err
	}); err != nil {
		return err
	}
	kmsGraph, err := newGraph(ctx, cfg, graphOptions{})
	if err != nil {
		return err
	}
	if res.kms, err = kmsPerWrites(ctx, kmsGraph, w, kmsUsersList, rc.writes); err != nil {
		return err
	}
	progress("KMS calls over %d writes", rc.writes)

	if res.bulk, err = importThroughput(ctx, cfg, cli, dir, rc.importUsers); err != nil {
		return err
	}
	progress("bulk import of %d users", rc.importUsers)

	first := map[string][]byte{}
	const coldUser = "cold@example.com"
	if _, err := other.serve(ctx, w.identify(coldUser, "pro"), nil); err != nil {
		return err
	}
	for name, r := range map[string]request{
		"hello": w.state(coldUser), "identify": w.identify(coldUser, "pro"), "events": w.event1(coldUser, "cold", 2),
		"state": w.state(coldUser), "feedback": w.feedback(coldUser), "server": w.serverIdentify(coldUser, serverKey),
		"snippet": w.script(),
	} {
		if first[name], err = eventJSON(r); err != nil {
			return err
		}
	}
	if res.cold, err = coldStarts(ctx, bins, cfg, first, rc.rounds); err != nil {
		return err
	}
	res.sizes = bins.arm64
	progress("cold starts")

	loadGraph, err := newGraph(ctx, cfg, graphOptions{})
	if err != nil {
		return err
	}
	if res.load, err = throughput(ctx, loadGraph, w, loadClients, rc.load); err != nil {
		return err
	}
	progress("gateway throughput")

	// Last: the contended item's writes load the engine more than the
	// other parts do.
	contGraph, err := newGraph(ctx, cfg, graphOptions{capacity: true})
	if err != nil {
		return err
	}
	for _, writers := range contentionWriters {
		c, err := contention(ctx, contGraph, w, writers)
		if err != nil {
			return err
		}
		res.contention = append(res.contention, c)
		progress("contention: %d writers on one content item", writers)
	}
	if res.adds, err = addContention(ctx, contGraph, w); err != nil {
		return err
	}
	progress("contention: %d writers of $add on one user", addWriters)

	if res.webhook, err = webhookLatency(ctx, cfg, webhookDeliveries); err != nil {
		return err
	}
	progress("webhook delivery latency")

	res.elapsed = time.Since(began)
	table := res.render() + analyticsFig.render()
	fmt.Println(table)
	if err := os.WriteFile(rc.out, []byte(table), 0o644); err != nil {
		return err
	}
	progress("written to %s", rc.out)
	return nil
}
