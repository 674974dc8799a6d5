package policy

import (
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// This file is a second, independent statement of the matching rules,
// written for clarity rather than speed, and the tests that hold the
// matcher to it. It is built from the standard library (net/url's
// unescaping and authority parsing, unicode's case mappings) so that a
// shared mistake is unlikely.

// refSegments splits a request target the two ways upstreams read it:
// canonical (each segment's ';' parameters cut, then decoded once; empty
// segments dropped) and raw (verbatim non-empty segments). ok is false for
// what Match must refuse as path_invalid before any route is considered.
func refSegments(target string) (canon, raw []string, ok bool) {
	p, _, _ := strings.Cut(target, "?")
	p, _, _ = strings.Cut(p, "#")
	if !strings.HasPrefix(p, "/") {
		return nil, nil, false
	}
	for _, seg := range strings.Split(p[1:], "/") {
		if strings.ContainsFunc(seg, func(r rune) bool { return r <= ' ' || r == 0x7f || r == '\\' }) {
			return nil, nil, false
		}
		cut, _, _ := strings.Cut(seg, ";")
		if cut == "." || cut == ".." {
			return nil, nil, false
		}
		if seg != "" {
			raw = append(raw, seg)
		}
		if cut == "" {
			continue
		}
		d, err := url.PathUnescape(cut)
		if err != nil || d == "." || d == ".." || strings.ContainsAny(d, "/\\") ||
			strings.ContainsFunc(d, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return nil, nil, false
		}
		if again, err := url.PathUnescape(d); err == nil && again != d {
			return nil, nil, false // a second decode would change it
		}
		canon = append(canon, d)
	}
	return canon, raw, true
}

// refFoldEq reports whether a request segment equals a literal as a
// case-insensitive upstream could compare them: rune by rune equal under
// simple case folding (Go, Express), upper-casing (.NET's
// OrdinalIgnoreCase) or lower-casing (Java's equalsIgnoreCase).
func refFoldEq(seg, lit string) bool {
	if utf8.RuneCountInString(seg) != utf8.RuneCountInString(lit) {
		return false
	}
	ls := []rune(lit)
	for i, r := range []rune(seg) {
		l := ls[i]
		if !(strings.EqualFold(string(r), string(l)) || unicode.ToUpper(r) == unicode.ToUpper(l) ||
			unicode.ToLower(r) == unicode.ToLower(l)) {
			return false
		}
	}
	return true
}

func refTemplateMatches(tpl []segment, segs []string, folded bool) bool {
	for i, t := range tpl {
		switch t.kind {
		case segGreedy:
			return len(segs) > i
		case segParam:
			// An empty segment is a trailing slash read as the start of a
			// subtree: no {param} takes it.
			if i >= len(segs) || segs[i] == "" {
				return false
			}
		case segLiteral:
			if i >= len(segs) || !(segs[i] == t.text || folded && refFoldEq(segs[i], t.text)) {
				return false
			}
		}
	}
	return len(tpl) == len(segs)
}

// refBetter orders routes as API Gateway does: segment kinds from the left
// (literal < param < greedy), then the more specific host, then file order.
func refBetter(a, b *Route) bool {
	for i := 0; i < len(a.segs) && i < len(b.segs); i++ {
		if a.segs[i].kind != b.segs[i].kind {
			return a.segs[i].kind < b.segs[i].kind
		}
	}
	if a.host.specificity() != b.host.specificity() {
		return a.host.specificity() > b.host.specificity()
	}
	return a.index < b.index
}

// refAdmitsMethod: ANY admits all; HEAD is also admitted by GET routes.
func refAdmitsMethod(r *Route, method string) bool {
	ms := strings.Split(r.methods.String(), ",")
	for _, m := range ms {
		if m == "ANY" || m == method || method == "HEAD" && m == "GET" {
			return true
		}
	}
	return false
}

// refMatch is one reading's route by brute force. hostInvalid is set when
// the host is malformed and a host-scoped route that accepts the method
// and path would have been preferred to the winner.
func refMatch(s *Snapshot, method, host string, segs []string, folded bool) (best *Route, hostInvalid bool) {
	valid := refValidHost(host)
	h := splitAuthority(host)
	var hosted *Route
	for _, r := range s.routes {
		if !refAdmitsMethod(r, method) || !refTemplateMatches(r.segs, segs, folded) {
			continue
		}
		if r.host.name != "" && !valid {
			if hosted == nil || refBetter(r, hosted) {
				hosted = r
			}
			continue
		}
		if r.host.name != "" && !(strings.EqualFold(r.host.name, h.name) && (r.host.port == "" || r.host.port == h.port)) {
			continue
		}
		if best == nil || refBetter(r, best) {
			best = r
		}
	}
	return best, hosted != nil && (best == nil || refBetter(hosted, best))
}

// refValidHost is host[:port] validity from net/url's authority parser and
// the DNS name rules.
func refValidHost(a string) bool {
	if a == "" || strings.ContainsAny(a, "@/?#%") {
		return false
	}
	u, err := url.Parse("http://" + a)
	if err != nil || u.Host != a || u.Hostname() == "" {
		return false
	}
	if strings.HasSuffix(a, ":") {
		return false
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 || strconv.Itoa(n) != p {
			return false
		}
	}
	name := u.Hostname()
	if strings.HasPrefix(a, "[") {
		ip, err := netip.ParseAddr(name)
		return err == nil && ip.Is6() && ip.Zone() == ""
	}
	if strings.Contains(name, ":") {
		return false
	}
	name = strings.TrimSuffix(name, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || strings.HasPrefix(l, "-") || strings.HasSuffix(l, "-") ||
			strings.TrimLeft(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return false
		}
	}
	return true
}

// refDecide is Resolve by the reference rules: refuse what has no
// canonical form; match every reading (canonical, raw when the path has
// '%' or ';', and both case-folded); a malformed host that a host-scoped
// route could have served is host_invalid; readings that disagree are
// path_invalid. A path ending in '/' after a segment is also read with the
// slash as a subtree (a last, empty segment only {proxy+} takes); when that
// reading finds a route other than the plain reading's, it is the route
// and the plain reading's is also.
func refDecide(s *Snapshot, method, host, target string) (route, also *Route, code reason.Code) {
	canon, raw, ok := refSegments(target)
	if !ok {
		return nil, nil, reason.PathInvalid
	}
	p, _, _ := strings.Cut(target, "?")
	p, _, _ = strings.Cut(p, "#")
	withRaw := strings.ContainsAny(p, "%;")
	read := func(canon, raw []string) (*Route, bool, bool) {
		readings := [][]string{canon}
		if withRaw {
			readings = append(readings, raw)
		}
		first, _ := refMatch(s, method, host, canon, false)
		agree, hostInvalid := true, false
		for _, segs := range readings {
			for _, folded := range []bool{false, true} {
				r, hi := refMatch(s, method, host, segs, folded)
				agree = agree && r == first
				hostInvalid = hostInvalid || hi
			}
		}
		return first, agree, hostInvalid
	}
	first, agree, hostInvalid := read(canon, raw)
	if len(canon) > 0 && strings.HasSuffix(p, "/") {
		sub, subAgree, subHI := read(append(slices.Clone(canon), ""), append(slices.Clone(raw), ""))
		agree, hostInvalid = agree && subAgree, hostInvalid || subHI
		if sub != nil && sub != first {
			first, also = sub, first
		}
	}
	switch {
	case hostInvalid:
		return nil, nil, reason.HostInvalid
	case !agree:
		return nil, nil, reason.PathInvalid
	case first == nil:
		return nil, nil, reason.RouteNotFound
	}
	return first, also, ""
}

func routeName(r *Route) string {
	if r == nil {
		return "<nil>"
	}
	return r.Name
}

// TestMatchAgainstReference runs Match and the reference over a grid of
// methods, hosts and paths (with case, encoding, dot-segment and ';'
// variants) on two fixtures.
func TestMatchAgainstReference(t *testing.T) {
	segsPool := []string{"pets", "mine", "7", "a", "b", "c", "items", "admin", "ADMIN", "Admin", "%61dmin",
		"spec", "literal", "hosted", "opts", "users", "files", "readme", "%72eadme", "README", "reports",
		"Reports", "daily", "x;y", ";p", ".", "..", "%2e", "\u212Aiosk", "adm\u0131n"}
	methods := []string{"GET", "POST", "DELETE", "HEAD", "OPTIONS", "PROPFIND"}
	hosts := []string{"", "api.example.com", "API.example.com.", "api.example.com:8443", "admin.example.com:9000",
		"other", "api.example.com:443:443", "u@api.example.com", "api.example.com..", "[::1]:8080", "::1", "10.0.0.5"}
	var paths []string
	for _, a := range segsPool {
		paths = append(paths, "/"+a, "/"+a+"/")
		for _, b := range segsPool {
			paths = append(paths, "/"+a+"/"+b, "//"+a+"/"+b+"?q=/admin")
		}
	}
	n := 0
	for _, fixture := range []string{"testdata/valid/routing.yaml", "testdata/valid/confusion.yaml"} {
		s := mustLoad(t, fixture)
		for _, p := range paths {
			for _, m := range methods {
				for _, h := range hosts {
					got, gotAlso, gc := s.Resolve(m, h, p)
					want, wantAlso, wc := refDecide(s, m, h, p)
					if got != want || gotAlso != wantAlso || gc != wc {
						t.Fatalf("%s: Resolve(%s, %q, %q) = %s, %s %q; reference %s, %s %q", fixture, m, h, p,
							routeName(got), routeName(gotAlso), gc, routeName(want), routeName(wantAlso), wc)
					}
					if r, rc := s.Match(m, h, p); r != got || rc != gc {
						t.Fatalf("%s: Match(%s, %q, %q) = %s %q, Resolve's route %s %q", fixture, m, h, p, routeName(r), rc, routeName(got), gc)
					}
					n++
				}
			}
		}
	}
	if n < 100000 {
		t.Fatalf("only %d cases", n)
	}
}

// FuzzMatch is the differential fuzz target: Match and the reference must
// agree on every request.
func FuzzMatch(f *testing.F) {
	s, err := Load("testdata/valid/confusion.yaml", Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []struct{ m, h, p string }{
		{"GET", "api.example.com", "/pets/7"},
		{"HEAD", "", "/users/1"},
		{"GET", "api.example.com:443:443", "/pets/7"},
		{"GET", "", "/ADMIN"},
		{"GET", "", "/%61dmin"},
		{"GET", "", "/admin/x;/../../public"},
		{"GET", "", "/files/%72eadme"},
		{"GET", "", "/reports/DAILY"},
		{"get", "API.EXAMPLE.COM.", "//pets/x/"},
		{"GET", "", "/admin/"},
		{"GET", "", "/pets//"},
		{"GET", "", "/pets/?x=/"},
	} {
		f.Add(c.m, c.h, c.p)
	}
	f.Fuzz(func(t *testing.T, method, host, path string) {
		got, gotAlso, gc := s.Resolve(method, host, path)
		want, wantAlso, wc := refDecide(s, method, host, path)
		if got != want || gotAlso != wantAlso || gc != wc {
			t.Fatalf("Resolve(%q, %q, %q) = %s, %s %q; reference %s, %s %q", method, host, path,
				routeName(got), routeName(gotAlso), gc, routeName(want), routeName(wantAlso), wc)
		}
	})
}
