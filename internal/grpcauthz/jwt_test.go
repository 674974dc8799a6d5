package grpcauthz_test

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// jwtDenial is the answer Envoy gets for each denial of the jwt-mode table.
func jwtDenial(t *testing.T, code string) denial {
	t.Helper()
	switch reason.Code(code) {
	case reason.TokenMissing:
		return denyMissing(reason.TokenMissing)
	case reason.TokenExpired:
		return denyExpired
	case reason.ClientNotAllowed, reason.TokenUseMismatch:
		return denyInvalid(reason.Code(code))
	case reason.ScopeMissing:
		return denyForbidden(reason.ScopeMissing, `Bearer error="insufficient_scope", scope="pets/read pets/admin"`)
	}
	t.Fatalf("no expected denial for %s", code)
	return denial{}
}

// TestJWTModeCheck runs the jwt-mode table (API Gateway HTTP API's JWT
// authorizer: either token type, aud or client_id, scopes from the scope
// claim) through the gRPC Check, answers in full.
func TestJWTModeCheck(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: testenv.JWTPolicy})
	var tests []checkCase
	for _, tc := range f.env.JWTCases(t) {
		c := checkCase{name: tc.Name, call: call{path: tc.Path}, allow: tc.Want == string(reason.Allowed)}
		if tc.Token != "" {
			c.call.headers = bearer(tc.Token)
		}
		if !c.allow {
			c.want = jwtDenial(t, tc.Want)
		}
		tests = append(tests, c)
	}
	runCheckCases(t, f, tests)

	// An allow on a jwt route sets its claim headers and carries the
	// token's type in the metadata.
	tc := f.env.JWTCases(t)[0]
	resp := f.check(t, call{path: tc.Path, headers: bearer(tc.Token)}.request())
	ok := wantAllowed(t, resp)
	if got := headerOptions(t, ok.GetHeaders())["x-user-sub"]; got != "sub-id" {
		t.Errorf("x-user-sub = %q, want sub-id", got)
	}
	if got := resp.GetDynamicMetadata().GetFields()["token_use"].GetStringValue(); got != "id" {
		t.Errorf("metadata token_use = %q, want id", got)
	}
}
