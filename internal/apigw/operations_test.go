package apigw_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/envelope"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// exportedProps reads a user's props through the server API's export.
func exportedProps(t *testing.T, key, username string) map[string]any {
	t.Helper()
	r := server(t, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": username}), nil)
	if r.Status != 200 || r.Body["found"] != true {
		t.Fatalf("export: %d %v", r.Status, r.Body)
	}
	props, _ := r.Body["user"].(map[string]any)["props"].(map[string]any)
	return props
}

// identifyInParallel sends one identify per writer at once, never retrying,
// and reports the answers that were not 2xx and the latencies, sorted.
func identifyInParallel(t *testing.T, hs map[string]apigw.Handler, code, username string, writers int, props func(w int) map[string]any) ([]string, []time.Duration) {
	t.Helper()
	var (
		mu        sync.Mutex
		failed    []string
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	for w := range writers {
		wg.Go(func() {
			body := mustJSON(map[string]any{"workspace": code, "user": map[string]any{"username": username, "props": props(w)}})
			began := time.Now()
			r := invokeWith(t, hs, "identify", body, nil)
			took := time.Since(began)
			mu.Lock()
			defer mu.Unlock()
			latencies = append(latencies, took)
			if r.Status/100 != 2 {
				failed = append(failed, fmt.Sprintf("%d %s", r.Status, r.errorCode()))
			}
		})
	}
	wg.Wait()
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	return failed, latencies
}

// Parallel operations on one user, each writer sending one identify and
// never retrying: every answer is 2xx and every operation counts exactly
// once, first on a user not stored yet, then on a stored one with $add and
// $append from every writer. (`make bench` reports the latencies.)
func TestParallelOperationsOnOneUserAreExact(t *testing.T) {
	const writers = 25
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)

	failed, latencies := identifyInParallel(t, handlers, ws.Code, user, writers, func(int) map[string]any {
		return map[string]any{"seats": map[string]any{"$add": 1}}
	})
	t.Logf("%d writers, new user: %d non-2xx, p50 %v, max %v", writers, len(failed), latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	if len(failed) > 0 {
		t.Fatalf("%d of %d answers were not 2xx, e.g. %s", len(failed), writers, failed[0])
	}
	if got := exportedProps(t, key, user)["seats"]; got != float64(writers) {
		t.Fatalf("seats = %v after %d parallel $add 1, want %d", got, writers, writers)
	}

	failed, latencies = identifyInParallel(t, handlers, ws.Code, user, writers, func(w int) map[string]any {
		return map[string]any{"seats": map[string]any{"$add": 1}, "tags": map[string]any{"$append": []any{fmt.Sprintf("tag-%d", w), "shared"}}}
	})
	t.Logf("%d writers, stored user: %d non-2xx, p50 %v, max %v", writers, len(failed), latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	if len(failed) > 0 {
		t.Fatalf("%d of %d answers were not 2xx, e.g. %s", len(failed), writers, failed[0])
	}
	props := exportedProps(t, key, user)
	if props["seats"] != float64(2*writers) {
		t.Errorf("seats = %v, want %d", props["seats"], 2*writers)
	}
	tags, _ := props["tags"].([]any)
	seen := map[any]bool{}
	for _, tag := range tags {
		seen[tag] = true
	}
	if len(tags) != writers+1 || len(seen) != writers+1 || !seen["shared"] || !seen["tag-0"] || !seen[fmt.Sprintf("tag-%d", writers-1)] {
		t.Errorf("tags = %v, want each writer's tag and \"shared\" once", tags)
	}

	// The next identify folds the inputs waiting on the item into the
	// profile: nothing is applied twice, and the item holds none after.
	r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "props": map[string]any{"tags": map[string]any{"$remove": []any{"shared"}}}}}))
	if r.Status != 200 {
		t.Fatalf("identify: %d %v", r.Status, r.Body)
	}
	props = exportedProps(t, key, user)
	if tags, _ := props["tags"].([]any); props["seats"] != float64(2*writers) || len(tags) != writers {
		t.Errorf("after the fold: seats %v, %d tags, want %d and %d", props["seats"], len(tags), 2*writers, writers)
	}
	item := rawUser(t, ws.UserKey(user))
	if _, waiting := item["pin"]; waiting {
		t.Error("the user item still holds waiting inputs after a write folded them")
	}
}

