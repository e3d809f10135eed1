// Package apigw adapts the service to API Gateway HTTP API events (payload
// format 2.0): it decodes and limits the body, calls the service, and maps
// every error to its one HTTP status and the one error shape.
package apigw

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/routes"
	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/snippetjs"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// Handler is a Lambda handler for API Gateway HTTP API events.
type Handler func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// API serves the public routes.
type API struct {
	svc *service.Service
	log *slog.Logger
}

// New builds an API over the service, logging to log.
func New(svc *service.Service, log *slog.Logger) *API {
	return &API{svc: svc, log: log}
}

// endpoint turns a request (its body already read and limited) into the
// value to answer with.
type endpoint func(ctx context.Context, call service.Call, req events.APIGatewayV2HTTPRequest, body []byte) (any, error)

// route is how one route is served: its endpoint and its success status.
type route struct {
	endpoint endpoint
	status   int
}

// routesOf maps each route key of a function to how it is served.
func (a *API) routesOf(function string) map[string]route {
	byFunction := map[string]route{
		"POST /v1/identify":               {decodeAndCall(a.svc.Identify), http.StatusOK},
		"POST /v1/events":                 {decodeAndCall(a.svc.RecordEvents), http.StatusOK},
		"POST /v1/state":                  {decodeAndCall(a.svc.State), http.StatusOK},
		"POST /v1/feedback":               {decodeAndCall(a.svc.SubmitFeedback), http.StatusCreated},
		"POST /v1/feedback/attachments":   {decodeAndCall(a.svc.CreateAttachment), http.StatusCreated},
		"POST /v1/server/identify":        {decodeAndCall(a.svc.ServerIdentify), http.StatusOK},
		"GET /v1/server/feedback":         {a.listFeedback, http.StatusOK},
		"POST /v1/server/users/export":    {decodeAndCall(a.svc.ExportUser), http.StatusOK},
		"POST /v1/server/users/delete":    {decodeAndCall(a.svc.EraseUsers), http.StatusOK},
		"POST /v1/server/users/import":    {a.importUsers, http.StatusOK},
		"GET /v1/server/analytics":        {a.analytics, http.StatusOK},
		"POST /v1/server/groups/identify": {decodeAndCall(a.svc.IdentifyGroup), http.StatusOK},
		"POST /v1/server/groups/export":   {decodeAndCall(a.svc.ExportGroup), http.StatusOK},
		"POST /v1/server/groups/delete":   {decodeAndCall(a.svc.EraseGroups), http.StatusOK},
	}
	out := map[string]route{}
	for _, r := range routes.Table() {
		if r.Function != function {
			continue
		}
		served, ok := byFunction[r.RouteKey()]
		if !ok {
			panic("apigw: no endpoint for route " + r.RouteKey())
		}
		out[r.RouteKey()] = served
	}
	if len(out) == 0 {
		panic("apigw: no route for function " + function)
	}
	return out
}

// Handler returns the handler of one function of the route table.
func (a *API) Handler(function string) Handler {
	if function == routes.Snippet.Name {
		// A static file, not the service: no body, no JSON, no store.
		return snippetjs.Handle
	}
	served := a.routesOf(function)
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r, ok := served[req.RouteKey]
		if !ok {
			// API Gateway sends a function only its own routes; anything
			// else is a misconfiguration, answered like an unknown route.
			r = route{endpoint: func(context.Context, service.Call, events.APIGatewayV2HTTPRequest, []byte) (any, error) {
				// Not an *waymark.Error: the caller gets a bare internal
				// error, the log gets the route.
				return nil, fmt.Errorf("apigw: route %q is not served by function %s", req.RouteKey, function)
			}}
		}
		return a.serve(ctx, req, r), nil
	}
}

// Handlers returns the handler of every function, by function name.
func (a *API) Handlers() map[string]Handler {
	out := map[string]Handler{}
	for _, f := range routes.Functions() {
		out[f.Name] = a.Handler(f.Name)
	}
	return out
}

