package issuer_test

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

const (
	poolID = "us-east-1_AbCdEfGhI"
	iss    = "https://cognito-idp.us-east-1.amazonaws.com/" + poolID
)

var b64 = base64.RawURLEncoding

var shared = sync.OnceValues(func() (*issuer.Issuer, error) { return issuer.New(iss, poolID) })

func sharedIssuer(tb testing.TB) *issuer.Issuer {
	tb.Helper()
	i, err := shared()
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return i
}

type jwk struct {
	Kty, Alg, Use, Kid, N, E string
}

func parseJWKS(tb testing.TB, doc []byte) []jwk {
	tb.Helper()
	var set struct {
		Keys []jwk `json:"keys"`
	}
	dec := json.NewDecoder(strings.NewReader(string(doc)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&set); err != nil {
		tb.Fatalf("decode JWKS %s: %v", doc, err)
	}
	return set.Keys
}

func publicKey(tb testing.TB, k jwk) *rsa.PublicKey {
	tb.Helper()
	n, err := b64.Strict().DecodeString(k.N)
	if err != nil {
		tb.Fatalf("n: %v", err)
	}
	e, err := b64.Strict().DecodeString(k.E)
	if err != nil {
		tb.Fatalf("e: %v", err)
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
}

// parts decodes a compact token's header and payload.
func parts(tb testing.TB, raw string) (header, claims map[string]any) {
	tb.Helper()
	if err := token.CheckShape(raw); err != nil {
		tb.Fatalf("token is not canonical compact JWS: %v", err)
	}
	p := strings.Split(raw, ".")
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := b64.DecodeString(p[i])
		if err != nil {
			tb.Fatal(err)
		}
		d := json.NewDecoder(strings.NewReader(string(b)))
		d.UseNumber()
		if err := d.Decode(dst); err != nil {
			tb.Fatal(err)
		}
	}
	return header, claims
}

func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func TestNewRejectsEmptyArguments(t *testing.T) {
	for _, tc := range []struct{ name, iss, pool string }{
		{"empty issuer", "", poolID},
		{"empty pool", iss, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := issuer.New(tc.iss, tc.pool); err == nil {
				t.Fatal("New accepted an empty argument")
			}
		})
	}
}

func TestJWKS(t *testing.T) {
	i := sharedIssuer(t)
	if i.URL() != iss {
		t.Fatalf("URL() = %q", i.URL())
	}
	keys := parseJWKS(t, i.JWKS())
	if len(keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2", len(keys))
	}
	if keys[0].Kid == keys[1].Kid {
		t.Fatal("ID and access keys share a kid")
	}
	for _, k := range keys {
		if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" || k.E != "AQAB" || k.Kid == "" {
			t.Fatalf("key %+v is not Cognito-shaped", k)
		}
		if bits := publicKey(t, k).N.BitLen(); bits != 2048 {
			t.Fatalf("modulus is %d bits", bits)
		}
	}
	// The caller owns the returned slice.
	doc := i.JWKS()
	doc[0] = 'X'
	if i.JWKS()[0] != '{' {
		t.Fatal("JWKS() returned the issuer's own buffer")
	}
}

// PublicKeys are the keys the JWKS publishes, in its order.
func TestPublicKeys(t *testing.T) {
	i := sharedIssuer(t)
	jwks := parseJWKS(t, i.JWKS())
	pubs := i.PublicKeys()
	if len(pubs) != len(jwks) {
		t.Fatalf("%d public keys, %d in the JWKS", len(pubs), len(jwks))
	}
	for n, k := range jwks {
		if pubs[n].Kid != k.Kid || !pubs[n].Key.Equal(publicKey(t, k)) {
			t.Fatalf("key %d: %s differs from the JWKS's %s", n, pubs[n].Kid, k.Kid)
		}
	}
}

