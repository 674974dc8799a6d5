package token_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

type verifyCase struct {
	name string
	raw  func(tb testing.TB) string
	cfg  func(c *token.Config) // optional change to configA()
	keys func(k *fakeKeys)     // optional change to newWorld()
	now  time.Time             // zero: now
	want reason.Code           // "" means accepted
	// lookups is the exact number of key lookups expected; -1 means any.
	lookups int
}

// signed returns a raw-builder for header and payload JSON text signed with
// test key name under alg.
func signed(name, alg, header, payload string) func(testing.TB) string {
	return func(tb testing.TB) string { return signRS(tb, testKey(tb, name), alg, header, payload) }
}

func access(override map[string]string) string { return claimsJSON("access", override) }
func idTok(override map[string]string) string  { return claimsJSON("id", override) }

func literal(s string) func(testing.TB) string { return func(testing.TB) string { return s } }

// mutate returns a builder applying f to a valid access token.
func mutate(f func(raw string) string) func(testing.TB) string {
	return func(tb testing.TB) string {
		raw := goodAccess(tb)
		out := f(raw)
		if out == raw {
			tb.Fatalf("mutation left the token unchanged")
		}
		return out
	}
}

// seg returns segment i of a compact token.
func seg(raw string, i int) string { return strings.Split(raw, ".")[i] }

func runCases(t *testing.T, cases []verifyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			keys := newWorld(t)
			if tc.keys != nil {
				tc.keys(keys)
			}
			cfg := configA()
			if tc.cfg != nil {
				tc.cfg(cfg)
			}
			clock := tc.now
			if clock.IsZero() {
				clock = now
			}
			v := token.NewVerifier(keys, func() time.Time { return clock })
			raw := tc.raw(t)
			c, err := v.Verify(context.Background(), cfg, raw)
			if got := codeOf(t, err); got != tc.want {
				t.Fatalf("Verify = %q (%v), want %q", got, err, tc.want)
			}
			if (c == nil) == (err == nil) {
				t.Fatalf("Verify returned claims %v and error %v", c, err)
			}
			assertNoTokenMaterial(t, err, raw)
			if tc.lookups >= 0 && keys.Calls() != tc.lookups {
				t.Fatalf("key lookups = %d, want %d", keys.Calls(), tc.lookups)
			}
		})
	}
}

