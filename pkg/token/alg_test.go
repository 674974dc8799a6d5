package token

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/token/alg"
)

// TestEveryAcceptedAlgorithmVerifies pins that the verifier's table covers
// the shared list exactly: a name in alg.RSA without a jwx verifier would
// be refused at run time while the policy accepts it.
func TestEveryAcceptedAlgorithmVerifies(t *testing.T) {
	names := alg.RSA()
	if len(rsaVerifiers) != len(names) {
		t.Fatalf("rsaVerifiers has %d entries, alg.RSA %d", len(rsaVerifiers), len(names))
	}
	for _, n := range names {
		if v, ok := rsaVerifiers[n]; !ok || v == nil {
			t.Errorf("algorithm %s: no verifier", n)
		}
	}
}
