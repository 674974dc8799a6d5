package grpcauthz

import (
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
)

// requestHeaders adapts the two ways Envoy sends request headers. With
// encode_raw_headers (Envoy 1.30+) it fills header_map, one entry per header
// line with raw bytes, and leaves headers empty; otherwise headers is a map
// of lower-case names with repeated headers comma-joined.
type requestHeaders struct {
	m   map[string]string
	raw []*corev3.HeaderValue
	// lower is set when every key of m is a lower-case ASCII token
	// without '_', as Envoy sends the headers of ordinary requests: then
	// no two keys can spell one name, a lookup is one map access instead
	// of a walk of every key, and no key needs the CGI reading
	// (authz.Request.Underscored).
	lower bool
}

// lowerToken reports whether k is made of visible ASCII with no upper-case
// letter and no '_'.
func lowerToken(k string) bool {
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c >= 0x7f || c >= 'A' && c <= 'Z' || c == '_' {
			return false
		}
	}
	return true
}

// underscored lists the request's header names that hold a '_', lower
// case; nil when none does.
func (h *requestHeaders) underscored() []string {
	var out []string
	add := func(k string) {
		if strings.IndexByte(k, '_') >= 0 {
			out = append(out, strings.ToLower(k))
		}
	}
	for k := range h.m {
		add(k)
	}
	for _, hv := range h.raw {
		add(hv.GetKey())
	}
	return out
}

var _ authz.Headers = (*requestHeaders)(nil)

func headerValue(h *corev3.HeaderValue) string {
	if len(h.GetRawValue()) > 0 {
		return string(h.GetRawValue())
	}
	return h.GetValue()
}

func (h *requestHeaders) Get(name string) (string, int) {
	if len(h.raw) > 0 {
		var first string
		n := 0
		for _, hv := range h.raw {
			if strings.EqualFold(hv.GetKey(), name) {
				if n == 0 {
					first = headerValue(hv)
				}
				n++
			}
		}
		return first, n
	}
	if h.lower {
		v, ok := h.m[name]
		if !ok {
			return "", 0
		}
		return v, 1
	}
	// Envoy sends lower-case keys; a client of this API that does not is
	// still read correctly, and two spellings of one name are two values,
	// even when one of them is the lower-case one.
	first, ok := h.m[name]
	n := 0
	if ok {
		n = 1
	}
	for k, v := range h.m {
		if len(k) == len(name) && k != name && strings.EqualFold(k, name) {
			if n == 0 {
				first = v
			}
			n++
		}
	}
	return first, n
}

func (h *requestHeaders) All(name string) []string {
	var out []string
	if len(h.raw) > 0 {
		for _, hv := range h.raw {
			if strings.EqualFold(hv.GetKey(), name) {
				out = append(out, headerValue(hv))
			}
		}
		return out
	}
	if h.lower {
		if v, ok := h.m[name]; ok {
			return []string{v}
		}
		return nil
	}
	for k, v := range h.m {
		if strings.EqualFold(k, name) {
			out = append(out, v)
		}
	}
	return out
}

// toRequest translates an Envoy CheckRequest. Every getter is nil-safe, so
// a request with missing parts becomes a request with empty fields, which
// the decision then denies.
//
// lower says that every key of the headers map is a lower-case token and
// no header_map is sent (Limits.exceeded finds it out).
func toRequest(req *authv3.CheckRequest, lower bool, hs *requestHeaders, out *authz.Request) {
	attrs := req.GetAttributes()
	httpReq := attrs.GetRequest().GetHttp()
	hs.m = httpReq.GetHeaders()
	hs.raw = httpReq.GetHeaderMap().GetHeaders()
	hs.lower = lower
	out.Method = httpReq.GetMethod()
	out.Host = httpReq.GetHost()
	out.Path = httpReq.GetPath()
	if out.Method == "" {
		out.Method, _ = hs.Get(":method")
	}
	if out.Host == "" {
		out.Host, _ = hs.Get(":authority")
	}
	if out.Path == "" {
		out.Path, _ = hs.Get(":path")
	}
	out.Method = strings.ToUpper(out.Method)
	out.RouteName = attrs.GetContextExtensions()["route"]
	out.Headers = hs
	if !lower {
		out.Underscored = hs.underscored()
	}
}
