package policy

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("apiVersion: cognito-extauthz/v1\nroutes: [{name: a, authorization: NONE, match: {path: /a}}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data, "fuzz.yaml", Options{})
		if (s == nil) == (err == nil) {
			t.Fatalf("Parse returned snapshot %v with error %v", s != nil, err)
		}
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error %T is not a non-empty Problems", err)
			}
			for _, p := range ps {
				if p.File != "fuzz.yaml" || p.Message == "" {
					t.Fatalf("problem %+v", p)
				}
			}
			return
		}
		if len(s.Digest()) != 64 || len(s.Routes()) == 0 {
			t.Fatalf("digest %q, %d routes", s.Digest(), len(s.Routes()))
		}
		for _, r := range s.Routes() {
			if got, ok := s.RouteByName(r.Name); !ok || got != r {
				t.Fatalf("RouteByName(%q)", r.Name)
			}
			if (r.Authorizer == nil) != r.NoAuth {
				t.Fatalf("route %q: NoAuth %v with authorizer %v", r.Name, r.NoAuth, r.Authorizer)
			}
			if !r.NoAuth && (r.Mode.TokenUse() == "" || r.Authorizer.Token == nil || len(r.Authorizer.Token.Pools) == 0) {
				t.Fatalf("route %q: mode %v, authorizer %+v", r.Name, r.Mode, r.Authorizer)
			}
		}
		if names := s.ClaimHeaderNames(); !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
			t.Fatalf("ClaimHeaderNames %q not sorted and unique", names)
		}
		for _, src := range s.KeySources() {
			if (src.URL == "") == (src.File == "") {
				t.Fatalf("key source %+v has not exactly one of URL and File", src)
			}
		}
	})
}

// refMatch is the matching rule written out by brute force: of the routes
// whose template, methods and host accept the request, the one whose
// segment kinds are least from the left (literal < param < greedy), then
// the most specific host, then the first in the file.
func refMatch(s *Snapshot, method, host string, segs []string) *Route {
	m, h := methodBit(method), splitAuthority(host)
	var best *Route
	for _, r := range s.routes {
		if !r.methods.admits(m) || !r.host.admits(h) || !templateMatches(r.segs, segs) {
			continue
		}
		if best == nil || better(r, best) {
			best = r
		}
	}
	return best
}

func templateMatches(tpl []segment, segs []string) bool {
	for i, t := range tpl {
		switch t.kind {
		case segGreedy:
			return len(segs) > i
		case segParam:
			if i >= len(segs) {
				return false
			}
		case segLiteral:
			if i >= len(segs) || segs[i] != t.text {
				return false
			}
		}
	}
	return len(tpl) == len(segs)
}

func better(a, b *Route) bool {
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

func FuzzMatch(f *testing.F) {
	s, err := Load("testdata/valid/routing.yaml", Options{})
	if err != nil {
		f.Fatal(err)
	}
	for _, c := range []struct{ m, h, p string }{
		{"GET", "api.example.com", "/pets/7"},
		{"POST", "", "/a/b/c/d?x=1"},
		{"DELETE", "api.example.com:8443", "/items/1/2"},
		{"GET", "[::1]:8080", "/v6"},
		{"GET", "", "/%61dmin"},
		{"GET", "", "/pets/../admin"},
		{"GET", "", "/pets%2F..%2Fadmin"},
		{"GET", "", "/%2561dmin"},
		{"get", "API.EXAMPLE.COM.", "//spec/x/"},
	} {
		f.Add(c.m, c.h, c.p)
	}
	f.Fuzz(func(t *testing.T, method, host, path string) {
		r, code := s.Match(method, host, path)
		switch {
		case r != nil && code != "":
			t.Fatalf("route %q with code %q", r.Name, code)
		case r == nil && code != reason.RouteNotFound && code != reason.PathInvalid:
			t.Fatalf("no route, code %q", code)
		}
		segs, ok := canonicalPath(path, nil)
		if ok != (code != reason.PathInvalid) {
			t.Fatalf("canonicalPath ok=%v but code %q", ok, code)
		}
		if !ok {
			return
		}
		if want := refMatch(s, method, host, segs); want != r {
			t.Fatalf("Match = %v, brute force = %v (segments %q)", name(r), name(want), segs)
		}
		// The canonical spelling of the path, and the path with a query,
		// match the same route.
		canon := "/" + strings.Join(escapeAll(segs), "/")
		if r2, c2 := s.Match(method, host, canon); r2 != r || c2 != code {
			t.Fatalf("canonical %q: %v %q; original %v %q", canon, name(r2), c2, name(r), code)
		}
		if !strings.ContainsAny(path, "?#") {
			if r3, c3 := s.Match(method, host, path+"?x=/admin%2f"); r3 != r || c3 != code {
				t.Fatalf("with a query: %v %q; without %v %q", name(r3), c3, name(r), code)
			}
		}
	})
}

func escapeAll(segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = url.PathEscape(s)
	}
	return out
}

func name(r *Route) string {
	if r == nil {
		return "<nil>"
	}
	return r.Name
}

// TestMatchAgainstBruteForce runs the brute-force rule over a grid of
// requests on the routing fixture.
func TestMatchAgainstBruteForce(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	segsPool := []string{"pets", "mine", "7", "a", "b", "c", "d", "e", "items", "admin", "spec", "literal", "hosted", "opts"}
	methods := []string{"GET", "POST", "DELETE", "HEAD", "OPTIONS", "PROPFIND"}
	hosts := []string{"", "api.example.com", "api.example.com:8443", "admin.example.com:9000", "other"}
	var paths []string
	for _, a := range segsPool {
		paths = append(paths, "/"+a)
		for _, b := range segsPool {
			paths = append(paths, "/"+a+"/"+b)
			for _, c := range []string{"c", "d", "e", "x"} {
				paths = append(paths, "/"+a+"/"+b+"/"+c, "/"+a+"/"+b+"/"+c+"/d")
			}
		}
	}
	n := 0
	for _, p := range paths {
		segs, _ := canonicalPath(p, nil)
		for _, m := range methods {
			for _, h := range hosts {
				got, _ := s.Match(m, h, p)
				if want := refMatch(s, m, h, segs); got != want {
					t.Fatalf("Match(%s, %s, %s) = %s, brute force %s", m, h, p, name(got), name(want))
				}
				n++
			}
		}
	}
	if n < 10000 {
		t.Fatalf("only %d cases", n)
	}
}
