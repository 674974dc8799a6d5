package token_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// signedByA reports whether raw is h.p.s with s a valid RS256 signature of
// h.p by test key a, checked without the package under test.
func signedByA(tb testing.TB, raw string) bool {
	i := strings.LastIndexByte(raw, '.')
	if i < 0 {
		return false
	}
	sig, err := b64.Strict().DecodeString(raw[i+1:])
	if err != nil {
		return false
	}
	sum := sha256.Sum256([]byte(raw[:i]))
	return rsa.VerifyPKCS1v15(&testKey(tb, "a").PublicKey, crypto.SHA256, sum[:], sig) == nil
}

// checkVerifyResult holds the invariants of any Verify outcome.
func checkVerifyResult(t *testing.T, raw string, c *token.Claims, err error) {
	t.Helper()
	if err != nil {
		var re *reason.Error
		if !errors.As(err, &re) || re.Code == "" {
			t.Fatalf("error %v is not a *reason.Error with a code", err)
		}
		if re.Code == reason.Internal {
			t.Fatalf("internal error on fuzzed input: %v", err)
		}
		if c != nil {
			t.Fatalf("claims returned with an error")
		}
		assertNoTokenMaterial(t, err, raw)
		return
	}
	if !signedByA(t, raw) {
		t.Fatalf("accepted a token not signed by the pool key: %q", raw)
	}
	if err := token.CheckShape(raw); err != nil {
		t.Fatalf("accepted a token that fails CheckShape: %v", err)
	}
	if u := c.TokenUse(); u != "id" && u != "access" {
		t.Fatalf("accepted token_use %q", u)
	}
	if c.Issuer() != issA && c.Issuer() != issANew {
		t.Fatalf("accepted iss %q", c.Issuer())
	}
	if !c.Expiry().After(now) {
		t.Fatalf("accepted a token expiring at %v", c.Expiry())
	}
	exp, _ := c.Value("exp")
	if n, ok := exp.(json.Number); !ok {
		t.Fatalf("accepted exp %#v", exp)
	} else if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
		t.Fatalf("accepted exp %q", n)
	}
}

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, never
// fail with anything but a *reason.Error, and never accept a token that is
// not signed by pool A's key.
func FuzzVerify(f *testing.F) {
	good := goodAccess(f)
	f.Add(good)
	f.Add(signRS(f, testKey(f, "a"), "RS256", hdr(), claimsJSON("id", nil)))
	f.Add(signRS(f, testKey(f, "b"), "RS256", hdr(), claimsJSON("access", nil)))
	f.Add(signHS(`{"kid":"`+kidA+`","alg":"HS256"}`, claimsJSON("access", nil), nil))
	f.Add(good + ".")
	f.Add(" " + good)
	f.Add(strings.Repeat(".", 100))
	f.Add("")
	keys := newWorld(f)
	cfg := configA()
	v := token.NewVerifier(keys, func() time.Time { return now })
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(context.Background(), cfg, raw)
		checkVerifyResult(t, raw, c, err)
	})
}

// FuzzVerifySigned signs arbitrary header and payload text with pool A's
// key, so the fuzzer explores the JSON and claim rules behind the
// signature, and checks every accepted token against the rules.
func FuzzVerifySigned(f *testing.F) {
	f.Add(hdr(), claimsJSON("access", nil))
	f.Add(hdr(), claimsJSON("id", nil))
	f.Add(hdr(`"crit":["exp"]`), claimsJSON("access", nil))
	f.Add(`{"kid":"`+kidA+`","alg":"none","alg":"RS256"}`, claimsJSON("access", nil))
	f.Add(hdr(), claimsJSON("access", map[string]string{"exp": "1e10"}))
	f.Add(hdr(), claimsJSON("access", map[string]string{"exp": `"2000000000"`}))
	f.Add(hdr(), claimsJSON("id", map[string]string{"aud": `["x"]`}))
	f.Add(hdr(), `{"iss":"`+issA+`","exp":1800003600,"token_use":"access","exp":1}`)
	keys := newWorld(f)
	cfg := configA()
	cfg.ClientIDs = []string{client}
	v := token.NewVerifier(keys, func() time.Time { return now })
	key := testKey(f, "a")
	f.Fuzz(func(t *testing.T, header, payload string) {
		if len(header)+len(payload) > token.MaxTokenLen {
			return
		}
		raw := signRS(t, key, "RS256", header, payload)
		c, err := v.Verify(context.Background(), cfg, raw)
		checkVerifyResult(t, raw, c, err)
		if err != nil {
			return
		}
		// Accepted: the rules that need the client list.
		if c.ClientID() != client {
			t.Fatalf("accepted client %q", c.ClientID())
		}
		var h map[string]any
		if json.Unmarshal([]byte(header), &h) != nil || h["alg"] != "RS256" || h["kid"] != kidA {
			t.Fatalf("accepted header %q", header)
		}
		for _, name := range []string{"crit", "b64", "jwk", "jku", "x5u", "x5c", "zip", "enc", "cty"} {
			if _, ok := h[name]; ok {
				t.Fatalf("accepted header with %s: %q", name, header)
			}
		}
	})
}
