package policy

import (
	"slices"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// methodSet is a set of HTTP methods as a bit mask. methodAny also admits
// methods outside the seven API Gateway names.
type methodSet uint16

const (
	methodGet methodSet = 1 << iota
	methodPost
	methodPut
	methodPatch
	methodDelete
	methodHead
	methodOptions

	methodAny methodSet = 1<<15 | methodGet | methodPost | methodPut | methodPatch | methodDelete | methodHead | methodOptions
)

// methodBit returns the bit of an upper-case method name, 0 for a method
// outside the set (which only methodAny admits).
func methodBit(m string) methodSet {
	switch m {
	case "GET":
		return methodGet
	case "POST":
		return methodPost
	case "PUT":
		return methodPut
	case "PATCH":
		return methodPatch
	case "DELETE":
		return methodDelete
	case "HEAD":
		return methodHead
	case "OPTIONS":
		return methodOptions
	}
	return 0
}

// admits reports whether a route with these methods serves a request
// whose method has the given bit. A HEAD request is also served by a GET
// route: Go's ServeMux, Express and Spring all run the GET handler for HEAD
// when no HEAD handler exists, so a GET route's rules must hold for it.
func (s methodSet) admits(bit methodSet) bool {
	if s&methodAny == methodAny || s&bit != 0 {
		return true
	}
	return bit == methodHead && s&methodGet != 0
}

// String lists the methods, for problem text.
func (s methodSet) String() string {
	if s&methodAny == methodAny {
		return "ANY"
	}
	var names []string
	for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
		if s&methodBit(m) != 0 {
			names = append(names, m)
		}
	}
	return strings.Join(names, ",")
}

// node is one position of the segment trie. Children are tried in API
// Gateway's order of precedence: literal, then {param}, then {proxy+}.
type node struct {
	literal map[string]*node
	param   *node
	exact   []*Route // routes whose template ends here, most specific host first
	greedy  []*Route // routes whose {proxy+} starts here, most specific host first
}

// insert adds r under its template; with folded, under the case-folded
// form of its literal segments.
func (n *node) insert(r *Route, folded bool) {
	for _, s := range r.segs {
		switch s.kind {
		case segLiteral:
			if n.literal == nil {
				n.literal = make(map[string]*node)
			}
			text := s.text
			if folded {
				text = fold(text)
			}
			c := n.literal[text]
			if c == nil {
				c = &node{}
				n.literal[text] = c
			}
			n = c
		case segParam:
			if n.param == nil {
				n.param = &node{}
			}
			n = n.param
		case segGreedy:
			n.greedy = append(n.greedy, r)
			return
		}
	}
	n.exact = append(n.exact, r)
}

// index builds the route tries of s from s.routes: one as written and
// one with every literal case-folded, for Snapshot.readings. When every
// literal is its own fold (the usual policy, all lower case) the two would
// be equal node for node, so they are one trie.
func (s *Snapshot) index() {
	s.literalsFolded = true
	for _, r := range s.routes {
		for _, sg := range r.segs {
			if sg.kind == segLiteral && fold(sg.text) != sg.text {
				s.literalsFolded = false
			}
		}
	}
	s.trie = build(s.routes, false)
	s.ftrie = s.trie
	if !s.literalsFolded {
		s.ftrie = build(s.routes, true)
	}
}

// build returns the trie of routes; with folded, of the case-folded form
// of their literal segments.
func build(routes []*Route, folded bool) *node {
	t := &node{}
	for _, r := range routes {
		t.insert(r, folded)
	}
	t.finish()
	return t
}

// finish orders the routes of every node by host specificity, then file
// order.
func (n *node) finish() {
	order := func(a, b *Route) int {
		if d := b.host.specificity() - a.host.specificity(); d != 0 {
			return d
		}
		return a.index - b.index
	}
	slices.SortFunc(n.exact, order)
	slices.SortFunc(n.greedy, order)
	for _, c := range n.literal {
		c.finish()
	}
	if n.param != nil {
		n.param.finish()
	}
}

// query is what a trie walk matches besides the path. hostSkipped records
// that a host-scoped route would have been a candidate had the host been
// valid: a malformed host is refused only when it could change the route.
type query struct {
	method      methodSet
	host        hostPattern
	hostOK      bool
	hostSkipped bool
}

