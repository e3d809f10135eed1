package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/faultinject"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/webhook"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// fastSchedule keeps the real schedule's shape at a pace a test can wait for.
var fastSchedule = webhook.Schedule{First: 5 * time.Millisecond, Max: 40 * time.Millisecond, Window: time.Hour}

// A receiver that refuses the first attempts of every delivery gets every
// feedback exactly once per delivery id, each request signed, while
// DynamoDB throttles requests and drops answers (feedback writes retried by
// the SDK, the deliverer's reads too).
func TestDeliveryRetriedUntilAcceptedUnderDynamoDBFaults(t *testing.T) {
	const refusals = 3
	faults := &faultinject.Transport{Drop: 0.1, Throttle: 0.1, Rand: rand.New(rand.NewPCG(1, 2))}
	e := newEnv(t, faults, time.Now, fastSchedule)
	rcv := newReceiver(t, time.Now, func(_ string, n int) bool { return n <= refusals })
	ws, secret := e.newWorkspace(t, rcv.srv.URL+"/hook", waymark.WebhookJSON)
	rcv.secret = secret
	for i := range 12 {
		e.sendFeedback(t, ws, fmt.Sprintf("retried-user-%02d", i), "the export button does nothing")
	}
	// What must be delivered is every feedback stored: a submission whose
	// answer the faults turned into an error may be stored all the same,
	// and sendFeedback's resend then stores a second one.
	ids := e.storedFeedback(t, ws)
	if len(ids) < 12 {
		t.Fatalf("%d feedback stored, want at least 12", len(ids))
	}
	waitForState(t, 60*time.Second, "every delivery", func() bool { return rcv.acceptedCount() == len(ids) && e.local.Pending() == 0 },
		func() string {
			return fmt.Sprintf("(%d of %d accepted, %d pending)", rcv.acceptedCount(), len(ids), e.local.Pending())
		})
	rcv.checkExactlyOnce(t, ids)
	for _, id := range ids {
		if n := rcv.requests[webhook.DeliveryID(id)]; n != refusals+1 {
			t.Errorf("delivery of %s took %d requests, want %d", id, n, refusals+1)
		}
	}
	if faults.Faults() == 0 {
		t.Fatal("no DynamoDB fault was injected")
	}
	t.Logf("%d DynamoDB faults injected", faults.Faults())
}

// A receiver down for an hour (a fake clock drives the schedule) loses
// nothing: every feedback arrives once it is back, once per delivery id;
// and another workspace's receiver gets its feedback meanwhile, at once.
func TestReceiverDownForAnHourLosesNothing(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
	schedule := webhook.DefaultSchedule
	schedule.Jitter = func() float64 { return 0.5 }
	e := newEnv(t, nil, clock.Now, schedule)
	upAt := clock.Now().Add(time.Hour)
	down := newReceiver(t, clock.Now, func(string, int) bool { return clock.Now().Before(upAt) })
	healthy := newReceiver(t, clock.Now, nil)
	wsDown, secretDown := e.newWorkspace(t, down.srv.URL, waymark.WebhookJSON)
	wsHealthy, secretHealthy := e.newWorkspace(t, healthy.srv.URL, waymark.WebhookJSON)
	down.secret, healthy.secret = secretDown, secretHealthy

	var downIDs, healthyIDs []string
	for i := range 5 {
		downIDs = append(downIDs, e.sendFeedback(t, wsDown, fmt.Sprintf("down-user-%02d", i), "sent while the receiver is down"))
		healthyIDs = append(healthyIDs, e.sendFeedback(t, wsHealthy, fmt.Sprintf("healthy-user-%02d", i), "sent to a healthy receiver"))
	}
	// Without the clock moving, the healthy receiver gets everything while
	// the dead one holds its deliveries for retries.
	waitFor(t, 20*time.Second, "the healthy workspace's deliveries", func() bool { return healthy.acceptedCount() == len(healthyIDs) })
	healthy.checkExactlyOnce(t, healthyIDs)
	// The clock only moves once every delivery is read from the stream.
	waitFor(t, 20*time.Second, "the first attempts", func() bool { return down.requestCount() >= len(downIDs) })

	// Move the clock from one due retry to the next until all is delivered.
	for steps := 0; e.local.Pending() > 0; steps++ {
		if steps > 500 {
			t.Fatalf("still %d pending after %d steps", e.local.Pending(), steps)
		}
		waitFor(t, 20*time.Second, "attempts in flight", func() bool {
			next := e.local.NextDue()
			return e.local.Pending() == 0 || (!next.IsZero() && next.After(clock.Now()))
		})
		if next := e.local.NextDue(); !next.IsZero() {
			clock.Advance(next.Sub(clock.Now()))
		}
	}
	down.checkExactlyOnce(t, downIDs)
	if !clock.Now().After(upAt) {
		t.Fatalf("all delivered at %v, before the receiver was up", clock.Now())
	}
	// Delivered at the first retry after the outage: within one backoff
	// step (an hour at most, here much less as the delays are capped).
	if late := clock.Now().Sub(upAt); late > webhook.MaxRetryDelay {
		t.Errorf("delivered %v after the receiver came back", late)
	}
}

