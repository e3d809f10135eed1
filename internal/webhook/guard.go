package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"
)

// Policy says which receivers a deliverer may reach.
type Policy struct {
	// AllowLoopback lets `waymark dev` and the tests deliver to a receiver
	// on this machine, over plain http too. Deployed it is false: https
	// only, public addresses only.
	AllowLoopback bool
}

// ErrRefusedAddress is a receiver address the policy does not allow.
var ErrRefusedAddress = errors.New("webhook: receiver address refused")

// AttemptTimeout bounds one attempt, connection to last byte: a receiver
// slower than this counts as failed and is retried.
const AttemptTimeout = 10 * time.Second

// nonPublic are ranges a receiver may not resolve to beyond what
// netip.Addr's own predicates catch (loopback, private incl. fc00::/7 and
// so fd00:ec2::254, link-local incl. 169.254.169.254, multicast,
// unspecified): ranges that reach inside a network (CGNAT, benchmarking,
// 0/8), documentation and reserved ones, and IPv6 forms that embed an IPv4
// address a translator would reach (NAT64, 6to4, Teredo, IPv4-compatible).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("100::/64"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("fec0::/10"),
}

// CheckAddress says whether a receiver may be reached at ip. An
// IPv4-mapped IPv6 address is judged as the IPv4 address it is.
func (p Policy) CheckAddress(ip netip.Addr) error {
	ip = ip.Unmap()
	if p.AllowLoopback && ip.IsLoopback() {
		return nil
	}
	refused := !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() || !ip.IsGlobalUnicast()
	for _, r := range nonPublic {
		refused = refused || r.Contains(ip)
	}
	if refused {
		return fmt.Errorf("%w: %s is not a public address", ErrRefusedAddress, ip)
	}
	return nil
}

// CheckURL says whether a receiver URL may be called: https, or http when
// loopback is allowed (a local receiver).
func (p Policy) CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%w: not an absolute URL", ErrRefusedAddress)
	}
	if u.Scheme == "https" || (u.Scheme == "http" && p.AllowLoopback) {
		return nil
	}
	return fmt.Errorf("%w: only https:// URLs are delivered to", ErrRefusedAddress)
}

// control runs after the name was resolved and before the connection is
// made, on the very address dialled: a name that resolves to a public
// address when the URL is saved and to a private one later (DNS
// rebinding) is refused too.
func (p Policy) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %s", ErrRefusedAddress, address)
	}
	return p.CheckAddress(ap.Addr())
}

// Client is the HTTP client of deliveries: no proxy (which would connect
// in our stead, unchecked), every dialled address checked by the policy,
// redirects not followed (a 3xx is a failed attempt; following it would
// reach where the receiver points, the metadata endpoint included).
func (p Policy) Client() *http.Client {
	dialer := &net.Dialer{Timeout: AttemptTimeout, Control: p.control}
	transport := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return dialer.DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   AttemptTimeout,
		ResponseHeaderTimeout: AttemptTimeout,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
	}
	return &http.Client{
		Transport: transport,
		Timeout:   AttemptTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}
