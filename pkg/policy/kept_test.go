package policy

import (
	"slices"
	"testing"
)

// TestKeptClaims: an authorizer keeps, in a cached token, the claims its
// routes read (claim headers and claim requirements, sorted, once each),
// and cognito:groups only when one of its routes requires groups.
func TestKeptClaims(t *testing.T) {
	const doc = `
apiVersion: cognito-extauthz/v1
authorizers:
  grouped:
    userPools: [{userPoolId: us-east-1_AAAAAAAAA}]
  plain:
    userPools: [{userPoolId: us-east-1_BBBBBBBBB}]
routes:
  - name: admin
    match: { path: /admin }
    authorizer: grouped
    mode: identity-claims
    groups: [admins]
  - name: tenant
    match: { path: /tenant }
    authorizer: grouped
    mode: identity-claims
    claims: { "custom:tenant": acme }
    claimHeaders: { x-tenant: "custom:tenant", x-email: email }
  - name: profile
    match: { path: /profile }
    authorizer: plain
    mode: identity-claims
    claimHeaders: { x-email: email }
    claims: { email_verified: "true" }
`
	s, err := Parse([]byte(doc), "kept.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kept   []string
		groups bool
	}{
		"grouped": {[]string{"custom:tenant", "email"}, true},
		"plain":   {[]string{"email", "email_verified"}, false},
	}
	azs := s.Authorizers()
	if len(azs) != len(want) {
		t.Fatalf("%d authorizers, want %d", len(azs), len(want))
	}
	for _, az := range azs {
		w := want[az.Name]
		if !slices.Equal(az.Kept, w.kept) || az.KeepGroups != w.groups {
			t.Errorf("%s: Kept %q, KeepGroups %v; want %q, %v", az.Name, az.Kept, az.KeepGroups, w.kept, w.groups)
		}
	}
}
