package analytics_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/aws/smithy-go/middleware"

	"github.com/waymarkhq/waymark/internal/analytics"
	"github.com/waymarkhq/waymark/internal/awscalls"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/faultinject"
	"github.com/waymarkhq/waymark/internal/localstack"
	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

var (
	stack *localstack.Stack
	// recorder records the aggregator's AWS calls for make iam-check
	// (infra/stack/calls_test.go), as the analytics function's.
	recorder *awscalls.Recorder
)

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var err error
	stack, err = localstack.Start(ctx, localstack.Options{TablePrefix: "an-"})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "start local stack:", err)
		os.Exit(1)
	}
	recorder = awscalls.New(stack.Tables)
	code := m.Run()
	stack.Stop()
	if path := os.Getenv(awscalls.RecordEnv); path != "" && code == 0 {
		path = awscalls.SuitePath(path, routes.Analytics.Name)
		if err := recorder.WriteFile(path); err != nil {
			fmt.Fprintln(os.Stderr, "recorded calls:", err)
			os.Exit(1)
		}
		fmt.Printf("recorded %d distinct AWS authorization requests into %s\n", len(recorder.Calls()), path)
	}
	os.Exit(code)
}

// faultyStore wires a store whose DynamoDB traffic goes through faults.
func faultyStore(t testing.TB, faults *faultinject.Transport) (*dynamo.Store, *dynamodb.Client) {
	t.Helper()
	return storeOf(t, stack.Config(), faults)
}

// aggregatorStore is faultyStore for the aggregator: its calls are recorded
// as the analytics function's.
func aggregatorStore(t testing.TB, faults *faultinject.Transport) (*dynamo.Store, *dynamodb.Client) {
	t.Helper()
	cfg := stack.Config()
	cfg.AWS = &aws.Config{
		Region:      stack.Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
		APIOptions:  []func(*middleware.Stack) error{recorder.RegisterFor(routes.Analytics.Name)},
	}
	return storeOf(t, cfg, faults)
}

func storeOf(t testing.TB, cfg config.Config, faults *faultinject.Transport) (*dynamo.Store, *dynamodb.Client) {
	t.Helper()
	db, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if faults != nil {
		db = dynamodb.New(db.Options(), func(o *dynamodb.Options) {
			o.HTTPClient = faults
			o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, 20*time.Millisecond)
		})
	}
	store, _ := wiring.SealedStore(db, kmsClient, cfg)
	return store, db
}

