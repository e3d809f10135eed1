package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/waymarkhq/waymark/internal/routes"
)

// recorder is a handler that keeps the event and context it was called with
// and answers with resp.
type recorder struct {
	calls atomic.Int32
	event events.APIGatewayV2HTTPRequest
	ctx   context.Context
	resp  events.APIGatewayV2HTTPResponse
	err   error
}

func (rec *recorder) handle(ctx context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	rec.calls.Add(1)
	rec.event, rec.ctx = ev, ctx
	return rec.resp, rec.err
}

func okRecorder() *recorder {
	return &recorder{resp: events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{}`, Headers: map[string]string{"Content-Type": "application/json"}}}
}

// serve starts a real HTTP server, so that the request has the host, remote
// and local addresses a client connection gives it.
func serve(t *testing.T, handlers map[string]Handler, opts Options) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(New(handlers, opts))
	t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, req *http.Request) (*http.Response, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func newRequest(t *testing.T, method, url string, body io.Reader) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestEventFields(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.Identify.Name: rec.handle}, Options{})
	req := newRequest(t, "POST", srv.URL+"/v1/identify?a=1&a=2&b=x%20y", strings.NewReader(`{"workspace":"w1"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("X-Custom", "one")
	req.Header.Add("X-Custom", "two")
	req.Header.Set("Cookie", "c1=v1; c2=v2")
	req.Header.Set("User-Agent", "waymark-test/1")
	before := time.Now()
	resp, _ := do(t, req)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	ev := rec.event

	if ev.Version != "2.0" || ev.RouteKey != "POST /v1/identify" || ev.RawPath != "/v1/identify" || ev.RawQueryString != "a=1&a=2&b=x%20y" {
		t.Errorf("event = %+v", ev)
	}
	if got := ev.QueryStringParameters; len(got) != 2 || got["a"] != "1,2" || got["b"] != "x y" {
		t.Errorf("queryStringParameters = %v", got)
	}
	if !slices.Equal(ev.Cookies, []string{"c1=v1", "c2=v2"}) {
		t.Errorf("cookies = %v", ev.Cookies)
	}
	for name := range ev.Headers {
		if name != strings.ToLower(name) {
			t.Errorf("header name %q is not lower case", name)
		}
	}
	srvHost := strings.TrimPrefix(srv.URL, "http://")
	for name, want := range map[string]string{
		"x-custom":          "one,two",
		"content-type":      "application/json",
		"user-agent":        "waymark-test/1",
		"host":              srvHost,
		"x-forwarded-for":   "127.0.0.1",
		"x-forwarded-proto": "http",
		"x-forwarded-port":  srvHost[strings.LastIndex(srvHost, ":")+1:],
	} {
		if got := ev.Headers[name]; got != want {
			t.Errorf("header %s = %q, want %q", name, got, want)
		}
	}
	if _, ok := ev.Headers["cookie"]; ok {
		t.Error("cookie header left in headers")
	}
	if !strings.HasPrefix(ev.Headers["x-amzn-trace-id"], "Root=1-") {
		t.Errorf("x-amzn-trace-id = %q", ev.Headers["x-amzn-trace-id"])
	}

	rc := ev.RequestContext
	if rc.RouteKey != ev.RouteKey || rc.Stage != "$default" || rc.AccountID != DefaultAccountID || rc.APIID != DefaultAPIID ||
		rc.DomainName != "127.0.0.1" || rc.DomainPrefix != "127" {
		t.Errorf("requestContext = %+v", rc)
	}
	if rc.RequestID == "" || rc.RequestID != resp.Header.Get("Apigw-Requestid") {
		t.Errorf("requestId %q, apigw-requestid header %q", rc.RequestID, resp.Header.Get("Apigw-Requestid"))
	}
	if h := rc.HTTP; h.Method != "POST" || h.Path != "/v1/identify" || h.Protocol != "HTTP/1.1" || h.SourceIP != "127.0.0.1" || h.UserAgent != "waymark-test/1" {
		t.Errorf("http = %+v", h)
	}
	at, err := time.Parse("02/Jan/2006:15:04:05 -0700", rc.Time)
	if err != nil || at.Before(before.Truncate(time.Second)) || at.After(time.Now()) {
		t.Errorf("time = %q (%v)", rc.Time, err)
	}
	if epoch := time.UnixMilli(rc.TimeEpoch); epoch.Before(before.Truncate(time.Millisecond)) || epoch.After(time.Now()) {
		t.Errorf("timeEpoch = %d", rc.TimeEpoch)
	}
	if ev.Body != `{"workspace":"w1"}` || ev.IsBase64Encoded {
		t.Errorf("body = %q, base64 %v", ev.Body, ev.IsBase64Encoded)
	}

	lc, ok := lambdacontext.FromContext(rec.ctx)
	if !ok || len(lc.AwsRequestID) != 36 || !strings.HasSuffix(lc.InvokedFunctionArn, ":function:identify") {
		t.Errorf("lambda context = %+v", lc)
	}
	if deadline, ok := rec.ctx.Deadline(); !ok || time.Until(deadline) > DefaultTimeout {
		t.Errorf("deadline = %v, %v", deadline, ok)
	}
}

func TestEventWithoutQueryOrBody(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.State.Name: rec.handle}, Options{})
	do(t, newRequest(t, "POST", srv.URL+"/v1/state", nil))
	if rec.event.QueryStringParameters != nil || rec.event.Cookies != nil || rec.event.Body != "" || rec.event.IsBase64Encoded {
		t.Errorf("event = %+v", rec.event)
	}
}

