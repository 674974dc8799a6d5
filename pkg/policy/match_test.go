package policy

import (
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

func mustLoad(t testing.TB, path string) *Snapshot {
	t.Helper()
	s, err := Load(path, Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return s
}

type matchCase struct {
	name               string
	method, host, path string
	route              string      // "" = no route
	code               reason.Code // when route is ""
}

func runMatch(t *testing.T, s *Snapshot, tests []matchCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, code := s.Match(tt.method, tt.host, tt.path)
			got := ""
			if r != nil {
				got = r.Name
				if code != "" {
					t.Errorf("code = %q with a route", code)
				}
			}
			if got != tt.route {
				t.Fatalf("Match(%q, %q, %q) = route %q, want %q", tt.method, tt.host, tt.path, got, tt.route)
			}
			if tt.route == "" && code != tt.code {
				t.Errorf("Match(%q, %q, %q) code = %q, want %q", tt.method, tt.host, tt.path, code, tt.code)
			}
		})
	}
}

const notFound = reason.RouteNotFound

func TestMatchPrecedence(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	runMatch(t, s, []matchCase{
		// exact > {param} > {proxy+}
		{"exact", "GET", "", "/pets", "pets-list", ""},
		{"literal beats param", "GET", "", "/pets/mine", "pets-mine", ""},
		{"param", "GET", "", "/pets/7", "pet", ""},
		{"param beats greedy", "GET", "", "/pets/7", "pet", ""},
		{"greedy takes the rest", "GET", "", "/pets/7/toys/3", "pets-any", ""},
		{"greedy needs one segment", "POST", "", "/pets", "catch-all", ""}, // not pets-any
		{"greedy takes one segment", "POST", "", "/pets/7", "pets-any", ""},
		{"root exact", "GET", "", "/", "root", ""},
		{"root greedy", "GET", "", "/unknown/deep/path", "catch-all", ""},
		{"root greedy one segment", "GET", "", "/unknown", "catch-all", ""},

		// Backtracking: the literal branch a/b is tried first; for
		// /a/b/c/d both a/b/c and a/b/{x}/e dead-end, so a/{y}/c/d takes
		// it. A literal branch gives way to the param one, then greedy.
		{"backtrack to param", "GET", "", "/a/b/c/d", "a-param-c-d", ""},
		{"literal branch when it completes", "GET", "", "/a/b/z/e", "a-b-param-e", ""},
		{"backtrack to greedy", "GET", "", "/a/b/z/f", "a-greedy", ""},
		{"deepest literal wins", "GET", "", "/a/b/c", "a-b-c", ""},

		// methods filter before specificity
		{"method picks", "POST", "", "/items", "items-post", ""},
		{"method picks other", "GET", "", "/items", "items-get", ""},
		{"method falls to less specific", "DELETE", "", "/items/1", "items-any", ""},
		{"method on param", "GET", "", "/items/1", "item-get", ""},
		{"method not served", "PUT", "", "/items", "catch-all", ""},
		{"unknown method only ANY", "PROPFIND", "", "/items/1", "items-any", ""},
		{"unknown method not on GET route", "PROPFIND", "", "/items", "catch-all", ""},
		{"lower-case method is not GET", "get", "", "/items", "catch-all", ""},
		{"HEAD and OPTIONS", "OPTIONS", "", "/opts", "opts", ""},
		{"HEAD", "HEAD", "", "/opts", "opts", ""},
		{"GET not in HEAD OPTIONS", "GET", "", "/opts", "catch-all", ""},
	})
}

func TestMatchHost(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	runMatch(t, s, []matchCase{
		{"host route", "GET", "api.example.com", "/hosted", "hosted-api", ""},
		{"host case-insensitive", "GET", "API.Example.COM", "/hosted", "hosted-api", ""},
		{"host port ignored", "GET", "api.example.com:443", "/hosted", "hosted-api", ""},
		{"host trailing dot", "GET", "api.example.com.", "/hosted", "hosted-api", ""},
		{"host trailing dot and port", "GET", "api.example.com.:443", "/hosted", "hosted-api", ""},
		{"host with port wins for its port", "GET", "api.example.com:8443", "/hosted", "hosted-api-8443", ""},
		{"host with port, case", "GET", "API.example.com:8443", "/hosted", "hosted-api-8443", ""},
		{"hostless for other host", "GET", "other.example.com", "/hosted", "hosted-any", ""},
		{"no host where a host-scoped route could serve", "GET", "", "/hosted", "", reason.HostInvalid},
		{"suffix is not the host", "GET", "evilapi.example.com", "/hosted", "hosted-any", ""},
		{"host-only route", "GET", "admin.example.com", "/only-admin", "only-admin", ""},
		{"host-only route other host", "GET", "api.example.com", "/only-admin", "catch-all", ""},
		{"port-only route needs port", "GET", "admin.example.com", "/only-port", "catch-all", ""},
		{"port-only route", "GET", "admin.example.com:9000", "/only-port", "only-port", ""},
		{"ipv6 host", "GET", "[::1]:8080", "/v6", "v6", ""},
		{"ipv6 other port", "GET", "[::1]:8081", "/v6", "catch-all", ""},
		// A host-specific route beats a hostless one only when the paths
		// tie: the hostless literal is more specific than the hosted param.
		{"specific path beats host", "GET", "api.example.com", "/spec/literal", "spec-literal-any-host", ""},
		{"host on tie", "GET", "api.example.com", "/spec/other", "spec-param-api", ""},
		{"no host falls further", "GET", "other.example.com", "/spec/other", "catch-all", ""},
	})
}

