package policy

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// placeless are the fixtures whose problems cannot point at a line.
var placeless = map[string]bool{"empty.yaml": true, "comments-only.yaml": true}

// TestInvalidGolden parses every testdata/invalid/*.yaml and compares the
// problems, exactly, with NAME.golden (rewritten with -update).
func TestInvalidGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d invalid fixtures; the glob is wrong", len(files))
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(data, name, Options{})
			if s != nil {
				t.Fatalf("Parse returned a Snapshot for an invalid policy")
			}
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("Parse error = %v (%T), want Problems", err, err)
			}
			for _, p := range ps {
				if p.File != name {
					t.Errorf("problem %q: File = %q, want %q", p, p.File, name)
				}
				if p.Line <= 0 && !placeless[name] {
					t.Errorf("problem %q has no line", p)
				}
			}
			got := err.Error() + "\n"
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -run TestInvalidGolden -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("problems differ from %s\ngot:\n%s\nwant:\n%s", golden, got, want)
			}
		})
	}
}

// TestManyProblemsAllReported pins, independently of the golden file, that
// one pass reports every problem of a file, each at its own line.
func TestManyProblemsAllReported(t *testing.T) {
	_, err := Load("testdata/invalid/many-problems.yaml", Options{})
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("err = %v, want Problems", err)
	}
	want := []struct {
		line int
		path string
		text string
	}{
		{5, "authorizers.users.userPools[0].arn", "account \"123\" is not 12 digits"},
		{6, "authorizers.users.algorithms[0]", "HMAC"},
		{7, "authorizers.users.resultTtl", "maximum of 1h0m0s"},
		{12, "routes[1].name", "duplicate route name \"list\""},
		{13, "routes[1].match.path", "must not end with '/'"},
		{13, "routes[1].match.methods[0]", "unknown method \"FETCH\""},
		{14, "routes[1].authorizer", "unknown authorizer \"userz\""},
		{15, "routes[1].scopes", "scopes need mode access-scopes"},
		{20, "routes[2].claimHeaders", "authorization: NONE"},
		{22, "routes[3].match", "same requests as route \"list\""},
		{24, "routes[3].claimHeaders.Authorization", "reserved"},
		{25, "defaultAction", "not deny or allow"},
		{27, "gatewayResponses.UNAUTHORISED", "unknown gateway response type"},
		{28, "gatewayResponses.ACCESS_DENIED.statusCode", "outside 400-599"},
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for i, w := range want {
		p := ps[i]
		if p.Line != w.line || p.Path != w.path || !strings.Contains(p.Message, w.text) {
			t.Errorf("problem %d = %q, want line %d, path %s, message containing %q", i, p, w.line, w.path, w.text)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "policy.yaml", Line: 12, Column: 5, Path: "routes[2].authorizer", Message: `unknown authorizer "x"`},
			`policy.yaml:12:5: routes[2].authorizer: unknown authorizer "x"`},
		{Problem{File: "policy.yaml", Line: 3, Message: "invalid YAML: x"}, "policy.yaml:3: invalid YAML: x"},
		{Problem{File: "policy.yaml", Message: "policy is empty"}, "policy.yaml: policy is empty"},
		{Problem{Message: "policy is empty"}, "policy is empty"},
		{Problem{Path: "apiVersion", Message: "m"}, "apiVersion: m"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.p.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Problems.Error() = %q, want %q", got, want)
	}
}

func TestValidFixturesLoad(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	if err != nil || len(files) < 5 {
		t.Fatalf("glob: %v, %d files", err, len(files))
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := Load(f, Options{})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if len(s.Routes()) == 0 {
				t.Fatal("no routes")
			}
			data, _ := os.ReadFile(f)
			s2, err := Parse(data, f, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s.Digest() != s2.Digest() || len(s.Digest()) != 64 {
				t.Errorf("digest %q vs %q", s.Digest(), s2.Digest())
			}
		})
	}
}

