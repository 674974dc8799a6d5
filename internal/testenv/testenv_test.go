package testenv

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// The shared policy must compile and its keys load, or every test that
// uses it fails for the wrong reason.
func TestPolicyCompiles(t *testing.T) {
	e := New(t)
	s := e.Policy(t, Policy)
	Keys(t, s, jwks.Options{})
	if e.Hits() == 0 {
		t.Fatal("keys loaded without a JWKS request")
	}
}
