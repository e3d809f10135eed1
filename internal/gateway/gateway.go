// Package gateway is a local stand-in for the API Gateway HTTP API in front of
// Waymark's functions. It turns each HTTP request into the payload format 2.0
// event API Gateway sends a Lambda function, calls the function's handler in
// process, and writes the handler's response back the way API Gateway does,
// including API Gateway's own answers: CORS preflight, 404 for an unknown
// route, 413 for a body over the limit, 500 when a function fails.
//
// The route table and the CORS configuration come from internal/routes, the
// same values the CDK stack deploys.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/waymarkhq/waymark/internal/config"
	"github.com/waymarkhq/waymark/internal/routes"
)

// Handler is a Lambda function's handler for API Gateway HTTP API events.
type Handler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Options for New. The zero value is usable.
type Options struct {
	// MaxBodyBytes is the largest request body accepted; a larger one gets
	// 413 without reaching a function. Zero means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Timeout is the function timeout: the handler's context carries it as
	// its deadline, as Lambda's does. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives one access-log line per request (see logRequest).
	// Nil logs nothing.
	Logger *slog.Logger
	// AccountID and APIID fill the event's requestContext; defaults
	// DefaultAccountID and DefaultAPIID.
	AccountID string
	APIID     string
}

// Defaults for Options.
const (
	// DefaultMaxBodyBytes is API Gateway's payload quota for HTTP APIs,
	// 10 MB.
	DefaultMaxBodyBytes = 10 << 20
	// DefaultTimeout is the deployed functions' timeout.
	DefaultTimeout = config.FunctionTimeout
	// DefaultAccountID is the placeholder account of local events.
	DefaultAccountID = "123456789012"
	// DefaultAPIID names the local API in events.
	DefaultAPIID = "local"
)

// Route names for the access log when no route of the table was chosen.
const (
	logRoutePreflight = "(preflight)"
	logRouteNone      = "(none)"
)

type gateway struct {
	routes   map[string]route // by route key
	opts     Options
	arrivals atomic.Uint64 // requests received so far (see logRequest)
}

type route struct {
	key      string
	function string
	handler  Handler
}

// New serves the routes of routes.Table() with handlers, keyed by function
// name (routes.Function.Name). A route whose function has no handler is not
// served (404, as if it were not deployed), so a test may serve a subset. A
// handler for a function no route uses is a mistake in the caller and
// panics, as http.ServeMux does on a bad pattern.
func New(handlers map[string]Handler, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.APIID == "" {
		opts.APIID = DefaultAPIID
	}
	g := &gateway{routes: map[string]route{}, opts: opts}
	used := map[string]bool{}
	for _, r := range routes.Table() {
		used[r.Function] = true
		if h := handlers[r.Function]; h != nil {
			g.routes[r.RouteKey()] = route{key: r.RouteKey(), function: r.Function, handler: h}
		}
	}
	for name := range handlers {
		if !used[name] {
			panic(fmt.Sprintf("gateway: no route calls function %q", name))
		}
	}
	return g
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	seq := g.arrivals.Add(1)
	start := time.Now()
	id := newRequestID()
	w.Header().Set("Apigw-Requestid", id)
	status, logRoute := g.serve(w, r, id, start)
	g.logRequest(r, seq, id, logRoute, status, start)
}

