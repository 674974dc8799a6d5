package policy

import "slices"

// hostShadowed warns about a host-scoped route whose requests, sent with
// any other Host, are judged by a hostless route with other rules: the
// service cannot tell a request meant for the host from one that is not,
// so Envoy's virtual host must name the API's hosts (domains: ["*"] lets
// "Host: 10.0.0.5" through to the upstream, judged by the weaker route).
//
// The hostless route that would judge the host's requests is found among
// the routes whose templates overlap the host route's, which a walk of the
// route trie yields without looking at the others; host routes of one path
// shape and methods share the answer. So the lint costs about one trie walk
// per distinct host-scoped template, not a pass over every route for every
// host-scoped route.
func hostShadowed(r *reporter, s *Snapshot, doc *document) {
	type shape struct {
		key     string
		methods methodSet
	}
	judges := map[shape]*Route{}
	var overlap []*Route
	for _, h := range s.routes {
		if h.host.name == "" {
			continue
		}
		k := shape{shapeKey(h.segs), h.methods}
		judge, ok := judges[k]
		if !ok {
			overlap = s.trie.overlapping(h.segs, overlap[:0])
			judge = judgeOf(h, overlap)
			judges[k] = judge
		}
		if judge == nil || sameRules(h, judge) {
			continue
		}
		v := routeValue(doc, h)
		r.warnf(v.Node, v.Path(), "route %q is scoped to host %s, but requests for its path with another Host are judged by route %q, which has other rules: make Envoy's virtual host name the API's domains (not \"*\") so no other Host reaches the upstream",
			h.Name, h.host, judge.Name)
	}
}

// judgeOf returns the hostless route that would judge h's requests sent
// with another Host: of the routes whose templates overlap h's (in any
// order), the one whose methods overlap too and that moreSpecific picks
// going through them in file order. moreSpecific is not transitive (two
// templates with the same kinds up to the shorter one's end are ordered by
// file position), so the file order of the pass is part of the answer.
func judgeOf(h *Route, overlap []*Route) *Route {
	slices.SortFunc(overlap, func(a, b *Route) int { return a.index - b.index })
	var judge *Route
	for _, o := range overlap {
		if methodsOverlap(h.methods, o.methods) && (judge == nil || moreSpecific(o, judge)) {
			judge = o
		}
	}
	return judge
}

// overlapping appends to out every hostless route under n whose template
// matches some path that segs (a template's remaining segments) also
// matches, each once, in no particular order. A {proxy+} needs one segment
// or more, so it overlaps a template only where that one has a segment.
func (n *node) overlapping(segs []segment, out []*Route) []*Route {
	if len(segs) == 0 {
		return appendHostless(out, n.exact)
	}
	switch segs[0].kind {
	case segGreedy:
		// {proxy+} overlaps every template with a segment here.
		return n.below(out)
	case segLiteral:
		if c := n.literal[segs[0].text]; c != nil {
			out = c.overlapping(segs[1:], out)
		}
	case segParam:
		for _, c := range n.literal {
			out = c.overlapping(segs[1:], out)
		}
	}
	if n.param != nil {
		out = n.param.overlapping(segs[1:], out)
	}
	// A {proxy+} starting here takes this segment and any after it.
	return appendHostless(out, n.greedy)
}

// below appends every hostless route whose template has a segment at n's
// depth: all under n but those that end at n.
func (n *node) below(out []*Route) []*Route {
	out = appendHostless(out, n.greedy)
	for _, c := range n.literal {
		out = appendHostless(c.below(out), c.exact)
	}
	if n.param != nil {
		out = appendHostless(n.param.below(out), n.param.exact)
	}
	return out
}

func appendHostless(out, routes []*Route) []*Route {
	for _, r := range routes {
		if r.host.name == "" {
			out = append(out, r)
		}
	}
	return out
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
			r.warnf(v.Node, v.Path(), "route %q (%s) differs from route %q (%s) only in case: a case-insensitive upstream cannot tell them apart, so requests that match one spelling but not the other are refused (path_invalid)",
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

// sameRules reports whether two routes judge a request alike.
func sameRules(a, b *Route) bool {
	return a.NoAuth == b.NoAuth && a.Authorizer == b.Authorizer && a.Mode == b.Mode &&
		slices.Equal(a.Scopes, b.Scopes) && slices.Equal(a.Groups, b.Groups) &&
		slices.Equal(a.Claims, b.Claims) && slices.Equal(a.ClaimHeaders, b.ClaimHeaders)
}
