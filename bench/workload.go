package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/waymarkhq/waymark/internal/apigw"
	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/dynamo"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
	"github.com/waymarkhq/waymark/internal/wiring"
)

// graph is one wired Waymark, as one warm Lambda instance holds it: its own
// clients, data-key cache and workspace cache. It is wired like
// wiring.New, with the probe on its clients and, for the in-process
// benchmarks, an in-memory transport under them.
type graph struct {
	handlers map[string]apigw.Handler
	store    *dynamo.Store
	db       *dynamodb.Client
}

type graphOptions struct {
	// capacity asks DynamoDB for the capacity each operation consumed.
	capacity bool
	// transport, when set, carries both clients' HTTP requests.
	transport http.RoundTripper
	// now, when set, is the service's clock.
	now func() time.Time
}

func newGraph(ctx context.Context, cfg config.Config, opts graphOptions) (*graph, error) {
	db, kmsClient, err := cfg.Clients(ctx)
	if err != nil {
		return nil, err
	}
	p := probe{capacity: opts.capacity}
	db = dynamodb.New(db.Options(), p.dynamoOption, func(o *dynamodb.Options) {
		if opts.transport != nil {
			o.HTTPClient = &http.Client{Transport: opts.transport}
		}
	})
	kmsClient = kms.New(kmsClient.Options(), p.kmsOption, func(o *kms.Options) {
		if opts.transport != nil {
			o.HTTPClient = &http.Client{Transport: opts.transport}
		}
	})
	store, _ := wiring.SealedStore(db, kmsClient, cfg)
	svc := service.New(store, service.Options{Now: opts.now})
	// A Lambda logs each request as JSON to stdout; the same logger
	// writing nowhere keeps its cost in the figures.
	api := apigw.New(svc, wiring.Logger(io.Discard, "info"))
	return &graph{handlers: api.Handlers(), store: store, db: db}, nil
}

// request is one API Gateway v2 event for a function, and the user it acts
// for (its key in the tables is what the floor swaps for its shadow's).
type request struct {
	function string
	username string
	event    events.APIGatewayV2HTTPRequest
}

// apiEvent builds the event API Gateway sends for a POST from the snippet:
// a text/plain body (no CORS preflight), the browser's headers.
func apiEvent(path string, body any) events.APIGatewayV2HTTPRequest {
	b, err := json.Marshal(body)
	if err != nil {
		panic(err)
	}
	routeKey := "POST " + path
	now := time.Now()
	return events.APIGatewayV2HTTPRequest{
		Version: "2.0", RouteKey: routeKey, RawPath: path, Body: string(b),
		Headers: map[string]string{
			"content-type":      "text/plain;charset=UTF-8",
			"origin":            "https://app.example.com",
			"user-agent":        userAgent,
			"accept":            "*/*",
			"host":              "api.example.com",
			"x-forwarded-for":   "203.0.113.7",
			"x-forwarded-proto": "https",
		},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: waymark.NewID(), Stage: "$default", RouteKey: routeKey, AccountID: "123456789012", APIID: "bench",
			DomainName: "api.example.com", Time: now.UTC().Format("02/Jan/2006:15:04:05 -0700"), TimeEpoch: now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method: "POST", Path: path, Protocol: "HTTP/1.1", SourceIP: "203.0.113.7", UserAgent: userAgent,
			},
		},
	}
}

const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"

// workload builds the bodies the snippet sends for one workspace.
type workload struct {
	workspace string
}

// profile is a typical user information object: every standard field and a
// handful of props.
func profile(username string, plan string) map[string]any {
	return map[string]any{
		"username": username, "email": username, "firstname": "Ada", "lastname": "Lovelace", "role": "admin",
		"signUpAt": "2025-11-03T09:12:44Z",
		"props":    map[string]any{"plan": plan, "company": "Analytical Engines GmbH", "seats": 12, "beta": true, "locale": "de-DE"},
	}
}

// script is a browser's GET /waymark.js, as the printed script tag makes it.
func (w workload) script() request {
	r := request{function: "snippet", event: apiEvent("/waymark.js", nil)}
	ev := &r.event
	ev.RouteKey, ev.Body = "GET /waymark.js", ""
	ev.RequestContext.RouteKey, ev.RequestContext.HTTP.Method = ev.RouteKey, "GET"
	delete(ev.Headers, "content-type")
	ev.Headers["accept-encoding"] = "gzip, deflate, br"
	return r
}

