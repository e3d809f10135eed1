package devstack

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/snippet"
)

// clientTrusting is an HTTPS client that trusts only the given CA.
func clientTrusting(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("the CA file holds no certificate")
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}

func TestDevCertificate(t *testing.T) {
	now := time.Now()
	cert, err := newDevCertificate(now)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.server.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(cert.caPEM)
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("the certificate is valid for example.com; it must name loopback only")
	}
	if leaf.IsCA {
		t.Error("the server certificate is a CA")
	}
	if !leaf.NotAfter.After(now.Add(7 * 24 * time.Hour)) {
		t.Errorf("valid only until %s", leaf.NotAfter)
	}
	other, err := newDevCertificate(now)
	if err != nil {
		t.Fatal(err)
	}
	if string(other.caPEM) == string(cert.caPEM) {
		t.Error("two starts made the same CA")
	}

	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, r.Proto)
	}))
	srv.TLS = cert.tlsConfig()
	// The refused TLS 1.1 handshake below is expected, not worth a log line.
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	_, port, _ := strings.Cut(srv.Listener.Addr().String(), ":")
	client := clientTrusting(t, cert.caPEM)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + host + ":" + port + "/")
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		resp.Body.Close()
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs: client.Transport.(*http.Transport).TLSClientConfig.RootCAs, MaxVersion: tls.VersionTLS11,
	}}}
	if resp, err := old.Get(srv.URL); err == nil {
		resp.Body.Close()
		t.Error("a TLS 1.1 client was served")
	}
}

// The demo page and the snippet are served from the embedded files; every
// other path stays the gateway's.
func TestSiteHandler(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-From", "gateway")
		w.WriteHeader(http.StatusTeapot)
	})
	site, err := siteHandler(api)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(site)
	defer srv.Close()
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	want, _ := snippet.Files.ReadFile("waymark.js")
	index, _ := snippet.Files.ReadFile("demo/index.html")
	cases := []struct {
		method, path string
		status       int
		body         []byte
		contentType  string
	}{
		{"GET", SnippetPath, 200, want, "text/javascript"},
		{"GET", DemoPath, 200, index, "text/html"},
		{"HEAD", DemoPath, 200, nil, "text/html"},
		{"GET", "/demo", http.StatusTemporaryRedirect, nil, ""},
		{"POST", DemoPath, http.StatusTeapot, nil, ""},
		{"POST", "/v1/state", http.StatusTeapot, nil, ""},
		{"GET", "/", http.StatusTeapot, nil, ""},
		{"GET", "/snippet/", http.StatusTeapot, nil, ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.path, resp.StatusCode, c.status)
		}
		if c.status == http.StatusTeapot && resp.Header.Get("X-From") != "gateway" {
			t.Errorf("%s %s: not handed to the gateway", c.method, c.path)
		}
		if c.body != nil && string(body) != string(c.body) {
			t.Errorf("%s %s: not the embedded file", c.method, c.path)
		}
		if c.status == http.StatusTemporaryRedirect && resp.Header.Get("Location") != DemoPath {
			t.Errorf("%s %s: redirected to %q", c.method, c.path, resp.Header.Get("Location"))
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.contentType) {
			t.Errorf("%s %s: Content-Type %q, want %s", c.method, c.path, ct, c.contentType)
		}
	}
}

// A stack started with TLS serves the API, the demo page and the snippet
// over HTTPS only, and says where its CA is.
func TestStartTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the local engines")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	dev, err := Start(ctx, Options{StateDir: dir, TLS: true})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			dev.Stop()
		}
	}()

	state, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(state.API, "https://127.0.0.1:") || state.Demo != state.API+DemoPath || state.Snippet != state.API+SnippetPath {
		t.Fatalf("state file: %+v", state)
	}
	if state.CACert != filepath.Join(dir, CAFile) {
		t.Fatalf("caCert %q", state.CACert)
	}
	caPEM, err := os.ReadFile(state.CACert)
	if err != nil {
		t.Fatal(err)
	}
	client := clientTrusting(t, caPEM)

	req, _ := http.NewRequest("POST", state.API+"/v1/state", strings.NewReader(`{"workspace":"demo","username":"tls@example.com"}`))
	req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer struct {
		State map[string]any `json:"state"`
	}
	err = json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || answer.State == nil {
		t.Fatalf("POST /v1/state over HTTPS: %d %v %v", resp.StatusCode, answer, err)
	}

	for _, url := range []string{state.Demo, state.Snippet, strings.Replace(state.Demo, "127.0.0.1", "localhost", 1)} {
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", url, resp.StatusCode)
		}
	}

	resp, err = http.Get(strings.Replace(state.Demo, "https://", "http://", 1))
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP was served on the TLS port")
		}
	}
	if resp, err := http.Get(state.Demo); err == nil {
		resp.Body.Close()
		t.Error("a client that does not trust the CA was served")
	}

	stopped = true
	if err := dev.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state.CACert); !os.IsNotExist(err) {
		t.Errorf("the CA file outlives the stack: %v", err)
	}
}
