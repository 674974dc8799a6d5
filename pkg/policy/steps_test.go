package policy

import (
	"slices"
	"strings"
	"testing"
)

// These tests run each step of the loader on its own: decode without
// validation, validate without compilation, compile and the lints on a
// validated policy.

func decodeString(t *testing.T, src string) (*document, *reporter) {
	t.Helper()
	r := &reporter{file: "p.yaml"}
	return decode(r, []byte(src)), r
}

func TestDecodeKeepsPlacesAndAppliesNoRule(t *testing.T) {
	src := `apiVersion: nonsense/v9
authorizers:
  a:
    userPools: [{ userPoolId: not-a-pool }]
routes:
  - name: r
    match: { path: "no-leading-slash", methods: [FETCH] }
    authorizer: missing
`
	doc, r := decodeString(t, src)
	if len(r.probs) != 0 {
		t.Fatalf("decode reported %v; policy rules are validate's job", r.probs)
	}
	if v := doc.APIVersion; v.Node.Value != "nonsense/v9" || v.Node.Line != 1 || v.Node.Column != 13 || v.Path() != "apiVersion" {
		t.Errorf("apiVersion = %q at %d:%d path %q", v.Node.Value, v.Node.Line, v.Node.Column, v.Path())
	}
	az := doc.Authorizers.Entries[0]
	if az.Name != "a" || az.Key.Line != 3 || az.Val.Path() != "authorizers.a" {
		t.Errorf("authorizer entry = %q line %d path %q", az.Name, az.Key.Line, az.Val.Path())
	}
	id := az.Val.UserPools.Items[0].UserPoolID
	if id.Node.Value != "not-a-pool" || id.Path() != "authorizers.a.userPools[0].userPoolId" || id.Node.Line != 4 {
		t.Errorf("userPoolId = %q path %q line %d", id.Node.Value, id.Path(), id.Node.Line)
	}
	rt := doc.Routes.Items[0]
	if m := rt.Match.Methods.Items[0]; m.Node.Value != "FETCH" || m.Path() != "routes[0].match.methods[0]" {
		t.Errorf("method = %q path %q", m.Node.Value, m.Path())
	}
	// An absent field has its path, for "required field is missing".
	if rt.Mode.Set() || rt.Mode.Path() != "routes[0].mode" {
		t.Errorf("absent mode: Set %v, Path %q", rt.Mode.Set(), rt.Mode.Path())
	}
}

