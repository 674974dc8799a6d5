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

func (s methodSet) admits(bit methodSet) bool {
	return s&methodAny == methodAny || s&bit != 0
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

// hostPattern is a route's host: empty name for any host; an empty port
// admits any port in the request's authority.
type hostPattern struct {
	name string // lower case, no trailing dot; IPv6 literals keep brackets
	port string
}

// specificity orders routes of one path: host and port, then host, then
// no host.
func (h hostPattern) specificity() int {
	switch {
	case h.name == "":
		return 0
	case h.port == "":
		return 1
	}
	return 2
}

func (h hostPattern) String() string {
	if h.port == "" {
		return h.name
	}
	return h.name + ":" + h.port
}

func (h hostPattern) admits(req hostPattern) bool {
	if h.name == "" {
		return true
	}
	return strings.EqualFold(h.name, req.name) && (h.port == "" || h.port == req.port)
}

// splitAuthority splits a request's :authority into host and port, drops
// one trailing dot of the host (example.com. is example.com), and keeps the
// case (admits compares without it, so Match does not allocate).
func splitAuthority(a string) hostPattern {
	var h hostPattern
	if strings.HasPrefix(a, "[") {
		i := strings.IndexByte(a, ']')
		if i < 0 {
			return hostPattern{name: a}
		}
		h.name = a[:i+1]
		if rest := a[i+1:]; strings.HasPrefix(rest, ":") {
			h.port = rest[1:]
		}
		return h
	}
	h.name = a
	if i := strings.LastIndexByte(a, ':'); i >= 0 && strings.IndexByte(a[:i], ':') < 0 {
		h.name, h.port = a[:i], a[i+1:]
	}
	h.name = strings.TrimSuffix(h.name, ".")
	return h
}

// node is one position of the segment trie. Children are tried in API
// Gateway's order of precedence: literal, then {param}, then {proxy+}.
type node struct {
	literal map[string]*node
	param   *node
	exact   []*Route // routes whose template ends here, most specific host first
	greedy  []*Route // routes whose {proxy+} starts here, most specific host first
}

func (n *node) insert(r *Route) {
	for _, s := range r.segs {
		switch s.kind {
		case segLiteral:
			if n.literal == nil {
				n.literal = make(map[string]*node)
			}
			c := n.literal[s.text]
			if c == nil {
				c = &node{}
				n.literal[s.text] = c
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

// match walks the trie depth first in order of precedence, so the first
// route found is the most specific one; a literal branch that dead-ends
// further down yields to the {param} branch, and so on.
func (n *node) match(segs []string, m methodSet, h hostPattern) *Route {
	if len(segs) == 0 {
		return pick(n.exact, m, h)
	}
	if c := n.literal[segs[0]]; c != nil {
		if r := c.match(segs[1:], m, h); r != nil {
			return r
		}
	}
	if n.param != nil {
		if r := n.param.match(segs[1:], m, h); r != nil {
			return r
		}
	}
	// {proxy+} takes the one or more segments left.
	return pick(n.greedy, m, h)
}

func pick(routes []*Route, m methodSet, h hostPattern) *Route {
	for _, r := range routes {
		if r.methods.admits(m) && r.host.admits(h) {
			return r
		}
	}
	return nil
}

// Match finds the route for a request. method is upper case, as Envoy
// sends it; host is the :authority (a port in it is ignored unless the
// route's host has one); path is the raw request target, query included,
// not decoded. It returns the route and an empty code, or nil and
// reason.RouteNotFound, or nil and reason.PathInvalid when the path cannot
// be put in canonical form.
func (s *Snapshot) Match(method, host, path string) (*Route, reason.Code) {
	var buf [32]string
	segs, ok := canonicalPath(path, buf[:0])
	if !ok {
		return nil, reason.PathInvalid
	}
	if r := s.trie.match(segs, methodBit(method), splitAuthority(host)); r != nil {
		return r, ""
	}
	return nil, reason.RouteNotFound
}

// canonicalPath appends the decoded segments of a request target to segs:
// the query and fragment cut off, ';' path parameters cut from each
// segment, empty and "." segments dropped, ".."
// popping one segment (never above the root), each segment percent-decoded
// once.
//
// It refuses (false) what the upstream might read as a different path
// than the one matched: an invalid escape; an encoded '/' or '\' or control
// character; a raw '\', space or control character; a segment that decodes
// to "." or ".." (an upstream that decodes before resolving dot-segments
// would move up); and a segment that still holds a valid escape after
// decoding (%2561 -> %61), which a second decode would change again.
func canonicalPath(p string, segs []string) ([]string, bool) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" || p[0] != '/' {
		return nil, false
	}
	for p != "" {
		p = p[1:] // the '/'
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i:]
		} else {
			p = ""
		}
		// Path parameters (RFC 3986 section 3.3 "matrix" parameters) are
		// cut before anything else, as Tomcat, Jetty and Spring do before
		// routing: "/admin;x/users" and "/pets/..;/admin" are the admin
		// resource to such an upstream, so they must be to the matcher.
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		escaped := false
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if c <= ' ' || c == 0x7f || c == '\\' {
				return nil, false
			}
			if c == '%' {
				escaped = true
			}
		}
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(segs) > 0 {
				segs = segs[:len(segs)-1]
			}
			continue
		}
		if escaped {
			d, ok := unescapeSegment(seg)
			if !ok {
				return nil, false
			}
			seg = d
		}
		segs = append(segs, seg)
	}
	return segs, true
}

func unescapeSegment(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		c = unhex(s[i+1])<<4 | unhex(s[i+2])
		if c < ' ' || c == 0x7f || c == '/' || c == '\\' {
			return "", false
		}
		b = append(b, c)
		i += 2
	}
	d := string(b)
	if d == "." || d == ".." {
		return "", false
	}
	for i := 0; i+2 < len(d); i++ {
		if d[i] == '%' && isHex(d[i+1]) && isHex(d[i+2]) {
			return "", false
		}
	}
	return d, true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
