package webhook_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waymarkhq/waymark/internal/webhook"
)

var deployed = webhook.Policy{}

// Addresses a deployed deliverer must never connect to.
func TestRefusedAddresses(t *testing.T) {
	for _, addr := range []string{
		"127.0.0.1", "127.1.2.3", "::1", "0.0.0.0", "::",
		"10.0.0.1", "172.16.5.4", "192.168.1.1", "fd12::1", "fc00::1",
		"169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254",
		"100.64.0.1", "100.127.255.254",
		"::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:10.0.0.1", "::127.0.0.1",
		"64:ff9b::a9fe:a9fe", "2002:7f00:1::", "2001::1", "2001:db8::1",
		"224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1", "198.18.0.1", "192.0.2.1", "192.0.0.170",
	} {
		if err := deployed.CheckAddress(netip.MustParseAddr(addr)); !errors.Is(err, webhook.ErrRefusedAddress) {
			t.Errorf("%s: %v, want refused", addr, err)
		}
	}
	for _, addr := range []string{"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "8.8.8.8", "::ffff:8.8.8.8"} {
		if err := deployed.CheckAddress(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	if err := (webhook.Policy{AllowLoopback: true}).CheckAddress(netip.MustParseAddr("127.0.0.1")); err != nil {
		t.Errorf("dev refuses loopback: %v", err)
	}
	if err := (webhook.Policy{AllowLoopback: true}).CheckAddress(netip.MustParseAddr("169.254.169.254")); err == nil {
		t.Error("dev allows the metadata address")
	}
}

func TestRefusedURLs(t *testing.T) {
	for _, u := range []string{"http://example.com/hook", "ftp://example.com/", "https:///x", "file:///etc/passwd"} {
		if err := deployed.CheckURL(u); !errors.Is(err, webhook.ErrRefusedAddress) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	if err := deployed.CheckURL("https://hooks.example.com/x"); err != nil {
		t.Error(err)
	}
}

// The check is made on the address dialled, after resolution: a name that
// resolves to loopback is refused at connect time, and no request leaves.
func TestNameResolvingToLoopbackIsRefusedAtConnect(t *testing.T) {
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	port := srv.URL[strings.LastIndexByte(srv.URL, ':')+1:]
	client := deployed.Client()
	for _, u := range []string{"http://localhost:" + port + "/", "http://127.0.0.1:" + port + "/", "http://[::ffff:127.0.0.1]:" + port + "/"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		_, err := client.Do(req)
		cancel()
		if !errors.Is(err, webhook.ErrRefusedAddress) {
			t.Errorf("%s: %v, want refused", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the loopback server", hits.Load())
	}
}

// A redirect is not followed (to the metadata address or anywhere): the
// 3xx is the attempt's answer, a failure to retry.
func TestRedirectIsNotFollowed(t *testing.T) {
	var followed atomic.Int64
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	defer target.Close()
	for _, location := range []string{"http://169.254.169.254/latest/meta-data/iam/security-credentials/", target.URL} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, location, http.StatusTemporaryRedirect)
		}))
		resp, err := webhook.Policy{AllowLoopback: true}.Client().Post(redirector.URL, "application/json", strings.NewReader("{}"))
		redirector.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusTemporaryRedirect {
			t.Errorf("redirect to %s: status %d", location, resp.StatusCode)
		}
	}
	if followed.Load() != 0 {
		t.Fatal("a redirect was followed")
	}
}

func TestSignatureVerification(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"id":"dlv_1"}`)
	header := webhook.Sign("whsec_abc", now, body)
	if !strings.HasPrefix(header, "t=1767225600,v1=") {
		t.Fatalf("header %q", header)
	}
	if err := webhook.Verify("whsec_abc", header, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		secret, header string
		body           []byte
		at             time.Time
	}{
		"other secret": {"whsec_abd", header, body, now},
		"other body":   {"whsec_abc", header, []byte(`{"id":"dlv_2"}`), now},
		"too old":      {"whsec_abc", header, body, now.Add(6 * time.Minute)},
		"no v1":        {"whsec_abc", "t=1767225600", body, now},
		"other time":   {"whsec_abc", strings.Replace(header, "t=1767225600", "t=1767225601", 1), body, now},
		"empty":        {"whsec_abc", "", body, now},
	} {
		if err := webhook.Verify(c.secret, c.header, c.body, c.at, 5*time.Minute); !errors.Is(err, webhook.ErrSignature) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