// TestVerifyAttacks covers the known attacks on JWT verifiers
// that concern token verification; each case name starts with its row.
func TestVerifyAttacks(t *testing.T) {
	pubA := &testKey(t, "a").PublicKey
	der, err := x509.MarshalPKIXPublicKey(pubA)
	if err != nil {
		t.Fatal(err)
	}
	pemA := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	hsHdr := `{"kid":"` + kidA + `","alg":"HS256"}`
	future := fmt.Sprint(now.Unix() + 3600)

	cases := []verifyCase{
		// Row 1-2: alg none, any case, with and without a signature.
		{name: "01 alg none empty signature", raw: literal(b64.EncodeToString([]byte(`{"kid":"`+kidA+`","alg":"none"}`)) + "." + b64.EncodeToString([]byte(access(nil))) + "."), want: reason.TokenMalformed, lookups: 0},
		{name: "01 alg None", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"None"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "01 alg NONE", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"NONE"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "01 alg nOnE", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"nOnE"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "02 alg none keeping a genuine signature", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"none"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "02 alg none even when configured", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"none"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"RS256", "none"} }, want: reason.AlgNotAllowed, lookups: 0},
		// Row 3.
		{name: "03 signature stripped", raw: mutate(func(r string) string { return r[:strings.LastIndexByte(r, '.')+1] }), want: reason.TokenMalformed, lookups: 0},
		{name: "03 two segments", raw: mutate(func(r string) string { return r[:strings.LastIndexByte(r, '.')] }), want: reason.TokenMalformed, lookups: 0},
		// Row 4-5: RS256 -> HS256 key confusion.
		{name: "04 HS256 keyed with the PEM public key", raw: literal(signHS(hsHdr, access(nil), pemA)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "04 HS256 keyed with the DER public key", raw: literal(signHS(hsHdr, access(nil), der)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "04 HS256 keyed with the JWK JSON", raw: literal(signHS(hsHdr, access(nil), []byte(jwkJSON(pubA, kidA)))), want: reason.AlgNotAllowed, lookups: 0},
		{name: "04 HS256 even when configured", raw: literal(signHS(hsHdr, access(nil), pemA)), cfg: func(c *token.Config) { c.Algorithms = []string{"RS256", "HS256"} }, want: reason.AlgNotAllowed, lookups: 0},
		{name: "05 HS256 with an empty secret", raw: literal(signHS(hsHdr, access(nil), nil)), want: reason.AlgNotAllowed, lookups: 0},
		// Row 6: header alg swapped over a genuine RS256 signature.
		{name: "06 header HS256 genuine RS256 signature", raw: signed("a", "RS256", hsHdr, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "06 header RS512 not configured", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"RS512"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "06 header RS512 configured, key says RS256", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"RS512"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"RS256", "RS512"} }, want: reason.AlgNotAllowed, lookups: 1},
		{name: "06 header RS512 configured, key without alg", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"RS512"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"RS256", "RS512"} }, keys: func(k *fakeKeys) { k.sets[srcA][kidA].Alg = "" }, want: reason.SignatureInvalid, lookups: 1},
		{name: "06 header PS256 configured, key without alg", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"PS256"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"PS256"} }, keys: func(k *fakeKeys) { k.sets[srcA][kidA].Alg = "" }, want: reason.SignatureInvalid, lookups: 1},
		{name: "06 header RS256 over a PS256 signature", raw: signed("a", "PS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.sets[srcA][kidA].Alg = "" }, want: reason.SignatureInvalid, lookups: 1},
		{name: "06 header without alg", raw: signed("a", "RS256", `{"kid":"`+kidA+`"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "06 header alg not a string", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":["RS256"]}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "06 header alg ES256", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"ES256"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"ES256"} }, want: reason.AlgNotAllowed, lookups: 0},
		{name: "06 header alg rs256 lower case", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"rs256"}`, access(nil)), want: reason.AlgNotAllowed, lookups: 0},
		// Row 7-9: keys and certificates supplied by the token.
		{name: "07 embedded jwk with the real kid", raw: signed("b", "RS256", hdr(`"jwk":`+jwkJSON(&testKey(t, "b").PublicKey, kidA)), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "07 embedded jwk without kid", raw: signed("b", "RS256", `{"alg":"RS256","jwk":`+jwkJSON(&testKey(t, "b").PublicKey, "x")+`}`, access(nil)), want: reason.KidMissing, lookups: 0},
		{name: "08 jku", raw: signed("b", "RS256", hdr(`"jku":"https://evil.example/jwks.json"`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "08 x5u", raw: signed("b", "RS256", hdr(`"x5u":"https://evil.example/cert.pem"`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "09 x5c", raw: signed("b", "RS256", hdr(`"x5c":["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"]`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "09 x5t", raw: signed("a", "RS256", hdr(`"x5t":"abc"`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "09 x5t#S256", raw: signed("a", "RS256", hdr(`"x5t#S256":"abc"`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		// Row 10-13: kid.
		{name: "10 kid path traversal HS256", raw: literal(signHS(`{"kid":"../../../../dev/null","alg":"HS256"}`, access(nil), nil)), want: reason.AlgNotAllowed, lookups: 0},
		{name: "10 kid path traversal RS256", raw: signed("b", "RS256", `{"kid":"../../../../dev/null","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "10 kid /dev/null", raw: signed("b", "RS256", `{"kid":"/dev/null","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "10 kid SQL injection", raw: signed("b", "RS256", `{"kid":"x' UNION SELECT '1';--","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "10 kid shell injection", raw: signed("b", "RS256", `{"kid":"|sleep 10","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "11 kid empty", raw: signed("a", "RS256", `{"kid":"","alg":"RS256"}`, access(nil)), want: reason.KidMissing, lookups: 0},
		{name: "11 kid missing", raw: signed("a", "RS256", `{"alg":"RS256"}`, access(nil)), want: reason.KidMissing, lookups: 0},
		{name: "12 kid with NUL", raw: signed("a", "RS256", `{"kid":"`+kidA+`\u0000","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "12 kid with trailing space", raw: signed("a", "RS256", `{"kid":"`+kidA+` ","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "12 kid in another case", raw: signed("a", "RS256", `{"kid":"`+strings.ToLower(kidA)+`","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "12 kid numeric", raw: signed("a", "RS256", `{"kid":1,"alg":"RS256"}`, access(nil)), want: reason.KidMissing, lookups: 0},
		{name: "12 kid object", raw: signed("a", "RS256", `{"kid":{"k":"`+kidA+`"},"alg":"RS256"}`, access(nil)), want: reason.KidMissing, lookups: 0},
		{name: "12 kid null", raw: signed("a", "RS256", `{"kid":null,"alg":"RS256"}`, access(nil)), want: reason.KidMissing, lookups: 0},
		{name: "12 kid escaped in JSON is the same kid", raw: signed("a", "RS256", `{"kid":"\u0031+JqYTQhRMGK3F2jsmkrItcsx0AFCN0hSH6gGeWUuL8\u003d","alg":"RS256"}`, access(nil)), want: "", lookups: 1},
		{name: "13 random unknown kid", raw: signed("a", "RS256", `{"kid":"b7f1e2d9-unknown","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		// Row 14-15: other pools.
		{name: "14 pool B key, pool A iss, same kid", raw: signed("b", "RS256", hdr(), access(nil)), want: reason.SignatureInvalid, lookups: 1},
		{name: "14 pool B token, pool B iss, only A configured", raw: signed("b", "RS256", hdr(), access(map[string]string{"iss": `"` + issB + `"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "15 attacker pool iss", raw: signed("b", "RS256", hdr(), access(map[string]string{"iss": `"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_EvilEvil1"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "15 attacker iss pointing at its own server", raw: signed("b", "RS256", hdr(), access(map[string]string{"iss": `"https://evil.example"`})), want: reason.IssuerUnknown, lookups: 0},
		// Row 16-17: crit and b64.
		{name: "16 crit foo", raw: signed("a", "RS256", hdr(`"crit":["foo"],"foo":1`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "16 crit exp", raw: signed("a", "RS256", hdr(`"crit":["exp"],"exp":1`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "16 crit empty", raw: signed("a", "RS256", hdr(`"crit":[]`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "17 b64 false without crit", raw: signed("a", "RS256", hdr(`"b64":false`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "17 b64 false with crit", raw: signed("a", "RS256", hdr(`"b64":false`, `"crit":["b64"]`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "17 b64 false raw payload", raw: func(tb testing.TB) string {
			h := b64.EncodeToString([]byte(hdr(`"b64":false`, `"crit":["b64"]`)))
			input := h + "." + access(nil)
			return input + "." + b64.EncodeToString(rsaSig(tb, testKey(tb, "a"), "RS256", input))
		}, want: reason.TokenMalformed, lookups: 0},
		// Row 18-22: JSON serialisations.
		{name: "18 flattened JSON JWS with forged claims", raw: func(tb testing.TB) string {
			r := goodAccess(tb)
			return fmt.Sprintf(`{"protected":%q,"payload":%q,"signature":%q,"sub":"victim","token_use":"access","client_id":%q,"exp":%s}`, seg(r, 0), seg(r, 1), seg(r, 2), client, future)
		}, want: reason.TokenMalformed, lookups: 0},
		{name: "19 general JSON JWS with forged aud", raw: func(tb testing.TB) string {
			r := goodAccess(tb)
			return fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}],"aud":%q,"sub":"victim"}`, seg(r, 1), seg(r, 0), seg(r, 2), client)
		}, want: reason.TokenMalformed, lookups: 0},
		{name: "20 genuine token as general JSON", raw: func(tb testing.TB) string {
			r := goodAccess(tb)
			return fmt.Sprintf(`{"payload":%q,"signatures":[{"protected":%q,"signature":%q}]}`, seg(r, 1), seg(r, 0), seg(r, 2))
		}, want: reason.TokenMalformed, lookups: 0},
		{name: "21 JSON with signature and no protected", raw: func(tb testing.TB) string {
			r := goodAccess(tb)
			return fmt.Sprintf(`{"payload":%q,"signature":%q}`, seg(r, 1), seg(r, 2))
		}, want: reason.TokenMalformed, lookups: 0},
		{name: "22 bare JSON claims", raw: literal(access(nil)), want: reason.TokenMalformed, lookups: 0},
		// Row 23-24: JWE and nesting.
		{name: "23 JWE five segments", raw: literal(b64.EncodeToString([]byte(`{"alg":"RSA-OAEP","enc":"A256GCM","kid":"`+kidA+`"}`)) + ".AAAA.AAAA.AAAA.AAAA"), want: reason.TokenMalformed, lookups: 0},
		{name: "23 JWE header in three segments", raw: signed("a", "RS256", hdr(`"enc":"A256GCM"`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "23 zip header", raw: signed("a", "RS256", hdr(`"zip":"DEF"`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "24 cty JWT wrapping an inner none token", raw: func(tb testing.TB) string {
			inner := b64.EncodeToString([]byte(`{"alg":"none"}`)) + "." + b64.EncodeToString([]byte(access(nil))) + "."
			return signRS(tb, testKey(tb, "a"), "RS256", hdr(`"cty":"JWT"`), inner)
		}, want: reason.HeaderInvalid, lookups: 0},
		// Row 25-30: one token, one string.
		{name: "25 trailing dot", raw: mutate(func(r string) string { return r + "." }), want: reason.TokenMalformed, lookups: 0},
		{name: "25 four segments", raw: mutate(func(r string) string { return r + ".AAAA" }), want: reason.TokenMalformed, lookups: 0},
		{name: "25 empty middle segment", raw: mutate(func(r string) string { return seg(r, 0) + ".." + seg(r, 2) }), want: reason.TokenMalformed, lookups: 0},
		{name: "26 leading space", raw: mutate(func(r string) string { return " " + r }), want: reason.TokenMalformed, lookups: 0},
		{name: "26 trailing space", raw: mutate(func(r string) string { return r + " " }), want: reason.TokenMalformed, lookups: 0},
		{name: "26 trailing newline", raw: mutate(func(r string) string { return r + "\n" }), want: reason.TokenMalformed, lookups: 0},
		{name: "26 CRLF inside a segment", raw: mutate(func(r string) string { return r[:10] + "\r\n" + r[10:] }), want: reason.TokenMalformed, lookups: 0},
		{name: "27 trailing garbage after a space", raw: mutate(func(r string) string { return r + " garbage" }), want: reason.TokenMalformed, lookups: 0},
		{name: "28 padded signature", raw: signedPadded(false), want: reason.TokenMalformed, lookups: 0},
		{name: "28 padded header and payload", raw: signedPadded(true), want: reason.TokenMalformed, lookups: 0},
		{name: "29 std alphabet signature", raw: mutate(func(r string) string {
			return r[:strings.LastIndexByte(r, '.')] + strings.NewReplacer("-", "+", "_", "/").Replace(r[strings.LastIndexByte(r, '.'):])
		}), want: reason.TokenMalformed, lookups: 0},
		{name: "30 non-canonical last character", raw: mutate(func(r string) string {
			// 256 signature bytes end in a 2-character group whose last
			// character carries 4 unused bits; set the lowest one.
			last := strings.IndexByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", r[len(r)-1])
			return r[:len(r)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[last|1])
		}), want: reason.TokenMalformed, lookups: 0},
		// Row 31-33: duplicate members, genuinely signed.
		{name: "31 duplicate alg none then RS256", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"none","alg":"RS256"}`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "31 duplicate alg RS256 then none", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"RS256","alg":"none"}`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "31 duplicate alg through an escape", raw: signed("a", "RS256", `{"kid":"`+kidA+`","alg":"RS256","\u0061lg":"none"}`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "31 duplicate kid", raw: signed("a", "RS256", `{"kid":"other","alg":"RS256","kid":"`+kidA+`"}`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "32 duplicate exp past then future", raw: signed("a", "RS256", hdr(), strings.Replace(access(nil), `"exp":`, `"exp":1,"exp":`, 1)), want: reason.TokenMalformed, lookups: 0},
		{name: "33 duplicate token_use", raw: signed("a", "RS256", hdr(), strings.Replace(access(nil), `"token_use":"access"`, `"token_use":"access","token_use":"id"`, 1)), want: reason.TokenMalformed, lookups: 0},
		{name: "33 duplicate iss", raw: signed("a", "RS256", hdr(), strings.Replace(access(nil), `"iss":`, `"iss":"https://evil.example","iss":`, 1)), want: reason.TokenMalformed, lookups: 0},
		{name: "33 duplicate member in a nested object", raw: signed("a", "RS256", hdr(), access(map[string]string{"identities": `[{"userId":"1","userId":"2"}]`})), want: reason.TokenMalformed, lookups: 0},
		// Row 34-41: exp, nbf, iat.
		{name: "34 exp missing", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": ""})), want: reason.ClaimInvalid, lookups: 1},
		{name: "35 exp zero", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "0"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "36 exp numeric string", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": `"1999999999"`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "36 exp RFC 3339 string", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": `"2030-01-01T00:00:00Z"`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "37 exp with a fraction", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "1999999999.5"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "37 exp integer-valued fraction", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "1999999999.0"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "37 exp in exponent form", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "2e9"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp negative", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "-1"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp null", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "null"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp true", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "true"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp 1e30", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "1e30"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp max int64", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "9223372036854775807"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp beyond int64", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "99999999999999999999"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp after year 9999", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "253402300800"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "38 exp the last second of year 9999", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "253402300799"})), want: "", lookups: 1},
		{name: "38 exp array", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": "[" + future + "]"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "40 exp 30 s ago, no skew", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() - 30)})), want: reason.TokenExpired, lookups: 1},
		{name: "40 exp 30 s ago, skew 60 s", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() - 30)})), cfg: func(c *token.Config) { c.ClockSkew = time.Minute }, want: "", lookups: 1},
		{name: "40 exp exactly now is expired", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix())})), want: reason.TokenExpired, lookups: 1},
		{name: "40 exp one second ahead", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() + 1)})), want: "", lookups: 1},
		{name: "40 exp a nanosecond ahead of the clock", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() + 1)})), now: now.Add(time.Second - time.Nanosecond), want: "", lookups: 1},
		{name: "40 exp equal to the clock with nanoseconds", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() + 1)})), now: now.Add(time.Second), want: reason.TokenExpired, lookups: 1},
		{name: "40 exp exactly now minus skew is expired", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() - 60)})), cfg: func(c *token.Config) { c.ClockSkew = time.Minute }, want: reason.TokenExpired, lookups: 1},
		{name: "40 exp one second inside the skew", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() - 59)})), cfg: func(c *token.Config) { c.ClockSkew = time.Minute }, want: "", lookups: 1},
		{name: "40 negative skew counts as zero", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(now.Unix() + 30)})), cfg: func(c *token.Config) { c.ClockSkew = -time.Minute }, want: "", lookups: 1},
		{name: "41 iat an hour in the future", raw: signed("a", "RS256", hdr(), access(map[string]string{"iat": fmt.Sprint(now.Unix() + 3600)})), want: reason.ClaimInvalid, lookups: 1},
		{name: "41 nbf an hour in the future", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": fmt.Sprint(now.Unix() + 3600)})), want: reason.ClaimInvalid, lookups: 1},
		{name: "41 nbf zero, the epoch", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": "0"})), want: "", lookups: 1},
		{name: "41 iat zero, the epoch", raw: signed("a", "RS256", hdr(), access(map[string]string{"iat": "0"})), want: "", lookups: 1},
		{name: "41 nbf exactly now", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": fmt.Sprint(now.Unix())})), want: "", lookups: 1},
		{name: "41 nbf one second ahead, no skew", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": fmt.Sprint(now.Unix() + 1)})), want: reason.ClaimInvalid, lookups: 1},
		{name: "41 nbf at the skew edge", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": fmt.Sprint(now.Unix() + 60)})), cfg: func(c *token.Config) { c.ClockSkew = time.Minute }, want: "", lookups: 1},
		{name: "41 nbf past the skew edge", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": fmt.Sprint(now.Unix() + 61)})), cfg: func(c *token.Config) { c.ClockSkew = time.Minute }, want: reason.ClaimInvalid, lookups: 1},
		{name: "41 iat at the skew edge", raw: signed("a", "RS256", hdr(), access(map[string]string{"iat": fmt.Sprint(now.Unix() + 60)})), cfg: func(c *token.Config) { c.ClockSkew = time.Minute }, want: "", lookups: 1},
		{name: "41 iat a string", raw: signed("a", "RS256", hdr(), access(map[string]string{"iat": `"1"`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "41 iat a fraction", raw: signed("a", "RS256", hdr(), access(map[string]string{"iat": "1.5"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "41 nbf null", raw: signed("a", "RS256", hdr(), access(map[string]string{"nbf": "null"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "41 iat negative", raw: signed("a", "RS256", hdr(), access(map[string]string{"iat": "-5"})), want: reason.ClaimInvalid, lookups: 1},
		// Row 42: iss variants.
		{name: "42 iss trailing slash", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"` + issA + `/"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss upper-case host", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"https://COGNITO-IDP.us-east-1.amazonaws.com/us-east-1_AAAAAAAAA"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss Cyrillic o", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"https://cognit\u043e-idp.us-east-1.amazonaws.com/us-east-1_AAAAAAAAA"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss another pool id", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAAAAAAAB"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss array", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `["` + issA + `"]`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss missing", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": ""})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss empty", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `""`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss http scheme", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"http://cognito-idp.us-east-1.amazonaws.com/us-east-1_AAAAAAAAA"`})), want: reason.IssuerUnknown, lookups: 0},
		{name: "42 iss other region", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"https://cognito-idp.us-west-2.amazonaws.com/us-east-1_AAAAAAAAA"`})), want: reason.IssuerUnknown, lookups: 0},
		// Row 43: token_use.
		{name: "43 token_use missing", raw: signed("a", "RS256", hdr(), access(map[string]string{"token_use": ""})), want: reason.TokenUseMismatch, lookups: 1},
		{name: "43 token_use array", raw: signed("a", "RS256", hdr(), access(map[string]string{"token_use": `["access"]`})), want: reason.TokenUseMismatch, lookups: 1},
		{name: "43 token_use Access", raw: signed("a", "RS256", hdr(), access(map[string]string{"token_use": `"Access"`})), want: reason.TokenUseMismatch, lookups: 1},
		{name: "43 token_use ID", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"token_use": `"ID"`})), want: reason.TokenUseMismatch, lookups: 1},
		{name: "43 token_use refresh", raw: signed("a", "RS256", hdr(), access(map[string]string{"token_use": `"refresh"`})), want: reason.TokenUseMismatch, lookups: 1},
		// Row 44-45: app clients.
		{name: "44 access token foreign client_id", raw: signed("a", "RS256", hdr(), access(map[string]string{"client_id": `"evilclient"`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "44 access token without client_id", raw: signed("a", "RS256", hdr(), access(map[string]string{"client_id": ""})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		// Refused unless the authorizer serves jwt routes (AudienceRule):
		// API Gateway's JWT authorizer reads aud first (TestAppClientRules).
		{name: "44 access token with allowed aud but foreign client_id", raw: signed("a", "RS256", hdr(), access(map[string]string{"client_id": `"evilclient"`, "aud": `"` + client + `"`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "44 access token client_id in another case", raw: signed("a", "RS256", hdr(), access(map[string]string{"client_id": `"` + strings.ToUpper(client) + `"`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "44 access token allowed client", raw: signed("a", "RS256", hdr(), access(nil)), cfg: withClients, want: "", lookups: 1},
		{name: "44 foreign client allowed when no clients configured", raw: signed("a", "RS256", hdr(), access(map[string]string{"client_id": `"evilclient"`})), want: "", lookups: 1},
		{name: "45 ID token aud array with the client", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"aud": `["evil","` + client + `"]`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "45 ID token aud array of one", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"aud": `["` + client + `"]`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "45 ID token foreign aud", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"aud": `"evil"`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "45 ID token without aud", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"aud": ""})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "45 ID token foreign aud, allowed client_id", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"aud": `"evil"`, "client_id": `"` + client + `"`})), cfg: withClients, want: reason.ClientNotAllowed, lookups: 1},
		{name: "45 ID token allowed aud", raw: signed("a", "RS256", hdr(), idTok(nil)), cfg: withClients, want: "", lookups: 1},
		// Row 47-49: size and depth.
		{name: "47 1 MiB of dots", raw: literal(strings.Repeat(".", 1<<20)), want: reason.TokenMalformed, lookups: 0},
		{name: "48 8 MiB token", raw: signed("a", "RS256", hdr(`"pad":"`+strings.Repeat("A", 8<<20)+`"`), access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "48 just over 16 KiB", raw: signed("a", "RS256", hdr(`"pad":"`+strings.Repeat("A", 12<<10)+`"`), access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "48 just under 16 KiB is verified", raw: signed("a", "RS256", hdr(`"pad":"`+strings.Repeat("A", 11<<10)+`"`), access(nil)), want: "", lookups: 1},
		{name: "49 header nested deeply", raw: signed("a", "RS256", hdr(`"x":`+strings.Repeat("[", 5000)+strings.Repeat("]", 5000)), access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "49 payload nested deeply", raw: signed("a", "RS256", hdr(), access(map[string]string{"x": strings.Repeat(`{"a":`, 2000) + "1" + strings.Repeat("}", 2000)})), want: reason.TokenMalformed, lookups: 0},
	}
	runCases(t, cases)
}

func withClients(c *token.Config) { c.ClientIDs = []string{"otherclient", client} }

// signedPadded signs a valid token, then adds '=' padding to the signature
// (and, when all, to the header and payload).
func signedPadded(all bool) func(testing.TB) string {
	return func(tb testing.TB) string {
		r := goodAccess(tb)
		parts := strings.Split(r, ".")
		pad := func(s string) string {
			if len(s)%4 == 0 {
				return s + "=" // no padding is due, and '=' is never allowed
			}
			return s + strings.Repeat("=", 4-len(s)%4)
		}
		parts[2] = pad(parts[2])
		if all {
			parts[0], parts[1] = pad(parts[0]), pad(parts[1])
		}
		return strings.Join(parts, ".")
	}
}

// TestVerifyRules covers the remaining rules: header and payload structure,
// key lookup failures, claim types, and the signature-before-claims order.
func TestVerifyRules(t *testing.T) {
	expired := fmt.Sprint(now.Unix() - 3600)
	cases := []verifyCase{
		{name: "valid access token", raw: signed("a", "RS256", hdr(), access(nil)), want: "", lookups: 1},
		{name: "valid ID token", raw: signed("a", "RS256", hdr(), idTok(nil)), want: "", lookups: 1},
		{name: "valid with the issuer-cognito-idp form", raw: signed("a", "RS256", hdr(), access(map[string]string{"iss": `"` + issANew + `"`})), want: "", lookups: 1},
		{name: "typ JWT", raw: signed("a", "RS256", hdr(`"typ":"JWT"`), access(nil)), want: "", lookups: 1},
		{name: "typ at+jwt", raw: signed("a", "RS256", hdr(`"typ":"at+jwt"`), access(nil)), want: "", lookups: 1},
		{name: "typ not a string", raw: signed("a", "RS256", hdr(`"typ":1`), access(nil)), want: reason.HeaderInvalid, lookups: 0},
		{name: "unknown header member is ignored", raw: signed("a", "RS256", hdr(`"x-custom":{"a":[1,2]}`), access(nil)), want: "", lookups: 1},
		{name: "PS256 when configured", raw: signed("a", "PS256", `{"kid":"`+kidA+`","alg":"PS256"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"PS256"} }, keys: func(k *fakeKeys) { k.sets[srcA][kidA].Alg = "" }, want: "", lookups: 1},
		{name: "RS512 when configured and the key agrees", raw: signed("a", "RS512", `{"kid":"`+kidA+`","alg":"RS512"}`, access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"RS512"} }, keys: func(k *fakeKeys) { k.sets[srcA][kidA].Alg = "RS512" }, want: "", lookups: 1},
		{name: "RS256 not in a configured list", raw: signed("a", "RS256", hdr(), access(nil)), cfg: func(c *token.Config) { c.Algorithms = []string{"PS256"} }, want: reason.AlgNotAllowed, lookups: 0},
		{name: "header is an array", raw: signed("a", "RS256", `["alg","RS256"]`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "header is not JSON", raw: signed("a", "RS256", `alg=RS256`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "header has trailing data", raw: signed("a", "RS256", hdr()+`{}`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "header has invalid UTF-8", raw: signed("a", "RS256", `{"kid":"`+kidA+"\xff"+`","alg":"RS256"}`, access(nil)), want: reason.TokenMalformed, lookups: 0},
		{name: "payload is a string", raw: signed("a", "RS256", hdr(), `"claims"`), want: reason.TokenMalformed, lookups: 0},
		{name: "payload is empty", raw: signed("a", "RS256", hdr(), ``), want: reason.TokenMalformed, lookups: 0},
		{name: "payload has a lone surrogate", raw: signed("a", "RS256", hdr(), access(map[string]string{"name": `"\ud800"`})), want: reason.TokenMalformed, lookups: 0},
		{name: "payload has a trailing comma", raw: signed("a", "RS256", hdr(), strings.TrimSuffix(access(nil), "}")+",}"), want: reason.TokenMalformed, lookups: 0},
		{name: "signature of the wrong length", raw: mutate(func(r string) string { return r[:strings.LastIndexByte(r, '.')+1] + "AAAA" }), want: reason.SignatureInvalid, lookups: 1},
		{name: "signature from another token", raw: func(tb testing.TB) string {
			other := signRS(tb, testKey(tb, "a"), "RS256", hdr(), idTok(nil))
			r := goodAccess(tb)
			return r[:strings.LastIndexByte(r, '.')] + "." + seg(other, 2)
		}, want: reason.SignatureInvalid, lookups: 1},
		{name: "payload changed after signing", raw: func(tb testing.TB) string {
			r := goodAccess(tb)
			forged := b64.EncodeToString([]byte(access(map[string]string{"sub": `"victim"`})))
			return seg(r, 0) + "." + forged + "." + seg(r, 2)
		}, want: reason.SignatureInvalid, lookups: 1},
		{name: "expired token with a bad signature is signature_invalid", raw: signed("b", "RS256", hdr(), access(map[string]string{"exp": expired})), want: reason.SignatureInvalid, lookups: 1},
		{name: "bad token_use with a bad signature is signature_invalid", raw: signed("b", "RS256", hdr(), access(map[string]string{"token_use": `"refresh"`})), want: reason.SignatureInvalid, lookups: 1},
		{name: "expired and wrong client is token_expired", raw: signed("a", "RS256", hdr(), access(map[string]string{"exp": expired, "client_id": `"evil"`})), cfg: withClients, want: reason.TokenExpired, lookups: 1},
		{name: "kid unknown", raw: signed("a", "RS256", `{"kid":"nope","alg":"RS256"}`, access(nil)), want: reason.KidUnknown, lookups: 1},
		{name: "keys unavailable", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.err = fmt.Errorf("fetch: %w", jwks.ErrUnavailable) }, want: reason.JWKSUnavailable, lookups: 1},
		{name: "pool source never registered", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { delete(k.sets, srcA) }, want: reason.JWKSUnavailable, lookups: 1},
		{name: "deadline", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.err = fmt.Errorf("wait: %w", context.DeadlineExceeded) }, want: reason.DeadlineExceeded, lookups: 1},
		{name: "canceled", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.err = context.Canceled }, want: reason.Canceled, lookups: 1},
		{name: "other key error", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.err = errors.New("boom") }, want: reason.Internal, lookups: 1},
		{name: "nil key without error", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.sets[srcA][kidA] = nil }, want: reason.Internal, lookups: 1},
		{name: "key of 1024 bits", raw: signed("weak", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) { k.sets[srcA][kidA].Public = &testKey(t, "weak").PublicKey }, want: reason.Internal, lookups: 1},
		{name: "key with exponent 3", raw: signed("a", "RS256", hdr(), access(nil)), keys: func(k *fakeKeys) {
			pub := testKey(t, "a").PublicKey
			pub.E = 3
			k.sets[srcA][kidA].Public = &pub
		}, want: reason.Internal, lookups: 1},
		{name: "sub a number", raw: signed("a", "RS256", hdr(), access(map[string]string{"sub": "1"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "sub null", raw: signed("a", "RS256", hdr(), access(map[string]string{"sub": "null"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "scope an array", raw: signed("a", "RS256", hdr(), access(map[string]string{"scope": `["pets/read"]`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "username an object", raw: signed("a", "RS256", hdr(), access(map[string]string{"username": `{"n":"alice"}`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "cognito:username a number", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"cognito:username": "7"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "client_id a number with no clients configured", raw: signed("a", "RS256", hdr(), access(map[string]string{"client_id": "7"})), want: reason.ClaimInvalid, lookups: 1},
		{name: "cognito:groups a string", raw: signed("a", "RS256", hdr(), access(map[string]string{"cognito:groups": `"admins"`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "cognito:groups with a number", raw: signed("a", "RS256", hdr(), access(map[string]string{"cognito:groups": `["admins",1]`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "cognito:groups null", raw: signed("a", "RS256", hdr(), access(map[string]string{"cognito:groups": `null`})), want: reason.ClaimInvalid, lookups: 1},
		{name: "cognito:groups empty", raw: signed("a", "RS256", hdr(), access(map[string]string{"cognito:groups": `[]`})), want: "", lookups: 1},
		{name: "ID token aud array accepted without clients configured", raw: signed("a", "RS256", hdr(), idTok(map[string]string{"aud": `["a","b"]`})), want: "", lookups: 1},
		{name: "second pool selected by iss", raw: signed("b", "RS256", hdr(), access(map[string]string{"iss": `"` + issB + `"`})), cfg: func(c *token.Config) {
			c.Pools = append(c.Pools, token.Pool{ID: "us-east-1_BBBBBBBBB", Issuers: []string{issB}, Keys: srcB})
		}, want: "", lookups: 1},
		{name: "second pool's key does not verify the first pool's token", raw: signed("b", "RS256", hdr(), access(nil)), cfg: func(c *token.Config) {
			c.Pools = append(c.Pools, token.Pool{ID: "us-east-1_BBBBBBBBB", Issuers: []string{issB}, Keys: srcB})
		}, want: reason.SignatureInvalid, lookups: 1},
		{name: "no pools configured", raw: signed("a", "RS256", hdr(), access(nil)), cfg: func(c *token.Config) { c.Pools = nil }, want: reason.IssuerUnknown, lookups: 0},
		{name: "empty token", raw: literal(""), want: reason.TokenMalformed, lookups: 0},
	}
	runCases(t, cases)
}

func TestVerifyNilConfig(t *testing.T) {
	v := token.NewVerifier(newWorld(t), nil)
	_, err := v.Verify(context.Background(), nil, goodAccess(t))
	if got := codeOf(t, err); got != reason.Internal {
		t.Fatalf("Verify(nil config) = %q, want %q", got, reason.Internal)
	}
}

// TestVerifyUsesTheWallClock checks that a nil clock means time.Now: the
// fixed-clock token of the other tests expired long before or after the
// real now, so it is only accepted under a matching clock.
func TestVerifyUsesTheWallClock(t *testing.T) {
	real := time.Now()
	raw := signRS(t, testKey(t, "a"), "RS256", hdr(), access(map[string]string{
		"iat": fmt.Sprint(real.Unix() - 10), "auth_time": fmt.Sprint(real.Unix() - 10), "exp": fmt.Sprint(real.Unix() + 600),
	}))
	if _, err := token.NewVerifier(newWorld(t), nil).Verify(context.Background(), configA(), raw); err != nil {
		t.Fatalf("Verify with the wall clock: %v", err)
	}
	stale := signRS(t, testKey(t, "a"), "RS256", hdr(), access(map[string]string{"exp": fmt.Sprint(real.Unix() - 600)}))
	_, err := token.NewVerifier(newWorld(t), nil).Verify(context.Background(), configA(), stale)
	if got := codeOf(t, err); got != reason.TokenExpired {
		t.Fatalf("Verify(expired) with the wall clock = %q, want %q", got, reason.TokenExpired)
	}
}

// TestAppClientRules pins the two readings of appClientIds a verified token
// carries: by token_use (aud of an ID token, client_id of an access token)
// and, when the authorizer serves jwt routes (AudienceRule), as API
// Gateway HTTP API's JWT authorizer (aud when present, else client_id). A
// token that fails every rule in force is refused by Verify; without
// AudienceRule, Verify is exactly the by-use rule.
func TestAppClientRules(t *testing.T) {
	tests := []struct {
		name         string
		payload      string
		clients      bool
		byUse, byAud bool
	}{
		{"ID token, allowed aud", idTok(nil), true, true, true},
		{"access token, allowed client_id", access(nil), true, true, true},
		{"access token, allowed aud, foreign client_id", access(map[string]string{"client_id": `"evil"`, "aud": `"` + client + `"`}), true, false, true},
		{"access token, foreign aud, allowed client_id", access(map[string]string{"aud": `"evil"`}), true, true, false},
		{"access token, aud array with the client", access(map[string]string{"aud": `["` + client + `"]`}), true, true, false},
		{"ID token without aud, allowed client_id", idTok(map[string]string{"aud": "", "client_id": `"` + client + `"`}), true, false, true},
		{"ID token, foreign aud, allowed client_id", idTok(map[string]string{"aud": `"evil"`, "client_id": `"` + client + `"`}), true, false, false},
		{"access token without client_id or aud", access(map[string]string{"client_id": ""}), true, false, false},
		{"no clients configured", access(map[string]string{"client_id": `"evil"`, "aud": `"evil"`}), false, true, true},
	}
	for _, tt := range tests {
		for _, audienceRule := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/audience rule %v", tt.name, audienceRule), func(t *testing.T) {
				cfg := configA()
				if tt.clients {
					withClients(cfg)
				}
				cfg.AudienceRule = audienceRule
				wantAud := tt.byAud && (audienceRule || !tt.clients)
				v := token.NewVerifier(newWorld(t), func() time.Time { return now })
				c, err := v.Verify(context.Background(), cfg, signed("a", "RS256", hdr(), tt.payload)(t))
				if !tt.byUse && !wantAud {
					if codeOf(t, err) != reason.ClientNotAllowed {
						t.Fatalf("Verify = %v, want client_not_allowed", err)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if c.ClientAllowedByUse() != tt.byUse || c.ClientAllowedByAudience() != wantAud {
					t.Fatalf("by use %v, by audience %v; want %v, %v", c.ClientAllowedByUse(), c.ClientAllowedByAudience(), tt.byUse, wantAud)
				}
				// The cached form keeps both readings.
				k := c.Compact(nil, false)
				if k.ClientAllowedByUse() != tt.byUse || k.ClientAllowedByAudience() != wantAud {
					t.Fatalf("compact: by use %v, by audience %v; want %v, %v", k.ClientAllowedByUse(), k.ClientAllowedByAudience(), tt.byUse, wantAud)
				}
			})
		}
	}
	// The zero Claims passes neither: nothing but Verify grants them.
	var zero token.Claims
	if zero.ClientAllowedByUse() || zero.ClientAllowedByAudience() {
		t.Fatal("zero Claims pass an app client rule")
	}
}

// TestRevocationClaims: jti, origin_jti and iat, which a revocation entry
// is matched against, read the same from the full and the compact
// (cached) form, whatever the authorizer keeps; absent or non-string ones
// read as absent, never as another token's.
func TestRevocationClaims(t *testing.T) {
	tests := []struct {
		name           string
		payload        string
		jti, originJTI string
		iat            int64
		hasIAT         bool
	}{
		{"all three", access(nil), "jti-1", "ojti-1", now.Unix() - 60, true},
		{"id token", idTok(nil), "jti-1", "ojti-1", now.Unix() - 60, true},
		{"no origin_jti", access(map[string]string{"origin_jti": ""}), "jti-1", "", now.Unix() - 60, true},
		{"no iat", access(map[string]string{"iat": ""}), "jti-1", "ojti-1", 0, false},
		{"iat zero", access(map[string]string{"iat": "0"}), "jti-1", "ojti-1", 0, true},
		{"jti not a string", access(map[string]string{"jti": "7"}), "", "ojti-1", now.Unix() - 60, true},
		{"UUIDs", access(map[string]string{"jti": `"3a25593b-dc5a-400e-b339-347dc5a79edc"`, "origin_jti": `"0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c"`}),
			"3a25593b-dc5a-400e-b339-347dc5a79edc", "0b9d4a2e-7f3c-4c1e-9a51-1d2f3e4a5b6c", now.Unix() - 60, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := token.NewVerifier(newWorld(t), func() time.Time { return now })
			c, err := v.Verify(context.Background(), configA(), signed("a", "RS256", hdr(), tt.payload)(t))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			for form, cl := range map[string]*token.Claims{"full": c, "compact": c.Compact(nil, false), "compact keeping groups and a claim": c.Compact([]string{"email"}, true)} {
				iat, ok := cl.IssuedAt()
				if cl.JTI() != tt.jti || cl.OriginJTI() != tt.originJTI || ok != tt.hasIAT || ok && iat.Unix() != tt.iat {
					t.Errorf("%s: jti %q origin_jti %q iat %v (%v); want %q %q %d (%v)", form, cl.JTI(), cl.OriginJTI(), iat.Unix(), ok, tt.jti, tt.originJTI, tt.iat, tt.hasIAT)
				}
				if cl.Subject() != "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee" {
					t.Errorf("%s: sub %q", form, cl.Subject())
				}
			}
		})
	}
}
