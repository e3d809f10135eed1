package apigw_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/schema"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Tests of what changes with time on the server's side: the feedback
// listing across months and at an expiry, and the event ids a content item
// remembers. Each moves a fake clock; none waits.

// testClock starts a second ahead of the wall clock, so that what a test
// writes is never older than the workspace it has just created.
func testClock() *fakeclock.Clock {
	return fakeclock.New(time.Now().UTC().Truncate(time.Second).Add(time.Second))
}

// postFeedback sends one feedback of user and returns its text.
func postFeedback(t *testing.T, hs map[string]apigw.Handler, ws *waymark.Workspace, user string) string {
	t.Helper()
	text := "feedback " + waymark.NewID()
	remember(text)
	r := invokeWith(t, hs, "feedback", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "text": text}), nil)
	if r.Status != 201 {
		t.Fatalf("feedback: %d %v", r.Status, r.Body)
	}
	return text
}

// listFeedback pages through the server's feedback listing, limit items a
// page, and returns the texts of each page.
func listFeedback(t *testing.T, hs map[string]apigw.Handler, key string, limit int) [][]string {
	t.Helper()
	var pages [][]string
	cursor := ""
	for {
		q := url.Values{"limit": {fmt.Sprint(limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r := serverWith(t, hs, "GET /v1/server/feedback", key, "", q)
		if r.Status != 200 || len(pages) > 10 {
			t.Fatalf("list: %d %v", r.Status, r.Body)
		}
		var page []string
		for _, it := range r.Body["items"].([]any) {
			page = append(page, it.(map[string]any)["text"].(string))
		}
		if len(page) > limit {
			t.Fatalf("page %d holds %d items, more than its limit %d: %v", len(pages)+1, len(page), limit, page)
		}
		pages = append(pages, page)
		next, _ := r.Body["nextCursor"].(string)
		if next == "" {
			return pages
		}
		cursor = next
	}
}

// Feedback is kept in one partition per month: a page that the newest month
// does not fill takes the rest from the month before, up to its limit, and
// the next page goes on from there.
func TestFeedbackPageSpansMonthsUpToItsLimit(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	older := postFeedback(t, hs, ws, user)
	clk.Advance(time.Second)
	old := postFeedback(t, hs, ws, user)
	clk.Advance(40 * 24 * time.Hour)
	newest := postFeedback(t, hs, ws, user)

	got := listFeedback(t, hs, key, 2)
	want := [][]string{{newest, old}, {older}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("pages of 2 over two months:\n got %q\nwant %q", got, want)
	}
}

// A workspace without a retention keeps its feedback without an expiry:
// however much later, it is listed and exported.
func TestFeedbackWithoutRetentionIsListedYearsLater(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	text := postFeedback(t, hs, ws, user)
	// Within one month: the listing reads back month by month to the
	// workspace's creation.
	clk.Advance(3 * 24 * time.Hour)
	if got := listFeedback(t, hs, key, 10); fmt.Sprint(got) != fmt.Sprint([][]string{{text}}) {
		t.Fatalf("listed %q, want the one feedback", got)
	}
	clk.Advance(3 * 365 * 24 * time.Hour)
	if got := listFeedback(t, hs, key, 10); fmt.Sprint(got) != fmt.Sprint([][]string{{text}}) {
		t.Fatalf("three years on, listed %q, want the one feedback", got)
	}
	if n := exportedFeedback(t, hs, key, user); n != 1 {
		t.Fatalf("three years on, exported %d feedback, want 1", n)
	}
}

// With a retention, feedback expires at its creation plus the retention: it
// is still listed and exported at that very second, and neither one second
// later (before DynamoDB's time to live removes it).
func TestFeedbackAtItsExpirySecond(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	text := postFeedback(t, hs, ws, user)
	clk.Advance(30 * 24 * time.Hour)
	if got := listFeedback(t, hs, key, 10); fmt.Sprint(got) != fmt.Sprint([][]string{{text}}) {
		t.Fatalf("at the expiry second, listed %q, want the feedback", got)
	}
	if n := exportedFeedback(t, hs, key, user); n != 1 {
		t.Fatalf("at the expiry second, exported %d feedback, want 1", n)
	}
	clk.Advance(time.Second)
	if got := listFeedback(t, hs, key, 10); fmt.Sprint(got) != fmt.Sprint([][]string{nil}) {
		t.Fatalf("a second after the expiry, listed %q, want nothing", got)
	}
	if n := exportedFeedback(t, hs, key, user); n != 0 {
		t.Fatalf("a second after the expiry, exported %d feedback, want 0", n)
	}
}

// exportedFeedback counts the feedback the server's export of user lists.
func exportedFeedback(t *testing.T, hs map[string]apigw.Handler, key, user string) int {
	t.Helper()
	r := serverWith(t, hs, "POST /v1/server/users/export", key, mustJSON(map[string]any{"username": user}), nil)
	if r.Status != 200 {
		t.Fatalf("export: %d %v", r.Status, r.Body)
	}
	fb, _ := r.Body["feedback"].([]any)
	return len(fb)
}

// A content item remembers an event id for the idempotency window (8
// days): the first write of the item after that forgets it, also when no
// event is pending on the item, so the stored fingerprints never outlive
// what docs/data-inventory.md says.
func TestContentItemForgetsEventIDsAfterTheWindow(t *testing.T) {
	ws := newWorkspace(t, waymark.NewWorkspaceOptions{})
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	send := func(id string) response {
		t.Helper()
		r := invokeWith(t, hs, "events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{
			map[string]any{"id": id, "content": "hint", "contentId": "h", "action": "displayed", "at": clk.Now().Format(time.RFC3339)},
		}}), nil)
		if r.Status != 200 {
			t.Fatalf("events: %d %v", r.Status, r.Body)
		}
		return r
	}
	first, second := waymark.NewID(), waymark.NewID()
	send(first)
	if r := send(first); r.Body["duplicates"] != 1.0 {
		t.Fatalf("a repeat within the window: %v, want 1 duplicate", r.Body)
	}
	if got := storedFingerprints(t, ws.UserKey(user), "hint#h"); !slices.Equal(got, []uint64{fingerprint(first)}) {
		t.Fatalf("remembered %x, want the first id's %x", got, fingerprint(first))
	}
	clk.Advance(waymark.IdempotencyWindow + time.Second)
	if r := send(second); r.Body["accepted"] != 1.0 {
		t.Fatalf("a new event after the window: %v, want it accepted", r.Body)
	}
	if got := storedFingerprints(t, ws.UserKey(user), "hint#h"); !slices.Equal(got, []uint64{fingerprint(second)}) {
		t.Fatalf("after the window the item remembers %x, want only the second id's %x", got, fingerprint(second))
	}
}

