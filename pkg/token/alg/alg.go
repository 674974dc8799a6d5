// Package alg is the one list of JWS algorithms the service accepts: the
// RSA signature algorithms a Cognito user pool's keys can verify. Token
// verification owns it; the key set (a key's alg member) and the policy
// (an authorizer's algorithms) read it from here, so the three never
// disagree. It imports nothing, so any package may use it.
package alg

import (
	"fmt"
	"slices"
	"strings"
)

// Default is the algorithm accepted when an authorizer names none:
// Cognito signs every token with RS256.
const Default = "RS256"

// rsa are the algorithms an RSA key verifies. none, every HMAC algorithm
// (the RS256/HS256 key-confusion attack) and every non-RSA algorithm are
// refused whatever the policy says.
var rsa = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

// RSA returns the accepted algorithm names.
func RSA() []string { return slices.Clone(rsa) }

// IsRSA reports whether name, exactly as written (JOSE names are
// case-sensitive), is an accepted algorithm.
func IsRSA(name string) bool { return slices.Contains(rsa, name) }

// Check says why name may not be configured as an authorizer's algorithm,
// or returns nil.
func Check(name string) error {
	if IsRSA(name) {
		return nil
	}
	up := strings.ToUpper(name)
	want := strings.Join(rsa, " ")
	switch {
	case up == "NONE":
		return fmt.Errorf("algorithm %q means an unsigned token: never allowed", name)
	case strings.HasPrefix(up, "HS"):
		return fmt.Errorf("algorithm %q is HMAC: it would turn the pool's public key into a shared secret anyone can sign with; never allowed", name)
	case strings.HasPrefix(up, "ES"), up == "EDDSA":
		return fmt.Errorf("algorithm %q: Cognito signs with RSA keys only; want one of %s", name, want)
	case IsRSA(up):
		return fmt.Errorf("algorithm %q: write it upper case, %s", name, up)
	}
	return fmt.Errorf("unknown algorithm %q: want one of %s", name, want)
}
