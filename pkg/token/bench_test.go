package token_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// BenchmarkVerify is one fresh-token verification of a Cognito-sized access
// token: the whole of Verify, as the hot path runs it on a token cache miss.
// Compare with BenchmarkRawRS256, the bare cryptographic floor.
func BenchmarkVerify(b *testing.B) {
	raw := goodAccess(b)
	v := token.NewVerifier(newWorld(b), func() time.Time { return now })
	cfg := configA()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, cfg, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRawRS256 is one SHA-256 of the same signing input plus one
// crypto/rsa.VerifyPKCS1v15 with the same 2048-bit key.
func BenchmarkRawRS256(b *testing.B) {
	raw := goodAccess(b)
	i := strings.LastIndexByte(raw, '.')
	input := []byte(raw[:i])
	sig, err := b64.DecodeString(raw[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := &testKey(b, "a").PublicKey
	b.ReportAllocs()
	for b.Loop() {
		sum := sha256.Sum256(input)
		if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, sum[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRejects measures the rejections an attacker can buy
// without a pool signature: none of them reaches RSA.
func BenchmarkVerifyRejects(b *testing.B) {
	cases := []struct{ name, raw string }{
		{"dots-1MiB", strings.Repeat(".", 1<<20)},
		{"malformed", goodAccess(b) + "="},
		{"alg-none", signRS(b, testKey(b, "a"), "RS256", `{"kid":"`+kidA+`","alg":"none"}`, claimsJSON("access", nil))},
		{"issuer-unknown", signRS(b, testKey(b, "a"), "RS256", hdr(), claimsJSON("access", map[string]string{"iss": `"https://evil.example"`}))},
	}
	v := token.NewVerifier(newWorld(b), func() time.Time { return now })
	cfg := configA()
	ctx := context.Background()
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, cfg, bc.raw); err == nil {
					b.Fatal("accepted")
				}
			}
		})
	}
}
