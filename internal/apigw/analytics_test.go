package apigw_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/fakeclock"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// The aggregator is not wired into this suite (internal/analytics tests it
// over the stream): these check the route's contract, and that an item with
// no counters yet reads as zeros, every day listed.
func TestAnalyticsRoute(t *testing.T) {
	r := server(t, "GET /v1/server/analytics", devstack.DemoServerKey, "", url.Values{
		"content": {"tour"}, "contentId": {"no-such-tour"}, "from": {"2026-01-01"}, "to": {"2026-01-31"}})
	if r.Status != 200 {
		t.Fatalf("report: %d %v", r.Status, r.Body)
	}
	totals := r.Body["totals"].(map[string]any)
	if totals["started"] != float64(0) || len(r.Body["days"].([]any)) != 31 {
		t.Fatalf("report of an unseen tour: %v", r.Body)
	}
	list := server(t, "GET /v1/server/analytics", devstack.DemoServerKey, "", nil)
	if list.Status != 200 || list.Body["contents"] == nil {
		t.Fatalf("list: %d %v", list.Status, list.Body)
	}
	for _, bad := range []struct {
		query url.Values
		field string
	}{
		{url.Values{"content": {"video"}}, "content"},
		{url.Values{"contentId": {"t1"}}, "content"},
		{url.Values{"content": {"tour"}, "contentId": {"t1"}, "from": {"2026-13-01"}}, "from"},
		{url.Values{"content": {"tour"}, "contentId": {"t1"}, "from": {"2026-02-01"}, "to": {"2026-01-01"}}, "from"},
		{url.Values{"content": {"tour"}, "contentId": {"t1"}, "from": {"2024-01-01"}, "to": {"2026-01-01"}}, "from"},
		{url.Values{"user": {"x"}}, "user"},
	} {
		r := server(t, "GET /v1/server/analytics", devstack.DemoServerKey, "", bad.query)
		if r.Status != 400 || r.errorField() != bad.field {
			t.Errorf("%v: %d %v, want 400 on %s", bad.query, r.Status, r.Body, bad.field)
		}
	}
	if r := server(t, "GET /v1/server/analytics", "", "", nil); r.Status != 401 {
		t.Fatalf("without a key: %d", r.Status)
	}
}

// A report's days: to defaults to today (UTC), from to 29 days before to
// (30 days); a range of 366 days is the longest, one more is refused.
func TestAnalyticsRangeAtItsEdges(t *testing.T) {
	// Mid-morning: "today" is the date, not the moment.
	clk := fakeclock.New(time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC))
	hs := clockedHandlers(t, recordedConfig(), clk)
	query := func(from, to string) url.Values {
		q := url.Values{"content": {"tour"}, "contentId": {"range-edges"}}
		if from != "" {
			q.Set("from", from)
		}
		if to != "" {
			q.Set("to", to)
		}
		return q
	}
	for _, c := range []struct {
		name, from, to   string
		wantFrom, wantTo string
		wantDays         int
	}{
		{"defaults", "", "", "2026-01-31", "2026-03-01", 30},
		{"from today", "2026-03-01", "", "2026-03-01", "2026-03-01", 1},
		{"to given", "", "2025-12-31", "2025-12-02", "2025-12-31", 30},
		{"366 days", "2025-03-01", "2026-03-01", "2025-03-01", "2026-03-01", 366},
	} {
		r := serverWith(t, hs, "GET /v1/server/analytics", devstack.DemoServerKey, "", query(c.from, c.to))
		if r.Status != 200 {
			t.Fatalf("%s: %d %v", c.name, r.Status, r.Body)
		}
		days := r.Body["days"].([]any)
		if r.Body["from"] != c.wantFrom || r.Body["to"] != c.wantTo || len(days) != c.wantDays {
			t.Errorf("%s: from %v to %v, %d days; want %s to %s, %d days", c.name, r.Body["from"], r.Body["to"], len(days), c.wantFrom, c.wantTo, c.wantDays)
			continue
		}
		if first, last := days[0].(map[string]any)["date"], days[len(days)-1].(map[string]any)["date"]; first != c.wantFrom || last != c.wantTo {
			t.Errorf("%s: days from %v to %v", c.name, first, last)
		}
	}
	for name, q := range map[string]url.Values{
		"367 days":          query("2025-02-28", "2026-03-01"),
		"367 days to today": query("2025-02-28", ""),
	} {
		if r := serverWith(t, hs, "GET /v1/server/analytics", devstack.DemoServerKey, "", q); r.Status != 400 || r.errorField() != "from" {
			t.Errorf("%s: %d %v, want 400 on from", name, r.Status, r.Body)
		}
	}
}

// The list without contentId gives every content item's all-time totals,
// or those of one kind: here over counters written as the aggregator
// writes them (the aggregator itself runs in internal/analytics' tests).
func TestAnalyticsListByKind(t *testing.T) {
	ws, key := workspaceWithKey(t, waymark.NewWorkspaceOptions{})
	for _, c := range []struct {
		content waymark.ContentKey
		counts  waymark.Counts
	}{
		{waymark.ContentKey{Kind: waymark.KindTour, ID: "welcome"}, waymark.Counts{"started": 3, "finished": 2}},
		{waymark.ContentKey{Kind: waymark.KindHint, ID: "export"}, waymark.Counts{"displayed": 5, "displays": 9}},
	} {
		err := graph.Store.AddCounts(context.Background(), "test-shard", dynamo.CounterKey{Workspace: ws.Code, Content: c.content},
			[]dynamo.Contribution{{Seq: "1", Counts: c.counts}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
	}
	list := func(q url.Values) string {
		t.Helper()
		r := server(t, "GET /v1/server/analytics", key, "", q)
		if r.Status != 200 {
			t.Fatalf("list %v: %d %v", q, r.Status, r.Body)
		}
		var got []string
		for _, c := range r.Body["contents"].([]any) {
			c := c.(map[string]any)
			got = append(got, fmt.Sprintf("%v/%v %v", c["content"], c["contentId"], mustJSON(c["totals"])))
		}
		return strings.Join(got, "; ")
	}
	if got, want := list(nil), `hint/export {"dismissed":0,"displayed":5}; tour/welcome {"finished":2,"skipped":0,"started":3}`; got != want {
		t.Errorf("every content item:\n got %s\nwant %s", got, want)
	}
	if got, want := list(url.Values{"content": {"tour"}}), `tour/welcome {"finished":2,"skipped":0,"started":3}`; got != want {
		t.Errorf("the tours:\n got %s\nwant %s", got, want)
	}
	if got := list(url.Values{"content": {"survey"}}); got != "" {
		t.Errorf("the surveys: %s, want none", got)
	}
}
