// Package snippetjs serves the browser snippet, snippet/waymark.js, at
// GET /waymark.js: the function of that route in the deployed API and in
// `waymark dev`. It reads no table and holds no secret; its answer depends
// on the request's headers and the embedded bytes only.
package snippetjs

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/waymarkhq/waymark/snippet"
)

// Path is the route's path.
const Path = "/waymark.js"

// Cache lifetimes. A URL that names the served version (?v=Version, as
// install-snippet prints it) never changes its bytes, so browsers keep it a
// year and a returning user's page load does not ask for it again. Any
// other URL (no v, or a v of another deployment) may change at the next
// deployment: it is kept an hour, then revalidated with its ETag, which
// costs a 304 and no body.
const (
	CacheVersioned = "public, max-age=31536000, immutable"
	CacheLatest    = "public, max-age=3600"
)

var (
	// Integrity is the Subresource Integrity value of the served bytes
	// (sha384, as browsers check it).
	Integrity = integrity(snippet.Script)
	// Version names the served bytes: the first 16 hex digits of their
	// SHA-256, so a changed file gets a new URL.
	Version = version(snippet.Script)

	gzipped = compress(snippet.Script)
	etag    = `"` + Version + `"`
	// The compressed representation is another sequence of bytes, so it
	// has an ETag of its own.
	etagGzip = `"` + Version + `-gzip"`
)

// URL is where pages load the snippet from an API at base (no trailing
// slash): the path with the version, so that browsers may cache it for good.
func URL(base string) string { return base + Path + "?v=" + Version }

func integrity(b []byte) string {
	sum := sha512.Sum384(b)
	return "sha384-" + base64.StdEncoding.EncodeToString(sum[:])
}

func version(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

func compress(b []byte) []byte {
	var out bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&out, gzip.BestCompression)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// Handle answers GET /waymark.js. API Gateway's HTTP API compresses
// nothing, so the function sends the gzip form to a client that accepts it
// (a third of the bytes); the integrity hash is over the decoded bytes, so
// it holds for both. CORS headers come from the API's CORS configuration,
// which a script loaded with crossorigin="anonymous" needs.
func Handle(_ context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	headers := map[string]string{
		"x-request-id":           req.RequestContext.RequestID,
		"content-type":           "text/javascript; charset=utf-8",
		"cache-control":          CacheLatest,
		"vary":                   "accept-encoding",
		"x-content-type-options": "nosniff",
	}
	if req.QueryStringParameters["v"] == Version {
		headers["cache-control"] = CacheVersioned
	}
	body, tag := snippet.Script, etag
	if acceptsGzip(header(req.Headers, "accept-encoding")) {
		body, tag = gzipped, etagGzip
		headers["content-encoding"] = "gzip"
	}
	headers["etag"] = tag
	if matches(header(req.Headers, "if-none-match"), tag) {
		return events.APIGatewayV2HTTPResponse{StatusCode: http.StatusNotModified, Headers: headers}, nil
	}
	resp := events.APIGatewayV2HTTPResponse{StatusCode: http.StatusOK, Headers: headers}
	if headers["content-encoding"] == "gzip" {
		resp.Body, resp.IsBase64Encoded = base64.StdEncoding.EncodeToString(body), true
	} else {
		resp.Body = string(body)
	}
	return resp, nil
}

// header reads a header of the event; payload 2.0 lower-cases names, a
// hand-written event may not.
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

// acceptsGzip reads Accept-Encoding: gzip listed without q=0.
func acceptsGzip(accept string) bool {
	for part := range strings.SplitSeq(accept, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		q := strings.ReplaceAll(params, " ", "")
		return q != "q=0" && q != "q=0.0" && q != "q=0.00" && q != "q=0.000"
	}
	return false
}

// matches applies If-None-Match (RFC 9110, 13.1.2): "*" or any listed tag
// equal to ours, compared weakly (a W/ prefix is ignored).
func matches(ifNoneMatch, tag string) bool {
	for candidate := range strings.SplitSeq(ifNoneMatch, ",") {
		candidate = strings.TrimPrefix(strings.TrimSpace(candidate), "W/")
		if candidate == "*" || candidate == tag {
			return true
		}
	}
	return false
}