// TestRouteAdmits: a route Envoy names (context_extensions) skips path
// matching but not its methods and host: a hostless route takes any host,
// even a malformed one; a host-scoped route takes its host and port only,
// and refuses a malformed host as host_invalid.
func TestRouteAdmits(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	tests := []struct {
		route, method, host string
		want                reason.Code
	}{
		{"hosted-any", "GET", "other.example.com", ""},
		{"hosted-any", "GET", "api.example.com:443:443", ""},
		{"hosted-any", "GET", "", ""},
		{"pets-list", "GET", "api.example.com", ""},
		{"pets-list", "HEAD", "api.example.com", ""}, // a GET route serves HEAD
		{"pets-list", "POST", "api.example.com", reason.RouteNotFound},
		{"only-admin", "GET", "admin.example.com", ""},
		{"only-admin", "GET", "ADMIN.example.com.:8080", ""},
		{"only-admin", "GET", "api.example.com", reason.RouteNotFound},
		{"only-admin", "GET", "admin.example.com:443:443", reason.HostInvalid},
		{"only-admin", "GET", "", reason.HostInvalid},
		{"only-port", "GET", "admin.example.com:9000", ""},
		{"only-port", "GET", "admin.example.com", reason.RouteNotFound},
		{"only-port", "GET", "admin.example.com:9001", reason.RouteNotFound},
	}
	for _, tt := range tests {
		r, ok := s.RouteByName(tt.route)
		if !ok {
			t.Fatalf("no route %q", tt.route)
		}
		if got := r.Admits(tt.method, tt.host); got != tt.want {
			t.Errorf("%s.Admits(%s, %q) = %q, want %q", tt.route, tt.method, tt.host, got, tt.want)
		}
	}
}

