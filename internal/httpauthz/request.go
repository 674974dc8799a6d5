package httpauthz

import (
	"net/http"
	"net/textproto"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

// endpoint is the proxy protocol an authorization request speaks. Each one
// says where the original request's method, URI and host are found.
type endpoint int

const (
	endpointNone  endpoint = iota
	endpointEnvoy          // ANY /envoy/<path>: Envoy http_service with path_prefix /envoy
	endpointAuth           // ANY /auth: Traefik forwardAuth, Caddy forward_auth
	endpointNginx          // ANY /nginx: nginx auth_request
)

const envoyPrefix = "/envoy"

// family is the set of forwarding headers one endpoint reads (canonical
// keys, as net/http stores them).
type family struct{ method, uri, host string }

var (
	forwarded = family{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"}
	original  = family{"X-Original-Method", "X-Original-Uri", "X-Original-Host"}
)

// endpointOf routes on the raw request target, never on the decoded
// r.URL.Path: "/%61uth" is not "/auth", and nothing here cleans or
// redirects a path (http.ServeMux would answer an unclean one with a 301,
// which a proxy might follow or pass on).
func endpointOf(requestURI string) endpoint {
	p, _, _ := strings.Cut(requestURI, "?")
	switch {
	case p == "/auth":
		return endpointAuth
	case p == "/nginx":
		return endpointNginx
	case strings.HasPrefix(p, envoyPrefix+"/"):
		return endpointEnvoy
	}
	return endpointNone
}

// translate fills out from r as ep defines the original request. It returns
// a loggable reason when r cannot be used; then out must not be decided on.
// The header family of the other endpoint is never read: through nginx a
// client can send X-Forwarded-Uri to /nginx, through Traefik X-Original-URI
// to /auth, and neither may move the decision.
func translate(ep endpoint, r *http.Request, out *authz.Request) string {
	out.Headers = headers(r.Header)
	for k := range r.Header {
		if strings.IndexByte(k, '_') >= 0 {
			out.Underscored = append(out.Underscored, strings.ToLower(k))
		}
	}
	switch ep {
	case endpointEnvoy:
		out.Method = strings.ToUpper(r.Method)
		out.Path = strings.TrimPrefix(r.RequestURI, envoyPrefix)
		out.Host = r.Host
		if !strings.HasPrefix(out.Path, "/") {
			return "request target outside " + envoyPrefix + "/"
		}
		return checkURI(out.Path)
	case endpointAuth:
		return fromFamily(forwarded, r, out)
	case endpointNginx:
		return fromFamily(original, r, out)
	}
	return "unknown endpoint"
}

// fromFamily reads method, URI and host from one family of forwarding
// headers. Missing, empty or repeated method and URI headers are refused:
// a proxy that did not say which request it asks about gets no answer but
// a 400, never a decision about some default.
func fromFamily(f family, r *http.Request, out *authz.Request) string {
	method, detail := single(r.Header, f.method)
	if detail != "" {
		return detail
	}
	if !httpsyntax.IsToken(method) {
		return f.method + " is not an HTTP method"
	}
	uri, detail := single(r.Header, f.uri)
	if detail != "" {
		return detail
	}
	if !strings.HasPrefix(uri, "/") {
		return f.uri + " is not an origin-form request target"
	}
	if detail := checkURI(uri); detail != "" {
		return detail
	}
	out.Method = strings.ToUpper(method)
	out.Path = uri
	out.Host = r.Host
	switch hs := r.Header[f.host]; {
	case len(hs) > 1:
		return f.host + " repeated"
	case len(hs) == 1 && hs[0] != "":
		if strings.ContainsAny(hs[0], ", \t") {
			// A list ("a, b") appended by a chain of proxies names no one
			// host to match routes against.
			return f.host + " is not a single host"
		}
		out.Host = hs[0]
	}
	return ""
}

// single returns the one non-empty value of a header that must be there
// exactly once.
func single(h http.Header, key string) (string, string) {
	vs := h[key]
	switch {
	case len(vs) == 0:
		return "", key + " missing"
	case len(vs) > 1:
		return "", key + " repeated"
	case vs[0] == "":
		return "", key + " empty"
	}
	return vs[0], ""
}

// checkURI refuses whitespace and control bytes, which no proxy puts in a
// request target it forwards and which would only let the matcher and the
// upstream disagree about the path.
func checkURI(uri string) string {
	for i := 0; i < len(uri); i++ {
		if c := uri[i]; c <= ' ' || c == 0x7f {
			return "request URI has whitespace or control bytes"
		}
	}
	return ""
}

// headers is the authz view of an HTTP authorization request's headers. It
// hides both forwarding families: they say which request is asked about,
// and must never also act as a token (an identitySource naming one) or
// anything else the decision reads.
type headers http.Header

var _ authz.Headers = headers(nil)

func (h headers) Get(name string) (string, int) {
	if httpsyntax.IsForwarding(name) {
		return "", 0
	}
	vs := h[textproto.CanonicalMIMEHeaderKey(name)]
	if len(vs) == 0 {
		return "", 0
	}
	return vs[0], len(vs)
}

func (h headers) All(name string) []string {
	if httpsyntax.IsForwarding(name) {
		return nil
	}
	return h[textproto.CanonicalMIMEHeaderKey(name)]
}