func (w workload) identify(username, plan string) request {
	return request{"identify", username, apiEvent("/v1/identify", map[string]any{"workspace": w.workspace, "user": profile(username, plan)})}
}

// identifyGroup is identify naming the user's group (a B2B account) with
// the group's plan among its props.
func (w workload) identifyGroup(username, group, groupPlan string) request {
	user := profile(username, "pro")
	user["group"] = map[string]any{"id": group, "props": map[string]any{"plan": groupPlan, "seats": 40}}
	return request{"identify", username, apiEvent("/v1/identify", map[string]any{"workspace": w.workspace, "user": user})}
}

func (w workload) state(username string) request {
	return request{"state", username, apiEvent("/v1/state", map[string]any{"workspace": w.workspace, "username": username})}
}

// event is one snippet event; kinds rotate so a batch touches every kind.
func event(id string, content int, at time.Time) map[string]any {
	kinds := []struct{ kind, action, extra, value string }{
		{"tour", "advanced", "step", "card-2"},
		{"hint", "displayed", "", ""},
		{"announcement", "read", "", ""},
		{"checklist", "item_completed", "item", "invite-team"},
		{"survey", "displayed", "", ""},
	}
	k := kinds[content%len(kinds)]
	ev := map[string]any{"id": id, "content": k.kind, "contentId": fmt.Sprintf("%s-%d", k.kind, content), "action": k.action, "at": at.UTC().Format(time.RFC3339Nano)}
	if k.extra != "" {
		ev[k.extra] = k.value
	}
	return ev
}

// events sends n events spread over the given number of content items,
// with ids made from prefix.
func (w workload) events(username, prefix string, n, contents int) request {
	at := time.Now().Add(-time.Second)
	evs := make([]any, n)
	for i := range n {
		evs[i] = event(fmt.Sprintf("%s-%d", prefix, i), i%contents, at.Add(time.Duration(i)*time.Millisecond))
	}
	return request{"events", username, apiEvent("/v1/events", map[string]any{"workspace": w.workspace, "username": username, "events": evs})}
}

// event1 sends one event on one of five content items.
func (w workload) event1(username, id string, content int) request {
	return request{"events", username, apiEvent("/v1/events", map[string]any{
		"workspace": w.workspace, "username": username, "events": []any{event(id, content, time.Now().Add(-time.Second))},
	})}
}

func (w workload) feedback(username string) request {
	return request{"feedback", username, apiEvent("/v1/feedback", map[string]any{
		"workspace": w.workspace, "username": username, "rating": 8, "category": "idea",
		"text": "The export button is hard to find: I looked for it in the settings first, then in the menu, and only found it after the tour pointed at it. Could it sit next to the share button?",
		"environment": map[string]any{
			"url": "https://app.example.com/projects/42/reports?tab=export", "userAgent": userAgent,
			"language": "de-DE", "platform": "Linux x86_64", "viewportWidth": 1440, "viewportHeight": 900,
		},
	})}
}

// serve invokes a function's handler in process, recording the SDK calls it
// makes into rec, and fails on any answer other than 2xx.
func (g *graph) serve(ctx context.Context, r request, rec *recorder) (events.APIGatewayV2HTTPResponse, error) {
	if rec != nil {
		ctx = withRecorder(ctx, rec)
	}
	resp, err := g.handlers[r.function](ctx, r.event)
	if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) {
		err = fmt.Errorf("%s answered %d: %.300s", r.function, resp.StatusCode, resp.Body)
	}
	return resp, err
}

// serverIdentify is a customer's backend identifying a user with a secret
// key: the server function's request.
func (w workload) serverIdentify(username, key string) request {
	r := request{"server", username, apiEvent("/v1/server/identify", map[string]any{"user": profile(username, "pro")})}
	r.event.Headers["authorization"] = "Bearer " + key
	r.event.Headers["content-type"] = "application/json"
	delete(r.event.Headers, "origin")
	return r
}