func TestMatchCanonicalisation(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	runMatch(t, s, []matchCase{
		{"query ignored", "GET", "", "/pets?x=1", "pets-list", ""},
		{"query with slashes ignored", "GET", "", "/pets?next=/admin", "pets-list", ""},
		{"query with escapes ignored", "GET", "", "/pets?x=%zz%2f", "pets-list", ""},
		{"fragment ignored", "GET", "", "/pets#x", "pets-list", ""},
		{"empty query", "GET", "", "/pets?", "pets-list", ""},
		{"trailing slash: the subtree's route (see TestResolveTrailingSlash)", "GET", "", "/pets/", "pets-any", ""},
		{"trailing slash with no subtree route", "GET", "", "/a/b/c/d/", "a-greedy", ""},
		{"double slash", "GET", "", "//pets", "pets-list", ""},
		{"dot segment", "GET", "", "/./pets/.", "", reason.PathInvalid},
		{"dot-dot", "GET", "", "/admin/../pets", "", reason.PathInvalid},
		{"dot-dot above root", "GET", "", "/../../pets", "", reason.PathInvalid},
		{"root alone", "GET", "", "/?x", "root", ""},
		{"only slashes", "GET", "", "///", "root", ""},

		// Bypass attempts land on the protected route.
		{"encoded letter: Express reads it raw", "GET", "", "/%61dmin", "", reason.PathInvalid},
		{"encoded upper case", "GET", "", "/%41%44MIN", "", reason.PathInvalid},
		{"dot-dot into admin", "GET", "", "/pets/../admin", "", reason.PathInvalid},
		{"dot-dot into admin deep", "GET", "", "/pets/x/../../admin/users", "", reason.PathInvalid},
		{"slashes into admin", "GET", "", "//admin//users/", "admin-any", ""},
		{"case: Express folds it", "GET", "", "/Admin", "", reason.PathInvalid},
		{"decoded param", "GET", "", "/files/my%20doc", "file", ""},
		{"decoded plus stays", "GET", "", "/files/a+b", "file", ""},
		{"percent literal", "GET", "", "/files/100%25", "file", ""},
		{"path parameter: Express keeps it", "GET", "", "/admin;x=1/users", "", reason.PathInvalid},
		{"path parameter on last segment", "GET", "", "/admin;jsessionid=abc", "", reason.PathInvalid},
		{"path parameter on a param segment", "GET", "", "/files/a;v=1", "file", ""},
		{"dot-dot with parameter", "GET", "", "/pets/..;/admin", "", reason.PathInvalid},
		{"parameter-only segment", "GET", "", "/;x/admin", "", reason.PathInvalid},
		{"encoded semicolon is data", "GET", "", "/files/a%3Bb", "file", ""},

		// Refused: the upstream might see another path.
		{"encoded slash", "GET", "", "/pets%2F..%2Fadmin", "", reason.PathInvalid},
		{"encoded slash lower", "GET", "", "/admin%2fusers", "", reason.PathInvalid},
		{"encoded backslash", "GET", "", "/pets/..%5Cadmin", "", reason.PathInvalid},
		{"raw backslash", "GET", "", `/pets\..\admin`, "", reason.PathInvalid},
		{"encoded NUL", "GET", "", "/admin%00.json", "", reason.PathInvalid},
		{"encoded newline", "GET", "", "/admin%0a", "", reason.PathInvalid},
		{"encoded DEL", "GET", "", "/admin%7f", "", reason.PathInvalid},
		{"raw space", "GET", "", "/ad min", "", reason.PathInvalid},
		{"raw tab", "GET", "", "/admin\t", "", reason.PathInvalid},
		{"invalid escape", "GET", "", "/pets/%zz", "", reason.PathInvalid},
		{"truncated escape", "GET", "", "/pets/%2", "", reason.PathInvalid},
		{"lone percent", "GET", "", "/pets/%", "", reason.PathInvalid},
		{"encoded dot-dot", "GET", "", "/pets/%2e%2e/admin", "", reason.PathInvalid},
		{"half-encoded dot-dot", "GET", "", "/pets/.%2E/admin", "", reason.PathInvalid},
		{"encoded dot", "GET", "", "/%2e/admin", "", reason.PathInvalid},
		{"double encoding", "GET", "", "/%2561dmin", "", reason.PathInvalid},
		{"invalid escape in popped segment", "GET", "", "/%zz/../pets", "", reason.PathInvalid},
		{"no leading slash", "GET", "", "pets", "", reason.PathInvalid},
		{"empty", "GET", "", "", "", reason.PathInvalid},
		{"asterisk form", "OPTIONS", "", "*", "", reason.PathInvalid},
		{"absolute form", "GET", "", "http://x/pets", "", reason.PathInvalid},
		{"query only", "GET", "", "?x=/pets", "", reason.PathInvalid},
	})
}

func TestMatchNotFound(t *testing.T) {
	s := mustLoad(t, "testdata/valid/contract.yaml")
	runMatch(t, s, []matchCase{
		{"exact", "GET", "", "/pets", "list-pets", ""},
		{"method filtered out to greedy", "POST", "", "/pets/1", "everything-else-under-pets", ""},
		{"host route", "GET", "api.example.com", "/pets/1", "pet", ""},
		{"host route other method", "POST", "api.example.com", "/pets/1", "everything-else-under-pets", ""},
		{"no host where the host route could serve", "GET", "", "/pets/1", "", reason.HostInvalid},
		{"other host: greedy", "GET", "other.example.com", "/pets/1", "everything-else-under-pets", ""},
		{"greedy needs one segment", "POST", "", "/pets", "", notFound},
		{"nothing", "GET", "", "/cats", "", notFound},
		{"root", "GET", "", "/", "", notFound},
		{"health", "GET", "", "/health?probe=1", "health", ""},
	})
}

// TestMatchCanonicalEquivalence: a path and its canonical spelling match
// the same route.
func TestMatchCanonicalEquivalence(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	pairs := [][2]string{
		{"/a//b///c", "/a/b/c"},
		{"/files/%61%62", "/files/ab"},
		{"/pets//7///toys", "/pets/7/toys"},
		{"/items/1?x=/admin", "/items/1"},
	}
	for _, p := range pairs {
		r1, c1 := s.Match("GET", "", p[0])
		r2, c2 := s.Match("GET", "", p[1])
		if r1 != r2 || c1 != c2 || r1 == nil {
			t.Errorf("%s -> %v %q; %s -> %v %q", p[0], r1, c1, p[1], r2, c2)
		}
	}
}

