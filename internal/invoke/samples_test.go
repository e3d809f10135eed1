package invoke_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/routes"
)

// samplesDir holds the saved events, from this package's directory.
const samplesDir = "../../events-samples"

// manifest is events-samples/manifest.json: the saved events and what each
// must answer.
type manifest struct {
	About   string   `json:"about"`
	Samples []sample `json:"samples"`
}

type sample struct {
	// Event is the file of the API Gateway HTTP API (payload 2.0) event.
	Event string `json:"event"`
	// Function is the function of the event's route.
	Function string `json:"function"`
	// Status is the function's statusCode.
	Status int `json:"status"`
	// Error and Field are error.code and error.field of the answer.
	Error string `json:"error"`
	Field string `json:"field"`
	// Sends is how many times the event is sent in a row (0: once).
	Sends int `json:"sends"`
	// LastBody holds top-level fields the last answer's body must have.
	LastBody map[string]any `json:"lastBody"`
	// Shows says what the sample demonstrates.
	Shows string `json:"shows"`
}

func (s sample) happy() bool { return s.Status >= 200 && s.Status < 300 }

func loadManifest(t testing.TB) *manifest {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samplesDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	return &m
}

// loadEvent reads a saved event strictly: a field the payload 2.0 event does
// not have is a typo that API Gateway would never send.
func loadEvent(t testing.TB, name string) ([]byte, events.APIGatewayV2HTTPRequest) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(samplesDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&ev); err != nil {
		t.Fatalf("%s: not an API Gateway payload 2.0 event: %v", name, err)
	}
	return raw, ev
}

func routeByKey() map[string]routes.Route {
	byKey := map[string]routes.Route{}
	for _, r := range routes.Table() {
		byKey[r.RouteKey()] = r
	}
	return byKey
}

// TestSamplesAreGatewayEvents checks that every saved event is listed once in
// the manifest and carries what API Gateway really sends for its route.
func TestSamplesAreGatewayEvents(t *testing.T) {
	m := loadManifest(t)
	files, err := filepath.Glob(filepath.Join(samplesDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range m.Samples {
		if listed[s.Event] {
			t.Errorf("%s is listed twice in the manifest", s.Event)
		}
		listed[s.Event] = true
	}
	for _, f := range files {
		if name := filepath.Base(f); name != "manifest.json" && !listed[name] {
			t.Errorf("%s is not in the manifest", name)
		}
	}
	byKey := routeByKey()
	for _, s := range m.Samples {
		t.Run(s.Event, func(t *testing.T) {
			_, ev := loadEvent(t, s.Event)
			route, ok := byKey[ev.RouteKey]
			if !ok {
				t.Fatalf("routeKey %q is not a route of the table", ev.RouteKey)
			}
			if route.Function != s.Function {
				t.Errorf("the manifest says function %q, the route's is %q", s.Function, route.Function)
			}
			reqHTTP := ev.RequestContext.HTTP
			checks := []struct {
				what      string
				got, want string
			}{
				{"version", ev.Version, "2.0"},
				{"rawPath", ev.RawPath, route.Path},
				{"requestContext.routeKey", ev.RequestContext.RouteKey, ev.RouteKey},
				{"requestContext.stage", ev.RequestContext.Stage, "$default"},
				{"requestContext.http.method", reqHTTP.Method, route.Method},
				{"requestContext.http.path", reqHTTP.Path, route.Path},
				{"requestContext.http.userAgent", reqHTTP.UserAgent, ev.Headers["user-agent"]},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
				}
			}
			for name := range ev.Headers {
				if name != strings.ToLower(name) {
					t.Errorf("header %q: payload 2.0 lower-cases header names", name)
				}
			}
			// A browser sends an Origin; a customer's backend, calling the
			// server API, sends its key instead. A GET has no body.
			want := []string{"user-agent", "host"}
			if ev.Headers["authorization"] == "" {
				want = append(want, "origin")
			}
			if reqHTTP.Method != "GET" {
				want = append(want, "content-type", "content-length")
				if ev.Body == "" {
					t.Error("no body")
				}
				if got := ev.Headers["content-length"]; got != strconv.Itoa(len(ev.Body)) {
					t.Errorf("content-length %s, the body has %d bytes", got, len(ev.Body))
				}
			}
			for _, h := range want {
				if ev.Headers[h] == "" {
					t.Errorf("no %s header", h)
				}
			}
			for what, v := range map[string]string{
				"requestContext.requestId": ev.RequestContext.RequestID, "requestContext.http.sourceIp": reqHTTP.SourceIP,
				"requestContext.http.protocol": reqHTTP.Protocol, "requestContext.time": ev.RequestContext.Time,
				"requestContext.apiId": ev.RequestContext.APIID, "requestContext.accountId": ev.RequestContext.AccountID,
			} {
				if v == "" {
					t.Errorf("%s is empty", what)
				}
			}
			query, err := url.ParseQuery(ev.RawQueryString)
			if err != nil {
				t.Errorf("rawQueryString: %v", err)
			}
			for k := range query {
				if ev.QueryStringParameters[k] != strings.Join(query[k], ",") {
					t.Errorf("queryStringParameters[%q] = %q, rawQueryString has %q", k, ev.QueryStringParameters[k], query[k])
				}
			}
			if len(query) != len(ev.QueryStringParameters) {
				t.Errorf("queryStringParameters %v do not match rawQueryString %q", ev.QueryStringParameters, ev.RawQueryString)
			}
			if ev.RequestContext.TimeEpoch == 0 {
				t.Error("requestContext.timeEpoch is missing")
			}
			if s.happy() != (s.Error == "") {
				t.Errorf("status %d with error %q: a 2xx has no error code, any other status has one", s.Status, s.Error)
			}
			if s.Error != "" && apigw.StatusOf(s.Error) != s.Status {
				t.Errorf("error %q is status %d, not %d", s.Error, apigw.StatusOf(s.Error), s.Status)
			}
			if s.Shows == "" {
				t.Error("the manifest does not say what the sample shows")
			}
		})
	}
}

// TestEveryRouteHasAHappyPathSample fails when a route of the table has no
// saved event answered with a 2xx, or a function has no <function>.json.
func TestEveryRouteHasAHappyPathSample(t *testing.T) {
	m := loadManifest(t)
	happy := map[string]bool{} // by route key
	files := map[string]sample{}
	for _, s := range m.Samples {
		files[s.Event] = s
		if !s.happy() {
			continue
		}
		_, ev := loadEvent(t, s.Event)
		happy[ev.RouteKey] = true
	}
	for _, r := range routes.Table() {
		if !happy[r.RouteKey()] {
			t.Errorf("route %s (function %s) has no happy-path sample in events-samples/manifest.json", r.RouteKey(), r.Function)
		}
	}
	for _, f := range routes.Functions() {
		name := f.Name + ".json"
		s, ok := files[name]
		// TestSamplesAreGatewayEvents checks that the event's route is the
		// function's.
		if !ok || !s.happy() || s.Function != f.Name {
			t.Errorf("function %s: %s should be its happy path (in the manifest, with a 2xx status)", f.Name, name)
		}
	}
}