func decodeAndCall[Req any, Resp any](call func(context.Context, service.Call, *Req) (Resp, error)) endpoint {
	return func(ctx context.Context, c service.Call, _ events.APIGatewayV2HTTPRequest, body []byte) (any, error) {
		var req Req
		if err := decodeJSON(body, &req); err != nil {
			return nil, err
		}
		return call(ctx, c, &req)
	}
}

// listFeedback reads its arguments from the query string.
func (a *API) listFeedback(ctx context.Context, c service.Call, req events.APIGatewayV2HTTPRequest, _ []byte) (any, error) {
	q := req.QueryStringParameters
	for name := range q {
		if name != "since" && name != "limit" && name != "cursor" {
			return nil, waymark.Invalid(name, "unknown query parameter")
		}
	}
	return a.svc.ListFeedback(ctx, c, service.FeedbackQuery{Since: q["since"], Limit: q["limit"], Cursor: q["cursor"]})
}

// analytics reads its arguments from the query string.
func (a *API) analytics(ctx context.Context, c service.Call, req events.APIGatewayV2HTTPRequest, _ []byte) (any, error) {
	q := req.QueryStringParameters
	for name := range q {
		if name != "content" && name != "contentId" && name != "from" && name != "to" {
			return nil, waymark.Invalid(name, "unknown query parameter")
		}
	}
	return a.svc.Analytics(ctx, c, service.AnalyticsQuery{Content: q["content"], ContentID: q["contentId"], From: q["from"], To: q["to"]})
}

func (a *API) serve(ctx context.Context, req events.APIGatewayV2HTTPRequest, r route) events.APIGatewayV2HTTPResponse {
	start := time.Now()
	requestID := req.RequestContext.RequestID
	if requestID == "" {
		requestID = waymark.NewID()
	}
	call := service.Call{Origin: header(req.Headers, "origin"), RequestID: requestID, Authorization: header(req.Headers, "authorization")}

	result, err := func() (any, error) {
		body, err := readBody(req, bodyLimit(req.RouteKey))
		if err != nil {
			return nil, err
		}
		if err := checkContentType(header(req.Headers, "content-type")); err != nil {
			return nil, err
		}
		// The endpoint recovers its own panics (with their stack) inside the
		// deadline's goroutine.
		return withinDeadline(ctx, func(ctx context.Context) (any, error) { return a.callEndpoint(ctx, r.endpoint, call, req, body) })
	}()

	status := r.status
	var payload any = result
	code := ""
	if err != nil {
		appErr := waymark.AsError(err)
		status, code = StatusOf(appErr.Code), appErr.Code
		payload = errorBody{Error: errorDetail{Code: appErr.Code, Message: appErr.Message, Field: appErr.Field}}
		if code == waymark.EInternal || code == waymark.EUnavailable || code == waymark.EThrottled {
			// The cause goes to the log only; it never carries request
			// data, only what failed.
			a.log.ErrorContext(ctx, "request failed", "requestId", requestID, "route", req.RouteKey, "code", code, "error", err.Error())
		}
	}
	resp := jsonResponse(status, payload, requestID)
	if err != nil {
		if after := waymark.AsError(err).RetryAfter; after > 0 {
			resp.Headers["retry-after"] = strconv.Itoa(int((after + time.Second - 1) / time.Second))
		}
	}
	a.log.InfoContext(ctx, "request", "requestId", requestID, "route", req.RouteKey, "status", status,
		"code", code, "ms", float64(time.Since(start).Microseconds())/1000)
	return resp
}

// callEndpoint calls an endpoint, turning a panic in it into an internal
// error: a panic must not end the process (a Lambda instance, or `waymark
// dev` with every request in flight). The stack of a panic, here or in a
// goroutine the service started for the request, goes to the log only.
func (a *API) callEndpoint(ctx context.Context, ep endpoint, call service.Call, req events.APIGatewayV2HTTPRequest, body []byte) (result any, err error) {
	defer func() {
		if p := recover(); p != nil {
			result, err = nil, service.Recovered(p)
		}
		var panicked *service.PanicError
		if errors.As(err, &panicked) {
			a.log.ErrorContext(ctx, "panic", "requestId", call.RequestID, "route", req.RouteKey, "error", panicked.Error(), "stack", string(panicked.Stack))
		}
	}()
	return ep(ctx, call, req, body)
}

