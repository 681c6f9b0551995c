package assets

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefusedAddress is returned (wrapped) when an asset's host resolves to
// an address that is not fetched from: loopback, private, link-local (cloud
// metadata), multicast, unspecified or reserved, unless Config.AllowNets
// holds it.
var ErrRefusedAddress = errors.New("address not allowed for asset fetches")

// ErrRefusedOrigin is returned (wrapped) when a redirect leads to an origin
// the project does not allow, or to a scheme that is not http(s).
var ErrRefusedOrigin = errors.New("origin not allowed for asset fetches")

// errTooManyRedirects stops a redirect chain.
var errTooManyRedirects = errors.New("too many redirects")

// reserved are ranges refused besides those netip classifies (loopback,
// private, link-local, multicast, unspecified).
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),          // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),      // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),       // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),      // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),        // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),       // NAT64: may embed any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),     // local-use NAT64
	netip.MustParsePrefix("2002::/16"),          // 6to4: embeds an IPv4 address
	netip.MustParsePrefix("2001::/32"),          // Teredo
	netip.MustParsePrefix("fec0::/10"),          // site-local (deprecated)
	netip.MustParsePrefix("::/128"),             // unspecified
	netip.MustParsePrefix("100::/64"),           // discard
	netip.MustParsePrefix("169.254.169.254/32"), // cloud metadata (link-local too)
}

// addrAllowed reports whether an asset may be fetched from a.
func addrAllowed(a netip.Addr, allow []netip.Prefix) bool {
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsInterfaceLocalMulticast() || a.IsMulticast() || a.IsUnspecified() {
		return false
	}
	for _, p := range reserved {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// newTransport is the HTTP transport of asset fetches: no proxy from the
// environment (a proxy would dial for us, past the address check), every
// connection's resolved address checked right before it is made, bounded
// waits.
func newTransport(cfg Config) *http.Transport {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		// Control runs after name resolution, for every address tried: a name
		// that resolves to 127.0.0.1, or that changes its answer between two
		// lookups (DNS rebinding), is refused here.
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrRefusedAddress, address)
			}
			if !addrAllowed(ap.Addr(), cfg.AllowNets) {
				return fmt.Errorf("%w: %s", ErrRefusedAddress, ap.Addr())
			}
			return nil
		},
	}
	return &http.Transport{
		Proxy:                  nil,
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  15 * time.Second,
		IdleConnTimeout:        30 * time.Second,
		MaxIdleConnsPerHost:    2,
		MaxResponseHeaderBytes: 64 << 10,
	}
}

// Origin returns the origin of an absolute http(s) URL, scheme://host[:port]
// in lower case with the default port left out.
func Origin(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return originOf(u), true
}

func originOf(u *url.URL) string {
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (u.Scheme == "http" && port == "80") || (u.Scheme == "https" && port == "443") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return strings.ToLower(u.Scheme) + "://" + host
}

// client is an HTTP client on t that follows at most maxRedirects
// redirects, each to an http(s) URL on an origin allowed says yes to.
func client(t http.RoundTripper, maxRedirects int, allowed func(origin string) bool) *http.Client {
	return &http.Client{
		Transport: t,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return errTooManyRedirects
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return fmt.Errorf("%w: redirect to %s", ErrRefusedOrigin, req.URL.Scheme)
			}
			if o := originOf(req.URL); !allowed(o) {
				return fmt.Errorf("%w: redirect to %s", ErrRefusedOrigin, o)
			}
			return nil
		},
	}
}
