package snippetjs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/internal/apispec"
	"github.com/waymarkhq/waymark/snippet"
)

func get(t *testing.T, query map[string]string, headers map[string]string) events.APIGatewayV2HTTPResponse {
	t.Helper()
	req := events.APIGatewayV2HTTPRequest{RouteKey: "GET " + Path, Headers: headers, QueryStringParameters: query}
	req.RequestContext.RequestID = "req-1"
	resp, err := Handle(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Headers["x-request-id"] != "req-1" {
		t.Errorf("x-request-id %q", resp.Headers["x-request-id"])
	}
	// Every answer is one the API document describes.
	spec, err := apispec.New()
	if err != nil {
		t.Fatal(err)
	}
	rawQuery := ""
	if v, ok := query["v"]; ok {
		rawQuery = "?v=" + v
	}
	reqH, respH := http.Header{}, http.Header{}
	for k, v := range headers {
		reqH.Set(k, v)
	}
	for k, v := range resp.Headers {
		respH.Set(k, v)
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		body = []byte("(compressed)")
	}
	if err := spec.Check("GET", Path+rawQuery, reqH, nil, resp.StatusCode, respH, body); err != nil {
		t.Errorf("OpenAPI: %v", err)
	}
	return resp
}

func TestServesTheEmbeddedScript(t *testing.T) {
	resp := get(t, nil, map[string]string{"accept-encoding": "identity"})
	if resp.StatusCode != 200 || resp.Body != string(snippet.Script) || resp.IsBase64Encoded {
		t.Fatalf("status %d, %d bytes, base64 %v: not waymark.js", resp.StatusCode, len(resp.Body), resp.IsBase64Encoded)
	}
	h := resp.Headers
	if h["content-type"] != "text/javascript; charset=utf-8" || h["cache-control"] != CacheLatest || h["etag"] != `"`+Version+`"` || h["content-encoding"] != "" {
		t.Errorf("headers %v", h)
	}
	sum := sha512.Sum384(snippet.Script)
	if Integrity != "sha384-"+base64.StdEncoding.EncodeToString(sum[:]) {
		t.Errorf("integrity %s is not the sha384 of the served bytes", Integrity)
	}
}

func TestTheVersionedURLIsCachedForAYear(t *testing.T) {
	if got := get(t, map[string]string{"v": Version}, nil).Headers["cache-control"]; got != CacheVersioned {
		t.Errorf("the current version: cache-control %q", got)
	}
	// A page of an older installation asks for a version no longer served:
	// it gets the current bytes, which must not be cached as its version.
	if got := get(t, map[string]string{"v": "0123456789abcdef"}, nil).Headers["cache-control"]; got != CacheLatest {
		t.Errorf("another version: cache-control %q", got)
	}
	if URL("https://api.example.com") != "https://api.example.com/waymark.js?v="+Version {
		t.Errorf("URL %s", URL("https://api.example.com"))
	}
}

func TestGzipWhenAccepted(t *testing.T) {
	resp := get(t, nil, map[string]string{"accept-encoding": "gzip, deflate, br"})
	if resp.Headers["content-encoding"] != "gzip" || !resp.IsBase64Encoded || resp.Headers["etag"] == `"`+Version+`"` {
		t.Fatalf("headers %v, base64 %v", resp.Headers, resp.IsBase64Encoded)
	}
	raw, _ := base64.StdEncoding.DecodeString(resp.Body)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, snippet.Script) {
		t.Fatalf("decoded %d bytes, %v: not waymark.js", len(plain), err)
	}
	if len(raw) >= len(snippet.Script)/2 {
		t.Errorf("%d bytes compressed from %d", len(raw), len(snippet.Script))
	}
	for _, refused := range []string{"gzip;q=0", "br", "", "identity"} {
		if r := get(t, nil, map[string]string{"accept-encoding": refused}); r.Headers["content-encoding"] != "" {
			t.Errorf("accept-encoding %q got %q", refused, r.Headers["content-encoding"])
		}
	}
}

func TestIfNoneMatch(t *testing.T) {
	first := get(t, nil, nil)
	for _, inm := range []string{first.Headers["etag"], "W/" + first.Headers["etag"], `"other", ` + first.Headers["etag"], "*"} {
		r := get(t, nil, map[string]string{"if-none-match": inm})
		if r.StatusCode != http.StatusNotModified || r.Body != "" || r.Headers["etag"] != first.Headers["etag"] {
			t.Errorf("if-none-match %s: status %d, %d bytes", inm, r.StatusCode, len(r.Body))
		}
	}
	// The compressed copy's tag does not validate the plain one.
	gz := get(t, nil, map[string]string{"accept-encoding": "gzip"}).Headers["etag"]
	for _, inm := range []string{`"other"`, gz, ""} {
		if r := get(t, nil, map[string]string{"if-none-match": inm}); r.StatusCode != 200 {
			t.Errorf("if-none-match %q: status %d", inm, r.StatusCode)
		}
	}
}
