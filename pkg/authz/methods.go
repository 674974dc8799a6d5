package authz

import (
	"net/url"
	"strings"
)

// overrideHeaders are the request headers through which web frameworks
// let a client tunnel one method inside another (Express's
// method-override, Spring's and ASP.NET's filters, Rails' and Symfony's
// request objects, Google's and Microsoft's APIs). An upstream that honours
// one runs the handler of the named method, so the request must be allowed
// for that method as well as for the one it was sent with.
var overrideHeaders = [...]string{"x-http-method-override", "x-http-method", "x-method-override"}

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
	for _, h := range overrideHeaders {
		for _, v := range req.Headers.All(h) {
			add(v)
		}
	}
	if q := strings.IndexByte(req.Path, '?'); q >= 0 && strings.Contains(req.Path[q:], overrideParam) {
		for _, v := range queryValues(req.Path[q+1:], overrideParam) {
			add(v)
		}
	}
	return out
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

// queryValues returns every value of the query parameter name, decoded,
// skipping pairs that do not decode (a lenient upstream might still read
// them; they name no method this service could judge anyway, and the
// request must then pass for its own method, which it already must).
func queryValues(query, name string) []string {
	if i := strings.IndexByte(query, '#'); i >= 0 {
		query = query[:i]
	}
	var out []string
	for pair := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(pair, "=")
		if dk, err := url.QueryUnescape(k); err != nil || dk != name {
			continue
		}
		if dv, err := url.QueryUnescape(v); err == nil {
			out = append(out, dv)
		}
	}
	return out
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
