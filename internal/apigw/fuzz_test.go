package apigw

import (
	"bytes"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/service"
	"github.com/waymarkhq/waymark/internal/waymark"
)

// bodyRoutes decodes a body as each JSON route does and validates it as
// the service does before it touches the store.
var bodyRoutes = []struct {
	name  string
	check func(body []byte) error
}{
	{"identify", func(body []byte) error {
		var req waymark.IdentifyRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		return req.Validate()
	}},
	{"events", func(body []byte) error {
		var req waymark.EventsRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		_, err := req.Validate(time.Now())
		return err
	}},
	{"state", func(body []byte) error {
		var req waymark.StateRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		return req.Validate()
	}},
	{"feedback", func(body []byte) error {
		var req waymark.FeedbackRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		return req.Validate()
	}},
	{"server identify", func(body []byte) error {
		var req service.ServerIdentifyRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		full := waymark.IdentifyRequest{Workspace: "ws", User: req.User}
		return full.Validate()
	}},
	{"server export", func(body []byte) error {
		var req service.ExportRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		return waymark.ValidateUsername("username", req.Username)
	}},
	{"server erase", func(body []byte) error {
		var req service.EraseRequest
		if err := decodeJSON(body, &req); err != nil {
			return err
		}
		for _, u := range req.Usernames {
			if err := waymark.ValidateUsername("usernames[]", u); err != nil {
				return err
			}
		}
		return nil
	}},
}

// FuzzRequestBodies: whatever a stranger sends as the body of any route,
// reading, decoding and validating it never panics, and a refusal is a
// client error (4xx) of the one error type, never a 500. A body that is not
// valid UTF-8 is never accepted (encoding/json would have replaced its
// bytes).
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{"workspace":"demo","user":{"username":"ada","email":"a@b.c","props":{"plan":"pro","n":1.5,"tags":["a",1,true],"o":{"p":{"q":1}},"gone":null}},"hmac":{"hash":"` + string(bytes.Repeat([]byte("ab"), 32)) + `","expiration":1900000000}}`,
		`{"workspace":"demo","username":"ada","events":[{"id":"e1","content":"survey","contentId":"s1","action":"answered","answer":["x",2],"at":"2026-01-02T03:04:05.5+01:00"}]}`,
		`{"workspace":"demo","username":"ada","text":"hi","rating":10,"category":"bug","environment":{"url":"https://a.example","viewportWidth":1}}`,
		`{"user":{"username":"ada","signUpAt":null}}`,
		`{"usernames":["a","b"]}`,
		`{"username":"bob\udbff"}`,
		"{\"username\":\"bob\xff\"}",
		`{"workspace":"demo","username":"a\\ud800"}`,
		`[1,2]`, `{} {}`, ``, `null`,
	} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, body []byte, encoded bool) {
		req := events.APIGatewayV2HTTPRequest{Body: string(body)}
		if encoded {
			req.Body, req.IsBase64Encoded = string(body), true
		}
		read, err := readBody(req, waymark.MaxBodyBytes)
		if err != nil {
			mustBeClientError(t, "read", err)
			return
		}
		for _, r := range bodyRoutes {
			err := r.check(read)
			if err != nil {
				mustBeClientError(t, r.name, err)
				continue
			}
			if !utf8.Valid(read) {
				t.Fatalf("%s accepted a body that is not UTF-8: %q", r.name, read)
			}
		}
	})
}

func mustBeClientError(t *testing.T, what string, err error) {
	t.Helper()
	appErr, ok := err.(*waymark.Error)
	if !ok {
		t.Fatalf("%s: %T %v is not a waymark.Error", what, err, err)
	}
	if status := StatusOf(appErr.Code); status < 400 || status > 499 {
		t.Fatalf("%s: %v answers %d", what, err, status)
	}
}
