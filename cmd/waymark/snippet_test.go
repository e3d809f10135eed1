package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/base64"
	"html"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/waymarkhq/waymark/internal/devstack"
	"github.com/waymarkhq/waymark/internal/snippetjs"
)

func TestCheckEndpoint(t *testing.T) {
	good := map[string]string{
		"https://abc123.execute-api.eu-central-1.amazonaws.com/": "https://abc123.execute-api.eu-central-1.amazonaws.com",
		"https://onboarding.example.com":                         "https://onboarding.example.com",
		"http://127.0.0.1:3000":                                  "http://127.0.0.1:3000",
		"http://localhost:3000/":                                 "http://localhost:3000",
		"http://[::1]:3000":                                      "http://[::1]:3000",
		"https://127.0.0.1:3443":                                 "https://127.0.0.1:3443",
	}
	for in, want := range good {
		got, err := checkEndpoint(in)
		if err != nil || got != want {
			t.Errorf("checkEndpoint(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "abc123.execute-api.eu-central-1.amazonaws.com", "http://api.example.com", "ftp://api.example.com", "https://api.example.com/?x=1", "https://api.example.com/#x", "/v1"} {
		if got, err := checkEndpoint(in); err == nil {
			t.Errorf("checkEndpoint(%q) = %q, accepted", in, got)
		}
	}
}

func TestInstallationText(t *testing.T) {
	render := func(v installationValues) string {
		var b strings.Builder
		if err := installation.Execute(&b, v); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	v := installationValues{Code: "ws1", Region: "us", Endpoint: "https://api.example.com", Script: "https://api.example.com/waymark.js?v=1&x=2",
		Integrity: "sha384-abc+/=", Username: usernamePlaceholder, Hash: hashPlaceholder}
	plain := render(v)
	for _, want := range []string{
		`m.e.us = "https://api.example.com";`,
		`<script async src="https://api.example.com/waymark.js?v=1&amp;x=2" integrity="sha384-abc+/=" crossorigin="anonymous"></script>`,
		`waymark.init("ws1", {`,
		`region: "us",`,
		`user: { username: "` + usernamePlaceholder + `" },`,
	} {
		if !strings.Contains(plain, want) {
			t.Errorf("installation lacks %s:\n%s", want, plain)
		}
	}
	if strings.Contains(plain, "hmac") {
		t.Errorf("an installation without identity verification mentions hmac:\n%s", plain)
	}
	v.Verified = true
	if verified := render(v); !strings.Contains(verified, `hmac: { hash: "`+hashPlaceholder+`" },`) {
		t.Errorf("identity verification is on but the installation carries no hash:\n%s", verified)
	}
	v.SignsExpiration, v.Expiration = true, expirationPlaceholder
	if verified := render(v); !strings.Contains(verified, `hmac: { hash: "`+hashPlaceholder+`", expiration: "`+expirationPlaceholder+`" },`) ||
		!strings.Contains(verified, `"username|expiration"`) {
		t.Errorf("the workspace requires an expiration but the installation carries none:\n%s", verified)
	}
	v.SignsExpiration = false
	// A value never ends the script element or the attribute early.
	v.Script = `/x.js"></script><script>alert(1)//`
	if text := render(v); strings.Count(text, "</script>") != 2 || !strings.Contains(text, `src="/x.js&#34;&gt;`) {
		t.Errorf("a value closed the script element:\n%s", text)
	}
}

// The installation install-snippet prints for a running stack loads the
// bytes the stack serves: its integrity hash is theirs, its URL the
// stack's route, and the answer is one a browser may cache and revalidate.
func TestInstallSnippetIntegrityIsOfTheServedScript(t *testing.T) {
	dev := startDev(t)
	printed, err := cli(t, "--local", "workspace", "install-snippet", devstack.DemoWorkspace)
	if err != nil {
		t.Fatal(err)
	}
	tag := regexp.MustCompile(`<script async src="([^"]+)" integrity="(sha384-[^"]+)" crossorigin="anonymous"></script>`).FindStringSubmatch(printed)
	if tag == nil {
		t.Fatalf("no script tag with integrity:\n%s", printed)
	}
	src, integrity := html.UnescapeString(tag[1]), tag[2]
	if !strings.HasPrefix(src, dev.State.API+"/waymark.js?v=") {
		t.Fatalf("src %s is not the stack's /waymark.js", src)
	}

	get := func(headers map[string]string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", src, nil)
		for k, v := range headers {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent gunzip
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	resp, body := get(map[string]string{"Origin": "http://localhost:8080", "Accept-Encoding": "gzip"})
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("status %d, encoding %q", resp.StatusCode, resp.Header.Get("Content-Encoding"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	script, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha512.Sum384(script)
	if got := "sha384-" + base64.StdEncoding.EncodeToString(sum[:]); got != integrity {
		t.Errorf("the printed integrity %s is not the served bytes' %s", integrity, got)
	}
	// A crossorigin script needs the CORS header, or the browser refuses it.
	if resp.Header.Get("Access-Control-Allow-Origin") == "" || resp.Header.Get("Cache-Control") != snippetjs.CacheVersioned || resp.Header.Get("ETag") == "" {
		t.Errorf("headers %v", resp.Header)
	}
	again, rest := get(map[string]string{"Accept-Encoding": "gzip", "If-None-Match": resp.Header.Get("ETag")})
	if again.StatusCode != http.StatusNotModified || len(rest) != 0 {
		t.Errorf("revalidation: status %d, %d bytes", again.StatusCode, len(rest))
	}
}
