package policytest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// fixture is testenv's policy, its real issuer (whose keys are the
// policy's own) and a Runner that may fetch them.
type fixture struct {
	env    *testenv.Env
	snap   *policy.Snapshot
	runner *policytest.Runner
}

func newFixture(t *testing.T, doc string) *fixture {
	t.Helper()
	env := testenv.New(t)
	snap := env.Policy(t, doc)
	own := func(context.Context) (token.Keys, error) { return testenv.Keys(t, snap, jwks.Options{}), nil }
	r, err := policytest.NewRunner(snap, policytest.Options{OwnKeys: own})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{env, snap, r}
}

func (f *fixture) run(t *testing.T, cases ...policytest.Case) []policytest.Result {
	t.Helper()
	if err := f.runner.Prepare(cases); err != nil {
		t.Fatalf("prepare: %v", err)
	}
	return f.runner.Run(context.Background(), cases)
}

func TestGoodFilePasses(t *testing.T) {
	f := newFixture(t, testenv.Policy)
	cases, err := policytest.Load("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.run(t, cases...) {
		if !r.Pass {
			t.Errorf("%s: %v", r.Case.Name, r.Diffs)
		}
	}
}

func allow(status int) policytest.Expect { return policytest.Expect{Allow: true, Status: status} }

func deny(reason string, status int) policytest.Expect {
	return policytest.Expect{Reason: reason, Status: status}
}

// TestMintedTokens: defaults from the route (token type, issuer, app
// client), overrides from the claims, and the token placed where the
// route's authorizer reads it.
func TestMintedTokens(t *testing.T) {
	f := newFixture(t, testenv.Policy)
	req := func(path string) policytest.Request { return policytest.Request{Method: "GET", Path: path} }
	tests := []struct {
		name   string
		req    policytest.Request
		claims map[string]any
		expect policytest.Expect
	}{
		{"id token by default on an identity route", req("/pets"), map[string]any{}, allow(200)},
		{"access token by default on an access route", req("/any-access"), map[string]any{}, allow(200)},
		{"the route's scopes are not granted by default", req("/pets/7"), map[string]any{}, deny("scope_missing", 403)},
		{"a token type the route refuses", req("/pets"), map[string]any{"token_use": "access"}, deny("token_use_mismatch", 401)},
		{"a token_use Cognito never writes", req("/pets"), map[string]any{"token_use": "refresh"}, deny("token_use_mismatch", 401)},
		{"expired", req("/pets"), map[string]any{"exp": 1700000000, "iat": 1699990000}, deny("token_expired", 401)},
		{"another issuer", req("/pets"), map[string]any{"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other0000"}, deny("issuer_unknown", 401)},
		{"another app client", req("/pets"), map[string]any{"aud": "client-b"}, deny("client_not_allowed", 401)},
		{"no app client", req("/pets"), map[string]any{"aud": nil}, deny("client_not_allowed", 401)},
		{"a group", req("/admin/x"), map[string]any{"cognito:groups": []any{"owners"}}, allow(200)},
		{"no group", req("/admin/x"), map[string]any{}, deny("group_missing", 403)},
		{"a claim value", req("/tenant"), map[string]any{"custom:tenant": "acme"}, allow(200)},
		{"query identity source", req("/q?a=1"), map[string]any{}, allow(200)},
		{"cookie identity source", policytest.Request{Path: "/c", Headers: map[string]string{"cookie": "a=1"}}, map[string]any{}, allow(200)},
		{"custom header identity source", req("/x"), map[string]any{}, allow(200)},
		{"a NONE route ignores the token", req("/health"), map[string]any{"exp": 1}, allow(200)},
		{"no route", req("/nowhere"), map[string]any{}, deny("route_not_found", 403)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.run(t, policytest.Case{Name: tt.name, Request: tt.req, Claims: tt.claims, Expect: tt.expect})[0]
			if !r.Pass {
				t.Fatalf("%v (detail %s)", r.Diffs, r.Got.GetDetail())
			}
		})
	}
}

// TestDiffs: a failing case says what differed, each difference once.
func TestDiffs(t *testing.T) {
	f := newFixture(t, testenv.Policy)
	c := policytest.Case{
		Name:    "wrong expectations",
		Request: policytest.Request{Path: "/pets"},
		Claims:  map[string]any{"sub": "s-1"},
		Expect: policytest.Expect{Allow: false, Reason: "group_missing", Status: 403,
			Headers: map[string]string{"x-user-sub": "s-2", "x-user-email": "a@b", "x-user-groups": ""}},
	}
	r := f.run(t, c)[0]
	want := []string{
		"allowed, want denied",
		"reason allowed, want group_missing",
		"status 200, want 403",
		`header x-user-email is unset, want "a@b"`,
		`header x-user-sub is "s-1", want "s-2"`,
	}
	if r.Pass || strings.Join(r.Diffs, "|") != strings.Join(want, "|") {
		t.Fatalf("diffs %q, want %q", r.Diffs, want)
	}
	c.Expect = policytest.Expect{Allow: true, Headers: map[string]string{"x-user-sub": ""}}
	if r := f.run(t, c)[0]; r.Pass || r.Diffs[0] != `header x-user-sub is "s-1", want it unset` {
		t.Fatalf("diffs %q", r.Diffs)
	}
	c.Claims, c.Expect = nil, policytest.Expect{Allow: true}
	if r := f.run(t, c)[0]; r.Pass || r.Diffs[0] != "denied (token_missing, 401), want allowed" {
		t.Fatalf("diffs %q", r.Diffs)
	}
}