func TestRequestIDsAreUnique(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.State.Name: rec.handle}, Options{})
	seen := map[string]bool{}
	for range 50 {
		resp, _ := do(t, newRequest(t, "POST", srv.URL+"/v1/state", nil))
		id := resp.Header.Get("Apigw-Requestid")
		if len(id) != 16 || seen[id] {
			t.Fatalf("request id %q (seen before: %v)", id, seen[id])
		}
		seen[id] = true
	}
}

func TestBinaryBodyIsBase64Encoded(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.Feedback.Name: rec.handle}, Options{})
	body := []byte{0xff, 0xfe, 0x00, 'a'}
	do(t, newRequest(t, "POST", srv.URL+"/v1/feedback", bytes.NewReader(body)))
	if !rec.event.IsBase64Encoded {
		t.Fatal("binary body not flagged")
	}
	if got, err := base64.StdEncoding.DecodeString(rec.event.Body); err != nil || !bytes.Equal(got, body) {
		t.Errorf("body %q decodes to %v (%v)", rec.event.Body, got, err)
	}
}

func TestResponseIsWrittenAsAPIGatewayDoes(t *testing.T) {
	payload := []byte{0x00, 0x01, 0xff}
	rec := &recorder{resp: events.APIGatewayV2HTTPResponse{
		StatusCode: 201,
		Headers: map[string]string{
			"Content-Type":                "application/octet-stream",
			"X-Request-Id":                "abc",
			"Access-Control-Allow-Origin": "https://ignored.example",
			"Content-Length":              "999",
		},
		MultiValueHeaders: map[string][]string{"X-Multi": {"a", "b"}},
		Cookies:           []string{"s=1; Path=/; HttpOnly", "t=2"},
		Body:              base64.StdEncoding.EncodeToString(payload),
		IsBase64Encoded:   true,
	}}
	srv := serve(t, map[string]Handler{routes.Events.Name: rec.handle}, Options{})
	resp, body := do(t, newRequest(t, "POST", srv.URL+"/v1/events", nil))
	if resp.StatusCode != 201 || body != string(payload) {
		t.Errorf("status %d, body %q", resp.StatusCode, body)
	}
	if resp.Header.Get("Content-Type") != "application/octet-stream" || resp.Header.Get("X-Request-Id") != "abc" {
		t.Errorf("headers = %v", resp.Header)
	}
	if got := resp.Header.Values("X-Multi"); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("X-Multi = %v", got)
	}
	if got := resp.Header.Values("Set-Cookie"); !slices.Equal(got, []string{"s=1; Path=/; HttpOnly", "t=2"}) {
		t.Errorf("Set-Cookie = %v", got)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("function's CORS header passed through: %q", got)
	}
}

func TestNoContentTypeIsGuessed(t *testing.T) {
	rec := &recorder{resp: events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "<html><body>hi</body></html>"}}
	srv := serve(t, map[string]Handler{routes.State.Name: rec.handle}, Options{})
	resp, _ := do(t, newRequest(t, "POST", srv.URL+"/v1/state", nil))
	if got, ok := resp.Header["Content-Type"]; ok {
		t.Errorf("Content-Type %v added", got)
	}
}

