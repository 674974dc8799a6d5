package policy

import (
	"strings"
)

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
// case (admits compares without it, so Match does not allocate). It does
// not judge validity: parseAuthority does.
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

// parseAuthority reads a request's :authority as host[:port] and reports
// whether it is one: a DNS name (letters, digits, '-', '_'; non-empty
// labels; at most one trailing dot), an IPv4 address or a bracketed IPv6
// address, then optionally ':' and a port from 1 to 65535.
//
// Anything else (empty, two ports, userinfo, "a..b", "a.com..", a bare
// IPv6 address, an empty port) is not a host any upstream should route on,
// and a host-scoped route must not be skipped because of it: an attacker
// who sends "api.example.com:443:443" must not fall through to a weaker
// hostless route while Envoy's domains ["*"] still reaches the upstream.
func parseAuthority(a string) (hostPattern, bool) {
	h := splitAuthority(a)
	if a == "" || len(a) > 261 {
		return h, false
	}
	if a[0] == '[' {
		i := strings.IndexByte(a, ']')
		if i < 0 {
			return h, false
		}
		if rest := a[i+1:]; rest != "" && (rest[0] != ':' || !validPort(rest[1:])) {
			return h, false
		}
		return h, validIPv6(a[1:i])
	}
	// Two ports, an empty port and a bare IPv6 address all fail here.
	if i := strings.IndexByte(a, ':'); i >= 0 && !validPort(a[i+1:]) {
		return h, false
	}
	return h, validHostName(h.name)
}

// validPort reports whether p is a decimal port from 1 to 65535 without a
// leading zero.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// validHostName reports whether name (its one trailing dot already cut) is
// a DNS name of non-empty labels of at most 63 letters, digits, '-' and
// '_', not starting or ending with '-'. IPv4 addresses are such names.
func validHostName(name string) bool {
	if name == "" || len(name) > 253 {
		return false
	}
	for label := range strings.SplitSeq(name, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}