// An operation applies on every identify, public or server: the repeat
// shortcut (an unchanged input only records the visit) never swallows one.
func TestRepeatedOperationAppliesEachTime(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	body := map[string]any{"username": user, "props": map[string]any{
		"logins": map[string]any{"$add": 2}, "first": map[string]any{"$set_once": "landing-page"}, "plan": "free"}}
	for range 3 {
		if r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": body})); r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
	}
	body["props"].(map[string]any)["first"] = map[string]any{"$set_once": "pricing-page"}
	if r := server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": body}), nil); r.Status != 200 {
		t.Fatalf("server identify: %d %v", r.Status, r.Body)
	}
	props := exportedProps(t, key, user)
	if props["logins"] != float64(8) || props["first"] != "landing-page" || props["plan"] != "free" {
		t.Fatalf("props %v, want logins 8 (four times $add 2), first kept from the first call", props)
	}
}

// A bad operation is refused naming the prop, on both identify routes, and
// writes nothing.
func TestBadOperationIsRefusedNamingTheProp(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	for _, tc := range []struct {
		props map[string]any
		field string
	}{
		{map[string]any{"seats": map[string]any{"$add": "one"}}, "user.props.seats"},
		{map[string]any{"seats": map[string]any{"$add": 1, "$set_once": 1}}, "user.props.seats"},
		{map[string]any{"tags": map[string]any{"$append": "solo"}}, "user.props.tags"},
		{map[string]any{"tags": map[string]any{"$remove": []any{map[string]any{"a": 1}}}}, "user.props.tags[0]"},
		{map[string]any{"tags": map[string]any{"$push": []any{"x"}}}, "user.props.tags"},
	} {
		u := map[string]any{"username": user, "props": tc.props}
		for _, r := range []response{
			invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": u})),
			server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": u}), nil),
		} {
			if r.Status != 400 || r.errorCode() != "invalid_argument" || r.errorField() != tc.field {
				t.Errorf("%v: %d %s on %q, want 400 invalid_argument on %q", tc.props, r.Status, r.errorCode(), r.errorField(), tc.field)
			}
		}
	}
	if n := itemsOfUser(t, ws.UserKey(user)); n != 0 {
		t.Errorf("refused identifies left %d items", n)
	}
}

// Data minimization: with an allow-list of user prop keys, keys outside it
// are not stored, the answer names them, and stored keys outside it go at
// the user's next write.
func TestAllowListKeepsPropsOut(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	identify := func(props map[string]any) response {
		t.Helper()
		r := invoke(t, "identify", mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "props": props}}))
		if r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
		return r
	}
	// Stored before the list exists (this workspace is not cached yet).
	ws.AllowedProps = waymark.AllowList{"plan", "seats"}
	if err := graph.Store.PutWorkspace(context.Background(), ws); err != nil {
		t.Fatal(err)
	}
	r := identify(map[string]any{"plan": "pro", "seats": map[string]any{"$add": 3}, "company": "Acme Corporation", "notes": nil})
	if got := mustJSON(r.Body["ignored"]); got != `["company","notes"]` {
		t.Errorf("ignored %s, want [\"company\",\"notes\"]", got)
	}
	if got := mustJSON(exportedProps(t, key, user)); got != `{"plan":"pro","seats":3}` {
		t.Errorf("stored props %s", got)
	}
	r = server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": map[string]any{"username": user, "props": map[string]any{"seats": 4}}}), nil)
	if _, named := r.Body["ignored"]; r.Status != 200 || named {
		t.Errorf("server identify within the list: %d %v, want 200 without ignored", r.Status, r.Body)
	}
	r = server(t, "POST /v1/server/identify", key, mustJSON(map[string]any{"user": map[string]any{"username": user, "props": map[string]any{"mood": "cheerful-today"}}}), nil)
	if got := mustJSON(r.Body["ignored"]); r.Status != 200 || got != `["mood"]` {
		t.Errorf("server identify: %d ignored %s", r.Status, got)
	}
}

