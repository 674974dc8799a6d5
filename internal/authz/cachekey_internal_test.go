package authz

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// The cache key is SHA-256 over the authorizer's fingerprint and the
// token's SHA-256, for tokens of every length, so that nothing but the
// exact token under the exact authorizer finds an entry.
func TestCacheKey(t *testing.T) {
	az := &policy.Authorizer{Fingerprint: sha256.Sum256([]byte("authorizer"))}
	other := &policy.Authorizer{Fingerprint: sha256.Sum256([]byte("other"))}
	for _, n := range []int{0, 1, 63, 64, 65, 1000, 20000} {
		raw := strings.Repeat("t", n)
		inner := sha256.Sum256([]byte(raw))
		want := sha256.Sum256(append(az.Fingerprint[:], inner[:]...))
		if got := cacheKey(az, raw); got != want {
			t.Errorf("token of %d bytes: key %x, want SHA-256 of fingerprint and token digest %x", n, got, want)
		}
		if n > 0 && cacheKey(az, raw[:n-1]+"u") == cacheKey(az, raw) {
			t.Errorf("token of %d bytes: another token has the same key", n)
		}
		if cacheKey(other, raw) == cacheKey(az, raw) {
			t.Errorf("token of %d bytes: another authorizer has the same key", n)
		}
	}
}
