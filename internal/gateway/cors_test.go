package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/routes"
)

// Server routes are not for browsers: no CORS header on any of their
// answers, and their preflight is refused, while the snippet's routes keep
// theirs.
func TestServerRoutesAnswerWithoutCORS(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.Server.Name: rec.handle, routes.Identify.Name: okRecorder().handle}, Options{MaxBodyBytes: 8})
	corsHeaders := func(resp *http.Response) []string {
		var names []string
		for name := range resp.Header {
			if strings.HasPrefix(strings.ToLower(name), "access-control-") {
				names = append(names, name)
			}
		}
		return names
	}
	var serverRoutes int
	for _, r := range routes.Table() {
		if r.Function != routes.Server.Name {
			continue
		}
		serverRoutes++
		pre := newRequest(t, "OPTIONS", srv.URL+r.Path, nil)
		pre.Header.Set("Origin", "https://app.example")
		pre.Header.Set("Access-Control-Request-Method", r.Method)
		pre.Header.Set("Access-Control-Request-Headers", "authorization")
		resp, _ := do(t, pre)
		if resp.StatusCode != http.StatusNoContent || len(corsHeaders(resp)) > 0 {
			t.Errorf("preflight of %s: status %d, CORS headers %v; want 204 without any", r.RouteKey(), resp.StatusCode, corsHeaders(resp))
		}

		// The function's answer, and the gateway's own (413).
		for _, body := range []string{"{}", strings.Repeat("x", 9)} {
			req := newRequest(t, r.Method, srv.URL+r.Path, strings.NewReader(body))
			req.Header.Set("Origin", "https://app.example")
			req.Header.Set("Authorization", "Bearer wmk_test")
			resp, _ := do(t, req)
			if len(corsHeaders(resp)) > 0 {
				t.Errorf("%s (status %d) answered with CORS headers %v", r.RouteKey(), resp.StatusCode, corsHeaders(resp))
			}
		}
	}
	if serverRoutes == 0 {
		t.Fatal("the route table has no server route")
	}
	if n := rec.calls.Load(); n != int32(serverRoutes) {
		t.Errorf("server function called %d times, want %d (once per route; never for a preflight)", n, serverRoutes)
	}

	// The snippet's routes are unchanged.
	pre := newRequest(t, "OPTIONS", srv.URL+"/v1/identify", nil)
	pre.Header.Set("Origin", "https://app.example")
	pre.Header.Set("Access-Control-Request-Method", "POST")
	if resp, _ := do(t, pre); resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight of /v1/identify refused: %v", resp.Header)
	}
	req := newRequest(t, "POST", srv.URL+"/v1/identify", strings.NewReader("{}"))
	req.Header.Set("Origin", "https://app.example")
	if resp, _ := do(t, req); resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("POST /v1/identify without CORS headers: %v", resp.Header)
	}
}