func TestServeHTTP(t *testing.T) {
	i := sharedIssuer(t)
	srv := httptest.NewServer(i)
	defer srv.Close()
	cases := []struct {
		method, path string
		status       int
		body         bool
	}{
		{http.MethodGet, "/" + poolID + "/.well-known/jwks.json", http.StatusOK, true},
		{http.MethodGet, "/.well-known/jwks.json", http.StatusOK, true},
		{http.MethodHead, "/" + poolID + "/.well-known/jwks.json", http.StatusOK, false},
		{http.MethodPost, "/" + poolID + "/.well-known/jwks.json", http.StatusNotFound, false},
		{http.MethodGet, "/" + poolID + "/.well-known/openid-configuration", http.StatusNotFound, false},
		{http.MethodGet, "/" + poolID + "/.well-known/jwks.json/x", http.StatusNotFound, false},
		{http.MethodGet, "/", http.StatusNotFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != http.StatusOK {
				return
			}
			if got := resp.Header.Get("Cache-Control"); got != "max-age=3600" {
				t.Fatalf("Cache-Control = %q", got)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Fatalf("Content-Type = %q", got)
			}
			if tc.body && string(body) != string(i.JWKS()) {
				t.Fatalf("body = %s, want the JWKS", body)
			}
			if !tc.body && len(body) != 0 {
				t.Fatalf("HEAD returned a body")
			}
		})
	}
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