type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// StatusOf is the one place an error code becomes an HTTP status.
func StatusOf(code string) int {
	switch code {
	case waymark.EInvalidJSON, waymark.EInvalidArgument:
		return http.StatusBadRequest
	case waymark.EHMACInvalid, waymark.EHMACExpired, waymark.EUnauthorized:
		return http.StatusUnauthorized
	case waymark.EOriginNotAllowed, waymark.EWorkspaceDisabled:
		return http.StatusForbidden
	case waymark.EUnknownWorkspace:
		return http.StatusNotFound
	case waymark.EPayloadTooLarge:
		return http.StatusRequestEntityTooLarge
	case waymark.EUnsupportedMediaType:
		return http.StatusUnsupportedMediaType
	case waymark.EThrottled:
		return http.StatusTooManyRequests
	case waymark.EUnavailable:
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

func jsonResponse(status int, payload any, requestID string) events.APIGatewayV2HTTPResponse {
	body, err := json.Marshal(payload)
	if err != nil {
		status = http.StatusInternalServerError
		body = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	return events.APIGatewayV2HTTPResponse{
		StatusCode: status,
		Headers: map[string]string{
			"content-type":  "application/json",
			"cache-control": "no-store",
			"x-request-id":  requestID,
		},
		Body: string(body),
	}
}

// header reads a header; API Gateway lower-cases header names in v2 events.
func header(h map[string]string, name string) string {
	if v, ok := h[name]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func readBody(req events.APIGatewayV2HTTPRequest, limit int) ([]byte, error) {
	tooLarge := waymark.Errorf(waymark.EPayloadTooLarge, "request body is larger than %d bytes", limit)
	if !req.IsBase64Encoded {
		if len(req.Body) > limit {
			return nil, tooLarge
		}
		return []byte(req.Body), nil
	}
	if base64.StdEncoding.DecodedLen(len(req.Body)) > limit+2 {
		return nil, tooLarge
	}
	body, err := base64.StdEncoding.DecodeString(req.Body)
	if err != nil {
		return nil, waymark.Errorf(waymark.EInvalidJSON, "request body is not valid base64")
	}
	if len(body) > limit {
		return nil, tooLarge
	}
	return body, nil
}

// checkContentType accepts JSON sent as application/json, and as text/plain,
// the type browsers may send across origins without a preflight request: the
// snippet uses it so that a page load costs one request, not two.
func checkContentType(contentType string) error {
	if contentType == "" {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err == nil && (mediaType == "application/json" || mediaType == "text/plain") {
		return nil
	}
	return waymark.Errorf(waymark.EUnsupportedMediaType, "send the body as application/json (or text/plain)")
}

// decodeJSON decodes strictly: unknown fields, trailing data and wrong types
// are errors that name the field; text the decoder would alter (invalid
// UTF-8, unpaired surrogate escapes) is refused before it is decoded.
func decodeJSON(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return waymark.Errorf(waymark.EInvalidJSON, "request body is empty")
	}
	if err := waymark.CheckJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return waymark.Errorf(waymark.EInvalidJSON, "request body has data after the JSON object")
	}
	return nil
}

func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		field := typeErr.Field
		if field == "" {
			return waymark.Errorf(waymark.EInvalidArgument, "request body must be a JSON object")
		}
		return waymark.Invalid(field, "must be %s", jsonTypeName(typeErr.Type.Kind().String()))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		field, _ := strconv.Unquote(name)
		return waymark.Invalid(field, "unknown field")
	}
	return waymark.Errorf(waymark.EInvalidJSON, "request body is not valid JSON")
}

func jsonTypeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64":
		return "an integer"
	case "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return "of another type"
}
