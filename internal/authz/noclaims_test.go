package authz_test

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
)

// A policy without any claimHeaders still allows, sets and removes nothing
// (the header lists are sized from the policy's claim header names, which
// may be none).
func TestAllowWithoutClaimHeaders(t *testing.T) {
	const doc = `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - name: pets
    match: { path: /pets }
    authorizer: users
    mode: identity-claims
`
	f := newFixture(t, doc, authz.Options{CacheSize: 10})
	d := f.decide(t, "GET", "/pets", bearer(f.env.ID(t, issuer.TokenOptions{})))
	if !d.Allowed {
		t.Fatalf("denied %s (%s), want allowed", d.Reason, d.Detail)
	}
	if len(d.SetHeaders) != 0 || len(d.RemoveHeaders) != 0 || len(d.RemoveQuery) != 0 {
		t.Fatalf("mutations %v %v %v, want none", d.SetHeaders, d.RemoveHeaders, d.RemoveQuery)
	}
}