// A delivery failing for the whole window is parked, listed, and
// redelivered with the same id (through the stream, as deployed).
func TestParkedDeliveryIsListedAndRedelivered(t *testing.T) {
	clock := fakeclock.New(time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC))
	schedule := webhook.Schedule{First: time.Minute, Max: time.Hour, Window: 24 * time.Hour, Jitter: func() float64 { return 0 }}
	e := newEnv(t, nil, clock.Now, schedule)
	up := false
	rcv := newReceiver(t, clock.Now, func(string, int) bool { return !up })
	ws, secret := e.newWorkspace(t, rcv.srv.URL, waymark.WebhookJSON)
	rcv.secret = secret
	id := e.sendFeedback(t, ws, "parked-user-01", "this one will be parked")
	ctx := context.Background()
	waitFor(t, 20*time.Second, "the first attempt", func() bool { return rcv.requestCount() > 0 })
	for e.local.Pending() > 0 || clock.Now().Before(time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)) {
		waitFor(t, 20*time.Second, "attempts in flight", func() bool {
			next := e.local.NextDue()
			return e.local.Pending() == 0 || (!next.IsZero() && next.After(clock.Now()))
		})
		next := e.local.NextDue()
		if next.IsZero() {
			break
		}
		clock.Advance(next.Sub(clock.Now()))
	}
	parked, err := e.store.ParkedDeliveries(ctx, ws.Code)
	if err != nil {
		t.Fatal(err)
	}
	if len(parked) != 1 || parked[0].ID != webhook.DeliveryID(id) || parked[0].LastError != "status 503" {
		t.Fatalf("parked: %+v", parked)
	}
	if window := parked[0].ParkedAt.Sub(parked[0].FirstAt); window < 24*time.Hour {
		t.Errorf("parked after %v, before the retry window ended", window)
	}
	if rcv.acceptedCount() != 0 {
		t.Fatal("a refused delivery counted as accepted")
	}

	up = true
	if err := e.store.RequeueDelivery(ctx, parked[0], clock.Now()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the redelivery", func() bool { return rcv.acceptedCount() == 1 })
	rcv.checkExactlyOnce(t, []string{id})
	if parked, err = e.store.ParkedDeliveries(ctx, ws.Code); err != nil || len(parked) != 0 {
		t.Fatalf("after redelivery: %+v %v", parked, err)
	}
}

// The Slack format posts {"text"} with the user's text escaped for Slack's
// markup, signed like the JSON one.
func TestSlackFormat(t *testing.T) {
	e := newEnv(t, nil, time.Now, fastSchedule)
	got := make(chan map[string]string, 1)
	var secret string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		body, _ = readAll(r)
		if err := webhook.Verify(secret, r.Header.Get(webhook.HeaderSignature), body, time.Now(), time.Minute); err != nil {
			t.Error(err)
		}
		var m map[string]string
		if err := json.Unmarshal(body, &m); err != nil {
			t.Error(err)
		}
		got <- m
	}))
	defer srv.Close()
	ws, s := e.newWorkspace(t, srv.URL, waymark.WebhookSlack)
	secret = s
	e.sendFeedback(t, ws, "slack-user-01", "a <b> & c")
	select {
	case m := <-got:
		want := "New feedback in " + ws.Code + " from slack-user-01 (rating 4):\n> a &lt;b&gt; &amp; c"
		if m["text"] != want || len(m) != 1 {
			t.Fatalf("slack body %q, want %q", m, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no slack delivery")
	}
}

// Every field of the JSON body.
func TestJSONBody(t *testing.T) {
	rating := 5
	w := 1280
	fb := &waymark.Feedback{ID: "fb1", Username: "body-user-01", Text: "hello", Rating: &rating, Category: "bug",
		Environment: &waymark.Environment{URL: "https://app.example.com/x", ViewportWidth: &w}, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Attachments: []waymark.Attachment{{ID: "0123456789abcdef0123456789abcdef", ContentType: "image/png", Size: 2048}}}
	body, err := webhook.Body(waymark.WebhookJSON, "dlv_fb1", "wsx", fb)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":"dlv_fb1","type":"feedback.created","createdAt":"2026-01-02T03:04:05Z","workspace":"wsx","data":{"id":"fb1","username":"body-user-01","text":"hello","rating":5,"category":"bug","environment":{"url":"https://app.example.com/x","viewportWidth":1280},"attachments":[{"id":"0123456789abcdef0123456789abcdef","contentType":"image/png","size":2048}]}}`
	if string(body) != want {
		t.Fatalf("body\n%s\nwant\n%s", body, want)
	}
}

func TestScheduleSpansTheWindow(t *testing.T) {
	s := webhook.DefaultSchedule
	s.Jitter = func() float64 { return 0 }
	var total time.Duration
	var delays []time.Duration
	attempts := 0
	for total < s.Window {
		attempts++
		d := s.Delay(attempts)
		delays = append(delays, d)
		total += d
	}
	if !slices.IsSorted(delays) || delays[0] != s.First/2 || delays[len(delays)-1] != s.Max/2 {
		t.Fatalf("delays %v", delays)
	}
	t.Logf("%d attempts within %v at the shortest jitter", attempts+1, s.Window)
}