func TestPreflightIsAnsweredWithoutFunction(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.Identify.Name: rec.handle}, Options{})
	for _, path := range []string{"/v1/identify", "/no/such/route"} {
		req := newRequest(t, "OPTIONS", srv.URL+path, nil)
		req.Header.Set("Origin", "https://app.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, body := do(t, req)
		if resp.StatusCode != http.StatusNoContent || body != "" {
			t.Errorf("%s: status %d, body %q", path, resp.StatusCode, body)
		}
		for name, want := range map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET,POST,OPTIONS",
			"Access-Control-Allow-Headers": "content-type",
			"Access-Control-Max-Age":       "86400",
		} {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", path, name, got, want)
			}
		}
		if resp.Header.Get("Apigw-Requestid") == "" {
			t.Errorf("%s: no apigw-requestid", path)
		}
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("function called %d times for preflights", n)
	}
}

func TestOptionsWithoutPreflightHeadersIsRouted(t *testing.T) {
	srv := serve(t, map[string]Handler{routes.Identify.Name: okRecorder().handle}, Options{})
	req := newRequest(t, "OPTIONS", srv.URL+"/v1/identify", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, body := do(t, req)
	if resp.StatusCode != 404 || body != `{"message":"Not Found"}` {
		t.Errorf("status %d, body %s", resp.StatusCode, body)
	}
	// The request carried an Origin, so even this answer is readable by the page.
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("no CORS header on 404")
	}
}

func TestCORSHeadersOnResponses(t *testing.T) {
	rec := okRecorder()
	rec.resp.Headers["Access-Control-Expose-Headers"] = "x-secret"
	srv := serve(t, map[string]Handler{routes.Identify.Name: rec.handle}, Options{})

	req := newRequest(t, "POST", srv.URL+"/v1/identify", nil)
	req.Header.Set("Origin", "https://app.example")
	resp, _ := do(t, req)
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "*" {
		t.Errorf("allow-origin = %q", got)
	}
	if got := resp.Header.Values("Access-Control-Expose-Headers"); !slices.Equal(got, []string{"x-request-id,retry-after"}) {
		t.Errorf("expose-headers = %v", got)
	}
	if resp.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Error("preflight headers on a plain response")
	}

	resp, _ = do(t, newRequest(t, "POST", srv.URL+"/v1/identify", nil))
	for name := range resp.Header {
		if strings.HasPrefix(strings.ToLower(name), "access-control-") {
			t.Errorf("%s sent to a request without Origin", name)
		}
	}
}

// TestCORSListedOrigins covers a configuration that lists origins instead of
// "*" (routes.CORS is swapped for the test).
func TestCORSListedOrigins(t *testing.T) {
	saved := routes.CORS
	t.Cleanup(func() { routes.CORS = saved })
	routes.CORS.AllowOrigins = []string{"https://app.example"}
	srv := serve(t, map[string]Handler{routes.Identify.Name: okRecorder().handle}, Options{})

	for origin, want := range map[string]string{"https://app.example": "https://app.example", "https://other.example": ""} {
		pre := newRequest(t, "OPTIONS", srv.URL+"/v1/identify", nil)
		pre.Header.Set("Origin", origin)
		pre.Header.Set("Access-Control-Request-Method", "POST")
		post := newRequest(t, "POST", srv.URL+"/v1/identify", nil)
		post.Header.Set("Origin", origin)
		for _, req := range []*http.Request{pre, post} {
			resp, _ := do(t, req)
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("%s from %s: allow-origin %q, want %q", req.Method, origin, got, want)
			}
			if want != "" && resp.Header.Get("Vary") != "Origin" {
				t.Errorf("%s from %s: no Vary: Origin", req.Method, origin)
			}
		}
	}
}

