package policy

import "slices"

// hostShadowed warns about a host-scoped route whose requests, sent with
// any other Host, are judged by a hostless route with other rules: the
// service cannot tell a request meant for the host from one that is not,
// so Envoy's virtual host must name the API's hosts (domains: ["*"] lets
// "Host: 10.0.0.5" through to the upstream, judged by the weaker route).
func hostShadowed(r *reporter, s *Snapshot, doc *document) {
	for _, h := range s.routes {
		if h.host.name == "" {
			continue
		}
		// The hostless route that would judge the host's requests is the
		// most specific one that overlaps.
		var judge *Route
		for _, o := range s.routes {
			if o.host.name == "" && methodsOverlap(h.methods, o.methods) && templatesOverlap(h.segs, o.segs) &&
				(judge == nil || moreSpecific(o, judge)) {
				judge = o
			}
		}
		if judge == nil || sameRules(h, judge) {
			continue
		}
		v := routeValue(doc, h)
		r.warnf(v.Node, v.Path, "route %q is scoped to host %s, but requests for its path with another Host are judged by route %q, which has other rules: make Envoy's virtual host name the API's domains (not \"*\") so no other Host reaches the upstream",
			h.Name, h.host, judge.Name)
	}
}

// caseCollisions warns about routes whose templates differ only in case:
// a case-insensitive upstream (Express, ASP.NET) cannot tell them apart, so
// requests for one of them are refused as path_invalid.
func caseCollisions(r *reporter, s *Snapshot, doc *document) {
	seen := map[string]*Route{}
	for _, rt := range s.routes {
		key := fold(shapeKey(rt.segs))
		if prev, ok := seen[key]; ok && shapeKey(prev.segs) != shapeKey(rt.segs) {
			v := routeValue(doc, rt)
			r.warnf(v.Node, v.Path, "route %q (%s) differs from route %q (%s) only in case: a case-insensitive upstream cannot tell them apart, so requests that match one spelling but not the other are refused (path_invalid)",
				rt.Name, rt.Template, prev.Name, prev.Template)
			continue
		}
		seen[key] = rt
	}
}

func routeValue(doc *document, rt *Route) docValue {
	if rt.index >= 0 && rt.index < len(doc.Routes.Items) {
		return doc.Routes.Items[rt.index].docValue
	}
	return doc.Routes.docValue
}

// moreSpecific orders templates as matching does: segment kinds from the
// left, literal before {param} before {proxy+}; then file order.
func moreSpecific(a, b *Route) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	return a.index < b.index
}

func methodsOverlap(a, b methodSet) bool {
	return a&methodAny == methodAny || b&methodAny == methodAny || a&b != 0
}

// templatesOverlap reports whether some path matches both templates.
func templatesOverlap(a, b []segment) bool {
	for i := 0; ; i++ {
		switch {
		case i == len(a) && i == len(b):
			return true
		case i < len(a) && a[i].kind == segGreedy:
			return i < len(b) // {proxy+} needs one segment or more
		case i < len(b) && b[i].kind == segGreedy:
			return i < len(a)
		case i == len(a) || i == len(b):
			return false
		case a[i].kind == segLiteral && b[i].kind == segLiteral && a[i].text != b[i].text:
			return false
		}
	}
}

// sameRules reports whether two routes judge a request alike.
func sameRules(a, b *Route) bool {
	return a.NoAuth == b.NoAuth && a.Authorizer == b.Authorizer && a.Mode == b.Mode &&
		slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.Groups, b.Groups) &&
		slices.Equal(a.Claims, b.Claims) && slices.Equal(a.ClaimHeaders, b.ClaimHeaders)
}
