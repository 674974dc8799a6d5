package tlsfiles

import (
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/testpki"
)

// FuzzParseCAs: the client CA bundle is file input an operator (or a
// half-finished rotation) controls. Whatever the bytes, parseCAs must not
// panic, and a pool it returns must hold at least one CA.
func FuzzParseCAs(f *testing.F) {
	ca := testpki.NewCA(f, "ca")
	f.Add(ca.PEM)
	f.Add(append(append([]byte("# comment\n"), ca.PEM...), ca.PEM...))
	f.Add(ca.PEM[:len(ca.PEM)/2])
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		pool, err := parseCAs(data)
		if err == nil && (pool == nil || pool.Equal(nil)) {
			t.Fatal("no error and no CA")
		}
	})
}
