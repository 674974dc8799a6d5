package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

// isQueryName admits the unreserved characters only, so a parameter name
// reads the same encoded or not.
func isQueryName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-._~", c) >= 0) {
			return false
		}
	}
	return true
}

// hopByHop are the connection-level headers of RFC 7230 section 6.1 and
// the framing ones: neither a claim nor a gateway response may set them.
var hopByHop = map[string]bool{
	"connection":        true,
	"content-length":    true,
	"keep-alive":        true,
	"te":                true,
	"trailer":           true,
	"transfer-encoding": true,
	"upgrade":           true,
}

// upstreamTrusted are headers that upstream frameworks and proxies act on
// for routing, the client's identity or address, method override, body
// framing and tracing. A claim value is attacker-influenced (custom
// attributes are often user-writable), so setting one of these from a claim
// would let a user steer the upstream.
var upstreamTrusted = map[string]bool{
	"forwarded":           true,
	"x-real-ip":           true,
	"x-client-ip":         true,
	"true-client-ip":      true,
	"cf-connecting-ip":    true,
	"x-cluster-client-ip": true,
	"via":                 true,
	"x-rewrite-url":       true,
	"x-request-id":        true,
	"traceparent":         true,
	"tracestate":          true,
	"x-amzn-trace-id":     true,
	"content-type":        true,
	"content-encoding":    true,
	"expect":              true,
	"range":               true,
}

// checkClaimHeaderName refuses header names a claim must never set:
// credentials, routing and framing headers, Envoy's own and ours, in any
// spelling a CGI-style upstream reads as one of them ("x_forwarded_for" is
// X-Forwarded-For there). name is lower case.
func checkClaimHeaderName(name string) error {
	if strings.HasPrefix(name, ":") {
		return fmt.Errorf("header %q is a pseudo-header", name)
	}
	if !httpsyntax.IsToken(name) {
		return fmt.Errorf("header name %q is not a valid HTTP header name", name)
	}
	if cgi := httpsyntax.CGIName(name); cgi != name {
		if err := checkClaimHeaderName(cgi); err != nil {
			return fmt.Errorf("%w (CGI-style upstreams read %q as %q)", err, name, cgi)
		}
		return nil
	}
	switch {
	case name == "authorization", name == "cookie", name == "host", hopByHop[name]:
		return fmt.Errorf("header %q is reserved: a claim may not set it", name)
	case upstreamTrusted[name] || httpsyntax.IsOverrideHeader(name):
		return fmt.Errorf("header %q is reserved: upstreams and proxies trust it for routing, client identity or body framing, so a claim may not set it", name)
	case strings.HasPrefix(name, httpsyntax.ForwardedPrefix):
		return fmt.Errorf("header %q is reserved (x-forwarded-*): upstreams trust it for client identity and routing", name)
	case strings.HasPrefix(name, httpsyntax.OriginalPrefix):
		return fmt.Errorf("header %q is reserved (x-original-*): proxies use it to say which request is being authorised", name)
	case strings.HasPrefix(name, "proxy-"):
		return fmt.Errorf("header %q is reserved (proxy-*): a claim may not set it", name)
	case strings.HasPrefix(name, "x-envoy-"):
		return fmt.Errorf("header %q is reserved (x-envoy-*): Envoy acts on it", name)
	case strings.HasPrefix(name, "x-extauthz-"):
		return fmt.Errorf("header %q is reserved (x-extauthz-*)", name)
	}
	return nil
}

// checkResponseHeader validates one gateway response header. name is
// lower case.
func checkResponseHeader(name, value string) error {
	var errs []error
	switch {
	case !httpsyntax.IsToken(name):
		errs = append(errs, fmt.Errorf("header name %q is not a valid HTTP header name", name))
	case name == "x-extauthz-reason":
		errs = append(errs, errors.New("header x-extauthz-reason is set by the service and cannot be overridden"))
	case hopByHop[name]:
		errs = append(errs, fmt.Errorf("header %q is reserved: it belongs to the connection, not the response", name))
	}
	if !httpsyntax.ValidFieldValue(value) {
		errs = append(errs, fmt.Errorf("value of header %q holds a control character", name))
	}
	return errors.Join(errs...)
}

// validIPv6 reports whether s (without brackets) is an IPv6 address
// without a zone.
func validIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}
