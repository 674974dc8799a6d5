package policy

import (
	"strconv"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Candidate is one route a request's path could match, for explain: the
// route, whether it won, and why it won or lost.
type Candidate struct {
	Route *Route
	Won   bool
	Why   string
}

// Candidates returns every route whose path template matches the request's
// canonical path, in the order Match tries them, each with why it won or
// lost. The winner, when there is one, is the route Match returns, and
// code is Match's: "" with a winner, else reason.RouteNotFound,
// reason.PathInvalid (no candidates when the path has no canonical form)
// or reason.HostInvalid; a route that would have won but for a refusal
// says so.
//
// It walks the same trie in the same order as Match, but does not stop at
// the first route that admits the method and host: explain is off the hot
// path, and an operator wants to see what lost.
func (s *Snapshot) Candidates(method, host, path string) ([]Candidate, reason.Code) {
	segs, ok := canonicalPath(path, nil)
	if !ok {
		return nil, reason.PathInvalid
	}
	won, code := s.Match(method, host, path)
	routes := s.trie.collect(segs, nil)
	m := methodBit(method)
	h, hostOK := parseAuthority(host)
	out := make([]Candidate, 0, len(routes))
	var first *Route
	for _, r := range routes {
		c := Candidate{Route: r}
		switch {
		case !r.methods.admits(m):
			c.Why = "method " + method + " not in " + r.methods.String()
		case r.host.name != "" && !hostOK:
			c.Why = "host " + strconv.Quote(host) + " is not a valid host[:port]; a host-scoped route never falls through on it"
		case !r.host.admits(h):
			c.Why = "host " + host + " does not match " + r.host.String()
		case first != nil:
			c.Why = "a more specific route won: " + first.Name
		default:
			first = r
			c.Won = r == won
			c.Why = "won: the most specific template (" + templateKind(r) + ") whose methods and host admit the request"
			if !c.Won {
				c.Why = "would have won, but the request is refused (" + string(code) + "): " + refusal(code)
			}
		}
		out = append(out, c)
	}
	return out, code
}

// refusal explains a Match refusal code for explain.
func refusal(code reason.Code) string {
	switch code {
	case reason.PathInvalid:
		return "upstreams could route this path to another route (read case-folded, or raw rather than decoded and ';'-cut)"
	case reason.HostInvalid:
		return "the host is not a valid host[:port] and a host-scoped route could serve this path"
	}
	return string(code)
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
