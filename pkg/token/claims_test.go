package token_test

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"math/big"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// keysFromJWKS builds a fake Keys whose source src holds the keys of a JWKS
// document, as a JWKS cache would after fetching it.
func keysFromJWKS(tb testing.TB, src jwks.Source, doc []byte) *fakeKeys {
	tb.Helper()
	var set struct {
		Keys []struct{ Kid, Alg, Kty, Use, N, E string } `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		tb.Fatalf("decode jwks: %v", err)
	}
	keys := map[string]*jwks.Key{}
	for _, k := range set.Keys {
		n, err := b64.DecodeString(k.N)
		if err != nil {
			tb.Fatalf("decode n: %v", err)
		}
		e, err := b64.DecodeString(k.E)
		if err != nil {
			tb.Fatalf("decode e: %v", err)
		}
		keys[k.Kid] = &jwks.Key{Kid: k.Kid, Alg: k.Alg, Public: &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}}
	}
	return &fakeKeys{sets: map[jwks.Source]map[string]*jwks.Key{src: keys}}
}

var sharedIssuer = sync.OnceValues(func() (*issuer.Issuer, error) {
	return issuer.New(issA, "us-east-1_AAAAAAAAA")
})

func testIssuer(tb testing.TB) *issuer.Issuer {
	tb.Helper()
	iss, err := sharedIssuer()
	if err != nil {
		tb.Fatalf("issuer.New: %v", err)
	}
	return iss
}

func TestVerifyIssuerTokens(t *testing.T) {
	iss := testIssuer(t)
	keys := keysFromJWKS(t, srcA, iss.JWKS())
	cfg := configA()
	cfg.ClientIDs = []string{client}
	issued := now.Add(-time.Minute)
	v := token.NewVerifier(keys, func() time.Time { return now })

	type want struct {
		use, sub, username, clientID, issuer string
		scopes, groups                       []string
	}
	cases := []struct {
		name string
		mint func() (string, error)
		want want
	}{
		{
			name: "ID token, cognito-idp issuer",
			mint: func() (string, error) {
				return iss.IDToken(issuer.TokenOptions{Subject: "sub-1", Username: "alice", ClientID: client, Email: "a@example.com", Groups: []string{"admins"}, IssuedAt: issued})
			},
			want: want{use: "id", sub: "sub-1", username: "alice", clientID: client, issuer: issA, groups: []string{"admins"}},
		},
		{
			name: "ID token, issuer-cognito-idp issuer",
			mint: func() (string, error) {
				return iss.IDToken(issuer.TokenOptions{Subject: "sub-2", ClientID: client, IssuedAt: issued, Claims: map[string]any{"iss": issANew}})
			},
			want: want{use: "id", sub: "sub-2", username: "sub-2", clientID: client, issuer: issANew},
		},
		{
			name: "access token, cognito-idp issuer",
			mint: func() (string, error) {
				return iss.AccessToken(issuer.TokenOptions{Subject: "sub-3", Username: "bob", ClientID: client, Scopes: []string{"pets/read", "pets/write"}, Groups: []string{"a", "b"}, IssuedAt: issued})
			},
			want: want{use: "access", sub: "sub-3", username: "bob", clientID: client, issuer: issA, scopes: []string{"pets/read", "pets/write"}, groups: []string{"a", "b"}},
		},
		{
			name: "access token, issuer-cognito-idp issuer, no scopes",
			mint: func() (string, error) {
				return iss.AccessToken(issuer.TokenOptions{Subject: "sub-4", ClientID: client, IssuedAt: issued, Claims: map[string]any{"iss": issANew}})
			},
			want: want{use: "access", sub: "sub-4", username: "sub-4", clientID: client, issuer: issANew},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, err := tc.mint()
			if err != nil {
				t.Fatalf("mint: %v", err)
			}
			c, err := v.Verify(context.Background(), cfg, raw)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got := want{c.TokenUse(), c.Subject(), c.Username(), c.ClientID(), c.Issuer(), c.Scopes(), c.Groups()}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("claims = %+v, want %+v", got, tc.want)
			}
			if c.Pool() != "us-east-1_AAAAAAAAA" {
				t.Fatalf("Pool() = %q", c.Pool())
			}
			if !c.Expiry().Equal(time.Unix(issued.Unix(), 0).Add(time.Hour)) {
				t.Fatalf("Expiry() = %v, want %v", c.Expiry(), issued.Add(time.Hour))
			}
		})
	}
}

// verifyJSON signs payload with key a and returns the verified claims.
func verifyJSON(tb testing.TB, payload string) *token.Claims {
	tb.Helper()
	raw := signRS(tb, testKey(tb, "a"), "RS256", hdr(), payload)
	c, err := token.NewVerifier(newWorld(tb), func() time.Time { return now }).Verify(context.Background(), configA(), raw)
	if err != nil {
		tb.Fatalf("Verify: %v", err)
	}
	return c
}

func TestClaimsFormat(t *testing.T) {
	c := verifyJSON(t, access(map[string]string{
		"s":             `"plain value"`,
		"s_utf8":        `"caf\u00e9 \u2603"`,
		"s_tab":         `"a\tb"`,
		"s_crlf":        `"a\r\nx-injected: 1"`,
		"s_nul":         `"a\u0000b"`,
		"s_del":         `"a\u007fb"`,
		"empty":         `""`,
		"i":             `42`,
		"neg":           `-7`,
		"zero":          `0`,
		"big":           `123456789012345678901234567890`,
		"frac":          `1.5`,
		"frac0":         `2.50`,
		"e3":            `1e3`,
		"expneg":        `1.5E-7`,
		"huge":          `1e400`,
		"t":             `true`,
		"f":             `false`,
		"null":          `null`,
		"arr":           `["admins","users"]`,
		"arr1":          `["only"]`,
		"arr0":          `[]`,
		"mixed":         `[1,"a",true,1.25]`,
		"nested":        `[1,{"b":1,"a":"<&>"}]`,
		"nestedlist":    `["a",[1,2]]`,
		"withnull":      `["a",null]`,
		"comma":         `["users","admins,root"]`,
		"commafirst":    `["users",",root"]`,
		"spaced":        `["users"," admins"]`,
		"emptyelem":     `["users",""]`,
		"arrcrlf":       `["a","b\nc"]`,
		"obj":           `{"z":1,"a":{"y":[true,null]},"h":"<&>"}`,
		"custom:tenant": `"acme"`,
	}))
	cases := []struct {
		claim string
		want  string
		ok    bool
	}{
		{"s", "plain value", true},
		{"s_utf8", "café ☃", true},
		{"s_tab", "a\tb", true},
		{"s_crlf", "", false},
		{"s_nul", "", false},
		{"s_del", "", false},
		{"empty", "", true},
		{"i", "42", true},
		{"neg", "-7", true},
		{"zero", "0", true},
		{"big", "123456789012345678901234567890", true},
		{"frac", "1.5", true},
		{"frac0", "2.5", true},
		{"e3", "1000", true},
		{"expneg", "0.00000015", true},
		{"huge", "", false},
		{"t", "true", true},
		{"f", "false", true},
		{"null", "", false},
		{"missing", "", false},
		{"arr", "admins,users", true},
		{"arr1", "only", true},
		{"arr0", "", true},
		{"mixed", `1,a,true,1.25`, true},
		// An element an upstream's split-on-comma would not give back
		// whole leaves the header unset, never ambiguous.
		{"nested", "", false},
		{"nestedlist", "", false},
		{"withnull", "", false},
		{"comma", "", false},
		{"commafirst", "", false}, // a comma at index 0 splits as well as one inside
		{"spaced", "", false},
		{"emptyelem", "", false},
		{"arrcrlf", "", false},
		{"obj", `{"a":{"y":[true,null]},"h":"<&>","z":1}`, true},
		{"custom:tenant", "acme", true},
		{"cognito:groups", "admins,users", true},
		{"exp", fmtInt(now.Unix() + 3600), true},
		{"version", "2", true},
		{"email_verified", "", false}, // an access token has none
	}
	for _, tc := range cases {
		t.Run(tc.claim, func(t *testing.T) {
			got, ok := c.Format(tc.claim)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("Format(%q) = %q, %v; want %q, %v", tc.claim, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestClaimsValueAndMap(t *testing.T) {
	c := verifyJSON(t, access(map[string]string{"obj": `{"k":[1,"x"]}`, "null": "null", "n": "12"}))
	cases := []struct {
		name string
		want any
		ok   bool
	}{
		{"n", json.Number("12"), true},
		{"obj", map[string]any{"k": []any{json.Number("1"), "x"}}, true},
		{"null", nil, true},
		{"missing", nil, false},
		{"sub", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee", true},
		{"cognito:groups", []any{"admins", "users"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := c.Value(tc.name)
			if ok != tc.ok || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Value(%q) = %#v, %v; want %#v, %v", tc.name, got, ok, tc.want, tc.ok)
			}
		})
	}
	m := c.Map()
	if m["token_use"] != "access" || m["exp"] != json.Number(fmtInt(now.Unix()+3600)) || len(m) != 16 {
		t.Fatalf("Map() = %v (%d members)", m, len(m))
	}
}

func fmtInt(i int64) string { b, _ := json.Marshal(i); return string(b) }

// TestClaimsImmutable mutates everything the accessors hand out and checks
// that the Claims did not change: a cached *Claims is shared by requests.
func TestClaimsImmutable(t *testing.T) {
	c := verifyJSON(t, access(map[string]string{"obj": `{"k":[1,"x"]}`}))
	before := c.Map()

	c.Scopes()[0] = "forged"
	c.Groups()[0] = "forged"
	m := c.Map()
	m["sub"] = "forged"
	m["cognito:groups"].([]any)[0] = "forged"
	m["obj"].(map[string]any)["k"].([]any)[0] = "forged"
	v, _ := c.Value("obj")
	v.(map[string]any)["k"] = "forged"
	g, _ := c.Value("cognito:groups")
	g.([]any)[1] = "forged"

	if !reflect.DeepEqual(c.Map(), before) {
		t.Fatalf("claims changed through an accessor: %v", c.Map())
	}
	if !slices.Equal(c.Scopes(), []string{"pets/read", "pets/write"}) || !slices.Equal(c.Groups(), []string{"admins", "users"}) {
		t.Fatalf("Scopes/Groups changed: %v %v", c.Scopes(), c.Groups())
	}
}

// TestClaimsConcurrentReads runs every accessor from many goroutines; run
// with -race.
func TestClaimsConcurrentReads(t *testing.T) {
	c := verifyJSON(t, access(map[string]string{"obj": `{"k":[1,"x"]}`}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = c.Format("obj")
				_, _ = c.Format("cognito:groups")
				_, _ = c.Value("obj")
				_ = c.Map()
				_ = c.Scopes()
				_ = c.Groups()
			}
		})
	}
	wg.Wait()
}

func TestClaimsScopeSplitting(t *testing.T) {
	cases := []struct {
		scope string
		want  []string
	}{
		{`"pets/read"`, []string{"pets/read"}},
		{`"a  b "`, []string{"a", "b"}},
		{`"a\tb"`, []string{"a\tb"}}, // only 0x20 separates scope tokens
		{`""`, []string{}},
	}
	for _, tc := range cases {
		t.Run(tc.scope, func(t *testing.T) {
			got := verifyJSON(t, access(map[string]string{"scope": tc.scope})).Scopes()
			if !slices.Equal(got, tc.want) || got == nil {
				t.Fatalf("Scopes() = %#v, want %#v", got, tc.want)
			}
		})
	}
	if got := verifyJSON(t, access(map[string]string{"scope": ""})).Scopes(); got != nil {
		t.Fatalf("Scopes() without a scope claim = %#v, want nil", got)
	}
	if got := verifyJSON(t, access(map[string]string{"cognito:groups": ""})).Groups(); got != nil {
		t.Fatalf("Groups() without cognito:groups = %#v, want nil", got)
	}
}

// TestIssuerRotation follows a key rotation through the verifier.
func TestIssuerRotation(t *testing.T) {
	iss, err := issuer.New(issA, "us-east-1_AAAAAAAAA")
	if err != nil {
		t.Fatal(err)
	}
	verify := func(raw string) reason.Code {
		keys := keysFromJWKS(t, srcA, iss.JWKS())
		_, err := token.NewVerifier(keys, nil).Verify(context.Background(), configA(), raw)
		return codeOf(t, err)
	}
	old, err := iss.AccessToken(issuer.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kid, err := iss.AddKey()
	if err != nil {
		t.Fatal(err)
	}
	next, err := iss.AccessToken(issuer.TokenOptions{Header: map[string]any{"kid": kid}})
	if err != nil {
		t.Fatal(err)
	}
	if got := verify(old); got != "" {
		t.Fatalf("old token during overlap: %q", got)
	}
	if got := verify(next); got != "" {
		t.Fatalf("new-key token during overlap: %q", got)
	}
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	for name, raw := range map[string]string{"old": old, "added": next} {
		if got := verify(raw); got != reason.KidUnknown {
			t.Fatalf("%s token after Rotate: %q, want %q", name, got, reason.KidUnknown)
		}
	}
	fresh, err := iss.IDToken(issuer.TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := verify(fresh); got != "" {
		t.Fatalf("token after Rotate: %q", got)
	}
}
