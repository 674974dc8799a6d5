package policy

import (
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestCandidates: every route whose template matches, in the order tried,
// with why it won or lost.
func TestCandidates(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	tests := []struct {
		name, method, host, path string
		want                     []string // "route:won" or "route:why-substring"
		code                     reason.Code
	}{
		{"literal beats param beats greedy", "GET", "", "/pets/mine",
			[]string{"pets-mine:won", "pet:more specific route won: pets-mine", "pets-any:more specific route won", "catch-all:more specific"}, ""},
		{"method loses, next wins", "POST", "", "/pets/7",
			[]string{"pet:method POST not in GET", "pets-any:won", "catch-all:more specific route won: pets-any"}, ""},
		{"host loses", "GET", "other.example.com", "/only-admin",
			[]string{"only-admin:host other.example.com does not match admin.example.com", "catch-all:won"}, ""},
		{"host-specific first", "GET", "api.example.com:8443", "/hosted",
			[]string{"hosted-api-8443:won", "hosted-api:more specific", "hosted-any:more specific", "catch-all:more specific"}, ""},
		{"root", "GET", "", "/", []string{"root:won"}, ""},
		{"trailing slash: the subtree's route, and the plain reading's also", "GET", "", "/pets/",
			[]string{"pets-any:won", "catch-all:subtree reading (trailing slash): a more specific route won: pets-any",
				"pets-list:reading without the trailing slash: also applies", "catch-all:more specific route won: pets-list"}, ""},
		{"trailing slash, one route both ways", "GET", "", "/pets/7/toys/",
			[]string{"pets-any:won", "catch-all:a more specific route won: pets-any"}, ""},
		{"trailing slash, the plain reading's method filter", "POST", "", "/pets/",
			[]string{"pets-any:won", "catch-all:more specific route won: pets-any", "pets-list:method POST not in GET", "catch-all:also applies"}, ""},
		{"trailing slash, the same winner both ways: the plain reading's other routes", "DELETE", "", "/items/1/",
			[]string{"items-any:won", "catch-all:more specific route won: items-any", "item-get:method DELETE not in GET"}, ""},
		{"bad path", "GET", "", "/a/%2f", nil, reason.PathInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, code := s.Candidates(tt.method, tt.host, tt.path)
			if code != tt.code {
				t.Errorf("code %q, want %q", code, tt.code)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("%d candidates %v, want %v", len(got), names(got), tt.want)
			}
			for i, w := range tt.want {
				name, why, _ := strings.Cut(w, ":")
				c := got[i]
				if c.Route.Name != name {
					t.Errorf("candidate %d is %s, want %s", i, c.Route.Name, name)
				}
				if why == "won" != c.Won || strings.Contains(why, "also applies") != c.Also {
					t.Errorf("candidate %s won=%v, want %v", name, c.Won, why == "won")
				}
				if !strings.Contains(c.Why, why) {
					t.Errorf("candidate %s why %q lacks %q", name, c.Why, why)
				}
			}
		})
	}
}

func names(cs []Candidate) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Route.Name+":"+c.Why)
	}
	return out
}

// TestCandidatesAgreeWithMatch: over many requests, the winner of
// Candidates is exactly Match's route, so explain never tells a story the
// service does not act on.
func TestCandidatesAgreeWithMatch(t *testing.T) {
	s := mustLoad(t, "testdata/valid/routing.yaml")
	paths := []string{"/", "/pets", "/pets/", "/pets//", "/admin/", "/a/b/c/", "/pets/7/", "/items/1/", "/items/", "/pets/mine", "/pets/7", "/pets/7/x", "/a/b/c", "/a/b/z/e", "/a/q/c/d",
		"/a/b/c/d", "/a/b/z/f", "/items", "/items/1", "/items/1/2", "/opts", "/hosted", "/only-admin", "/only-port",
		"/v6", "/spec/literal", "/spec/x", "/admin", "/admin/x", "/files/a.txt", "/x/../pets", "/%70ets", "/nope/nope"}
	hosts := []string{"", "api.example.com", "api.example.com:8443", "admin.example.com", "admin.example.com:9000", "[::1]:8080", "API.example.com."}
	methods := []string{"GET", "POST", "HEAD", "OPTIONS", "DELETE", "PROPFIND"}
	for _, p := range paths {
		for _, h := range hosts {
			for _, m := range methods {
				r, also, code := s.Resolve(m, h, p)
				cs, ccode := s.Candidates(m, h, p)
				var won, alsoC *Route
				for _, c := range cs {
					if c.Won {
						if won != nil {
							t.Fatalf("%s %s %s: two winners", m, h, p)
						}
						won = c.Route
					}
					if c.Also {
						if alsoC != nil || c.Won {
							t.Fatalf("%s %s %s: two routes marked also, or also and won", m, h, p)
						}
						alsoC = c.Route
					}
				}
				if won != r || alsoC != also || ccode != code {
					t.Errorf("%s %s %s: Candidates won %s also %s (%q), Resolve %s also %s (%q)", m, h, p,
						routeName(won), routeName(alsoC), ccode, routeName(r), routeName(also), code)
				}
			}
		}
	}
}

// TestDryRunField: dryRun is read per route, and must be a boolean.
func TestDryRunField(t *testing.T) {
	const doc = `apiVersion: cognito-extauthz/v1
authorizers:
  a: { userPools: [{ userPoolId: us-east-1_Abc }] }
routes:
  - { name: r1, match: { path: /a }, authorizer: a, dryRun: true }
  - { name: r2, match: { path: /b }, authorizer: a }
`
	s, err := Parse([]byte(doc), "p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	r1, _ := s.RouteByName("r1")
	r2, _ := s.RouteByName("r2")
	if !r1.DryRun || r2.DryRun {
		t.Errorf("DryRun r1=%v r2=%v, want true, false", r1.DryRun, r2.DryRun)
	}
	_, err = Parse([]byte(strings.Replace(doc, "dryRun: true", "dryRun: maybe", 1)), "p.yaml", Options{})
	if err == nil || !strings.Contains(err.Error(), "routes[0].dryRun") {
		t.Errorf("dryRun: maybe accepted or not located: %v", err)
	}
}