// TestResolveTrailingSlash: a path ending in '/' is read with the slash
// ignored (Express's non-strict routing, API Gateway) and as the start of a
// subtree, which only a {proxy+} route starting there takes (Go's
// "/pets/", Express's "/pets/*", Spring's "/pets/**"). When the readings
// differ the subtree's route is the route and the other is also, which a
// decision must satisfy too.
func TestResolveTrailingSlash(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	tests := []struct {
		method, path string
		route, also  string
		code         reason.Code
	}{
		// A subtree route and an exact one: both.
		{"GET", "/pets/", "pets-any", "pets-list", ""},
		{"GET", "/pets//", "pets-any", "pets-list", ""},
		{"GET", "/pets/?tab=users", "pets-any", "pets-list", ""},
		{"GET", "//pets///?x=/", "pets-any", "pets-list", ""},
		{"GET", "/admin/", "admin-any", "admin", ""},
		// The greedy route above takes the empty segment too.
		{"GET", "/a/b/c/", "a-greedy", "a-b-c", ""},
		// A {param} route does not take the empty segment; the greedy
		// route above it does.
		{"GET", "/pets/7/", "pets-any", "pet", ""},
		{"GET", "/items/7/", "items-any", "item-get", ""},
		// The same route both ways: no second route.
		{"GET", "/pets/7/toys/", "pets-any", "", ""},
		{"GET", "/admin/x/", "admin-any", "", ""},
		// No route of its own below: the catch-all both ways.
		{"GET", "/files/", "catch-all", "", ""},
		// Methods filter both readings.
		{"POST", "/pets/", "pets-any", "catch-all", ""},
		// Without a trailing slash nothing changes.
		{"GET", "/pets", "pets-list", "", ""},
		{"GET", "/admin", "admin", "", ""},
		// A bare "/" is the root resource only.
		{"GET", "/", "root", "", ""},
		{"GET", "///", "root", "", ""},
		// A refusal in either reading refuses the request.
		{"GET", "/Admin/", "", "", reason.PathInvalid},
		{"GET", "/admin;x/", "", "", reason.PathInvalid},
	}
	for _, tt := range tests {
		r, also, code := s.Resolve(tt.method, "", tt.path)
		if routeName(r) != nameOr(tt.route) || routeName(also) != nameOr(tt.also) || code != tt.code {
			t.Errorf("Resolve(%s, %q) = %s, %s %q; want %s, %s %q", tt.method, tt.path,
				routeName(r), routeName(also), code, nameOr(tt.route), nameOr(tt.also), tt.code)
		}
	}
}

func nameOr(s string) string {
	if s == "" {
		return "<nil>"
	}
	return s
}

func TestMatchConcurrent(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if r, _ := s.Match("GET", "api.example.com", "/pets/7"); r == nil || r.Name != "pet" {
					t.Error("concurrent Match returned the wrong route")
					return
				}
				_ = s.ClaimHeaderNames()
				_ = s.Routes()
			}
		})
	}
	wg.Wait()
}

