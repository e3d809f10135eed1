// Package apispec checks requests and responses against the published API
// description (docs/openapi.yaml), so that tests notice when the server and
// the document drift apart.
package apispec

import (
	"bytes"
	"context"
	"fmt"
	"mime"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/waymarkhq/waymark/docs"
)

// baseURL is the document's local server (`make dev`). Routes are matched
// against the document's servers, so requests are checked as if sent there;
// callers pass only the path.
const baseURL = "http://127.0.0.1:3000"

// Validator checks requests and responses against docs/openapi.yaml. It is
// safe for concurrent use.
type Validator struct {
	router routers.Router
}

// load parses and validates the document once per process: every test that
// checks a call shares the result.
var load = sync.OnceValues(func() (*Validator, error) {
	// GET /waymark.js answers with a script, read as the string the
	// document declares.
	openapi3filter.RegisterBodyDecoder("text/javascript", openapi3filter.PlainBodyDecoder)
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(docs.OpenAPI)
	if err != nil {
		return nil, fmt.Errorf("apispec: loading docs/openapi.yaml: %w", err)
	}
	// The legacy router validates the document (schemas, examples, refs)
	// before building its routes. It is used rather than the gorilla/mux one
	// because the paths are static and it needs no extra dependency.
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("apispec: docs/openapi.yaml: %w", err)
	}
	return &Validator{router: router}, nil
})

// New returns the validator of docs/openapi.yaml, after checking that the
// document itself is valid. The document is loaded only once.
func New() (*Validator, error) {
	return load()
}

// Check validates one call: the request, then the response. The route
// (method and path) must be documented, and so must the response's status
// for that operation; the response's headers and body must match what the
// document says for that status.
//
// The request body must match its schema unless the response is a 4xx:
// a client error is how the server answers a request it refuses, so tests
// that send malformed, oversized or otherwise invalid bodies can still check
// the error response. A 2xx or 5xx answer to a body the document rejects is
// a failure, as the server must refuse such input with a 4xx.
func (v *Validator) Check(method, path string, reqHeaders http.Header, reqBody []byte, status int, respHeaders http.Header, respBody []byte) error {
	req, err := http.NewRequest(method, baseURL+path, bytes.NewReader(reqBody))
	if err != nil {
		return fmt.Errorf("apispec: %s %s: %w", method, path, err)
	}
	if reqHeaders != nil {
		req.Header = reqHeaders.Clone()
	}
	if readAsJSON(req.Header.Get("Content-Type")) {
		req.Header.Set("Content-Type", "application/json")
	}
	route, pathParams, err := v.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("apispec: %s %s: not a documented operation: %w", method, path, err)
	}

	ctx := context.Background()
	reqInput := &openapi3filter.RequestValidationInput{
		Request:    req,
		PathParams: pathParams,
		Route:      route,
		Options: &openapi3filter.Options{
			ExcludeRequestBody:        status >= 400 && status < 500,
			ExcludeRequestQueryParams: status >= 400 && status < 500,
			// Never rewrite the request under test with the document's defaults.
			SkipSettingDefaults: true,
			// The secret key is checked by the server; the document only
			// says it must be sent, which matters for answers that are not
			// a refusal.
			AuthenticationFunc: func(_ context.Context, in *openapi3filter.AuthenticationInput) error {
				if status >= 400 && status < 500 {
					return nil
				}
				scheme, key, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
				if !ok || !strings.EqualFold(scheme, "bearer") || key == "" {
					return fmt.Errorf("no bearer secret key")
				}
				return nil
			},
		},
	}
	if err := openapi3filter.ValidateRequest(ctx, reqInput); err != nil {
		return fmt.Errorf("apispec: request %s %s: %w", method, path, err)
	}

	response := route.Operation.Responses.Status(status)
	if response == nil {
		return fmt.Errorf("apispec: %s %s: status %d is not documented", method, path, status)
	}
	// kin-openapi does not look at the body of a response documented without
	// content (the 204 preflight); such a response must have none.
	if len(response.Value.Content) == 0 && len(respBody) != 0 {
		return fmt.Errorf("apispec: %s %s: status %d is documented without a body, got %d bytes", method, path, status, len(respBody))
	}
	respInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqInput,
		Status:                 status,
		Header:                 respHeaders,
	}
	respInput.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, respInput); err != nil {
		return fmt.Errorf("apispec: response %d to %s %s: %w", status, method, path, err)
	}
	return nil
}

// readAsJSON reports whether the server reads a body of this Content-Type as
// JSON although it does not say application/json: text/plain, which the
// snippet sends so that browsers skip the CORS preflight, and no type at all.
// The document lists text/plain with the same schemas as application/json,
// but kin-openapi would decode such a body as one string, so Check validates
// it as the JSON it is.
func readAsJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "text/plain"
}
