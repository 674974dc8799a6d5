package policy

import "github.com/cognito-extauthz/cognito-extauthz/pkg/reason"

// Candidate is one route a request's path could match, for explain: the
// route, whether it won, and why it won or lost.
type Candidate struct {
	Route *Route
	Won   bool
	Why   string
}

// Candidates returns every route whose path template matches the request's
// path, in the order Match tries them, each with why it won or lost. The
// winner, when there is one, is the route Match returns. code is as
// Match's: "" with a winner, else reason.RouteNotFound or
// reason.PathInvalid (then there are no candidates).
//
// It walks the same trie in the same order as Match, but does not stop at
// the first route that admits the method and host: explain is off the hot
// path, and an operator wants to see what lost.
func (s *Snapshot) Candidates(method, host, path string) ([]Candidate, reason.Code) {
	segs, ok := canonicalPath(path, nil)
	if !ok {
		return nil, reason.PathInvalid
	}
	routes := s.trie.collect(segs, nil)
	m, h := methodBit(method), splitAuthority(host)
	out := make([]Candidate, 0, len(routes))
	var winner *Route
	for _, r := range routes {
		c := Candidate{Route: r}
		switch {
		case !r.methods.admits(m):
			c.Why = "method " + method + " not in " + r.methods.String()
		case !r.host.admits(h):
			c.Why = "host " + host + " does not match " + r.host.String()
		case winner != nil:
			c.Why = "a more specific route won: " + winner.Name
		default:
			winner = r
			c.Won = true
			c.Why = "won: the most specific template (" + templateKind(r) + ") whose methods and host admit the request"
		}
		out = append(out, c)
	}
	if winner == nil {
		return out, reason.RouteNotFound
	}
	return out, ""
}

// collect appends every route whose template matches segs, in match's
// order of precedence: literal, then {param}, then {proxy+}, exact before
// greedy, and within a node most specific host first, then file order.
func (n *node) collect(segs []string, out []*Route) []*Route {
	if len(segs) == 0 {
		return append(out, n.exact...)
	}
	if c := n.literal[segs[0]]; c != nil {
		out = c.collect(segs[1:], out)
	}
	if n.param != nil {
		out = n.param.collect(segs[1:], out)
	}
	return append(out, n.greedy...)
}

// templateKind names the most general segment of a route's template.
func templateKind(r *Route) string {
	kind := "exact path"
	for _, s := range r.segs {
		switch s.kind {
		case segGreedy:
			return "{proxy+}"
		case segParam:
			kind = "{param}"
		}
	}
	return kind
}

// MethodsString lists the route's methods as the policy writes them
// ("ANY" for all).
func (r *Route) MethodsString() string { return r.methods.String() }

// HostString is the route's host ("" for any host).
func (r *Route) HostString() string { return r.host.String() }