func newWorkspace(t testing.TB, store *dynamo.Store) *waymark.Workspace {
	t.Helper()
	ws, _, err := waymark.NewWorkspace(waymark.NewWorkspaceOptions{Name: "analytics"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	return ws
}

// startPoller runs the aggregator over the ContentState stream until the
// test ends.
func startPoller(t testing.TB, store *dynamo.Store) *analytics.Poller {
	t.Helper()
	cfg := stack.Config()
	streams, err := cfg.StreamsClient(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	p := analytics.NewPoller(streams, analytics.New(store, wiring.Logger(io.Discard, "info")), cfg.Tables["ContentState"], wiring.Logger(os.Stderr, "info"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

// simContent is what the simulation sends: every kind, steps, items,
// numeric (NPS) and mixed survey answers.
var simContent = []struct {
	kind    waymark.Kind
	id      string
	steps   []string
	items   []string
	answers []any
}{
	{kind: waymark.KindTour, id: "welcome", steps: []string{"intro", "menu", "search", "done"}},
	{kind: waymark.KindTour, id: "billing"},
	{kind: waymark.KindHint, id: "search-hint"},
	{kind: waymark.KindAnnouncement, id: "release-2"},
	{kind: waymark.KindChecklist, id: "setup", items: []string{"profile", "invite", "connect"}},
	{kind: waymark.KindSurvey, id: "nps", answers: []any{0.0, 3.0, 6.0, 7.0, 8.0, 9.0, 10.0}},
	{kind: waymark.KindSurvey, id: "choice", answers: []any{"yes", "no", true, 2.5, "I would rather not say, thanks"}},
}

type sentEvent struct {
	user string
	ev   waymark.EventInput
}

// randomEvents makes a user's events: a seeded mix of every action of
// every kind, at random times over the last hour.
func randomEvents(rnd *rand.Rand, user string, seq *int, base time.Time) []waymark.EventInput {
	var out []waymark.EventInput
	for _, c := range simContent {
		if rnd.IntN(4) == 0 {
			continue
		}
		actions := map[waymark.Kind][]string{
			waymark.KindTour:         {"started", "advanced", "advanced", "finished", "skipped"},
			waymark.KindHint:         {"displayed", "displayed", "dismissed"},
			waymark.KindAnnouncement: {"displayed", "read"},
			waymark.KindChecklist:    {"item_completed", "item_completed", "completed", "dismissed"},
			waymark.KindSurvey:       {"displayed", "answered", "answered", "dismissed"},
		}[c.kind]
		if c.kind == waymark.KindTour && len(c.steps) == 0 {
			actions = []string{"started", "finished", "skipped"}
		}
		for n := 1 + rnd.IntN(5); n > 0; n-- {
			*seq++
			ev := waymark.EventInput{
				ID: fmt.Sprintf("ev-%s-%d", user, *seq), Content: string(c.kind), ContentID: c.id,
				Action: actions[rnd.IntN(len(actions))],
				At:     base.Add(time.Duration(rnd.IntN(3600)) * time.Second).Format(time.RFC3339),
			}
			switch {
			case c.kind == waymark.KindTour && len(c.steps) > 0 && ev.Action != "skipped":
				ev.Step = c.steps[rnd.IntN(len(c.steps))]
			case ev.Action == "item_completed":
				ev.Item = c.items[rnd.IntN(len(c.items))]
			case ev.Action == "answered":
				ev.Answer = c.answers[rnd.IntN(len(c.answers))]
			}
			out = append(out, ev)
		}
	}
	return out
}

// expected computes the aggregates from the events sent, independently of
// the state machinery: distinct users per action, step and item; distinct
// displayed events; each user's latest answer (by time, then id).
func expected(sent []sentEvent) map[waymark.ContentKey]*waymark.ContentAnalytics {
	type latest struct {
		at     string
		id     string
		answer any
	}
	users := map[waymark.ContentKey]map[string]map[string]bool{} // content -> counter -> users
	displays := map[waymark.ContentKey]map[string]bool{}
	answers := map[waymark.ContentKey]map[string]latest{}
	add := func(k waymark.ContentKey, counter, user string) {
		if users[k] == nil {
			users[k] = map[string]map[string]bool{}
		}
		if users[k][counter] == nil {
			users[k][counter] = map[string]bool{}
		}
		users[k][counter][user] = true
	}
	for _, s := range sent {
		k := waymark.ContentKey{Kind: waymark.Kind(s.ev.Content), ID: s.ev.ContentID}
		add(k, s.ev.Action, s.user)
		if s.ev.Step != "" {
			add(k, "step:"+s.ev.Step, s.user)
		}
		if s.ev.Item != "" {
			add(k, "item:"+s.ev.Item, s.user)
		}
		if s.ev.Action == "displayed" {
			if displays[k] == nil {
				displays[k] = map[string]bool{}
			}
			displays[k][s.ev.ID] = true
		}
		if s.ev.Action == "answered" {
			if answers[k] == nil {
				answers[k] = map[string]latest{}
			}
			at, _ := time.Parse(time.RFC3339, s.ev.At)
			cur, ok := answers[k][s.user]
			curAt, _ := time.Parse(time.RFC3339, cur.at)
			if !ok || at.After(curAt) || at.Equal(curAt) && s.ev.ID > cur.id {
				answers[k][s.user] = latest{at: s.ev.At, id: s.ev.ID, answer: s.ev.Answer}
			}
		}
	}
	out := map[waymark.ContentKey]*waymark.ContentAnalytics{}
	for k, counters := range users {
		totals := waymark.Counts{}
		for counter, us := range counters {
			if counter != "advanced" {
				totals[counter] = int64(len(us))
			}
		}
		if k.Kind == waymark.KindHint || k.Kind == waymark.KindAnnouncement {
			totals["displays"] = int64(len(displays[k]))
		}
		for _, l := range answers[k] {
			// Independent of waymark.AnswerKey: the simulation's
			// countable answers are its numbers, booleans and one-word
			// strings; the sentence is free text.
			switch v := l.answer.(type) {
			case float64:
				totals[fmt.Sprintf("answer:%v", v)]++
			case bool:
				totals[fmt.Sprintf("answer:%v", v)]++
			case string:
				if !strings.Contains(v, " ") {
					totals["answer:"+v]++
				}
			}
		}
		out[k] = waymark.NewContentAnalytics(k, totals, nil, time.Time{}, time.Time{})
	}
	return out
}

func observed(ctx context.Context, store *dynamo.Store, ws string) (map[waymark.ContentKey]*waymark.ContentAnalytics, error) {
	counters, err := store.WorkspaceCounters(ctx, ws)
	if err != nil {
		return nil, err
	}
	out := map[waymark.ContentKey]*waymark.ContentAnalytics{}
	for k, c := range counters {
		out[k] = waymark.NewContentAnalytics(k, c, nil, time.Time{}, time.Time{})
	}
	return out, nil
}

// send records a batch through the service, as the snippet does: a failed
// call (503, 429) is sent again, same ids, until it is answered.
func send(svc *service.Service, ws *waymark.Workspace, user string, batch []waymark.EventInput) error {
	for attempt := 0; ; attempt++ {
		_, err := svc.RecordEvents(context.Background(), service.Call{RequestID: fmt.Sprintf("sim-%s-%d", user, attempt)},
			&waymark.EventsRequest{Workspace: ws.Code, Username: user, Events: batch})
		var werr *waymark.Error
		if err == nil || !errors.As(err, &werr) || werr.Code != waymark.EUnavailable && werr.Code != waymark.EThrottled || attempt > 50 {
			return err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSimulationMatchesEventsExactly sends a seeded random mix of users'
// events (duplicates, out of order, an erasure; users in parallel, each
// user's batches one after the other: concurrent batches of one user lost
// events in the users' own states here, see the report of issue 14) through a service and an aggregator whose DynamoDB loses answers
// and throttles, and checks every aggregate against what the events say.
func TestSimulationMatchesEventsExactly(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rnd := rand.New(rand.NewPCG(seed, 14))
	eventFaults := &faultinject.Transport{Drop: 0.1, Throttle: 0.1, Rand: rand.New(rand.NewPCG(seed, 1))}
	aggFaults := &faultinject.Transport{Drop: 0.2, Throttle: 0.3, Rand: rand.New(rand.NewPCG(seed, 2))}
	eventStore, _ := faultyStore(t, eventFaults)
	aggStore, _ := aggregatorStore(t, aggFaults)
	cleanStore, _ := faultyStore(t, nil)
	ws := newWorkspace(t, cleanStore)
	svc := service.New(eventStore, service.Options{})
	poller := startPoller(t, aggStore)

	base := time.Now().Add(-2 * time.Hour).UTC()
	var sent []sentEvent
	var batches [][]waymark.EventInput
	var owners []string
	seq := 0
	for u := 0; u < 30; u++ {
		user := fmt.Sprintf("sim-user-%03d@example.com", u)
		evs := randomEvents(rnd, user, &seq, base)
		for _, ev := range evs {
			sent = append(sent, sentEvent{user: user, ev: ev})
		}
		// Duplicates: a third of the events are sent twice.
		for _, ev := range evs {
			if rnd.IntN(3) == 0 {
				evs = append(evs, ev)
			}
		}
		// Out of order: shuffled, then cut into batches of 1–25.
		rnd.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
		for len(evs) > 0 {
			n := min(len(evs), 1+rnd.IntN(25))
			batches = append(batches, evs[:n])
			owners = append(owners, user)
			evs = evs[n:]
		}
	}
	// Batches go out four users at a time, each user's batches in order.
	byUser := map[string][]int{}
	for _, i := range rnd.Perm(len(batches)) {
		byUser[owners[i]] = append(byUser[owners[i]], i)
	}
	var wg sync.WaitGroup
	work := make(chan []int)
	errs := make(chan error, len(batches))
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for list := range work {
				for _, i := range list {
					if err := send(svc, ws, owners[i], batches[i]); err != nil {
						errs <- fmt.Errorf("events for %s: %w", owners[i], err)
					}
				}
			}
		}()
	}
	for _, list := range byUser {
		work <- list
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Which side is off: the users' states (the events path) or the
	// aggregates?
	fromState := map[waymark.ContentKey]waymark.Counts{}
	for u := 0; u < 30; u++ {
		items, err := cleanStore.LoadState(context.Background(), ws.UserKey(fmt.Sprintf("sim-user-%03d@example.com", u)), true)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range items {
			if fromState[c.Key] == nil {
				fromState[c.Key] = waymark.Counts{}
			}
			fromState[c.Key].Add(waymark.Transition(nil, c, "", ""))
		}
	}
	// An erased user's contributions stay.
	if _, err := svc.EraseOf(context.Background(), ws, &service.EraseRequest{Usernames: []string{"sim-user-000@example.com"}}); err != nil {
		t.Fatal(err)
	}

	want := expected(sent)
	var got map[waymark.ContentKey]*waymark.ContentAnalytics
	deadline := time.Now().Add(90 * time.Second)
	for {
		var err error
		got, err = observed(context.Background(), cleanStore, ws.Code)
		if err != nil {
			t.Fatal(err)
		}
		if reflect.DeepEqual(got, want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%d events (%d batches), faults: events path %d dropped %d throttled, aggregator %d dropped %d throttled, %d batches delivered again",
		len(sent), len(batches), eventFaults.Dropped.Load(), eventFaults.Throttled.Load(),
		aggFaults.Dropped.Load(), aggFaults.Throttled.Load(), poller.Failures())
	if !reflect.DeepEqual(got, want) {
		for k, w := range want {
			if !reflect.DeepEqual(got[k], w) {
				t.Errorf("%v:\n got  %+v\n want %+v", k, got[k], w)
			}
		}
		t.Logf("from the users' states before the erasure: %v", fromState)
		t.Fatalf("aggregates differ from the events sent")
	}
	if aggFaults.Dropped.Load() == 0 || aggFaults.Throttled.Load() == 0 {
		t.Fatal("the aggregator met no fault: the simulation proved nothing about exactness")
	}
	// The per-day counters add up to the totals.
	for k := range want {
		today := time.Now().UTC()
		totals, days, err := cleanStore.ContentCounters(context.Background(), ws.Code, k, base.Format(waymark.DateLayout), today.Format(waymark.DateLayout))
		if err != nil {
			t.Fatal(err)
		}
		sum := waymark.Counts{}
		for _, d := range days {
			sum.Add(d.Counts)
		}
		if !reflect.DeepEqual(sum, totals) {
			t.Errorf("%v: days add up to %v, totals are %v", k, sum, totals)
		}
	}
	scanAnalyticsForPersonalData(t, sent)
}

// scanAnalyticsForPersonalData dumps the Analytics table and fails on any
// username or free-text answer sent.
func scanAnalyticsForPersonalData(t *testing.T, sent []sentEvent) {
	t.Helper()
	db, _, err := stack.Config().Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out, err := db.Scan(context.Background(), &dynamodb.ScanInput{TableName: aws.String(stack.Config().Tables["Analytics"])})
	if err != nil {
		t.Fatal(err)
	}
	var dump strings.Builder
	for _, it := range out.Items {
		dumpItem(&dump, it)
	}
	for _, s := range sent {
		for _, personal := range []string{s.user, fmt.Sprint(s.ev.Answer)} {
			if strings.Contains(personal, "@") || strings.Contains(personal, " ") {
				if strings.Contains(dump.String(), personal) {
					t.Errorf("personal value %q in the Analytics table", personal)
				}
			}
		}
	}
	if len(out.Items) == 0 {
		t.Fatal("nothing to scan")
	}
}

func dumpItem(w *strings.Builder, item map[string]types.AttributeValue) {
	for k, v := range item {
		w.WriteString(k + "=")
		switch v := v.(type) {
		case *types.AttributeValueMemberS:
			w.WriteString(v.Value)
		case *types.AttributeValueMemberM:
			dumpItem(w, v.Value)
		}
		w.WriteByte('\n')
	}
}
