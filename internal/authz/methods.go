package authz

import (
	"net/url"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

// overrideParam is the query parameter that Laravel, Symfony, Rails (with
// Rack::MethodOverride's query option) and Express's method-override read
// the same way. A form body's _method cannot be seen from here: upstreams
// must not read it from the body of a request this service authorises (the
// README says so).
const overrideParam = "_method"

// methods returns the methods req must be allowed for: its own first, then
// each other method an override names, at most one per route-method class
// (the seven API Gateway methods and "anything else"), since two methods of
// one class match the same routes.
func methods(req *Request) []string {
	out := []string{req.Method}
	add := func(v string) {
		for m := range strings.SplitSeq(v, ",") {
			// Envoy joins repeated headers with ", "; frameworks upper-case
			// the override before using it.
			m = strings.ToUpper(strings.Trim(m, " \t"))
			if m != "" && !sameClass(out, m) {
				out = append(out, m)
			}
		}
	}
	// An upstream that honours an override header runs the handler of the
	// named method, so the request must be allowed for that method as well
	// as for the one it was sent with.
	for _, h := range httpsyntax.OverrideHeaders {
		for _, v := range req.Headers.All(h) {
			add(v)
		}
	}
	// "x_http_method_override" is the override header to a CGI-style
	// upstream.
	for _, n := range req.Underscored {
		if httpsyntax.IsOverrideHeader(httpsyntax.CGIName(n)) {
			for _, v := range req.Headers.All(n) {
				add(v)
			}
		}
	}
	if q := strings.IndexByte(req.Path, '?'); q >= 0 && mayOverride(req.Path[q+1:]) {
		for _, v := range queryValues(req.Path[q+1:]) {
			add(v)
		}
	}
	return out
}

// mayOverride is the cheap test that keeps the query of almost every
// request from being parsed: a key that some upstream reads as _method
// either spells "method" in ASCII, in any case, or hides a letter of it
// behind a '%' escape.
func mayOverride(query string) bool {
	if strings.IndexByte(query, '%') >= 0 {
		return true
	}
	for i := strings.IndexAny(query, "mM"); i >= 0 && i+len("method") <= len(query); {
		if strings.EqualFold(query[i:i+len("method")], "method") {
			return true
		}
		j := strings.IndexAny(query[i+1:], "mM")
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// sameClass reports whether ms already holds a method that routes match
// exactly as they match m.
func sameClass(ms []string, m string) bool {
	for _, x := range ms {
		if x == m || !knownMethod(x) && !knownMethod(m) {
			return true
		}
	}
	return false
}

func knownMethod(m string) bool {
	switch m {
	case "GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS":
		return true
	}
	return false
}

// queryValues returns every decoded value of each query parameter that an
// upstream could read as _method, skipping values that do not decode (a
// lenient upstream keeps such a value as written, and no method name has a
// '%' in it). Keys are read the ways upstreams read them (overrideKey);
// pairs are split at '&' and at ';', which Rack before version 3 and
// Python's parse_qs before 3.9.2 also treat as a separator.
func queryValues(query string) []string {
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	var out []string
	for pair := range strings.FieldsFuncSeq(query, func(r rune) bool { return r == '&' || r == ';' }) {
		k, v, _ := strings.Cut(pair, "=")
		if !overrideKey(k) {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			out = append(out, dv)
		}
	}
	return out
}

// overrideKey reports whether some upstream reads the raw query key k as
// the _method parameter: once percent-decoded with '+' as a space (Node's
// querystring, every framework), compared without case (ASP.NET's
// collections), and read by PHP's rules, which make "." and " " in a name
// "_" ("a.b" is $_GET["a_b"]), skip leading spaces, and take "_method[x]"
// as an element of _method. A key that still holds an escape after one
// decoding is decoded once more, for a stack that decodes twice.
func overrideKey(k string) bool {
	for range 2 {
		d, err := url.QueryUnescape(k)
		if err != nil {
			return false
		}
		if isOverrideParam(d) || isOverrideParam(phpName(d)) || isOverrideParam(phpName(strings.TrimLeft(d, " "))) {
			return true
		}
		if d == k || strings.IndexByte(d, '%') < 0 {
			return false
		}
		k = d
	}
	return false
}

func isOverrideParam(k string) bool { return strings.EqualFold(k, overrideParam) }

// phpName is the variable name PHP registers for the query key k: an array
// key "_method[x]" (a '[' with a later ']') names _method, and '.', ' '
// and a '[' that opens no array become '_'.
func phpName(k string) string {
	if i := strings.IndexByte(k, '['); i >= 0 && strings.IndexByte(k[i:], ']') > 0 {
		k = k[:i]
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.', ' ', '[':
			return '_'
		}
		return r
	}, k)
}

// merge combines the allows of one request under two methods into d: the
// claim headers either sets (d's value where both set a name), every
// removal either asks for that no set header undoes, and the query
// parameters either removes. d's route and reason stay.
func merge(d, o *Decision) *Decision {
	for _, h := range o.SetHeaders {
		if !isSet(d.SetHeaders, h.Name) {
			d.SetHeaders = append(d.SetHeaders, h)
		}
	}
	remove := make([]string, 0, len(d.RemoveHeaders)+len(o.RemoveHeaders))
	for _, names := range [][]string{d.RemoveHeaders, o.RemoveHeaders} {
		for _, n := range names {
			if !isSet(d.SetHeaders, n) && !contains(remove, n) {
				remove = append(remove, n)
			}
		}
	}
	d.RemoveHeaders = remove
	// A would-be denial under either method is what a dry run reports.
	if o.DryRun && !d.DryRun {
		d.DryRun, d.Reason = true, o.Reason
	}
	for _, q := range o.RemoveQuery {
		if !contains(d.RemoveQuery, q) {
			d.RemoveQuery = append(d.RemoveQuery, q)
		}
	}
	return d
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