// serve answers the request and returns the status sent and the route to log.
func (g *gateway) serve(w http.ResponseWriter, r *http.Request, id string, start time.Time) (int, string) {
	origin := corsOrigin(r)
	if isPreflight(r) {
		writePreflight(w, origin)
		return http.StatusNoContent, logRoutePreflight
	}
	rt, ok := g.routes[r.Method+" "+r.URL.Path]
	if !ok {
		return writeMessage(w, origin, http.StatusNotFound, "Not Found"), logRouteNone
	}
	if r.ContentLength > g.opts.MaxBodyBytes {
		return writeMessage(w, origin, http.StatusRequestEntityTooLarge, "Request Entity Too Large"), rt.key
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, g.opts.MaxBodyBytes+1))
	if err != nil {
		// The client went away or sent a broken body: API Gateway never
		// invokes the function for it.
		return writeMessage(w, origin, http.StatusBadRequest, "Bad Request"), rt.key
	}
	if int64(len(body)) > g.opts.MaxBodyBytes {
		return writeMessage(w, origin, http.StatusRequestEntityTooLarge, "Request Entity Too Large"), rt.key
	}

	event := g.event(r, rt.key, id, start, body)
	resp, respBody, err := g.invoke(r.Context(), rt, event)
	if err != nil {
		if g.opts.Logger != nil {
			g.opts.Logger.LogAttrs(r.Context(), slog.LevelError, "function failed",
				slog.String("function", rt.function), slog.String("requestId", id), slog.Any("error", err))
		}
		return writeMessage(w, origin, http.StatusInternalServerError, "Internal Server Error"), rt.key
	}
	writeResponse(w, origin, resp, respBody)
	return resp.StatusCode, rt.key
}

// invoke calls the handler as Lambda would: with a context that carries the
// invocation's Lambda context and the function timeout, and that is not
// cancelled when the client disconnects (Lambda runs the invocation to its
// end). A panic is the function failing, as the Lambda runtime reports it,
// and so are a handler still running at the timeout and a response API
// Gateway could not use. It returns the response
// and its decoded body.
func (g *gateway) invoke(ctx context.Context, rt route, event events.APIGatewayV2HTTPRequest) (resp events.APIGatewayV2HTTPResponse, body []byte, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.opts.Timeout)
	defer cancel()
	ctx = lambdacontext.NewContext(ctx, &lambdacontext.LambdaContext{
		AwsRequestID:       newUUID(),
		InvokedFunctionArn: fmt.Sprintf("arn:aws:lambda:local:%s:function:%s", g.opts.AccountID, rt.function),
	})
	// Lambda ends an invocation at its timeout, whether or not the handler
	// returns, and API Gateway answers for the failed function.
	type answer struct {
		resp events.APIGatewayV2HTTPResponse
		err  error
	}
	answered := make(chan answer, 1)
	go func() {
		var a answer
		defer func() {
			if p := recover(); p != nil {
				a.err = fmt.Errorf("panic: %v", p)
			}
			answered <- a
		}()
		a.resp, a.err = rt.handler(ctx, event)
	}()
	select {
	case a := <-answered:
		resp, err = a.resp, a.err
	case <-ctx.Done():
		return resp, nil, fmt.Errorf("the function timed out after %s", g.opts.Timeout)
	}
	if err != nil {
		return resp, nil, err
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return resp, nil, fmt.Errorf("malformed response: status code %d", resp.StatusCode)
	}
	body = []byte(resp.Body)
	if resp.IsBase64Encoded {
		if body, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return resp, nil, fmt.Errorf("malformed response: body flagged base64: %w", err)
		}
	}
	return resp, body, nil
}

// event builds the payload format 2.0 event for the request.
func (g *gateway) event(r *http.Request, routeKey, id string, at time.Time, body []byte) events.APIGatewayV2HTTPRequest {
	sourceIP := r.RemoteAddr
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		sourceIP = host
	}
	domain := r.Host
	if host, _, err := net.SplitHostPort(r.Host); err == nil {
		domain = host
	}
	prefix, _, _ := strings.Cut(domain, ".")

	headers, cookies := eventHeaders(r, sourceIP)
	ev := events.APIGatewayV2HTTPRequest{
		Version:        "2.0",
		RouteKey:       routeKey,
		RawPath:        r.URL.EscapedPath(),
		RawQueryString: r.URL.RawQuery,
		Cookies:        cookies,
		Headers:        headers,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     routeKey,
			AccountID:    g.opts.AccountID,
			Stage:        "$default",
			RequestID:    id,
			APIID:        g.opts.APIID,
			DomainName:   domain,
			DomainPrefix: prefix,
			Time:         at.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    at.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	// API Gateway joins a repeated parameter's values with commas; the
	// event has no parameters at all when the query is empty.
	if query, _ := url.ParseQuery(r.URL.RawQuery); len(query) > 0 {
		ev.QueryStringParameters = make(map[string]string, len(query))
		for k, vs := range query {
			ev.QueryStringParameters[k] = strings.Join(vs, ",")
		}
	}
	// A body that is text goes as it is; anything else is base64-encoded
	// and flagged, as API Gateway does for binary payloads.
	if utf8.Valid(body) {
		ev.Body = string(body)
	} else {
		ev.Body = base64.StdEncoding.EncodeToString(body)
		ev.IsBase64Encoded = true
	}
	return ev
}