// Each identify writes the user item over the version it read at most once:
// a loser of that race records its input beside the item instead of reading
// and racing again. So even a service allowed a single attempt answers every
// one of 25 parallel writers.
func TestOneAttemptServesEveryParallelWriter(t *testing.T) {
	const writers = 25
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	cfg := stack.Config()
	dbClient, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	store, _ := wiring.SealedStore(dbClient, kmsClient, cfg)
	hs := apigw.New(service.New(store, service.Options{MaxAttempts: 1}), wiring.Logger(&logBuffer, "info")).Handlers()
	user := uniqueUser(t)
	for round := 1; round <= 2; round++ {
		failed, _ := identifyInParallel(t, hs, ws.Code, user, writers, func(int) map[string]any {
			return map[string]any{"seats": map[string]any{"$add": 1}}
		})
		if len(failed) > 0 {
			t.Fatalf("round %d: %d of %d answers were not 2xx, e.g. %s", round, len(failed), writers, failed[0])
		}
	}
	if got := exportedProps(t, key, user)["seats"]; got != float64(2*writers) {
		t.Fatalf("seats = %v, want %d", got, 2*writers)
	}
}

// The loser of the race records its input beside the item; that update's
// answer is lost after it was applied, and the SDK's retry finds the input
// recorded by this very request: it applies once.
func TestPendingInputRetriedBySDKAppliesOnce(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	identify := func(hs map[string]apigw.Handler, add int) {
		t.Helper()
		body := mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "props": map[string]any{"seats": map[string]any{"$add": add}}}})
		if r := invokeWith(t, hs, "identify", body, nil); r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
	}
	identify(handlers, 1)
	usersTable := stack.Tables[schema.UsersTable]
	var raced, dropped atomic.Bool
	faults := &faultyTransport{hook: func(req *http.Request, op, body string) (*http.Response, error) {
		if !strings.Contains(body, usersTable) {
			return nil, nil
		}
		if op == "PutItem" && raced.CompareAndSwap(false, true) {
			identify(handlers, 10)
		}
		if op == "UpdateItem" && strings.Contains(body, "list_append") && dropped.CompareAndSwap(false, true) {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return nil, err
			}
			resp.Body.Close()
			return nil, errConnectionReset
		}
		return nil, nil
	}}
	hs, _ := faultyGraph(t, faults, nil)
	identify(hs, 5)
	if !dropped.Load() {
		t.Fatal("the input was not recorded beside the item")
	}
	if got := exportedProps(t, key, user)["seats"]; got != float64(16) {
		t.Fatalf("seats = %v, want 16 (1 + 10 + 5, the retried record applied once)", got)
	}
}

// An instance that seals under another data key than the user item's (here
// one that does not share the workspace's published key) records its input
// with its own key beside it, and every reader opens it.
func TestPendingInputUnderAnotherDataKey(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	user := uniqueUser(t)
	identify := func(hs map[string]apigw.Handler, add int) {
		t.Helper()
		body := mustJSON(map[string]any{"workspace": ws.Code, "user": map[string]any{"username": user, "props": map[string]any{"seats": map[string]any{"$add": add}}}})
		if r := invokeWith(t, hs, "identify", body, nil); r.Status != 200 {
			t.Fatalf("identify: %d %v", r.Status, r.Body)
		}
	}
	identify(handlers, 1)
	usersTable := stack.Tables[schema.UsersTable]
	var raced atomic.Bool
	var records atomic.Int64
	faults := &faultyTransport{hook: func(_ *http.Request, op, body string) (*http.Response, error) {
		if !strings.Contains(body, usersTable) {
			return nil, nil
		}
		if op == "PutItem" && raced.CompareAndSwap(false, true) {
			identify(handlers, 10)
		}
		if op == "UpdateItem" && strings.Contains(body, "list_append") {
			records.Add(1)
		}
		return nil, nil
	}}
	cfg := recordedConfig()
	dbClient, kmsClient, err := cfg.Clients(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dbClient = dynamodb.New(dbClient.Options(), func(o *dynamodb.Options) { o.HTTPClient = faults })
	store := dynamo.New(dbClient, envelope.New(kmsClient, cfg.KMSKeyID, envelope.Options{}), cfg.Tables)
	hs := apigw.New(service.New(store, service.Options{}), wiring.Logger(&logBuffer, "info")).Handlers()
	identify(hs, 5)
	if n := records.Load(); n != 2 {
		t.Fatalf("%d records of the input, want 2 (without its key, refused; then with it)", n)
	}
	if got := exportedProps(t, key, user)["seats"]; got != float64(16) {
		t.Fatalf("seats = %v, want 16", got)
	}
	identify(handlers, 100)
	if got := exportedProps(t, key, user)["seats"]; got != float64(116) {
		t.Fatalf("seats = %v after the fold, want 116", got)
	}
}