// fingerprint is the first 8 bytes of an event id's SHA-256, computed here
// rather than by the domain's own function.
func fingerprint(id string) uint64 {
	sum := sha256.Sum256([]byte(id))
	return binary.BigEndian.Uint64(sum[:8])
}

// storedFingerprints reads the fingerprints a content item's stored `seen`
// attribute holds (8 bytes of fingerprint and 4 of time each) and checks
// that its `claims` set, which the conditional writes test, holds the same.
func storedFingerprints(t *testing.T, userKey, sortKey string) []uint64 {
	t.Helper()
	res, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{
		TableName: aws.String(stack.Tables[schema.ContentStateTable]),
		Key: map[string]types.AttributeValue{
			"pk": &types.AttributeValueMemberS{Value: userKey},
			"sk": &types.AttributeValueMemberS{Value: sortKey},
		},
		ConsistentRead: aws.Bool(true),
	})
	if err != nil || res.Item == nil {
		t.Fatalf("content item %s: %v", sortKey, err)
	}
	var seen []uint64
	if b, ok := res.Item["seen"].(*types.AttributeValueMemberB); ok {
		for i := 0; i+12 <= len(b.Value); i += 12 {
			seen = append(seen, binary.BigEndian.Uint64(b.Value[i:]))
		}
	}
	var claims []uint64
	if bs, ok := res.Item["claims"].(*types.AttributeValueMemberBS); ok {
		for _, b := range bs.Value {
			claims = append(claims, binary.BigEndian.Uint64(b))
		}
	}
	slices.Sort(claims)
	if sorted := slices.Sorted(slices.Values(seen)); !slices.Equal(sorted, claims) {
		t.Fatalf("seen %x and claims %x differ", seen, claims)
	}
	return seen
}