func TestCanonicalPath(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		ok   bool
	}{
		{"/", nil, true},
		{"/a/b", []string{"a", "b"}, true},
		{"/a/./b", nil, false},
		{"/a/b/..", nil, false},
		{"/a/..;/b", nil, false},
		{"//a//b/", []string{"a", "b"}, true},
		{"/a%20b/c%3Fd", []string{"a b", "c?d"}, true},
		{"/%E2%82%AC", []string{"€"}, true},
		{"/a;b=c", []string{"a"}, true},
		{"/a%2fb", nil, false},
		{"/a%5cb", nil, false},
		{"/a%2561", nil, false},
		{"/%", nil, false},
		{"/%25", []string{"%"}, true},
		{"/a%254", []string{"a%4"}, true}, // '%' one short of an escape at the end
		{"/a%2541", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, ok := canonicalPath(tt.in, nil)
			if ok != tt.ok || !slices.Equal(got, tt.want) {
				t.Errorf("canonicalPath(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

// TestMatchCaseFolding: a request that differs from a template in case
// alone is refused (path_invalid), not left unmatched, whether the
// template's literals are all upper case or all lower case and the request
// has an upper-case ASCII letter or a Unicode letter that folds onto ASCII:
// a case-insensitive upstream would serve it.
func TestMatchCaseFolding(t *testing.T) {
	parse := func(routes string) *Snapshot {
		t.Helper()
		s, err := Parse([]byte("apiVersion: cognito-extauthz/v1\nroutes:\n"+routes), "p.yaml", Options{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Run("upper-case literals only", func(t *testing.T) {
		s := parse("  - { name: admin, match: { path: /ADMIN }, authorization: NONE }\n")
		runMatch(t, s, []matchCase{
			{"as written", "GET", "", "/ADMIN", "admin", ""},
			{"lower case", "GET", "", "/admin", "", reason.PathInvalid},
			{"mixed case", "GET", "", "/Admin", "", reason.PathInvalid},
			{"other path", "GET", "", "/other", "", notFound},
		})
	})
	t.Run("lower-case literals", func(t *testing.T) {
		s := parse("  - { name: z, match: { path: /z }, authorization: NONE }\n  - { name: s, match: { path: /s }, authorization: NONE }\n")
		runMatch(t, s, []matchCase{
			{"as written", "GET", "", "/z", "z", ""},
			{"Z, the end of A-Z", "GET", "", "/Z", "", reason.PathInvalid},
			// U+017F LATIN SMALL LETTER LONG S folds onto s.
			{"long s", "GET", "", "/%C5%BF", "", reason.PathInvalid},
		})
	})
}

func TestSplitAuthority(t *testing.T) {
	tests := []struct{ in, name, port string }{
		{"api.example.com", "api.example.com", ""},
		{"api.example.com:443", "api.example.com", "443"},
		{"api.example.com.", "api.example.com", ""},
		{"[::1]:8080", "[::1]", "8080"},
		{"[::1]", "[::1]", ""},
		{"::1", "::1", ""},
		{"", "", ""},
		{":a:80", ":a:80", ""}, // two colons, not bracketed: no port
		{":80", "", "80"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h := splitAuthority(tt.in)
			if h.name != tt.name || h.port != tt.port {
				t.Errorf("splitAuthority(%q) = %q %q, want %q %q", tt.in, h.name, h.port, tt.name, tt.port)
			}
		})
	}
}

// TestParseAuthority: which :authority values are a host[:port] an
// upstream may route on, each bound taken exactly and one past it.
func TestParseAuthority(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 253-3*64) // 253 bytes
	tests := []struct {
		in string
		ok bool
	}{
		{"api.example.com", true},
		{"api.example.com.", true},
		{"API.Example.COM", true},
		{"a_b-c.example", true},
		{"az.AZ.09.example", true}, // each range to its ends
		{"10.0.0.5", true},
		{"api.example.com:1", true},
		{"api.example.com:443", true},
		{"api.example.com:8080", true},
		{"api.example.com:65535", true},
		{"[::1]", true},
		{"[::1]:8080", true},
		{"[2001:db8::1]:65535", true},
		{label63 + ".example", true},
		{name253, true},
		{name253 + ".", true},
		{name253 + ":65535", true},

		{"", false},
		{"api.example.com:", false},
		{"api.example.com:0", false},
		{"api.example.com:080", false},
		{"api.example.com:65536", false},
		{"api.example.com:99999", false},
		{"api.example.com:100000", false},
		{"api.example.com:abc", false},
		{"api.example.com:8a", false},
		{"api.example.com:a8", false},
		{"api.example.com:443:443", false},
		{":443", false},
		{"user@api.example.com", false},
		{"a..b", false},
		{"a.com..", false},
		{"-a.example", false},
		{"a-.example", false},
		{"a b.example", false},
		{"a/b.example", false},
		{"a`.example", false}, {"a{.example", false}, {"a@.example", false}, {"a[.example", false},
		{"a\x00.example", false}, {"a\xc3\xa9.example", false},
		{strings.Repeat("a", 64) + ".example", false},
		{name253 + "b", false},
		{"::1", false},
		{"[::1", false},
		{"[::1]x", false},
		{"[::1]:", false},
		{"[::1]:0", false},
		{"[::1]:65536", false},
		{"[fe80::1%eth0]", false},
		{"[10.0.0.5]", false},
		{"[zz]", false},
	}
	for _, tt := range tests {
		if _, ok := parseAuthority(tt.in); ok != tt.ok {
			t.Errorf("parseAuthority(%q) ok = %v, want %v", tt.in, ok, tt.ok)
		}
	}
	if len(name253) != 253 {
		t.Fatalf("name253 is %d bytes", len(name253))
	}
}

func TestMethodSetString(t *testing.T) {
	if got := (methodGet | methodDelete).String(); got != "GET,DELETE" {
		t.Errorf("String = %q", got)
	}
	if got := methodAny.String(); got != "ANY" {
		t.Errorf("String = %q", got)
	}
	if !strings.Contains(IdentitySource{SourceHeader, "authorization"}.String(), "header:authorization") {
		t.Error("IdentitySource.String")
	}
}
