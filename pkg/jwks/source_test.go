package jwks

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math/big"
	"testing"
)

// TestParsedKeyVerifiesPKCS1v15 checks that a key admitted from a JWKS is
// prepared for RS256 and that the prepared key, a Key built as a literal
// (prepared per call) and crypto/rsa agree on a good and a bad signature.
func TestParsedKeyVerifiesPKCS1v15(t *testing.T) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	n := base64.RawURLEncoding.EncodeToString(priv.N.Bytes())
	e := base64.RawURLEncoding.EncodeToString(big.NewInt(int64(priv.E)).Bytes())
	set, _, err := parseSet([]byte(fmt.Sprintf(`{"keys":[{"kty":"RSA","kid":"k1","alg":"RS256","use":"sig","n":%q,"e":%q}]}`, n, e)))
	if err != nil {
		t.Fatalf("parseSet: %v", err)
	}
	parsed := set.keys["k1"]
	if parsed == nil || parsed.pkcs1 == nil {
		t.Fatal("the admitted key is not prepared for PKCS #1 v1.5")
	}
	literal := &Key{Kid: "k1", Alg: "RS256", Public: &priv.PublicKey}
	digest := sha256.Sum256([]byte("header.payload"))
	good, err := rsa.SignPKCS1v15(rand.Reader, priv, crypto.SHA256, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)/2] ^= 0x10
	for name, k := range map[string]*Key{"parsed": parsed, "literal": literal} {
		if err := k.VerifyPKCS1v15(crypto.SHA256, digest[:], good); err != nil {
			t.Errorf("%s key: a good signature: %v", name, err)
		}
		if err := k.VerifyPKCS1v15(crypto.SHA256, digest[:], bad); err == nil {
			t.Errorf("%s key: a corrupted signature verifies", name)
		}
	}
	if rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, digest[:], bad) == nil {
		t.Fatal("crypto/rsa verifies the corrupted signature: the test is wrong")
	}
}

func TestNewKeyRefusesAKeyItCannotPrepare(t *testing.T) {
	for name, pub := range map[string]*rsa.PublicKey{
		"nil":           nil,
		"even modulus":  {N: big.NewInt(1 << 20), E: 65537},
		"even exponent": {N: new(big.Int).Lsh(big.NewInt(1), 2047).Add(new(big.Int).Lsh(big.NewInt(1), 2047), big.NewInt(1)), E: 4},
	} {
		if _, err := NewKey("k", "RS256", pub); err == nil {
			t.Errorf("%s: NewKey accepted it", name)
		}
	}
	// A literal Key with such a public key fails closed on every call.
	k := &Key{Kid: "k", Public: &rsa.PublicKey{N: big.NewInt(1 << 20), E: 65537}}
	if err := k.VerifyPKCS1v15(crypto.SHA256, make([]byte, 32), make([]byte, 3)); err == nil {
		t.Error("a literal Key with an even modulus verified a signature")
	}
}