// match walks the trie depth first in order of precedence, so the first
// route found is the most specific one; a literal branch that dead-ends
// further down yields to the {param} branch, and so on.
//
// An empty segment stands for a trailing slash read as the start of a
// subtree (see Snapshot.Resolve): only {proxy+} takes it, as only a greedy
// pattern ("/a/*", "/a/", "/a/**") serves "/a/" in the routers that
// distinguish it from "/a".
func (n *node) match(segs []string, q *query) *Route {
	if len(segs) == 0 {
		return q.pick(n.exact)
	}
	if segs[0] != "" {
		if c := n.literal[segs[0]]; c != nil {
			if r := c.match(segs[1:], q); r != nil {
				return r
			}
		}
		if n.param != nil {
			if r := n.param.match(segs[1:], q); r != nil {
				return r
			}
		}
	}
	// {proxy+} takes the one or more segments left.
	return q.pick(n.greedy)
}

func (q *query) pick(routes []*Route) *Route {
	for _, r := range routes {
		if !r.methods.admits(q.method) {
			continue
		}
		if r.host.name != "" && !q.hostOK {
			q.hostSkipped = true
			continue
		}
		if r.host.admits(q.host) {
			return r
		}
	}
	return nil
}

// Match finds the route for a request. method is upper case, as Envoy
// sends it; host is the :authority (a port in it is ignored unless the
// route's host has one); path is the raw request target, query included,
// not decoded. It returns the route and an empty code, or nil and one of:
//   - reason.RouteNotFound: no route serves the request;
//   - reason.PathInvalid: the path has no canonical form, or an upstream
//     could route it to another resource than the one matched (see
//     readings);
//   - reason.HostInvalid: the host is not a valid host[:port] and a
//     host-scoped route could have served the path.
//
// For a path with a trailing slash Match returns the route of the subtree
// reading when there is one; Resolve also returns the other reading's.
func (s *Snapshot) Match(method, host, path string) (*Route, reason.Code) {
	r, _, code := s.Resolve(method, host, path)
	return r, code
}

// Resolve is Match for a decision: it also returns the second route a
// request with a trailing slash must satisfy, nil for every other request.
//
// Upstreams disagree on "/console/": Express (non-strict routing) and API
// Gateway read it as "/console", while Go's ServeMux ("/console/"), Express
// ("/console/*") and Spring ("/console/**") serve it from the handler of
// the subtree below "/console". So a path that ends in '/' after at least
// one segment is read both ways: with the slash ignored, and with the
// slash as the start of a subtree, which only a {proxy+} route beginning
// there can take. When the readings land on different routes, route is
// the subtree's and also the other; the request must be allowed by both,
// so it is never judged by the weaker of the two. A bare "/" is only the
// root resource, as in API Gateway.
func (s *Snapshot) Resolve(method, host, path string) (route, also *Route, code reason.Code) {
	var buf [32]string
	segs, ok := canonicalPath(path, buf[:0])
	if !ok {
		return nil, nil, reason.PathInvalid
	}
	q := query{method: methodBit(method)}
	q.host, q.hostOK = parseAuthority(host)
	r, agree := s.readings(path, segs, false, &q)
	if len(segs) > 0 && trailingSlash(path) {
		sub, subAgree := s.readings(path, segs, true, &q)
		agree = agree && subAgree
		if sub != nil && sub != r {
			r, also = sub, r
		}
	}
	switch {
	case !q.hostOK && q.hostSkipped:
		return nil, nil, reason.HostInvalid
	case !agree:
		return nil, nil, reason.PathInvalid
	case r == nil:
		return nil, nil, reason.RouteNotFound
	}
	return r, also, ""
}

// trailingSlash reports whether the path part of a request target ends in
// '/'.
func trailingSlash(p string) bool {
	n := pathEnd(p)
	return n > 0 && p[n-1] == '/'
}

// Admits checks a route Envoy selected by name (context_extensions) against
// the request's method and host: naming a route skips path matching, never
// the route's own methods and host. It returns "" when the route serves
// the request, reason.HostInvalid for a malformed host on a host-scoped
// route, and reason.RouteNotFound otherwise.
func (r *Route) Admits(method, host string) reason.Code {
	if !r.methods.admits(methodBit(method)) {
		return reason.RouteNotFound
	}
	if r.host.name == "" {
		return ""
	}
	h, ok := parseAuthority(host)
	if !ok {
		return reason.HostInvalid
	}
	if !r.host.admits(h) {
		return reason.RouteNotFound
	}
	return ""
}