func TestDecodeStrictness(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string // problem strings, in order
	}{
		{"unknown field with a hint", "apiversion: x\n", []string{`p.yaml:1:1: apiversion: unknown field "apiversion": did you mean "apiVersion"?`}},
		{"unknown nested field", "routes:\n  - { colour: a }\n", []string{`p.yaml:2:7: routes[0].colour: unknown field "colour" (known fields: name, match, authorization, authorizer, mode, scopes, groups, claims, claimHeaders, dryRun)`}},
		{"misspelt nested field", "routes:\n  - { nme: a }\n", []string{`p.yaml:2:7: routes[0].nme: unknown field "nme": did you mean "name"?`}},
		{"list where a mapping is needed", "authorizers: [a]\n", []string{"p.yaml:1:14: authorizers: must be a mapping, not a list"}},
		{"mapping where a list is needed", "routes: { a: b }\n", []string{"p.yaml:1:9: routes: must be a list, not a mapping"}},
		{"duplicate key", "routes: []\nroutes: []\n", []string{`p.yaml:2:1: routes: duplicate key "routes" (first at line 1)`}},
		{"anchor", "apiVersion: &v x\n", []string{"p.yaml:1:13: YAML anchors (&v) are not supported: write the value out"}},
		{"indentation slip on line 4", "apiVersion: x\nroutes:\n  - name: a\n   match: {}\n", []string{"p.yaml:4:4: invalid YAML: did not find expected '-' indicator (while parsing a block collection that starts at line 3)"}},
		{"tab indentation on line 3", "routes:\n  - name: a\n\tmatch: {}\n", nil},
		// The parser names no line for a control character: the problem
		// names none either (never line 0).
		{"control character", "apiVersion: \x00\n", []string{"p.yaml: invalid YAML: control characters are not allowed (value: 0)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := decodeString(t, tt.src)
			var got []string
			for _, p := range r.probs {
				got = append(got, p.String())
			}
			if tt.want == nil {
				// Only the place is pinned: the parser's wording may change.
				if len(r.probs) != 1 || r.probs[0].Line != 3 {
					t.Fatalf("problems = %q, want one on line 3", got)
				}
				return
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestValidateAlone(t *testing.T) {
	doc, r := decodeString(t, `apiVersion: cognito-extauthz/v1
routes:
  - name: a
    match: { path: /a }
    authorizer: nobody
  - name: b
    match: { path: /b, methods: [get] }
    authorization: none
defaultAction: Allow
`)
	v := validate(r, doc, ".", Options{})
	if len(r.probs) != 1 || r.probs[0].String() != `p.yaml:5:17: routes[0].authorizer: unknown authorizer "nobody"` {
		t.Fatalf("problems = %v", r.probs)
	}
	if !v.defaultAllow || len(v.routes) != 2 || !v.routes[1].r.NoAuth || v.routes[1].r.methods != methodBit("GET") {
		t.Errorf("validated = %+v, route b = %+v", v, v.routes[1].r)
	}
}

// TestKeywordsAreCaseInsensitive pins the one rule for case: keywords the
// policy defines (authorization, mode, defaultAction, HTTP methods) take
// any case; names compared with something outside (algorithms, claims,
// scopes, header values) are exact.
func TestKeywordsAreCaseInsensitive(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: cognito-extauthz/v1
authorizers:
  a:
    userPools: [{ userPoolId: us-east-1_abc }]
    algorithms: [RS256]
routes:
  - { name: open, match: { path: /open, methods: [get, Post] }, authorization: none }
  - { name: id, match: { path: /id }, authorizer: a, mode: Identity-Claims }
  - { name: scoped, match: { path: /s }, authorizer: a, mode: ACCESS-SCOPES, scopes: [Pets/Read], authorization: cognito_user_pools }
defaultAction: DENY
`), "p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	byName := func(n string) *Route { r, _ := s.RouteByName(n); return r }
	if r := byName("open"); !r.NoAuth || r.methods != methodBit("GET")|methodBit("POST") {
		t.Errorf("open = %+v", r)
	}
	if r := byName("id"); r.Mode != ModeIdentity {
		t.Errorf("id mode = %v", r.Mode)
	}
	if r := byName("scoped"); r.Mode != ModeAccess || r.NoAuth || !slices.Equal(r.Scopes, []string{"Pets/Read"}) {
		t.Errorf("scoped = %+v", r)
	}
	if s.DefaultAllow() {
		t.Error("defaultAction DENY allowed")
	}
	_, err = Parse([]byte(`apiVersion: cognito-extauthz/v1
authorizers:
  a: { userPools: [{ userPoolId: us-east-1_abc }], algorithms: [rs256] }
routes:
  - { name: id, match: { path: /id }, authorizer: a }
`), "p.yaml", Options{})
	if err == nil || !strings.Contains(err.Error(), `algorithm "rs256": write it upper case, RS256`) {
		t.Errorf("lower-case algorithm: err = %v, want it refused (JOSE names are exact)", err)
	}
}

func TestCompileAlone(t *testing.T) {
	doc, r := decodeString(t, `apiVersion: cognito-extauthz/v1
authorizers:
  a: { userPools: [{ userPoolId: us-east-1_abc }] }
  b: { userPools: [{ userPoolId: eu-west-1_xyz }] }
routes:
  - { name: r1, match: { path: "/p/{id}" }, authorizer: a, claimHeaders: { x-sub: sub, x-b: email } }
  - { name: r2, match: { path: /q }, authorizer: a, claimHeaders: { x-sub: sub } }
`)
	v := validate(r, doc, ".", Options{})
	if len(r.probs) != 0 {
		t.Fatal(r.probs)
	}
	s := compile(v, []byte("x"))
	if got := s.ClaimHeaderNames(); !slices.Equal(got, []string{"x-b", "x-sub"}) {
		t.Errorf("claim headers = %q", got)
	}
	if got := s.KeySources(); len(got) != 1 || !strings.Contains(got[0].URL, "us-east-1_abc") {
		t.Errorf("key sources = %v, want only the used authorizer's", got)
	}
	if azs := s.Authorizers(); len(azs) != 2 || azs[0].Fingerprint == ([32]byte{}) || azs[0].Fingerprint == azs[1].Fingerprint {
		t.Errorf("authorizers not fingerprinted apart: %+v", azs)
	}
	if m, _ := s.Match("GET", "h", "/p/7"); m == nil || m.Name != "r1" {
		t.Errorf("match /p/7 = %+v", m)
	}
}

func TestWarnings(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: cognito-extauthz/v1
authorizers:
  used: { userPools: [{ userPoolId: us-east-1_abc }] }
  spare: { userPools: [{ userPoolId: us-east-1_def }] }
routes:
  - { name: r, match: { path: /r }, authorizer: used }
`), "p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := `p.yaml:4:3: authorizers.spare: no route uses authorizer "spare": it checks nothing and its keys are not fetched`
	if w := s.Warnings(); len(w) != 1 || w[0].String() != want {
		t.Errorf("warnings = %q, want %q", w, want)
	}
	s, err = Load("testdata/valid/minimal.yaml", Options{})
	if err != nil || len(s.Warnings()) != 0 {
		t.Errorf("minimal policy: err %v, warnings %v", err, s.Warnings())
	}
}

// TestLintHook pins that a lint added to the list runs on every policy that
// validated, sees the compiled routes, and can fail the policy.
func TestLintHook(t *testing.T) {
	saved := lints
	t.Cleanup(func() { lints = saved })
	var seen []string
	lints = append(slices.Clone(saved), func(r *reporter, s *Snapshot, doc *document) {
		for i, rt := range s.Routes() {
			seen = append(seen, rt.Name)
			if rt.Name == "bad" {
				n := doc.Routes.Items[i].Name
				r.problemf(n.Node, n.Path(), "a lint refused it")
			}
		}
	})
	if _, err := Load("testdata/valid/minimal.yaml", Options{}); err != nil || !slices.Equal(seen, []string{"health"}) {
		t.Fatalf("err %v, lint saw %q", err, seen)
	}
	_, err := Parse([]byte("apiVersion: cognito-extauthz/v1\nroutes:\n  - { name: bad, match: { path: / }, authorization: NONE }\n"), "p.yaml", Options{})
	if err == nil || err.Error() != "p.yaml:3:13: routes[0].name: a lint refused it" {
		t.Errorf("err = %v", err)
	}
}