func TestTokenShapes(t *testing.T) {
	i := sharedIssuer(t)
	keys := parseJWKS(t, i.JWKS())
	idKid, accessKid := keys[0].Kid, keys[1].Kid
	at := time.Unix(1_800_000_000, 0)
	n := func(v int64) json.Number { return json.Number(big.NewInt(v).String()) }

	t.Run("ID token", func(t *testing.T) {
		raw, err := i.IDToken(issuer.TokenOptions{Subject: "s-1", Username: "alice", ClientID: "cid", Email: "a@example.com", Groups: []string{"g1", "g2"}, IssuedAt: at, TTL: 5 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		h, c := parts(t, raw)
		if !reflect.DeepEqual(h, map[string]any{"kid": idKid, "alg": "RS256"}) {
			t.Fatalf("header = %v", h)
		}
		wantKeys := []string{"aud", "auth_time", "cognito:groups", "cognito:username", "email", "email_verified", "event_id", "exp", "iat", "iss", "jti", "origin_jti", "sub", "token_use"}
		if got := keysOf(c); !slices.Equal(got, wantKeys) {
			t.Fatalf("claims %v, want %v", got, wantKeys)
		}
		want := map[string]any{"sub": "s-1", "aud": "cid", "cognito:username": "alice", "email": "a@example.com", "email_verified": true,
			"token_use": "id", "iss": iss, "auth_time": n(at.Unix()), "iat": n(at.Unix()), "exp": n(at.Unix() + 300), "cognito:groups": []any{"g1", "g2"}}
		for k, v := range want {
			if !reflect.DeepEqual(c[k], v) {
				t.Fatalf("%s = %#v, want %#v", k, c[k], v)
			}
		}
		for _, k := range []string{"jti", "origin_jti", "event_id"} {
			if s, _ := c[k].(string); !uuidRE.MatchString(s) {
				t.Fatalf("%s = %#v, want a UUID", k, c[k])
			}
		}
	})
	t.Run("access token", func(t *testing.T) {
		raw, err := i.AccessToken(issuer.TokenOptions{Subject: "s-2", Username: "bob", ClientID: "cid", Scopes: []string{"pets/read", "openid"}, IssuedAt: at})
		if err != nil {
			t.Fatal(err)
		}
		h, c := parts(t, raw)
		if !reflect.DeepEqual(h, map[string]any{"kid": accessKid, "alg": "RS256"}) {
			t.Fatalf("header = %v", h)
		}
		wantKeys := []string{"auth_time", "client_id", "event_id", "exp", "iat", "iss", "jti", "origin_jti", "scope", "sub", "token_use", "username", "version"}
		if got := keysOf(c); !slices.Equal(got, wantKeys) {
			t.Fatalf("claims %v, want %v", got, wantKeys)
		}
		want := map[string]any{"sub": "s-2", "client_id": "cid", "username": "bob", "scope": "pets/read openid", "version": n(2),
			"token_use": "access", "iss": iss, "iat": n(at.Unix()), "exp": n(at.Unix() + 3600)}
		for k, v := range want {
			if !reflect.DeepEqual(c[k], v) {
				t.Fatalf("%s = %#v, want %#v", k, c[k], v)
			}
		}
	})
	t.Run("defaults", func(t *testing.T) {
		before := time.Now().Unix()
		raw, err := i.AccessToken(issuer.TokenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		after := time.Now().Unix()
		_, c := parts(t, raw)
		sub, _ := c["sub"].(string)
		if !uuidRE.MatchString(sub) || c["username"] != sub || c["client_id"] != issuer.DefaultClientID {
			t.Fatalf("defaults: sub %v username %v client_id %v", c["sub"], c["username"], c["client_id"])
		}
		if _, ok := c["scope"]; ok {
			t.Fatal("scope present without Scopes")
		}
		if _, ok := c["cognito:groups"]; ok {
			t.Fatal("cognito:groups present without Groups")
		}
		iat, _ := c["iat"].(json.Number).Int64()
		exp, _ := c["exp"].(json.Number).Int64()
		if iat < before || iat > after || exp-iat != 3600 {
			t.Fatalf("iat %d exp %d, want iat in [%d,%d] and a 1h lifetime", iat, exp, before, after)
		}
		raw2, err := i.AccessToken(issuer.TokenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, c2 := parts(t, raw2); c2["sub"] == sub || c2["jti"] == c["jti"] {
			t.Fatal("two default tokens share sub or jti")
		}
	})
	t.Run("overrides", func(t *testing.T) {
		raw, err := i.IDToken(issuer.TokenOptions{
			IssuedAt: at, TTL: -time.Minute,
			Claims: map[string]any{"email_verified": nil, "custom:tenant": "acme", "aud": []string{"x", "y"}, "event_id": nil},
			Header: map[string]any{"typ": "JWT", "kid": "not-a-kid", "alg": nil},
			Email:  "a@example.com",
		})
		if err != nil {
			t.Fatal(err)
		}
		h, c := parts(t, raw)
		if !reflect.DeepEqual(h, map[string]any{"kid": "not-a-kid", "typ": "JWT"}) {
			t.Fatalf("header = %v", h)
		}
		if _, ok := c["email_verified"]; ok {
			t.Fatal("a nil claim override did not delete email_verified")
		}
		if _, ok := c["event_id"]; ok {
			t.Fatal("a nil claim override did not delete event_id")
		}
		if c["custom:tenant"] != "acme" || !reflect.DeepEqual(c["aud"], []any{"x", "y"}) || c["exp"] != n(at.Unix()-60) {
			t.Fatalf("claims = %v", c)
		}
	})
}

// verifySig checks raw's signature with pub under alg, independently of
// both packages.
func verifySig(raw string, pub *rsa.PublicKey, alg string) error {
	i := strings.LastIndexByte(raw, '.')
	sig, err := b64.DecodeString(raw[i+1:])
	if err != nil {
		return err
	}
	var h crypto.Hash
	var sum []byte
	switch alg[2:] {
	case "256":
		s := sha256.Sum256([]byte(raw[:i]))
		h, sum = crypto.SHA256, s[:]
	case "512":
		s := sha512.Sum512([]byte(raw[:i]))
		h, sum = crypto.SHA512, s[:]
	}
	if alg[0] == 'P' {
		return rsa.VerifyPSS(pub, h, sum, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.VerifyPKCS1v15(pub, h, sum, sig)
}

func TestSign(t *testing.T) {
	i := sharedIssuer(t)
	keys := parseJWKS(t, i.JWKS())
	idPub, accessPub := publicKey(t, keys[0]), publicKey(t, keys[1])
	claims := map[string]any{"sub": "x", "n": 1}
	cases := []struct {
		name    string
		header  map[string]any
		pub     *rsa.PublicKey
		sigAlg  string
		wantHdr map[string]any
	}{
		{"header used exactly", map[string]any{"alg": "RS256"}, accessPub, "RS256", map[string]any{"alg": "RS256"}},
		{"alg none still RSA-signed", map[string]any{"alg": "none", "kid": "k"}, accessPub, "RS256", map[string]any{"alg": "none", "kid": "k"}},
		{"alg HS256 still RSA-signed", map[string]any{"alg": "HS256"}, accessPub, "RS256", map[string]any{"alg": "HS256"}},
		{"PS256", map[string]any{"alg": "PS256"}, accessPub, "PS256", map[string]any{"alg": "PS256"}},
		{"RS512", map[string]any{"alg": "RS512"}, accessPub, "RS512", map[string]any{"alg": "RS512"}},
		{"kid selects the ID key", map[string]any{"alg": "RS256", "kid": keys[0].Kid}, idPub, "RS256", map[string]any{"alg": "RS256", "kid": keys[0].Kid}},
		{"hostile members kept", map[string]any{"alg": "RS256", "crit": []string{"exp"}, "jku": "https://evil"}, accessPub, "RS256", map[string]any{"alg": "RS256", "crit": []any{"exp"}, "jku": "https://evil"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := i.Sign(tc.header, claims)
			if err != nil {
				t.Fatal(err)
			}
			h, c := parts(t, raw)
			if !reflect.DeepEqual(h, tc.wantHdr) {
				t.Fatalf("header = %v, want %v", h, tc.wantHdr)
			}
			if c["sub"] != "x" || len(c) != 2 {
				t.Fatalf("claims = %v", c)
			}
			if err := verifySig(raw, tc.pub, tc.sigAlg); err != nil {
				t.Fatalf("signature: %v", err)
			}
		})
	}
	if _, err := i.Sign(map[string]any{"alg": "RS256"}, map[string]any{"bad": func() {}}); err == nil {
		t.Fatal("Sign accepted a claim that cannot be encoded")
	}
}

// httpKeys is a token.Keys that fetches the JWKS over HTTP on every lookup:
// the round trip a real deployment makes, minus the cache.
type httpKeys struct{ client *http.Client }

func (h httpKeys) Key(ctx context.Context, src jwks.Source, kid string) (*jwks.Key, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.URL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, jwks.ErrUnavailable
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, jwks.ErrUnavailable
	}
	var set struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return nil, jwks.ErrUnavailable
	}
	for _, k := range set.Keys {
		if k.Kid == kid {
			n, _ := b64.DecodeString(k.N)
			e, _ := b64.DecodeString(k.E)
			return &jwks.Key{Kid: k.Kid, Alg: k.Alg, Public: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}, nil
		}
	}
	return nil, jwks.ErrKidUnknown
}

// TestRoundTrip mints tokens, serves the JWKS over HTTP and verifies them
// with pkg/token, through key rotation.
func TestRoundTrip(t *testing.T) {
	i, err := issuer.New(iss, poolID)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(i)
	defer srv.Close()
	cfg := &token.Config{
		Pools:     []token.Pool{{ID: poolID, Issuers: []string{iss}, Keys: jwks.Source{URL: srv.URL + "/" + poolID + "/.well-known/jwks.json"}}},
		ClientIDs: []string{"cid"},
	}
	v := token.NewVerifier(httpKeys{srv.Client()}, nil)
	verify := func(raw string) (*token.Claims, reason.Code) {
		c, err := v.Verify(context.Background(), cfg, raw)
		if err != nil {
			return nil, reason.Of(err)
		}
		return c, ""
	}
	mint := func(f func(issuer.TokenOptions) (string, error), o issuer.TokenOptions) string {
		t.Helper()
		raw, err := f(o)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}

	id := mint(i.IDToken, issuer.TokenOptions{ClientID: "cid", Username: "alice", Groups: []string{"admins"}})
	acc := mint(i.AccessToken, issuer.TokenOptions{ClientID: "cid", Scopes: []string{"pets/read"}})
	c, code := verify(id)
	if code != "" || c.TokenUse() != "id" || c.Username() != "alice" || !slices.Equal(c.Groups(), []string{"admins"}) || c.Pool() != poolID {
		t.Fatalf("ID token: %q %+v", code, c)
	}
	c, code = verify(acc)
	if code != "" || c.TokenUse() != "access" || c.ClientID() != "cid" || !slices.Equal(c.Scopes(), []string{"pets/read"}) {
		t.Fatalf("access token: %q %+v", code, c)
	}
	for name, tc := range map[string]struct {
		raw  string
		want reason.Code
	}{
		"expired":      {mint(i.AccessToken, issuer.TokenOptions{ClientID: "cid", TTL: -time.Second}), reason.TokenExpired},
		"other client": {mint(i.AccessToken, issuer.TokenOptions{ClientID: "other"}), reason.ClientNotAllowed},
		"unknown kid":  {mint(i.AccessToken, issuer.TokenOptions{ClientID: "cid", Header: map[string]any{"kid": "gone"}}), reason.KidUnknown},
		"alg none":     {mint(i.AccessToken, issuer.TokenOptions{ClientID: "cid", Header: map[string]any{"alg": "none"}}), reason.AlgNotAllowed},
		"jku":          {mint(i.AccessToken, issuer.TokenOptions{ClientID: "cid", Header: map[string]any{"jku": srv.URL}}), reason.HeaderInvalid},
	} {
		t.Run(name, func(t *testing.T) {
			if _, code := verify(tc.raw); code != tc.want {
				t.Fatalf("code = %q, want %q", code, tc.want)
			}
		})
	}

	kid, err := i.AddKey()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(parseJWKS(t, i.JWKS())); n != 3 {
		t.Fatalf("JWKS has %d keys after AddKey, want 3", n)
	}
	added := mint(i.AccessToken, issuer.TokenOptions{ClientID: "cid", Header: map[string]any{"kid": kid}})
	if _, code := verify(added); code != "" {
		t.Fatalf("token signed with the added key: %q", code)
	}
	oldKids := map[string]bool{kid: true}
	for _, k := range parseJWKS(t, i.JWKS()) {
		oldKids[k.Kid] = true
	}
	if err := i.Rotate(); err != nil {
		t.Fatal(err)
	}
	keys := parseJWKS(t, i.JWKS())
	if len(keys) != 2 {
		t.Fatalf("JWKS has %d keys after Rotate, want 2", len(keys))
	}
	for _, k := range keys {
		if oldKids[k.Kid] {
			t.Fatalf("kid %q survived Rotate", k.Kid)
		}
	}
	for name, raw := range map[string]string{"id": id, "access": acc, "added": added} {
		if _, code := verify(raw); code != reason.KidUnknown {
			t.Fatalf("%s token after Rotate: %q, want %q", name, code, reason.KidUnknown)
		}
	}
	if _, code := verify(mint(i.IDToken, issuer.TokenOptions{ClientID: "cid"})); code != "" {
		t.Fatalf("token after Rotate: %q", code)
	}
}

// TestConcurrentUse mints, serves and rotates at once; run with -race.
func TestConcurrentUse(t *testing.T) {
	i, err := issuer.New(iss, poolID)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 4 {
		wg.Go(func() {
			for range 10 {
				if _, err := i.AccessToken(issuer.TokenOptions{Scopes: []string{"a"}}); err != nil {
					errs <- err
				}
				if _, err := i.IDToken(issuer.TokenOptions{}); err != nil {
					errs <- err
				}
				if _, err := i.Sign(map[string]any{"alg": "RS256"}, map[string]any{"a": 1}); err != nil {
					errs <- err
				}
				rec := httptest.NewRecorder()
				i.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil))
				if rec.Code != http.StatusOK {
					errs <- io.ErrUnexpectedEOF
				}
			}
		})
	}
	wg.Go(func() {
		if _, err := i.AddKey(); err != nil {
			errs <- err
		}
		if err := i.Rotate(); err != nil {
			errs <- err
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
