package policy

import (
	"slices"
	"strconv"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Candidate is one route a request's path could match, for explain: the
// route, whether it won (or, for a path with a trailing slash, must be
// satisfied as well), and why.
type Candidate struct {
	Route *Route
	Won   bool
	// Also marks the route that a path with a trailing slash must satisfy
	// besides the winner: the one its reading without the slash finds
	// (see Snapshot.Resolve).
	Also bool
	Why  string
}

// Candidates returns every route whose path template matches the request's
// canonical path, in the order Match tries them, each with why it won or
// lost. The winner, when there is one, is the route Match returns, and
// code is Match's: "" with a winner, else reason.RouteNotFound,
// reason.PathInvalid (no candidates when the path has no canonical form)
// or reason.HostInvalid; a route that would have won but for a refusal
// says so. For a path with a trailing slash the subtree reading's
// candidates come first, then those only the plain reading finds.
//
// It walks the same trie in the same order as Match, but does not stop at
// the first route that admits the method and host: explain is off the hot
// path, and an operator wants to see what lost.
func (s *Snapshot) Candidates(method, host, path string) ([]Candidate, reason.Code) {
	segs, ok := canonicalPath(path, nil)
	if !ok {
		return nil, reason.PathInvalid
	}
	won, also, code := s.Resolve(method, host, path)
	plain := s.trie.collect(segs, nil)
	if len(segs) == 0 || !trailingSlash(path) {
		return s.candidates(nil, plain, method, host, reading{win: won}, code), code
	}
	sub := s.trie.collect(append(segs, ""), nil)
	out := s.candidates(nil, sub, method, host, reading{win: won, prefix: "subtree reading (trailing slash): "}, code)
	if also != nil {
		// The plain reading found another route: all of it, since its
		// winner may also be a loser of the subtree reading.
		return s.candidates(out, plain, method, host, reading{win: also, also: true, prefix: "reading without the trailing slash: "}, code), code
	}
	// The same winner both ways: the plain reading's routes that the
	// subtree reading did not list, which lose to that winner.
	rest := slices.DeleteFunc(plain, func(r *Route) bool { return slices.Contains(sub, r) })
	return s.candidates(out, rest, method, host, reading{win: won, first: won}, code), code
}

// reading is how candidates labels one reading's routes: win is the route
// Resolve picked in it (nil for none); also says that route is the second
// one a trailing slash adds; first is a winner listed already by another
// reading; prefix starts every explanation.
//
// With a trailing slash the subtree reading's candidates come first. When
// the reading without the slash finds another route (also), all of its
// candidates follow; else only those the first reading did not list.
type reading struct {
	win, first *Route
	also       bool
	prefix     string
}

// candidates appends the candidates of one reading, in the order tried.
func (s *Snapshot) candidates(out []Candidate, routes []*Route, method, host string, rd reading, code reason.Code) []Candidate {
	m := methodBit(method)
	h, hostOK := parseAuthority(host)
	first := rd.first
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
			c.Why = "won: the most specific template (" + templateKind(r) + ") whose methods and host admit the request"
			switch {
			case r != rd.win:
				c.Why = "would have won, but the request is refused (" + string(code) + "): " + refusal(code)
			case rd.also:
				c.Also = true
				c.Why = "also applies: the path without its trailing slash is this route's, and the request must satisfy it too"
			default:
				c.Won = true
			}
		}
		c.Why = rd.prefix + c.Why
		out = append(out, c)
	}
	return out
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
	if segs[0] != "" { // an empty segment is for {proxy+} only, as in match
		if c := n.literal[segs[0]]; c != nil {
			out = c.collect(segs[1:], out)
		}
		if n.param != nil {
			out = n.param.collect(segs[1:], out)
		}
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
