package main

import (
	"strings"
	"testing"
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
	v := installationValues{Code: "ws1", Region: "us", Endpoint: "https://api.example.com", Script: "/waymark.js", Username: usernamePlaceholder, Hash: hashPlaceholder}
	plain := render(v)
	for _, want := range []string{
		`m.e.us = "https://api.example.com";`,
		`s.src = "/waymark.js";`,
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
	// A value never ends the script element early.
	v.Script = "/x.js</script><script>alert(1)//"
	if text := render(v); strings.Count(text, "</script>") != 1 {
		t.Errorf("a value closed the script element:\n%s", text)
	}
}
