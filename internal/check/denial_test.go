package check_test

import (
	"slices"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Denial header names are spelled as RFC 6750 (WWW-Authenticate), the
// service's documentation (x-extauthz-reason) and API Gateway
// (Content-Type, x-amzn-ErrorType) spell them, so a client matching names
// exactly finds them. Envoy
// lower-cases them itself on the way to the client.
func TestDenialHeaderSpelling(t *testing.T) {
	tests := []struct {
		code reason.Code
		want []string
	}{
		{reason.TokenMissing, []string{"Content-Type", "x-amzn-ErrorType", "WWW-Authenticate", "x-extauthz-reason"}},
		{reason.SignatureInvalid, []string{"Content-Type", "x-amzn-ErrorType", "WWW-Authenticate", "x-extauthz-reason"}},
		{reason.ScopeMissing, []string{"Content-Type", "x-amzn-ErrorType", "WWW-Authenticate", "x-extauthz-reason"}},
		{reason.RouteNotFound, []string{"Content-Type", "x-amzn-ErrorType", "x-extauthz-reason"}},
		{reason.JWKSUnavailable, []string{"Content-Type", "x-amzn-ErrorType", "x-extauthz-reason"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			d := check.DenialFor(nil, tt.code, nil)
			var names []string
			for _, h := range d.Headers {
				names = append(names, h.Name)
			}
			if !slices.Equal(names, tt.want) {
				t.Fatalf("header names = %q, want %q", names, tt.want)
			}
		})
	}
}

// A code missing from the table fails closed: 503, never a success status.
func TestUnknownReasonFailsClosed(t *testing.T) {
	d := check.DenialFor(nil, reason.Code("no_such_code"), nil)
	if d.Status != 503 || d.Body != `{"message":"Service Unavailable"}` {
		t.Fatalf("unknown code answered %d %s", d.Status, d.Body)
	}
	for _, c := range reason.All() {
		switch c {
		case reason.Allowed, reason.NoAuth, reason.DefaultAllow:
			continue
		}
		if d := check.DenialFor(nil, c, nil); d.Status < 400 {
			t.Errorf("%s: status %d", c, d.Status)
		}
	}
}

// The insufficient_scope challenge names the route's scopes, and has no
// scope parameter at all (not an empty one) for a route without scopes.
func TestDenialScopeChallenge(t *testing.T) {
	snap, err := policy.Parse([]byte(`
apiVersion: cognito-extauthz/v1
authorizers:
  a:
    userPools: [{userPoolId: us-east-1_AAAAAAAAA}]
routes:
  - { name: scoped, match: { path: /s }, authorizer: a, mode: access-scopes, scopes: [a/b, c/d] }
  - { name: any, match: { path: /a }, authorizer: a, mode: access-scopes }
`), "p.yaml", policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		route, want string
	}{
		{"scoped", `Bearer error="insufficient_scope", scope="a/b c/d"`},
		{"any", `Bearer error="insufficient_scope"`},
	}
	for _, tt := range tests {
		r, ok := snap.RouteByName(tt.route)
		if !ok {
			t.Fatalf("no route %s", tt.route)
		}
		var got string
		for _, h := range check.DenialFor(snap, reason.ScopeMissing, r).Headers {
			if h.Name == "WWW-Authenticate" {
				got = h.Value
			}
		}
		if got != tt.want {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tt.route, got, tt.want)
		}
	}
}
