package apigw_test

import (
	"net/url"
	"testing"

	"github.com/waymarkhq/waymark/internal/devstack"
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
