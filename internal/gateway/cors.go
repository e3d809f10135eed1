package gateway

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/waymarkhq/waymark/internal/routes"
)

// CORS the way an HTTP API applies its CORS configuration (routes.CORS), as
// the API Gateway developer guide's page on configuring CORS for HTTP APIs
// describes it:
//
//   - API Gateway answers preflight requests itself, whether or not an
//     OPTIONS route exists, and no function is invoked for them.
//   - A request is a preflight only when it is an OPTIONS request carrying
//     both an Origin and an Access-Control-Request-Method header; any other
//     OPTIONS request is routed like any request (and here finds no route).
//   - CORS headers are returned only to requests that carry an Origin.
//   - The CORS headers a function returns are ignored in favour of the
//     configured ones.
//
// With "*" among the allowed origins the allow-origin header is "*" (the
// guide lists "*" as allowing all origins; third-party emulators' tests of
// HTTP APIs expect 204 and "*" for a preflight under it). A listed origin is
// echoed, with Vary: Origin since the answer then depends on it. An origin
// that is not allowed gets the same status without CORS headers, which the
// browser reads as a refusal. The preflight answer lists the configured
// methods and headers as they are; the browser compares them with what it
// asked for.

// Server routes (routes.Server: a customer's backend calling with a secret
// key) are not for browsers, so they answer without CORS headers and a
// preflight for one is refused (204 without them). A page that holds a
// secret key leaks it to every visitor; without CORS the browser refuses to
// send the call at all, since its Authorization header needs a preflight.
// Servers never look at CORS headers, so nothing legitimate is lost. The
// deployed API applies the same rule with its API-wide configuration (see
// infra/stack: it does not allow the Authorization header).
var serverPaths = func() map[string]bool {
	paths := map[string]bool{}
	for _, r := range routes.Table() {
		if r.Function == routes.Server.Name {
			paths[r.Path] = true
		}
	}
	return paths
}()

// corsOrigin is the origin whose CORS headers r's answer carries: r's Origin
// header, or "" (no CORS headers) when there is none or r is for a server
// route.
func corsOrigin(r *http.Request) string {
	if serverPaths[r.URL.Path] {
		return ""
	}
	return r.Header.Get("Origin")
}

// isPreflight says whether API Gateway would answer r as a CORS preflight.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// writePreflight answers a preflight request: 204 and no body, with the CORS
// headers unless origin is "" (see corsOrigin) or not allowed.
func writePreflight(w http.ResponseWriter, origin string) {
	h := w.Header()
	if allowed := allowOrigin(origin); origin != "" && allowed != "" {
		setAllowOrigin(h, allowed)
		h.Set("Access-Control-Allow-Methods", strings.Join(routes.CORS.AllowMethods, ","))
		h.Set("Access-Control-Allow-Headers", strings.Join(routes.CORS.AllowHeaders, ","))
		h.Set("Access-Control-Max-Age", strconv.Itoa(routes.CORS.MaxAgeSeconds))
	}
	w.WriteHeader(http.StatusNoContent)
}

// setCORS adds the CORS headers of a response to a request from origin
// (empty when the request had no Origin header).
func setCORS(h http.Header, origin string) {
	if origin == "" {
		return
	}
	allowed := allowOrigin(origin)
	if allowed == "" {
		return
	}
	setAllowOrigin(h, allowed)
	if len(routes.CORS.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(routes.CORS.ExposeHeaders, ","))
	}
}

func setAllowOrigin(h http.Header, allowed string) {
	h.Set("Access-Control-Allow-Origin", allowed)
	if allowed != "*" {
		h.Add("Vary", "Origin")
	}
}

// allowOrigin is the Access-Control-Allow-Origin value for origin, or "" when
// the configuration does not allow it.
func allowOrigin(origin string) string {
	for _, o := range routes.CORS.AllowOrigins {
		if o == "*" {
			return "*"
		}
		if strings.EqualFold(o, origin) {
			return origin
		}
	}
	return ""
}
