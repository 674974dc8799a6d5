// Package httpsyntax holds the rules of HTTP syntax, and of how upstreams
// read a request, that the policy loader, the key loader, the decision and
// the edges must apply alike. Each rule is written once, here: two copies
// of "what is a header name" or "which headers override the method" drift,
// and a drift between the check and the upstream is a way around it.
package httpsyntax

import "strings"

// IsToken reports whether s is an RFC 9110 token: what a header name and
// a method are.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// ValidFieldValue reports whether s may be sent as an HTTP field value
// (RFC 9110 section 5.5): no control character but horizontal tab. Envoy
// rejects the others (validate_mutations), and CR or LF would split the
// header.
func ValidFieldValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// HasControl reports whether s holds a C0 control character (tab
// included) or DEL: never right in a URL, an issuer or a key id.
func HasControl(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] == 0x7f {
			return true
		}
	}
	return false
}

// OverrideHeaders are the request headers (lower case) through which web
// frameworks let a client tunnel one method inside another: Express's
// method-override, Spring's and ASP.NET's filters, Rails' and Symfony's
// request objects, Google's and Microsoft's APIs. An upstream that honours
// one runs the handler of the named method.
var OverrideHeaders = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

// IsOverrideHeader reports whether name (lower case) is one of
// OverrideHeaders.
func IsOverrideHeader(name string) bool {
	for _, h := range OverrideHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// Prefixes (lower case) of the forwarding headers: proxies say with them
// which request is being authorised (X-Forwarded-Method, -Uri, -Host for
// Traefik and Caddy; X-Original-Method, -URI, -Host for nginx), and
// upstreams trust X-Forwarded-For and its kin for the client's identity.
const (
	ForwardedPrefix = "x-forwarded-"
	OriginalPrefix  = "x-original-"
)

// IsForwarding reports whether name (any case) is a forwarding header.
func IsForwarding(name string) bool {
	return hasPrefixFold(name, ForwardedPrefix) || hasPrefixFold(name, OriginalPrefix)
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// CGIName is the form under which CGI-style upstreams (PHP, WSGI and Rack
// behind a CGI or FastCGI gateway, and anything reading HTTP_* variables)
// see a header: "x_user_sub", "x-user_sub" and "x-user-sub" are all
// HTTP_X_USER_SUB to them, while Envoy and net/http treat them as three
// different headers. It is the name with every '_' made '-'; name is
// lower case.
func CGIName(name string) string {
	if strings.IndexByte(name, '_') < 0 {
		return name
	}
	return strings.ReplaceAll(name, "_", "-")
}
