package token_test

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// Fixed test world: pool A (configured), pool B (another pool that happens
// to use the same kid), and an attacker key that no JWKS holds.
const (
	issA    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAAAAAAAA"
	issANew = "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AAAAAAAAA"
	issB    = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BBBBBBBBB"
	kidA    = "1+JqYTQhRMGK3F2jsmkrItcsx0AFCN0hSH6gGeWUuL8="
	client  = "4tq0example"
)

var (
	srcA = jwks.Source{URL: issA + "/.well-known/jwks.json"}
	srcB = jwks.Source{URL: issB + "/.well-known/jwks.json"}

	// now is the fixed clock of every test.
	now = time.Unix(1_800_000_000, 0)
)

var loadKeys = sync.OnceValues(func() (map[string]*rsa.PrivateKey, error) {
	keys := map[string]*rsa.PrivateKey{}
	for _, name := range []string{"rsa2048-a", "rsa2048-b", "rsa1024"} {
		b, err := os.ReadFile(filepath.Join("testdata", name+".pem"))
		if err != nil {
			return nil, err
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("%s: no PEM block", name)
		}
		k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		keys[name] = k.(*rsa.PrivateKey)
	}
	return keys, nil
})

// testKey returns one of the fixed RSA keys in testdata: "a" (pool A),
// "b" (pool B, also the attacker's key) or "weak" (1024 bits).
func testKey(tb testing.TB, name string) *rsa.PrivateKey {
	tb.Helper()
	keys, err := loadKeys()
	if err != nil {
		tb.Fatalf("load test keys: %v", err)
	}
	file := map[string]string{"a": "rsa2048-a", "b": "rsa2048-b", "weak": "rsa1024"}[name]
	k, ok := keys[file]
	if !ok {
		tb.Fatalf("no test key %q", name)
	}
	return k
}

// fakeKeys is a hand-written token.Keys: a fixed table per source, a call
// counter, and an optional forced error.
type fakeKeys struct {
	mu    sync.Mutex
	sets  map[jwks.Source]map[string]*jwks.Key
	err   error
	calls int
}

func (f *fakeKeys) Key(ctx context.Context, src jwks.Source, kid string) (*jwks.Key, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	set, ok := f.sets[src]
	if !ok {
		return nil, jwks.ErrUnavailable
	}
	k, ok := set[kid]
	if !ok {
		return nil, jwks.ErrKidUnknown
	}
	return k, nil
}

func (f *fakeKeys) Calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// newWorld returns keys where pool A's JWKS holds key a under kidA and pool
// B's JWKS holds key b under the same kid.
func newWorld(tb testing.TB) *fakeKeys {
	return &fakeKeys{sets: map[jwks.Source]map[string]*jwks.Key{
		srcA: {kidA: prepKey(tb, kidA, "RS256", testKey(tb, "a"))},
		srcB: {kidA: prepKey(tb, kidA, "RS256", testKey(tb, "b"))},
	}}
}

// prepKey is the key as a parsed JWKS holds it: prepared for RS256/384/512.
func prepKey(tb testing.TB, kid, alg string, priv *rsa.PrivateKey) *jwks.Key {
	tb.Helper()
	k, err := jwks.NewKey(kid, alg, &priv.PublicKey)
	if err != nil {
		tb.Fatalf("jwks.NewKey: %v", err)
	}
	return k
}

// configA accepts pool A in both issuer forms.
func configA() *token.Config {
	return &token.Config{Pools: []token.Pool{{
		ID:      "us-east-1_AAAAAAAAA",
		Issuers: []string{issA, issANew},
		Keys:    srcA,
	}}}
}

var b64 = base64.RawURLEncoding

// signRS signs the raw header and payload JSON text, exactly as given, with
// key and RSA alg (RS256 when alg is ""). Raw text lets a test send what a
// map cannot express: duplicate members, odd number literals, escapes.
func signRS(tb testing.TB, key *rsa.PrivateKey, alg, header, payload string) string {
	tb.Helper()
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	return input + "." + b64.EncodeToString(rsaSig(tb, key, alg, input))
}

