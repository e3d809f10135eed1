package devstack

import (
	"bufio"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// Whatever path a client sends, the site answers a client error (the file
// server's or the gateway's 404), never a server error. The paths go out as
// raw request lines: an http.Client would clean or reject some of them.
func TestSiteHandlerHostilePaths(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
	})
	site, err := siteHandler(api)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(site)
	defer srv.Close()

	paths := []string{
		"/demo/%ff",
		"/demo/%fe%ff",
		"/demo/app.js%ff",
		"/demo/%c0%af",
		"/demo/%",
		"/demo/%zz",
		"/demo/%00",
		"/demo/app.js%00",
		"/%00",
		"/demo/..%2f..%2fetc/passwd",
		"/demo/%2e%2e/%2e%2e/etc/passwd",
		"/demo/..%5c..%5cetc%5cpasswd",
		"/demo/" + strings.Repeat("a", 8000),
		"/demo/" + strings.Repeat("%ff", 2000),
		"/demo/" + strings.Repeat("a/", 2000),
		"/snippet/waymark.js%ff",
		"/snippet/waymark.js%00",
	}
	for _, path := range paths {
		for _, method := range []string{"GET", "HEAD"} {
			status, _ := rawRequest(t, srv.Listener.Addr().String(), method, path)
			if status/100 != 4 {
				t.Errorf("%s %.60s: status %d, want 4xx", method, path, status)
			}
		}
	}

	// A path that only needs cleaning is redirected to its clean form,
	// which stays on the site.
	for path, clean := range map[string]string{
		"/demo//etc/passwd": "/demo/etc/passwd",
		"/demo/app.js/":     "../app.js",
	} {
		status, location := rawRequest(t, srv.Listener.Addr().String(), "GET", path)
		if status/100 != 3 || location != clean {
			t.Errorf("GET %s: status %d to %q, want a redirect to %q", path, status, location, clean)
		}
	}
}

// rawRequest sends one request with target as its request line's target,
// byte for byte, and returns the status and Location of the answer.
func rawRequest(t *testing.T, addr, method, target string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %.60s: %v", method, target, err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}
