package policy

import (
	"slices"
	"testing"
)

// TestJWTMode reads a jwt route: explicit only, scopes allowed, no
// token_use of its own.
func TestJWTMode(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: cognito-extauthz/v1
authorizers:
  http-api:
    userPools: [{ userPoolId: us-east-1_abc }]
    appClientIds: [web, cli]
routes:
  - { name: scoped, match: { path: /a }, authorizer: http-api, mode: jwt, scopes: [pets/read, pets/write] }
  - { name: any-token, match: { path: /b }, authorizer: http-api, mode: Jwt }
  - { name: inferred, match: { path: /c }, authorizer: http-api, scopes: [pets/read] }
`), "jwt.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		route  string
		mode   Mode
		use    string
		text   string
		scopes []string
	}{
		{"scoped", ModeJWT, "", "jwt", []string{"pets/read", "pets/write"}},
		{"any-token", ModeJWT, "", "jwt", nil},
		// Scopes without a mode stay API Gateway REST's rule.
		{"inferred", ModeAccess, "access", "access-scopes", []string{"pets/read"}},
	}
	for _, tt := range tests {
		r, ok := s.RouteByName(tt.route)
		if !ok {
			t.Fatalf("no route %s", tt.route)
		}
		if r.Mode != tt.mode || r.Mode.TokenUse() != tt.use || r.Mode.String() != tt.text || !slices.Equal(r.Scopes, tt.scopes) {
			t.Errorf("%s: mode %v (%q, %q), scopes %v; want %v (%q, %q), %v", tt.route, r.Mode, r.Mode.TokenUse(), r.Mode.String(), r.Scopes, tt.mode, tt.use, tt.text, tt.scopes)
		}
	}
}

// TestJWTAudienceRule: only an authorizer that serves a jwt route admits
// tokens by HTTP API's app client rule (aud, else client_id); one that
// serves only identity-claims and access-scopes routes keeps the by-use
// rule alone, and the two fingerprint apart.
func TestJWTAudienceRule(t *testing.T) {
	s, err := Parse([]byte(`apiVersion: cognito-extauthz/v1
authorizers:
  http-api:
    userPools: [{ userPoolId: us-east-1_abc }]
    appClientIds: [web]
  rest:
    userPools: [{ userPoolId: us-east-1_abc }]
    appClientIds: [web]
routes:
  - { name: j, match: { path: /a }, authorizer: http-api, mode: jwt }
  - { name: r, match: { path: /b }, authorizer: rest, mode: access-scopes }
`), "jwt.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*Authorizer{}
	for _, az := range s.Authorizers() {
		got[az.Name] = az
	}
	if !got["http-api"].Token.AudienceRule || got["rest"].Token.AudienceRule {
		t.Fatalf("AudienceRule: http-api %v, rest %v; want true, false", got["http-api"].Token.AudienceRule, got["rest"].Token.AudienceRule)
	}
	if got["http-api"].Fingerprint == got["rest"].Fingerprint {
		t.Fatal("the two rules share a fingerprint (and so a token cache entry)")
	}
}