// TestLiteralTokens are verified with the policy's own keys, which never
// include the test key: a token minted for one case, sent as a literal
// token, is refused.
func TestLiteralTokens(t *testing.T) {
	f := newFixture(t, testenv.Policy)
	real := f.env.ID(t, issuer.TokenOptions{})
	minted := policytest.Case{Name: "minted", Request: policytest.Request{Path: "/pets"}, Claims: map[string]any{}, Expect: allow(200)}
	req, err := f.runner.Request(context.Background(), &minted)
	if err != nil {
		t.Fatal(err)
	}
	testKeyToken := strings.TrimPrefix(req.GetHeaders()["authorization"], "Bearer ")
	results := f.run(t,
		minted,
		policytest.Case{Name: "real", Request: policytest.Request{Path: "/pets"}, Token: real, Expect: allow(200)},
		policytest.Case{Name: "test key as a literal", Request: policytest.Request{Path: "/pets"}, Token: testKeyToken, Expect: deny("kid_unknown", 401)},
	)
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s: %v", r.Case.Name, r.Diffs)
		}
	}
	// A real token sent as claims would be minted anew; one in the
	// request's own header is judged with the test key and refused.
	c := policytest.Case{Name: "header", Request: policytest.Request{Path: "/pets", Headers: map[string]string{"authorization": "Bearer " + real}}, Expect: deny("kid_unknown", 401)}
	if r := f.run(t, c)[0]; !r.Pass {
		t.Errorf("a real token in request.headers: %v", r.Diffs)
	}
}

func TestNoOwnKeys(t *testing.T) {
	env := testenv.New(t)
	r, err := policytest.NewRunner(env.Policy(t, testenv.Policy), policytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res := r.Run(context.Background(), []policytest.Case{{Name: "x", Request: policytest.Request{Path: "/pets"}, Token: env.ID(t, issuer.TokenOptions{}), Expect: allow(200)}})
	if res[0].Pass || res[0].Err == nil {
		t.Fatalf("a literal token without the policy's keys: %+v", res[0])
	}
}

// TestPrepareConflict: a case whose token has nowhere to go is a problem
// of the cases file, with its place.
func TestPrepareConflict(t *testing.T) {
	f := newFixture(t, testenv.Policy)
	err := f.runner.Prepare([]policytest.Case{{
		Name: "twice", File: "c.yaml", Line: 4,
		Request: policytest.Request{Path: "/x", Headers: map[string]string{"x-token": "t"}},
		Claims:  map[string]any{},
	}})
	var probs policytest.Problems
	if !errors.As(err, &probs) || len(probs) != 1 || !strings.HasPrefix(probs[0].String(), "c.yaml:4: twice: request.headers sets x-token") {
		t.Fatalf("prepare: %v", err)
	}
}

// TestUpstreamHeaders: on an allow, expected headers are the request as
// the upstream gets it: claim headers set, forged ones removed, the
// client's other headers passed.
func TestUpstreamHeaders(t *testing.T) {
	f := newFixture(t, testenv.Policy)
	c := policytest.Case{
		Name:    "forged",
		Request: policytest.Request{Path: "/pets", Headers: map[string]string{"X-User-Email": "mallory@example.com", "x-trace": "1"}},
		Claims:  map[string]any{"sub": "s-1"},
		Expect:  policytest.Expect{Allow: true, Headers: map[string]string{"x-user-sub": "s-1", "x-user-email": "", "x-trace": "1"}},
	}
	if r := f.run(t, c)[0]; !r.Pass {
		t.Fatalf("%v", r.Diffs)
	}
	c.Expect.Headers = map[string]string{"x-trace": ""}
	if r := f.run(t, c)[0]; r.Pass || r.Diffs[0] != `header x-trace is "1", want it unset` {
		t.Fatalf("diffs %q", r.Diffs)
	}
	// On a denial, the expected headers are the response's.
	c.Claims = map[string]any{"token_use": "access"}
	c.Expect = policytest.Expect{Headers: map[string]string{"www-authenticate": `Bearer error="invalid_token"`, "x-extauthz-reason": "token_use_mismatch", "x-trace": ""}}
	if r := f.run(t, c)[0]; !r.Pass {
		t.Fatalf("%v", r.Diffs)
	}
}
