package authz

import (
	"crypto/sha256"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// The cache key is SHA-256 over the authorizer's fingerprint and the
// token, whether the token fits the stack buffer or not, so that a long
// token and a short one are keyed alike and nothing but the exact token
// under the exact authorizer finds an entry.
func TestCacheKey(t *testing.T) {
	az := &policy.Authorizer{Fingerprint: sha256.Sum256([]byte("authorizer"))}
	other := &policy.Authorizer{Fingerprint: sha256.Sum256([]byte("other"))}
	fits := cacheKeyBuf - len(az.Fingerprint)
	for _, n := range []int{0, 1, 1000, fits - 1, fits, fits + 1, 3 * cacheKeyBuf} {
		raw := strings.Repeat("t", n)
		want := sha256.Sum256(append(az.Fingerprint[:], raw...))
		if got := cacheKey(az, raw); got != want {
			t.Errorf("token of %d bytes: key %x, want SHA-256 of fingerprint and token %x", n, got, want)
		}
		if n > 0 && cacheKey(az, raw[:n-1]+"u") == cacheKey(az, raw) {
			t.Errorf("token of %d bytes: another token has the same key", n)
		}
		if cacheKey(other, raw) == cacheKey(az, raw) {
			t.Errorf("token of %d bytes: another authorizer has the same key", n)
		}
	}
}
