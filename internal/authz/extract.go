package authz

import (
	"net/url"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// extract returns the raw token from the authorizer's identity source, or
// the reason there is none. A source that carries two values is refused:
// which one a proxy, the authorizer and the upstream would each pick is
// exactly the kind of disagreement attackers use.
func extract(src policy.IdentitySource, req *Request) (string, reason.Code) {
	switch src.Kind {
	case policy.SourceHeader:
		return fromHeader(req.Headers, src.Name)
	case policy.SourceQuery:
		return fromQuery(req.Path, src.Name)
	case policy.SourceCookie:
		return fromCookie(req.Headers.All("cookie"), src.Name)
	}
	return "", reason.Internal
}

func fromHeader(h Headers, name string) (string, reason.Code) {
	v, n := h.Get(name)
	switch {
	case n == 0:
		return "", reason.TokenMissing
	case n > 1:
		return "", reason.TokenAmbiguous
	}
	return bearer(v)
}

// bearer strips an optional "Bearer" scheme (any case, then one or more
// spaces); the bare token is accepted too, as API Gateway does.
func bearer(v string) (string, reason.Code) {
	v = strings.Trim(v, " \t")
	const scheme = "bearer"
	if len(v) >= len(scheme) && strings.EqualFold(v[:len(scheme)], scheme) &&
		(len(v) == len(scheme) || v[len(scheme)] == ' ') {
		v = strings.TrimLeft(v[len(scheme):], " ")
	}
	if v == "" {
		return "", reason.TokenMissing
	}
	// Envoy joins repeated headers with a comma; a JWT never contains one.
	if strings.IndexByte(v, ',') >= 0 {
		return "", reason.TokenAmbiguous
	}
	return v, ""
}

func fromQuery(path, name string) (string, reason.Code) {
	i := strings.IndexByte(path, '?')
	if i < 0 {
		return "", reason.TokenMissing
	}
	q := path[i+1:]
	if j := strings.IndexByte(q, '#'); j >= 0 {
		q = q[:j]
	}
	var found string
	count := 0
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil || key != name {
			continue
		}
		count++
		val, err := url.QueryUnescape(v)
		if err != nil {
			return "", reason.TokenMalformed
		}
		found = val
	}
	return single(found, count)
}

// single is the one value an identity source must carry: none (or an
// empty one) is a missing token, more than one an ambiguous one.
func single(value string, count int) (string, reason.Code) {
	switch {
	case count == 0 || count == 1 && value == "":
		return "", reason.TokenMissing
	case count > 1:
		return "", reason.TokenAmbiguous
	}
	return value, ""
}

func fromCookie(headers []string, name string) (string, reason.Code) {
	var found string
	count := 0
	forEachCookie(headers, func(k, v string) {
		if k == name {
			count++
			found = v
		}
	})
	return single(found, count)
}

// forEachCookie calls fn for each name=value pair of the Cookie header
// values. Pairs are separated by ';' (RFC 6265) or ',' (how proxies join
// repeated headers; a cookie-octet never contains one). A quoted value is
// unquoted.
func forEachCookie(headers []string, fn func(name, value string)) {
	for _, h := range headers {
		for h != "" {
			var part string
			if i := strings.IndexAny(h, ";,"); i >= 0 {
				part, h = h[:i], h[i+1:]
			} else {
				part, h = h, ""
			}
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			k, v, _ := strings.Cut(part, "=")
			k = strings.TrimSpace(k)
			v = strings.TrimSpace(v)
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			fn(k, v)
		}
	}
}

// cookieHeaderWithout rebuilds the Cookie header without the named cookie.
// ok is false when no cookie remains.
func cookieHeaderWithout(headers []string, name string) (string, bool) {
	var b strings.Builder
	forEachCookie(headers, func(k, v string) {
		if k == name {
			return
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
	})
	return b.String(), b.Len() > 0
}
