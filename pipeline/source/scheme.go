package source

import (
	"fmt"
	"net"
	"net/http"
	"strings"
)

// InsecureError is a plain-HTTP request to a registry (or a token or blob
// server it sent fwvet to) that was not named with --insecure-registry.
// go-containerregistry speaks HTTP on its own to loopback, "localhost" and
// RFC 1918 hosts; fwvet allows it only where it was asked to.
type InsecureError struct {
	// Host is the host (and port) the request went to.
	Host string
}

func (e *InsecureError) Error() string {
	return fmt.Sprintf("refusing plain HTTP to %s: HTTP is not allowed without --insecure-registry %s (every other registry is HTTPS only)", e.Host, e.Host)
}

// httpsOnly refuses http:// requests to hosts not in allowed, whatever
// go-containerregistry chose; https:// requests pass.
type httpsOnly struct {
	allowed []string
	next    http.RoundTripper
}

func (g *httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Scheme, "https") && !insecureAllowed(g.allowed, req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, &InsecureError{Host: req.URL.Host}
	}
	return g.next.RoundTrip(req)
}

// insecureAllowed reports whether host ("HOST" or "HOST:PORT", as in a
// URL) is named in allowed: "HOST:PORT" allows that port only, "HOST" any
// port of the host.
func insecureAllowed(allowed []string, host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	for _, a := range allowed {
		if strings.EqualFold(a, host) {
			return true
		}
		if _, _, err := net.SplitHostPort(a); err != nil && strings.EqualFold(strings.Trim(a, "[]"), h) {
			return true
		}
	}
	return false
}

// checkInsecure checks the --insecure-registry values: a host, or a host
// and port, nothing more.
func checkInsecure(hosts []string) error {
	for _, h := range hosts {
		if h == "" || strings.ContainsAny(h, "/@?# \t") {
			return fmt.Errorf("--insecure-registry %q: not HOST or HOST:PORT", h)
		}
	}
	return nil
}