func rsaSig(tb testing.TB, key *rsa.PrivateKey, alg, input string) []byte {
	tb.Helper()
	hash := map[string]crypto.Hash{"": crypto.SHA256, "RS256": crypto.SHA256, "RS384": crypto.SHA384, "RS512": crypto.SHA512,
		"PS256": crypto.SHA256, "PS384": crypto.SHA384, "PS512": crypto.SHA512}[alg]
	h := hash.New()
	h.Write([]byte(input))
	var sig []byte
	var err error
	if strings.HasPrefix(alg, "PS") {
		sig, err = rsa.SignPSS(rand.Reader, key, hash, h.Sum(nil), &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	} else {
		sig, err = rsa.SignPKCS1v15(nil, key, hash, h.Sum(nil))
	}
	if err != nil {
		tb.Fatalf("sign: %v", err)
	}
	return sig
}

// signHS signs with HMAC-SHA256 under secret.
func signHS(header, payload string, secret []byte) string {
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(payload))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64.EncodeToString(m.Sum(nil))
}

// hdr returns an RS256 header for kidA with extra members appended as raw
// JSON text (e.g. `"typ":"JWT"`).
func hdr(extra ...string) string {
	return `{"kid":"` + kidA + `","alg":"RS256"` + joinExtra(extra) + `}`
}

func joinExtra(extra []string) string {
	if len(extra) == 0 {
		return ""
	}
	return "," + strings.Join(extra, ",")
}

// claimsJSON returns the payload of a valid access token for pool A as JSON
// text, with the named members replaced (raw JSON text values) or, for an
// empty value, removed. Member order is fixed, so a test can reason about
// the bytes.
func claimsJSON(use string, override map[string]string) string {
	type member struct{ k, v string }
	ms := []member{
		{"sub", `"aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"`},
		{"iss", `"` + issA + `"`},
		{"token_use", `"` + use + `"`},
		{"auth_time", fmt.Sprint(now.Unix() - 60)},
		{"iat", fmt.Sprint(now.Unix() - 60)},
		{"exp", fmt.Sprint(now.Unix() + 3600)},
		{"jti", `"jti-1"`},
		{"origin_jti", `"ojti-1"`},
	}
	if use == "id" {
		ms = append(ms, member{"aud", `"` + client + `"`}, member{"cognito:username", `"alice"`},
			member{"email", `"alice@example.com"`}, member{"email_verified", `true`})
	} else {
		ms = append(ms, member{"client_id", `"` + client + `"`}, member{"username", `"alice"`},
			member{"scope", `"pets/read pets/write"`}, member{"version", `2`})
	}
	ms = append(ms, member{"cognito:groups", `["admins","users"]`})
	var b strings.Builder
	b.WriteByte('{')
	seen := map[string]bool{}
	first := true
	add := func(k, v string) {
		if v == "" {
			return
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(`"` + k + `":` + v)
	}
	for _, m := range ms {
		seen[m.k] = true
		if v, ok := override[m.k]; ok {
			add(m.k, v)
			continue
		}
		add(m.k, m.v)
	}
	// New members, in a stable order.
	var extra []string
	for k := range override {
		if !seen[k] {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		add(k, override[k])
	}
	b.WriteByte('}')
	return b.String()
}

// goodAccess is a valid access token for pool A signed by key a.
func goodAccess(tb testing.TB) string {
	return signRS(tb, testKey(tb, "a"), "RS256", hdr(), claimsJSON("access", nil))
}

// codeOf asserts err is a *reason.Error and returns its code ("" for nil).
func codeOf(tb testing.TB, err error) reason.Code {
	tb.Helper()
	if err == nil {
		return ""
	}
	var re *reason.Error
	if !errors.As(err, &re) {
		tb.Fatalf("error %v (%T) is not a *reason.Error", err, err)
	}
	return re.Code
}

// assertNoTokenMaterial fails if err's text contains any part of raw that is
// long enough to be a token segment or signature fragment.
func assertNoTokenMaterial(tb testing.TB, err error, raw string) {
	tb.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	for _, seg := range strings.FieldsFunc(raw, func(r rune) bool { return r == '.' || r == ' ' || r == '\n' || r == '\r' }) {
		for i := 0; i+24 <= len(seg); i += 12 {
			if strings.Contains(msg, seg[i:i+24]) {
				tb.Fatalf("error text carries token material: %q", msg)
			}
		}
	}
}

// jwkJSON renders key as a public JWK, as an attacker would copy it from the
// pool's JWKS.
func jwkJSON(pub *rsa.PublicKey, kid string) string {
	b, _ := json.Marshal(map[string]string{
		"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
		"n": b64.EncodeToString(pub.N.Bytes()),
		"e": b64.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	})
	return string(b)
}