// An event at the earliest `at` accepted, the Unix epoch itself, orders as
// any other once stored: of two events at the same `at` the greater id wins,
// whichever arrives first.
func TestEventsAtTheEpochOrderWhateverTheirArrival(t *testing.T) {
	ws := workspace(t, "demo")
	finished := map[string]any{"id": "epoch-b", "content": "tour", "contentId": "t", "action": "finished", "at": "1970-01-01T00:00:00Z"}
	skipped := map[string]any{"id": "epoch-a", "content": "tour", "contentId": "t", "action": "skipped", "at": "1970-01-01T00:00:00Z"}
	for name, order := range map[string][]map[string]any{"greater id first": {finished, skipped}, "greater id last": {skipped, finished}} {
		user := uniqueUser(t)
		var r response
		for _, ev := range order {
			r = invoke(t, "events", mustJSON(map[string]any{"workspace": ws.Code, "username": user, "events": []any{ev}}))
			if r.Status != 200 {
				t.Fatalf("%s: events: %d %v", name, r.Status, r.Body)
			}
		}
		tour := r.Body["state"].(map[string]any)["tours"].(map[string]any)["t"].(map[string]any)
		if tour["status"] != "finished" || tour["updatedAt"] != "1970-01-01T00:00:00Z" {
			t.Errorf("%s: tour %v, want finished at 1970-01-01T00:00:00Z (the greater id)", name, tour)
		}
	}
}

// Expired feedback that DynamoDB has not removed yet is skipped without
// ending the page early: a page is full, or the listing's end.
func TestFeedbackPageSkipsExpiredFeedback(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{RetentionDays: 30})
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	user := uniqueUser(t)
	postFeedback(t, hs, ws, user)
	clk.Advance(time.Second)
	postFeedback(t, hs, ws, user)
	clk.Advance(20 * 24 * time.Hour)
	live := postFeedback(t, hs, ws, user)
	clk.Advance(11 * 24 * time.Hour)
	if got := listFeedback(t, hs, key, 2); fmt.Sprint(got) != fmt.Sprint([][]string{{live}}) {
		t.Fatalf("listed %q, want one page with the one live feedback", got)
	}
}

// A function caches a workspace for 30 seconds (README): a change reaches
// it when that time has passed, not before. An unknown code is remembered
// for 5 seconds, so a workspace created meanwhile works after them.
func TestWorkspaceChangesReachAWarmFunctionWithinTheCacheTime(t *testing.T) {
	clk := testClock()
	hs := clockedHandlers(t, recordedConfig(), clk)
	state := func(code string) response {
		t.Helper()
		return invokeWith(t, hs, "state", mustJSON(map[string]any{"workspace": code, "username": uniqueUser(t)}), nil)
	}

	// Two workspaces, both cached (the second's read must not evict the
	// first), then both disabled behind the cache's back.
	ws, other := newWorkspace(t, waymark.NewWorkspaceOptions{}), newWorkspace(t, waymark.NewWorkspaceOptions{})
	for _, w := range []*waymark.Workspace{ws, other} {
		if r := state(w.Code); r.Status != 200 {
			t.Fatalf("state: %d %v", r.Status, r.Body)
		}
	}
	for _, w := range []*waymark.Workspace{ws, other} {
		w.Disabled = true
		if err := graph.Store.PutWorkspace(context.Background(), w); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(30 * time.Second)
	for _, w := range []*waymark.Workspace{ws, other} {
		if r := state(w.Code); r.Status != 200 {
			t.Fatalf("30 s after the first call, the cached workspace should serve: %d %v", r.Status, r.Body)
		}
	}
	clk.Advance(time.Second)
	if r := state(ws.Code); r.Status != 403 || r.errorCode() != "workspace_disabled" {
		t.Fatalf("31 s after the first call, the change should have reached: %d %v", r.Status, r.Body)
	}

	opts := waymark.NewWorkspaceOptions{Name: t.Name()}
	later, _, err := waymark.NewWorkspace(opts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := state(later.Code); r.Status/100 != 4 || r.errorCode() != "unknown_workspace" {
		t.Fatalf("an unknown code: %d %v", r.Status, r.Body)
	}
	if err := graph.Store.PutWorkspace(context.Background(), later); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second)
	if r := state(later.Code); r.errorCode() != "unknown_workspace" {
		t.Fatalf("5 s after, the code should still be unknown here: %d %v", r.Status, r.Body)
	}
	clk.Advance(time.Second)
	if r := state(later.Code); r.Status != 200 {
		t.Fatalf("6 s after, the new workspace should serve: %d %v", r.Status, r.Body)
	}
}