// TestReadmePolicyExample holds the README's policy example to
// testdata/valid/contract.yaml, byte for byte after the fixture's leading
// comment, so that TestContractExample checks what the README shows.
func TestReadmePolicyExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start = "```yaml\napiVersion: cognito-extauthz/v1\n"
	_, block, ok := strings.Cut(string(readme), start)
	if !ok {
		t.Fatal("README.md has no ```yaml block starting with apiVersion: cognito-extauthz/v1")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("README.md: the policy example's block is not closed")
	}
	fixture, err := os.ReadFile("testdata/valid/contract.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, want, ok := strings.Cut(string(fixture), "\napiVersion: cognito-extauthz/v1\n")
	if !ok {
		t.Fatal("testdata/valid/contract.yaml lost its apiVersion line")
	}
	if block != want {
		t.Errorf("README.md's policy example differs from testdata/valid/contract.yaml:\nREADME:\n%s\nfixture:\n%s", block, want)
	}
}

// TestContractExample checks the README's policy example field by
// field (testdata/valid/contract.yaml, which TestReadmePolicyExample holds
// equal to it: its second pool names both jwksUri and jwksFile, and the
// file wins).
func TestContractExample(t *testing.T) {
	s, err := Load("testdata/valid/contract.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	azs := s.Authorizers()
	if len(azs) != 1 {
		t.Fatalf("%d authorizers", len(azs))
	}
	az := azs[0]
	want := &token.Config{
		Pools: []token.Pool{
			{
				ID: "us-east-1_AbCdEfGhI",
				Issuers: []string{
					"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI",
					"https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI",
				},
				Keys: jwks.Source{URL: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI/.well-known/jwks.json"},
			},
			{
				ID:      "eu-west-1_XyZ123456",
				Issuers: []string{"https://issuer-cognito-idp.eu-west-1.amazonaws.com/eu-west-1_XyZ123456"},
				Keys:    jwks.Source{File: "/etc/extauthz/jwks.json"},
			},
		},
		ClientIDs: []string{"4tq0example", "7hh2example"},
	}
	assertConfig(t, az.Token, want)
	if az.Name != "pets-users" || az.Source != (IdentitySource{SourceHeader, "authorization"}) || az.StripToken ||
		az.ResultTTL != 300*time.Second {
		t.Errorf("authorizer = %+v", az)
	}

	type routeWant struct {
		name, template string
		noAuth         bool
		mode           Mode
		scopes, groups []string
		claims         []ClaimRequirement
		headers        []ClaimHeader
	}
	wantRoutes := []routeWant{
		{name: "list-pets", template: "/pets", mode: ModeIdentity, headers: []ClaimHeader{
			{"x-user-email", "email"}, {"x-user-groups", "cognito:groups"}, {"x-user-sub", "sub"}}},
		{name: "pet", template: "/pets/{petId}", mode: ModeAccess, scopes: []string{"pets/read", "pets/admin"},
			groups: []string{"admins"}, claims: []ClaimRequirement{{"custom:tenant", "acme"}}},
		{name: "everything-else-under-pets", template: "/pets/{proxy+}", mode: ModeIdentity},
		{name: "health", template: "/health", noAuth: true},
	}
	routes := s.Routes()
	if len(routes) != len(wantRoutes) {
		t.Fatalf("%d routes", len(routes))
	}
	for i, w := range wantRoutes {
		r := routes[i]
		if r.Name != w.name || r.Template != w.template || r.NoAuth != w.noAuth || r.Mode != w.mode ||
			!slices.Equal(r.Scopes, w.scopes) || !slices.Equal(r.Groups, w.groups) ||
			!slices.Equal(r.Claims, w.claims) || !slices.Equal(r.ClaimHeaders, w.headers) {
			t.Errorf("route %d = %+v, want %+v", i, *r, w)
		}
		if (r.Authorizer == nil) != w.noAuth || (!w.noAuth && r.Authorizer != az) {
			t.Errorf("route %s authorizer = %p, want %p", r.Name, r.Authorizer, az)
		}
		if got, ok := s.RouteByName(w.name); !ok || got != r {
			t.Errorf("RouteByName(%q) = %v, %v", w.name, got, ok)
		}
	}
	if _, ok := s.RouteByName("nope"); ok {
		t.Error("RouteByName(nope) found a route")
	}
	if s.DefaultAllow() {
		t.Error("DefaultAllow with defaultAction: deny")
	}
	if got := s.ClaimHeaderNames(); !slices.Equal(got, []string{"x-user-email", "x-user-groups", "x-user-sub"}) {
		t.Errorf("ClaimHeaderNames = %v", got)
	}
	gr := s.GatewayResponse(Unauthorized)
	if gr.StatusCode != 0 || !slices.Equal(gr.Headers, []Header{{"access-control-allow-origin", "*"}}) {
		t.Errorf("GatewayResponse(Unauthorized) = %+v", gr)
	}
	if gr := s.GatewayResponse(AccessDenied); gr.StatusCode != 0 || gr.Headers != nil {
		t.Errorf("GatewayResponse(AccessDenied) = %+v, want zero", gr)
	}
}

func assertConfig(t *testing.T, got, want *token.Config) {
	t.Helper()
	if len(got.Pools) != len(want.Pools) {
		t.Fatalf("pools = %+v, want %+v", got.Pools, want.Pools)
	}
	for i := range want.Pools {
		g, w := got.Pools[i], want.Pools[i]
		if g.ID != w.ID || !slices.Equal(g.Issuers, w.Issuers) || g.Keys != w.Keys {
			t.Errorf("pool %d = %+v, want %+v", i, g, w)
		}
	}
	if !slices.Equal(got.ClientIDs, want.ClientIDs) || !slices.Equal(got.Algorithms, want.Algorithms) ||
		got.ClockSkew != want.ClockSkew {
		t.Errorf("config = %+v, want %+v", *got, *want)
	}
}

func authorizerNamed(t *testing.T, s *Snapshot, name string) *Authorizer {
	t.Helper()
	for _, a := range s.Authorizers() {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("no authorizer %q", name)
	return nil
}

func TestIssuerAndKeySourceDerivation(t *testing.T) {
	s, err := Load("testdata/valid/regions.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		authorizer string
		want       token.Pool
	}{
		{"china", token.Pool{ID: "cn-north-1_AbC", Issuers: []string{
			"https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_AbC",
			"https://issuer-cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_AbC",
		}, Keys: jwks.Source{URL: "https://cognito-idp.cn-north-1.amazonaws.com.cn/cn-north-1_AbC/.well-known/jwks.json"}}},
		{"govcloud", token.Pool{ID: "us-gov-west-1_Gov", Issuers: []string{
			"https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_Gov",
			"https://issuer-cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_Gov",
		}, Keys: jwks.Source{URL: "https://cognito-idp.us-gov-west-1.amazonaws.com/us-gov-west-1_Gov/.well-known/jwks.json"}}},
		// Issuer only: exactly that issuer; keys at issuer (trailing slash
		// trimmed) + /.well-known/jwks.json.
		{"issuer-only", token.Pool{ID: "eu-central-2_Zur1ch", Issuers: []string{
			"https://issuer-cognito-idp.eu-central-2.amazonaws.com/eu-central-2_Zur1ch/",
		}, Keys: jwks.Source{URL: "https://issuer-cognito-idp.eu-central-2.amazonaws.com/eu-central-2_Zur1ch/.well-known/jwks.json"}}},
		// Key source only: both issuer forms still derived from the ARN.
		{"arn-with-overrides", token.Pool{ID: "ap-southeast-2_Syd", Issuers: []string{
			"https://cognito-idp.ap-southeast-2.amazonaws.com/ap-southeast-2_Syd",
			"https://issuer-cognito-idp.ap-southeast-2.amazonaws.com/ap-southeast-2_Syd",
		}, Keys: jwks.Source{URL: "https://keys.example.com/ap-southeast-2_Syd/jwks.json"}}},
	}
	for _, tt := range tests {
		t.Run(tt.authorizer, func(t *testing.T) {
			az := authorizerNamed(t, s, tt.authorizer)
			assertConfig(t, az.Token, &token.Config{Pools: []token.Pool{tt.want}})
		})
	}
}

func TestEmulatorPools(t *testing.T) {
	s, err := Load("testdata/valid/emulator.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	az := authorizerNamed(t, s, "local")
	assertConfig(t, az.Token, &token.Config{Pools: []token.Pool{
		{ID: "local_5vr8DTla", Issuers: []string{"http://localhost:9229/local_5vr8DTla"},
			Keys: jwks.Source{URL: "http://localhost:9229/local_5vr8DTla/.well-known/jwks.json"}},
		// A relative jwksFile is resolved against the policy's directory.
		{ID: "local_offline", Issuers: []string{"https://issuer.example.test/local_offline/"},
			Keys: jwks.Source{File: filepath.Join("testdata", "valid", "keys", "jwks.json")}},
	}})
	if az.Source != (IdentitySource{SourceCookie, "id_token"}) || az.Source.String() != "cookie:id_token" {
		t.Errorf("source = %v", az.Source)
	}
	if az.ResultTTL != 0 {
		t.Errorf("resultTtl: 0 gave %v, want 0 (off)", az.ResultTTL)
	}
}

// TestAuthorizerDefaults: an authorizer that names only its pool reads the
// Authorization header, keeps the token, caches verified tokens for 300s
// (API Gateway's default authorizerResultTtlInSeconds) and allows no skew.
func TestAuthorizerDefaults(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: cognito-extauthz/v1
authorizers:
  a: { userPools: [{ userPoolId: us-east-1_AAAAAAAAA }] }
routes:
  - { name: r, match: { path: /r }, authorizer: a }
`), "p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	az := authorizerNamed(t, s, "a")
	if az.ResultTTL != 300*time.Second || az.Source != (IdentitySource{SourceHeader, "authorization"}) || az.StripToken ||
		az.Token.ClockSkew != 0 || len(az.Token.ClientIDs) != 0 || az.Token.AudienceRule {
		t.Errorf("authorizer = %+v, token config %+v", az, az.Token)
	}
}

func TestEverything(t *testing.T) {
	s, err := Load("testdata/valid/everything.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	web := authorizerNamed(t, s, "web")
	if !slices.Equal(web.Token.ClientIDs, []string{"client-a", "client-b"}) ||
		!slices.Equal(web.Token.Algorithms, []string{"RS256", "PS256"}) ||
		web.Token.ClockSkew != 30*time.Second || web.ResultTTL != 60*time.Second || !web.StripToken ||
		web.Source != (IdentitySource{SourceHeader, "x-id-token"}) {
		t.Errorf("web = %+v, token %+v", web, *web.Token)
	}
	api := authorizerNamed(t, s, "api")
	if api.Source != (IdentitySource{SourceQuery, "access_token"}) || api.Source.String() != "query:access_token" {
		t.Errorf("api source = %v", api.Source)
	}
	names := []string{}
	for _, a := range s.Authorizers() {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"api", "unused", "web"}) {
		t.Errorf("Authorizers() = %v, want sorted by name", names)
	}
	// us-east-1_Web is named by two authorizers: one key source. The
	// unused authorizer's pool is not fetched at all.
	wantSources := []jwks.Source{
		{URL: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Web/.well-known/jwks.json"},
		{URL: "https://cognito-idp.us-west-2.amazonaws.com/us-west-2_Api/.well-known/jwks.json"},
	}
	if got := s.KeySources(); !slices.Equal(got, wantSources) {
		t.Errorf("KeySources = %v, want %v", got, wantSources)
	}
	if got := s.ClaimHeaderNames(); !slices.Equal(got, []string{"x-client", "x-user-email", "x-user-sub"}) || cap(got) != len(got) {
		t.Errorf("ClaimHeaderNames = %v (cap %d)", got, cap(got))
	}
	profile, _ := s.RouteByName("profile")
	if !slices.Equal(profile.Groups, []string{"users", "admins"}) ||
		!slices.Equal(profile.Claims, []ClaimRequirement{{"custom:level", "3"}, {"custom:tenant", "acme"}, {"email_verified", "true"}}) ||
		!slices.Equal(profile.ClaimHeaders, []ClaimHeader{{"x-user-email", "email"}, {"x-user-sub", "sub"}}) ||
		profile.Mode != ModeIdentity || profile.Mode.TokenUse() != "id" || profile.Mode.String() != "identity-claims" {
		t.Errorf("profile = %+v", *profile)
	}
	orders, _ := s.RouteByName("orders")
	if orders.Mode != ModeAccess || orders.Mode.TokenUse() != "access" || orders.Mode.String() != "access-scopes" ||
		!slices.Equal(orders.Scopes, []string{"orders/read"}) {
		t.Errorf("orders = %+v", *orders)
	}
	if r, _ := s.RouteByName("any-access"); r.Mode != ModeAccess || len(r.Scopes) != 0 {
		t.Errorf("any-access = %+v", *r)
	}
	if !s.DefaultAllow() {
		t.Error("defaultAction: allow not seen")
	}
}

func TestGatewayResponseFallback(t *testing.T) {
	everything, err := Load("testdata/valid/everything.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	partial, err := Parse([]byte(`apiVersion: cognito-extauthz/v1
routes: [{ name: a, authorization: NONE, match: { path: /a } }]
gatewayResponses:
  DEFAULT_4XX: { statusCode: 418 }
`), "p.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	minimal, err := Load("testdata/valid/minimal.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		s    *Snapshot
		kind ResponseKind
		want GatewayResponse
	}{
		{"own entry", everything, Unauthorized, GatewayResponse{401, []Header{
			{"access-control-allow-origin", "*"}, {"www-authenticate", `Bearer realm="api"`}}}},
		{"own status only", everything, AccessDenied, GatewayResponse{StatusCode: 404}},
		// An own entry, even empty, replaces DEFAULT_4XX as in API Gateway.
		{"own empty entry", everything, MissingAuthenticationToken, GatewayResponse{Headers: []Header{}}},
		{"own 5xx entry", everything, AuthorizerFailure, GatewayResponse{StatusCode: 500}},
		{"4xx fallback", partial, Unauthorized, GatewayResponse{StatusCode: 418}},
		{"4xx fallback access denied", partial, AccessDenied, GatewayResponse{StatusCode: 418}},
		{"4xx fallback missing token", partial, MissingAuthenticationToken, GatewayResponse{StatusCode: 418}},
		{"5xx not from 4xx", partial, AuthorizerFailure, GatewayResponse{}},
		{"none", minimal, Unauthorized, GatewayResponse{}},
		{"unknown kind", everything, ResponseKind(0), GatewayResponse{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.s.GatewayResponse(tt.kind)
			if got.StatusCode != tt.want.StatusCode || !slices.Equal(got.Headers, tt.want.Headers) {
				t.Errorf("GatewayResponse(%v) = %+v, want %+v", tt.kind, got, tt.want)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	const base = `apiVersion: cognito-extauthz/v1
authorizers:
  a:
    userPools:
      - userPoolId: us-east-1_abc
      - { userPoolId: local_x, issuer: "https://idp.example.com/x", jwksUri: "https://idp.example.com/x/jwks" }
    appClientIds: [c1, c2]
    clockSkew: 10s
routes:
  - { name: r, match: { path: /r }, authorizer: a }
`
	fp := func(t *testing.T, src string) [32]byte {
		t.Helper()
		s, err := Parse([]byte(src), "fp.yaml", Options{})
		if err != nil {
			t.Fatalf("%v\n%s", err, src)
		}
		return authorizerNamed(t, s, "a").Fingerprint
	}
	ref := fp(t, base)
	if ref == ([32]byte{}) {
		t.Fatal("zero fingerprint")
	}
	if again := fp(t, base); again != ref {
		t.Error("fingerprint differs across reparses of the same file")
	}
	tests := []struct {
		name, old, new string
		same           bool
	}{
		{"another pool id", "us-east-1_abc", "us-east-1_abd", false},
		{"another issuer", "https://idp.example.com/x\"", "https://idp.example.com/y\"", false},
		{"another jwksUri", "x/jwks", "x/jwks2", false},
		{"jwksFile instead of jwksUri", `jwksUri: "https://idp.example.com/x/jwks"`, `jwksFile: /etc/x.json`, false},
		{"another client", "[c1, c2]", "[c1, c3]", false},
		{"client removed", "[c1, c2]", "[c1]", false},
		{"another skew", "clockSkew: 10s", "clockSkew: 11s", false},
		{"another algorithm set", "clockSkew: 10s", "clockSkew: 10s\n    algorithms: [RS256, PS256]", false},
		{"pool added", "      - userPoolId: us-east-1_abc\n", "      - userPoolId: us-east-1_abc\n      - userPoolId: us-east-2_abc\n", false},
		{"client order", "[c1, c2]", "[c2, c1]", true},
		{"explicit default algorithm", "clockSkew: 10s", "clockSkew: 10s\n    algorithms: [RS256]", true},
		{"skew in seconds", "clockSkew: 10s", "clockSkew: 10", true},
		{"identity source", "clockSkew: 10s", "clockSkew: 10s\n    identitySource: header:X-Token", true},
		{"result ttl and strip", "clockSkew: 10s", "clockSkew: 10s\n    resultTtl: 1s\n    stripToken: true", true},
		{"routes", "path: /r", "path: /s", true},
		{"a route reads a claim", "authorizer: a }", "authorizer: a, claimHeaders: { x-email: email } }", false},
		{"a route requires a claim", "authorizer: a }", "authorizer: a, claims: { \"custom:tenant\": acme } }", false},
		{"a route requires groups", "authorizer: a }", "authorizer: a, groups: [admins] }", false},
		{"a route passes sub, which is always kept", "authorizer: a }", "authorizer: a, claimHeaders: { x-sub: sub } }", false},
		{"comments", "authorizers:", "authorizers: # changed", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(base, tt.old, tt.new, 1)
			if src == base {
				t.Fatalf("replacement %q not found", tt.old)
			}
			if got := fp(t, src); (got == ref) != tt.same {
				t.Errorf("fingerprint equal = %v, want %v", got == ref, tt.same)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), Options{}); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
	if _, err := Load(t.TempDir(), Options{}); err == nil {
		t.Error("Load of a directory succeeded")
	}
}

// TestSizeLimit: a policy one byte over the limit (DefaultMaxBytes, or
// Options.MaxBytes) is refused by ReadFile, Load and Parse with an error
// that names the flag that raises it; one of exactly the limit is read and
// judged.
func TestSizeLimit(t *testing.T) {
	valid, err := os.ReadFile("testdata/valid/minimal.yaml")
	if err != nil {
		t.Fatal(err)
	}
	comments := func(n int64) []byte { return bytes.Repeat([]byte("#\n"), int(n/2)) }
	tests := []struct {
		name    string
		data    []byte
		opts    Options
		refused bool
		want    string // in the error when not refused; "" for none
	}{
		{"one byte over the default", append(comments(DefaultMaxBytes), '#'), Options{}, true, ""},
		{"one byte over a set limit", append(comments(1000), '#'), Options{MaxBytes: 1000}, true, ""},
		{"exactly a set limit is judged", comments(1000), Options{MaxBytes: 1000}, false, "policy is empty"},
		{"a valid policy over a small limit", valid, Options{MaxBytes: int64(len(valid)) - 1}, true, ""},
		{"the same policy at its size", valid, Options{MaxBytes: int64(len(valid))}, false, ""},
		{"zero means the default", valid, Options{MaxBytes: 0}, false, ""},
		{"negative means the default", valid, Options{MaxBytes: -1}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "p.yaml")
			if err := os.WriteFile(path, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			limit := tt.opts.MaxBytes
			if limit <= 0 {
				limit = DefaultMaxBytes
			}
			flag := fmt.Sprintf("larger than the limit of %d bytes (extauthz --max-policy-bytes, env EXTAUTHZ_MAX_POLICY_BYTES)", limit)
			_, readErr := ReadFile(path, tt.opts)
			_, loadErr := Load(path, tt.opts)
			_, parseErr := Parse(tt.data, "p.yaml", tt.opts)
			if tt.refused {
				var ps Problems
				if readErr == nil || !strings.Contains(readErr.Error(), flag) || loadErr == nil || loadErr.Error() != readErr.Error() {
					t.Errorf("ReadFile: %v; Load: %v; want both %q", readErr, loadErr, flag)
				}
				if !errors.As(parseErr, &ps) || len(ps) != 1 || ps[0].String() != "p.yaml: policy is "+flag {
					t.Errorf("Parse: %v, want the one problem %q", parseErr, flag)
				}
				return
			}
			if readErr != nil {
				t.Errorf("ReadFile: %v", readErr)
			}
			for _, err := range []error{loadErr, parseErr} {
				switch {
				case tt.want == "" && err != nil, tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
					t.Errorf("err = %v, want %q", err, tt.want)
				case err != nil && strings.Contains(err.Error(), "larger than"):
					t.Errorf("err = %v: refused at the limit", err)
				}
			}
		})
	}
}

func TestAllowHTTPJWKS(t *testing.T) {
	src := []byte(`apiVersion: cognito-extauthz/v1
authorizers:
  a:
    userPools:
      - { userPoolId: us-east-1_a, jwksUri: "http://keys.internal/jwks.json" }
      - { userPoolId: local_b, issuer: "http://idp.internal/b" , jwksUri: "http://idp.internal/b/jwks" }
      - { userPoolId: us-east-1_c, issuer: "http://idp.internal/c" }
routes: [{ name: r, match: { path: /r }, authorizer: a }]
`)
	_, err := Parse(src, "h.yaml", Options{})
	var ps Problems
	if !errors.As(err, &ps) || len(ps) != 3 {
		t.Fatalf("without AllowHTTPJWKS: %v, want 3 problems", err)
	}
	s, err := Parse(src, "h.yaml", Options{AllowHTTPJWKS: true})
	if err != nil {
		t.Fatalf("with AllowHTTPJWKS: %v", err)
	}
	if got := s.KeySources(); len(got) != 3 || got[0].URL != "http://idp.internal/b/jwks" || got[1].URL != "http://idp.internal/c/.well-known/jwks.json" {
		t.Errorf("KeySources = %v", got)
	}
}

func TestParseARN(t *testing.T) {
	tests := []struct {
		arn, region, id string
		bad             bool
	}{
		{"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbC", "us-east-1", "us-east-1_AbC", false},
		{"arn:aws-cn:cognito-idp:cn-northwest-1:123456789012:userpool/cn-northwest-1_X", "cn-northwest-1", "cn-northwest-1_X", false},
		{"arn:aws-us-gov:cognito-idp:us-gov-east-1:123456789012:userpool/us-gov-east-1_X", "us-gov-east-1", "us-gov-east-1_X", false},
		{"arn:aws:cognito-idp:eu-central-2:123456789012:userpool/eu-central-2_X9", "eu-central-2", "eu-central-2_X9", false},
		{"arn:aws:cognito-idp:us-gov-east-1:123456789012:userpool/us-gov-east-1_X", "", "", true},
		{"arn:aws:cognito-idp:us-east-1:123456789012:userpool/", "", "", true},
		{"arn:aws:cognito-idp:us-east-1:1234567890123:userpool/us-east-1_X", "", "", true},
		{"arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-2_X", "", "", true},
		{"arn:AWS:cognito-idp:us-east-1:123456789012:userpool/us-east-1_X", "", "", true},
		{"arn:aws:cognito-idp:US-EAST-1:123456789012:userpool/US-EAST-1_X", "", "", true},
		{"arn:aws:cognito-identity:us-east-1:123456789012:identitypool/us-east-1:x", "", "", true},
		{"", "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			region, id, err := parseARN(tt.arn)
			if (err != nil) != tt.bad || region != tt.region || id != tt.id {
				t.Errorf("parseARN = %q, %q, %v; want %q, %q, bad=%v", region, id, err, tt.region, tt.id, tt.bad)
			}
		})
	}
}

func TestParseHostPattern(t *testing.T) {
	label63 := strings.Repeat("a", 63)
	name253 := strings.Repeat(label63+".", 3) + strings.Repeat("b", 253-3*64)
	tests := []struct {
		in, name, port string
		bad            bool
	}{
		{in: "api.example.com", name: "api.example.com"},
		{in: "API.Example.COM.", name: "api.example.com"},
		{in: "api.example.com:8443", name: "api.example.com", port: "8443"},
		{in: "10.0.0.1:80", name: "10.0.0.1", port: "80"},
		{in: "[2001:DB8::1]:443", name: "[2001:db8::1]", port: "443"},
		{in: "svc_internal.local", name: "svc_internal.local"},
		{in: "[fe80::1%eth0]", bad: true},
		{in: "api.example.com:0", bad: true},
		{in: "api.example.com:08443", bad: true},
		{in: "-api.example.com", bad: true},
		{in: "api.example.com/x", bad: true},
		{in: "user@api.example.com", bad: true},
		{in: "é.example.com", bad: true},
		{in: ".", bad: true},
		// Each bound exactly, and one past it.
		{in: "api.example.com:1", name: "api.example.com", port: "1"},
		{in: "api.example.com:65535", name: "api.example.com", port: "65535"},
		{in: "api.example.com:65536", bad: true},
		{in: "api.example.com:", bad: true},
		{in: label63 + ".example", name: label63 + ".example"},
		{in: strings.Repeat("a", 64) + ".example", bad: true},
		{in: name253, name: name253},
		{in: name253 + "b", bad: true},
		{in: "azAZ09.example", name: "azaz09.example"},
		{in: "a`.example", bad: true},
		{in: "a{.example", bad: true},
		{in: "a:b:c", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			h, err := parseHostPattern(tt.in)
			if (err != nil) != tt.bad || (!tt.bad && (h.name != tt.name || h.port != tt.port)) {
				t.Errorf("parseHostPattern(%q) = %+v, %v", tt.in, h, err)
			}
		})
	}
}

func TestParseIdentitySource(t *testing.T) {
	tests := []struct {
		in   string
		want IdentitySource
		bad  bool
	}{
		{in: "header:Authorization", want: IdentitySource{SourceHeader, "authorization"}},
		{in: "method.request.header.X-Token", want: IdentitySource{SourceHeader, "x-token"}},
		{in: "query:access_token", want: IdentitySource{SourceQuery, "access_token"}},
		{in: "query:Token", want: IdentitySource{SourceQuery, "Token"}},
		{in: "cookie:ID_Token", want: IdentitySource{SourceCookie, "ID_Token"}},
		{in: "Header:Authorization", bad: true},
		{in: "header:proxy-authorization", want: IdentitySource{SourceHeader, "proxy-authorization"}},
		{in: "header:Connection", bad: true},
		{in: "query:", bad: true},
		{in: "query:a&b", bad: true},
		{in: "cookie:", bad: true},
		{in: "cookie:a;b", bad: true},
		{in: "header::authority", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseIdentitySource(tt.in)
			if (err != nil) != tt.bad || (!tt.bad && got != tt.want) {
				t.Errorf("parseIdentitySource(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

func TestEnumStrings(t *testing.T) {
	tests := []struct{ got, want string }{
		{Mode(0).String(), ""},
		{Mode(0).TokenUse(), ""},
		{SourceKind(0).String(), ""},
		{SourceQuery.String(), "query"},
		{IdentitySource{SourceCookie, "id"}.String(), "cookie:id"},
		{Unauthorized.String(), "UNAUTHORIZED"},
		{AccessDenied.String(), "ACCESS_DENIED"},
		{MissingAuthenticationToken.String(), "MISSING_AUTHENTICATION_TOKEN"},
		{AuthorizerFailure.String(), "AUTHORIZER_FAILURE"},
		{ResponseKind(9).String(), ""},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
