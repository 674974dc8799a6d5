package httpauthz_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// TestJWTModeHTTP runs the jwt-mode table (API Gateway HTTP API's JWT
// authorizer: either token type, aud or client_id, scopes from the scope
// claim) through each endpoint of the HTTP authorization mode.
func TestJWTModeHTTP(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: testenv.JWTPolicy})
	denials := map[string]deny{
		"token_missing":      denyMissing,
		"token_expired":      denyExpired,
		"client_not_allowed": denyInvalid("client_not_allowed"),
		"token_use_mismatch": denyInvalid("token_use_mismatch"),
		"scope_missing":      denyForbidden("scope_missing", `Bearer error="insufficient_scope", scope="pets/read pets/admin"`),
	}
	routes := map[string]string{"/jwt/any": "jwt-any", "/jwt/scoped": "jwt-scoped", "/access": "access-any"}
	cases := f.env.JWTCases(t)
	for _, ep := range endpoints {
		for _, tc := range cases {
			t.Run(ep.name+"/"+tc.Name, func(t *testing.T) {
				var hs [][2]string
				if tc.Token != "" {
					hs = bearer(tc.Token)
				}
				a := f.do(t, ep.build("GET", tc.Path, hs))
				if tc.Want == "allowed" {
					want := allow{route: routes[tc.Path], empty: []string{"x-user-sub"}, remove: []string{"x-user-sub"}}
					if tc.Path == "/jwt/any" {
						want = allow{route: "jwt-any", set: map[string]string{"x-user-sub": subOf(t, tc.Token)}}
					}
					wantAllow(t, a, want)
					return
				}
				want, ok := denials[tc.Want]
				if !ok {
					t.Fatalf("no expected denial for %s", tc.Want)
				}
				wantDeny(t, a, want)
			})
		}
	}
}

// subOf reads the sub claim of a token this test minted.
func subOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact token")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(b, &c); err != nil || c.Sub == "" {
		t.Fatalf("payload has no sub: %v", err)
	}
	return c.Sub
}
