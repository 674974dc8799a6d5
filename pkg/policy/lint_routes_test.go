package policy

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestRouteLints(t *testing.T) {
	const head = "apiVersion: cognito-extauthz/v1\nauthorizers:\n  a:\n    userPools: [{ userPoolId: us-east-1_abc }]\nroutes:\n"
	tests := []struct {
		name   string
		routes string
		want   []string // substrings, one warning each, in order
	}{
		{"host route beside a weaker greedy parent", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: pets, match: { path: "/pets/{proxy+}" }, authorizer: a }
  - { name: public, match: { path: "/{proxy+}" }, authorization: NONE }`,
			[]string{`p.yaml:7:5: routes[0]: route "pet" is scoped to host api.example.com, but requests for its path with another Host are judged by route "pets"`}},
		{"the weaker greedy parent listed after the catch-all", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: public, match: { path: "/{proxy+}" }, authorization: NONE }
  - { name: pets, match: { path: "/pets/{proxy+}" }, authorizer: a }`,
			[]string{`p.yaml:7:5: routes[0]: route "pet" is scoped to host api.example.com, but requests for its path with another Host are judged by route "pets"`}},
		{"hostless routes one a prefix of the other, shorter first", `
  - { name: pet, match: { path: "/pets/{proxy+}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: one, match: { path: "/pets/{id}" }, authorization: NONE }
  - { name: two, match: { path: "/pets/{id}/{sub}" }, authorization: NONE }`,
			[]string{`judged by route "one"`}},
		{"hostless routes one a prefix of the other, longer first", `
  - { name: pet, match: { path: "/pets/{proxy+}", host: api.example.com }, authorizer: a, groups: [admins] }
  - { name: two, match: { path: "/pets/{id}/{sub}" }, authorization: NONE }
  - { name: one, match: { path: "/pets/{id}" }, authorization: NONE }`,
			[]string{`judged by route "two"`}},
		{"host route with the same rules hostless", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a }
  - { name: pets, match: { path: "/pets/{id}" }, authorizer: a }`, nil},
		{"methods do not overlap", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com, methods: [GET] }, authorizer: a }
  - { name: pets, match: { path: "/pets/{id}", methods: [POST] }, authorization: NONE }`, nil},
		{"templates do not overlap", `
  - { name: pet, match: { path: "/pets/{id}", host: api.example.com }, authorizer: a }
  - { name: cats, match: { path: "/cats/{id}" }, authorization: NONE }
  - { name: deeper, match: { path: "/pets/{id}/{proxy+}" }, authorization: NONE }`, nil},
		{"routes that differ in case", `
  - { name: lower, match: { path: /admin/users }, authorizer: a }
  - { name: upper, match: { path: /Admin/users }, authorization: NONE }`,
			[]string{`p.yaml:8:5: routes[1]: route "upper" (/Admin/users) differs from route "lower" (/admin/users) only in case`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(head+tt.routes+"\n"), "p.yaml", Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			ws := s.Warnings()
			if len(ws) != len(tt.want) {
				t.Fatalf("warnings = %v, want %d", ws, len(tt.want))
			}
			for i, w := range tt.want {
				if got := ws[i].String(); !strings.Contains(got, w) || !strings.HasPrefix(got, "p.yaml:") {
					t.Errorf("warning %d = %q, want it to contain %q with a position", i, got, w)
				}
			}
		})
	}
}

// hostShadowedQuadratic is the host-shadowing lint as first written: every
// host-scoped route against every route. It is the oracle the indexed lint
// (hostShadowed) is held to.
func hostShadowedQuadratic(r *reporter, s *Snapshot, doc *document) {
	for _, h := range s.routes {
		if h.host.name == "" {
			continue
		}
		var judge *Route
		for _, o := range s.routes {
			if o.host.name == "" && methodsOverlap(h.methods, o.methods) && templatesOverlap(h.segs, o.segs) &&
				(judge == nil || moreSpecific(o, judge)) {
				judge = o
			}
		}
		if judge == nil || sameRules(h, judge) {
			continue
		}
		v := routeValue(doc, h)
		r.warnf(v.Node, v.Path(), "route %q is scoped to host %s, but requests for its path with another Host are judged by route %q, which has other rules: make Envoy's virtual host name the API's domains (not \"*\") so no other Host reaches the upstream",
			h.Name, h.host, judge.Name)
	}
}

// templatesOverlap reports whether some path matches both templates.
func templatesOverlap(a, b []segment) bool {
	for i := 0; ; i++ {
		switch {
		case i == len(a) && i == len(b):
			return true
		case i < len(a) && a[i].kind == segGreedy:
			return i < len(b) // {proxy+} needs one segment or more
		case i < len(b) && b[i].kind == segGreedy:
			return i < len(a)
		case i == len(a) || i == len(b):
			return false
		case a[i].kind == segLiteral && b[i].kind == segLiteral && a[i].text != b[i].text:
			return false
		}
	}
}

