package apigw_test

import (
	"net/url"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/fakeclock"
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