func TestUnknownRoutesAreNotFound(t *testing.T) {
	rec := okRecorder()
	// Only identify has a handler: state's route is not served.
	srv := serve(t, map[string]Handler{routes.Identify.Name: rec.handle}, Options{})
	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/nope"},
		{"GET", "/v1/identify"},
		{"POST", "/v1/identify/"},
		{"POST", "/v1/state"},
	} {
		resp, body := do(t, newRequest(t, c.method, srv.URL+c.path, nil))
		if resp.StatusCode != 404 || body != `{"message":"Not Found"}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %s", c.method, c.path, resp.StatusCode, body)
		}
	}
	if n := rec.calls.Load(); n != 0 {
		t.Errorf("function called %d times", n)
	}
}

func TestFunctionFailureIs500(t *testing.T) {
	for name, h := range map[string]Handler{
		"error": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200}, errors.New("boom")
		},
		"panic": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			panic("boom")
		},
		"no status": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{Body: "{}"}, nil
		},
		"bad base64": func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
			return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: "not base64!", IsBase64Encoded: true}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			srv := serve(t, map[string]Handler{routes.Events.Name: h}, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			resp, body := do(t, newRequest(t, "POST", srv.URL+"/v1/events", nil))
			if resp.StatusCode != 500 || body != `{"message":"Internal Server Error"}` || resp.Header.Get("Content-Type") != "application/json" {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
			if !strings.Contains(logs.String(), `"msg":"function failed"`) {
				t.Errorf("failure not logged: %s", logs.String())
			}
		})
	}
}

func TestBodyLimit(t *testing.T) {
	rec := okRecorder()
	srv := serve(t, map[string]Handler{routes.Feedback.Name: rec.handle}, Options{MaxBodyBytes: 16})

	resp, _ := do(t, newRequest(t, "POST", srv.URL+"/v1/feedback", strings.NewReader(strings.Repeat("a", 16))))
	if resp.StatusCode != 200 || rec.calls.Load() != 1 {
		t.Fatalf("body at the limit: %d", resp.StatusCode)
	}
	// Announced by Content-Length, and sent chunked with no length.
	for name, body := range map[string]io.Reader{
		"content-length": strings.NewReader(strings.Repeat("a", 17)),
		"chunked":        io.MultiReader(strings.NewReader(strings.Repeat("a", 17))),
	} {
		req := newRequest(t, "POST", srv.URL+"/v1/feedback", body)
		req.Header.Set("Origin", "https://app.example")
		resp, got := do(t, req)
		if resp.StatusCode != 413 || got != `{"message":"Request Entity Too Large"}` {
			t.Errorf("%s: %d %s", name, resp.StatusCode, got)
		}
		if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: 413 without CORS header", name)
		}
	}
	if n := rec.calls.Load(); n != 1 {
		t.Errorf("function called for bodies over the limit")
	}
}

func TestDefaultBodyLimitIs10MB(t *testing.T) {
	rec := okRecorder()
	h := New(map[string]Handler{routes.Feedback.Name: rec.handle}, Options{})
	for size, want := range map[int]int{DefaultMaxBodyBytes: 200, DefaultMaxBodyBytes + 1: 413} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/feedback", strings.NewReader(strings.Repeat("a", size))))
		if w.Code != want {
			t.Errorf("%d bytes: %d, want %d", size, w.Code, want)
		}
	}
}

func TestAccessLogCarriesNoUserData(t *testing.T) {
	var logs bytes.Buffer
	srv := serve(t, map[string]Handler{routes.Identify.Name: okRecorder().handle}, Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	req := newRequest(t, "POST", srv.URL+"/v1/identify?email=secret-query", strings.NewReader(`{"user":{"username":"secret-body"}}`))
	req.Header.Set("Authorization", "Bearer secret-header")
	req.Header.Set("Cookie", "session=secret-cookie")
	resp, _ := do(t, req)

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("%d log lines: %s", len(lines), logs.String())
	}
	if strings.Contains(lines[0], "secret") {
		t.Errorf("user data in access log: %s", lines[0])
	}
	var entry map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &entry); err != nil {
		t.Fatal(err)
	}
	if entry["method"] != "POST" || entry["route"] != "POST /v1/identify" || entry["status"] != float64(200) ||
		entry["requestId"] != resp.Header.Get("Apigw-Requestid") || entry["latency"] == nil {
		t.Errorf("log entry = %v", entry)
	}
}

func TestNewRejectsUnknownFunction(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("New accepted a handler no route calls")
		}
	}()
	New(map[string]Handler{"identfy": okRecorder().handle}, Options{})
}