// lintPolicy writes a random policy of up to max routes built to stress the
// host lint: few literals (some differing only in case), parameters and
// {proxy+} at any depth, the root, prefixes of one another, a few hosts
// (with and without a port) so host routes share shapes, overlapping and
// disjoint method sets, and rules that are sometimes the same. Routes that
// would match exactly the same requests as an earlier one are left out, so
// the policy is valid.
func lintPolicy(rng *rand.Rand, max int) string {
	var b strings.Builder
	b.WriteString("apiVersion: cognito-extauthz/v1\nauthorizers:\n  a: { userPools: [{ userPoolId: us-east-1_a }] }\n  b: { userPools: [{ userPoolId: us-east-1_b }] }\nroutes:\n")
	literals := []string{"a", "b", "A", "pets", "Pets", "x"}
	hosts := []string{"", "", "", "", "h1.example", "h2.example", "h1.example:8443"}
	methods := []string{"", "GET", "POST", "GET, POST", "HEAD", "PUT, DELETE", "ANY"}
	rules := []string{"authorization: NONE", "authorizer: a", "authorizer: b", "authorizer: a, groups: [g]",
		"authorizer: a, groups: [h]", "authorizer: a, mode: access-scopes, scopes: [s]",
		"authorizer: b, claims: { c: v }", "authorizer: a, claimHeaders: { x-c: c }"}
	taken := map[string]methodSet{}
	n := 1 + rng.IntN(max)
	for i := range n {
		var path strings.Builder
		depth := rng.IntN(5)
		for j := range depth {
			switch k := rng.IntN(10); {
			case k < 6:
				path.WriteString("/" + literals[rng.IntN(len(literals))])
			case k < 9 || j < depth-1:
				fmt.Fprintf(&path, "/{p%d}", j)
			default:
				path.WriteString("/{proxy+}")
			}
		}
		tpl := path.String()
		if tpl == "" {
			tpl = "/"
		}
		segs, err := parseTemplate(tpl)
		if err != nil {
			panic(err)
		}
		host, ms := hosts[rng.IntN(len(hosts))], methods[rng.IntN(len(methods))]
		set := methodAny
		if ms != "" {
			set = 0
			for m := range strings.SplitSeq(ms, ", ") {
				if m == "ANY" {
					set |= methodAny
				} else {
					set |= methodBit(m)
				}
			}
		}
		key := shapeKey(segs) + " " + host
		if taken[key]&set != 0 {
			continue
		}
		taken[key] |= set
		fmt.Fprintf(&b, "  - { name: r%d, match: { path: %q", i, tpl)
		if ms != "" {
			fmt.Fprintf(&b, ", methods: [%s]", ms)
		}
		if host != "" {
			fmt.Fprintf(&b, ", host: %q", host)
		}
		fmt.Fprintf(&b, " }, %s }\n", rules[rng.IntN(len(rules))])
	}
	return b.String()
}

// TestHostLintAgainstOracle: the indexed host lint finds exactly what the
// quadratic one finds, warning for warning, on random policies of tricky
// shapes and on the generated realistic mix.
func TestHostLintAgainstOracle(t *testing.T) {
	var docs []string
	rng := rand.New(rand.NewPCG(16, 9))
	for i := range 2000 {
		max := 12
		if i%10 == 0 {
			max = 120
		}
		docs = append(docs, lintPolicy(rng, max))
	}
	docs = append(docs, string(genPolicy(1000)))
	warned := 0
	for i, src := range docs {
		doc, r := decodeString(t, src)
		v := validate(r, doc, ".", Options{})
		if len(r.probs) > 0 {
			t.Fatalf("policy %d is not valid: %v\n%s", i, r.failed(), src)
		}
		s := compile(v, []byte(src))
		fast, slow := &reporter{file: "p.yaml"}, &reporter{file: "p.yaml"}
		hostShadowed(fast, s, doc)
		hostShadowedQuadratic(slow, s, doc)
		if !slices.Equal(fast.warns, slow.warns) {
			t.Fatalf("policy %d: indexed lint found\n%v\nthe quadratic one\n%v\npolicy:\n%s", i, fast.warns, slow.warns, src)
		}
		if len(fast.warns) > 0 {
			warned++
		}
	}
	// The comparison means something only if the lint finds things.
	if warned < len(docs)/10 {
		t.Errorf("only %d of %d policies have host warnings", warned, len(docs))
	}
}
