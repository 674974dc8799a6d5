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
	if len(rsaAlgs) != len(names) {
		t.Fatalf("rsaAlgs has %d entries, alg.RSA %d", len(rsaAlgs), len(names))
	}
	for _, n := range names {
		a, ok := rsaAlgs[n]
		if !ok || a.String() != n {
			t.Errorf("algorithm %s: verifier table entry %v, %v", n, a, ok)
		}
	}
}