// eventHeaders lower-cases header names and joins a repeated header's values
// with commas, as payload format 2.0 does. Cookies leave the headers for the
// event's cookies list. net/http keeps Host apart, so it is put back, and the
// forwarding headers API Gateway adds for the function are added.
func eventHeaders(r *http.Request, sourceIP string) (map[string]string, []string) {
	headers := make(map[string]string, len(r.Header)+5)
	var cookies []string
	for name, values := range r.Header {
		name = strings.ToLower(name)
		if name == "cookie" {
			for _, v := range values {
				for c := range strings.SplitSeq(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[name] = strings.Join(values, ",")
	}
	headers["host"] = r.Host
	if prior := headers["x-forwarded-for"]; prior != "" {
		headers["x-forwarded-for"] = prior + ", " + sourceIP
	} else {
		headers["x-forwarded-for"] = sourceIP
	}
	headers["x-forwarded-proto"] = "http"
	if r.TLS != nil {
		headers["x-forwarded-proto"] = "https"
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, port, err := net.SplitHostPort(addr.String()); err == nil {
			headers["x-forwarded-port"] = port
		}
	}
	headers["x-amzn-trace-id"] = newTraceID()
	return headers, cookies
}

// writeResponse writes a function's response as API Gateway does: its status,
// headers (single and multi-valued), cookies as Set-Cookie, and body (already
// base64-decoded when flagged). API Gateway drops the CORS headers a function
// sets when the API has a CORS configuration and sets its own, so this does
// too.
func writeResponse(w http.ResponseWriter, origin string, resp events.APIGatewayV2HTTPResponse, body []byte) {
	h := w.Header()
	for name, value := range resp.Headers {
		if passThrough(name) {
			h.Set(name, value)
		}
	}
	for name, values := range resp.MultiValueHeaders {
		if passThrough(name) {
			for _, v := range values {
				h.Add(name, v)
			}
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if _, ok := h["Content-Type"]; !ok {
		// Send no Content-Type rather than one net/http guesses from the
		// body: the function said none.
		h["Content-Type"] = nil
	}
	setCORS(h, origin)
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// passThrough says whether a function's response header reaches the client:
// not CORS headers (see writeResponse) and not Content-Length, which is the
// body's.
func passThrough(name string) bool {
	name = strings.ToLower(name)
	return !strings.HasPrefix(name, "access-control-") && name != "content-length"
}

// writeMessage writes one of API Gateway's own answers, {"message": text};
// text is one of a few fixed phrases that need no JSON escaping.
func writeMessage(w http.ResponseWriter, origin string, status int, text string) int {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	setCORS(h, origin)
	w.WriteHeader(status)
	io.WriteString(w, `{"message":"`+text+`"}`)
	return status
}

func newRequestID() string {
	// API Gateway's ids are 11 random bytes, base64: 16 characters.
	b := make([]byte, 11)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// newTraceID makes an X-Ray trace header: Root=1-<epoch seconds in hex>-<96
// random bits>.
func newTraceID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return fmt.Sprintf("Root=1-%08x-%s", time.Now().Unix(), hex.EncodeToString(b))
}
