package jwks

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseSetAdmission(t *testing.T) {
	base := key(t, kidA)
	weak := fixtureKeys(t, "rsa1024.json")["weak-1024"]
	private := fixtureKeys(t, "private.json")["with-private"]

	nBytes := modulus(t, base).Bytes()
	even := new(big.Int).SetBytes(nBytes)
	even.SetBit(even, 0, 0)
	huge := make([]byte, 1025) // 8193 bits, odd
	huge[0], huge[len(huge)-1] = 0x01, 0x01

	with := func(members map[string]any, drop ...string) jwk {
		k := clone(base)
		for _, n := range drop {
			delete(k, n)
		}
		for n, v := range members {
			k[n] = v
		}
		return k
	}
	b64 := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name string
		key  any    // a jwk, or raw JSON as json.RawMessage
		kid  string // kid the key would have
		rule string // "" = admitted
	}{
		{name: "cognito key", key: base, kid: kidA},
		{name: "alg absent", key: with(nil, "alg"), kid: kidA},
		{name: "use absent", key: with(nil, "use"), kid: kidA},
		{name: "alg PS256", key: with(map[string]any{"alg": "PS256"}), kid: kidA},
		{name: "alg RS512", key: with(map[string]any{"alg": "RS512"}), kid: kidA},
		{name: "key_ops with verify", key: with(map[string]any{"key_ops": []string{"sign", "verify"}}), kid: kidA},
		{name: "e with leading zero", key: with(map[string]any{"e": "AAEAAQ"}), kid: kidA},
		{name: "private members published", key: private, kid: "with-private", rule: rulePrivate},
		{name: "3072-bit modulus", key: key(t, kid3072), kid: kid3072},

		{name: "use enc", key: with(map[string]any{"use": "enc"}), kid: kidA, rule: ruleUse},
		{name: "use null", key: with(map[string]any{"use": nil}), kid: kidA, rule: ruleUse},
		{name: "use empty", key: with(map[string]any{"use": ""}), kid: kidA, rule: ruleUse},
		{name: "kty oct", key: jwk{"kty": "oct", "kid": kidA, "k": "c2VjcmV0", "alg": "HS256"}, kid: kidA, rule: ruleKty},
		{name: "kty EC", key: jwk{"kty": "EC", "kid": kidA, "crv": "P-256", "x": "AQ", "y": "AQ", "alg": "ES256", "use": "sig"}, kid: kidA, rule: ruleKty},
		{name: "kty lower case", key: with(map[string]any{"kty": "rsa"}), kid: kidA, rule: ruleKty},
		{name: "kty only in another case", key: with(map[string]any{"KTY": "RSA"}, "kty"), kid: kidA, rule: ruleKty},
		{name: "1024-bit modulus", key: weak, kid: "weak-1024", rule: ruleModulusSmall},
		{name: "modulus above 8192 bits", key: with(map[string]any{"n": b64(huge)}), kid: kidA, rule: ruleModulusLarge},
		{name: "e=3", key: with(map[string]any{"e": "Aw"}), kid: kidA, rule: ruleExponent},
		{name: "e=1", key: with(map[string]any{"e": "AQ"}), kid: kidA, rule: ruleExponent},
		{name: "e padded", key: with(map[string]any{"e": "AQAB="}), kid: kidA, rule: ruleExponent},
		{name: "e missing", key: with(nil, "e"), kid: kidA, rule: ruleExponent},
		{name: "e a number", key: with(map[string]any{"e": 65537}), kid: kidA, rule: ruleExponent},
		{name: "alg HS256", key: with(map[string]any{"alg": "HS256"}), kid: kidA, rule: ruleAlg},
		{name: "alg none", key: with(map[string]any{"alg": "none"}), kid: kidA, rule: ruleAlg},
		{name: "alg ES256", key: with(map[string]any{"alg": "ES256"}), kid: kidA, rule: ruleAlg},
		{name: "alg empty", key: with(map[string]any{"alg": ""}), kid: kidA, rule: ruleAlg},
		{name: "alg RSA-OAEP", key: with(map[string]any{"alg": "RSA-OAEP"}), kid: kidA, rule: ruleAlg},
		{name: "key_ops encrypt", key: with(map[string]any{"key_ops": []string{"encrypt"}}), kid: kidA, rule: ruleKeyOps},
		{name: "key_ops empty", key: with(map[string]any{"key_ops": []string{}}), kid: kidA, rule: ruleKeyOps},
		{name: "key_ops a string", key: with(map[string]any{"key_ops": "verify"}), kid: kidA, rule: ruleKeyOps},
		{name: "kid missing", key: with(nil, "kid"), kid: "", rule: ruleKid},
		{name: "kid empty", key: with(map[string]any{"kid": ""}), kid: "", rule: ruleKid},
		{name: "kid a number", key: with(map[string]any{"kid": 7}), kid: "", rule: ruleKid},
		{name: "n missing", key: with(nil, "n"), kid: kidA, rule: ruleModulus},
		{name: "n empty", key: with(map[string]any{"n": ""}), kid: kidA, rule: ruleModulus},
		{name: "n even", key: with(map[string]any{"n": b64(even.Bytes())}), kid: kidA, rule: ruleModulus},
		{name: "n padded", key: with(map[string]any{"n": b64(nBytes) + "="}), kid: kidA, rule: ruleModulus},
		{name: "n std alphabet", key: with(map[string]any{"n": base64.RawStdEncoding.EncodeToString(append([]byte{0xfb, 0xff}, nBytes...))}), kid: kidA, rule: ruleModulus},
		{name: "n with line break", key: with(map[string]any{"n": b64(nBytes)[:40] + "\n" + b64(nBytes)[40:]}), kid: kidA, rule: ruleModulus},
		{name: "n not a string", key: with(map[string]any{"n": 12345}), kid: kidA, rule: ruleModulus},
		{name: "duplicate member", key: json.RawMessage(`{"kty":"RSA","kty":"oct","kid":"dup-member","n":"AQ","e":"AQAB"}`), kid: "dup-member", rule: ruleNotObject},
		{name: "key not an object", key: json.RawMessage(`"RSA"`), kid: "", rule: ruleNotObject},
	}
	other := key(t, kidB) // keeps the set non-empty whatever the case drops
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, res, err := parseSet(setJSON(t, tt.key, other))
			if err != nil {
				t.Fatalf("parseSet: %v", err)
			}
			if _, ok := set.keys[kidB]; !ok {
				t.Errorf("the good neighbour key was dropped: %+v", res.dropped)
			}
			got, admitted := set.keys[tt.kid]
			if tt.rule == "" {
				if !admitted {
					t.Fatalf("key refused, want admitted; dropped: %+v", res.dropped)
				}
				if got.Public.E != 65537 || got.Public.N.BitLen() < 2048 || got.Kid != tt.kid {
					t.Errorf("admitted key = kid %q e %d bits %d", got.Kid, got.Public.E, got.Public.N.BitLen())
				}
				if len(res.dropped) != 0 {
					t.Errorf("dropped = %+v, want none", res.dropped)
				}
				return
			}
			if admitted && tt.kid != "" {
				t.Fatalf("key admitted, want dropped by %q", tt.rule)
			}
			want := droppedKey{kid: tt.kid, rule: tt.rule}
			if !slices.Contains(res.dropped, want) {
				t.Errorf("dropped = %+v, want it to contain %+v", res.dropped, want)
			}
			if len(set.keys) != 1 {
				t.Errorf("set has %d keys, want only the neighbour", len(set.keys))
			}
		})
	}
}

func TestParseSetAdmittedKeyMatchesJWK(t *testing.T) {
	a := key(t, kidA)
	set, _, err := parseSet(setJSON(t, a))
	if err != nil {
		t.Fatalf("parseSet: %v", err)
	}
	k := set.keys[kidA]
	if k.Public.N.Cmp(modulus(t, a)) != 0 {
		t.Error("modulus differs from the JWK's n")
	}
	if k.Alg != "RS256" || k.Kid != kidA {
		t.Errorf("key = kid %q alg %q", k.Kid, k.Alg)
	}
	noAlg := clone(a)
	delete(noAlg, "alg")
	set, _, err = parseSet(setJSON(t, noAlg))
	if err != nil {
		t.Fatalf("parseSet: %v", err)
	}
	if got := set.keys[kidA].Alg; got != "" {
		t.Errorf("alg of a key without alg = %q, want empty", got)
	}
}

func TestParseSetDuplicateKid(t *testing.T) {
	a, b := key(t, kidA), key(t, kidB)
	bAsA := clone(b)
	bAsA["kid"] = kidA
	encAsA := clone(b)
	encAsA["kid"], encAsA["use"] = kidA, "enc"
	octAsA := jwk{"kty": "oct", "kid": kidA, "k": "c2VjcmV0"}

	tests := []struct {
		name string
		keys []any
	}{
		{"two RSA keys", []any{a, bAsA, key(t, kid3072)}},
		{"same key twice", []any{a, clone(a), key(t, kid3072)}},
		{"RSA and an enc key", []any{a, encAsA, key(t, kid3072)}},
		{"RSA and an oct key", []any{octAsA, a, key(t, kid3072)}},
		// Found by FuzzParseSet: an object refused for a duplicate member
		// still claims its kid.
		{"RSA and a malformed object", []any{a, json.RawMessage(`{"kid":"` + kidA + `","x":1,"x":2}`), key(t, kid3072)}},
		{"RSA and an object with two kids", []any{a, json.RawMessage(`{"kid":"` + kidA + `","kid":"other"}`), key(t, kid3072)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, res, err := parseSet(setJSON(t, tt.keys...))
			if err != nil {
				t.Fatalf("parseSet: %v", err)
			}
			if _, ok := set.keys[kidA]; ok {
				t.Fatal("a duplicated kid was admitted")
			}
			if _, ok := set.keys[kid3072]; !ok {
				t.Error("an unrelated key was dropped")
			}
			if !slices.Contains(res.dropped, droppedKey{kid: kidA, rule: ruleDuplicateKid}) {
				t.Errorf("dropped = %+v, want a duplicate-kid entry", res.dropped)
			}
		})
	}
}

// A key published with its private members is refused: whoever reads the
// set can sign with it, so tokens under it prove nothing.
func TestParseSetPrivateMembers(t *testing.T) {
	private := fixtureKeys(t, "private.json")["with-private"]
	_, res, err := parseSet(setJSON(t, private))
	if !errors.Is(err, errNoKeys) {
		t.Fatalf("parseSet = %v, want errNoKeys: the only key is refused", err)
	}
	if len(res.dropped) != 1 || res.dropped[0].rule != rulePrivate || res.dropped[0].kid != "with-private" {
		t.Errorf("dropped = %+v, want the private key refused", res.dropped)
	}
	set, _, err := parseSet(setJSON(t, private, key(t, kidA)))
	if err != nil || set.keys["with-private"] != nil || set.keys[kidA] == nil {
		t.Fatalf("mixed set: err %v, keys %v; want only the public key admitted", err, set.keys)
	}
}

func TestParseSetRefusesBody(t *testing.T) {
	good := string(setJSON(t, key(t, kidA)))
	bad := string(setJSON(t, key(t, kidA)))
	bad = strings.Replace(bad, `"use":"sig"`, `"use":"enc"`, 1)

	tests := []struct {
		name string
		body string
		want error
	}{
		{"empty", "", errNotKeySet},
		{"null", "null", errNotKeySet},
		{"array", "[" + good + "]", errNotKeySet},
		{"string", `"keys"`, errNotKeySet},
		{"no keys member", `{"kys":[]}`, errNotKeySet},
		{"keys in another case", strings.Replace(good, `"keys"`, `"Keys"`, 1), errNotKeySet},
		{"keys null", `{"keys":null}`, errNotKeySet},
		{"keys an object", `{"keys":{}}`, errNotKeySet},
		{"duplicate keys member", `{"keys":[],"keys":` + good[len(`{"keys":`):], errNotKeySet},
		{"truncated", good[:len(good)/2], errNotKeySet},
		{"trailing data", good + `{}`, errNotKeySet},
		{"trailing garbage", good + ` x`, errNotKeySet},
		{"html", "<html><body>Service Unavailable</body></html>", errNotKeySet},
		{"no keys", `{"keys":[]}`, errNoKeys},
		{"no admissible key", bad, errNoKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, _, err := parseSet([]byte(tt.body))
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if set != nil {
				t.Error("a set came back with an error")
			}
		})
	}
	t.Run("surrounding whitespace", func(t *testing.T) {
		if _, _, err := parseSet([]byte(" \n" + good + "\n")); err != nil {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("extra members ignored", func(t *testing.T) {
		body := `{"note":"x","keys":` + good[len(`{"keys":`):len(good)-1] + `}`
		if _, _, err := parseSet([]byte(body)); err != nil {
			t.Errorf("err = %v", err)
		}
	})
}

// FuzzParseSet checks that parseSet never panics and never admits a key that
// breaks a rule. The oracle re-reads the input with plain encoding/json
// (exact names: parseSet refuses duplicate members, so both readings agree)
// and re-checks every admitted key against its JWK.
func FuzzParseSet(f *testing.F) {
	for _, name := range []string{"keys.json", "private.json", "rsa1024.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	a := fixtureKeys(f, "keys.json")[kidA]
	dup := setJSON(f, a, a)
	f.Add(dup)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"k","k":"AA"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"AQ","e":"AQAB","use":"sig"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`[]`))

	f.Fuzz(func(t *testing.T, data []byte) {
		set, _, err := parseSet(data)
		if err != nil {
			if set != nil {
				t.Fatal("set returned with an error")
			}
			return
		}
		if len(set.keys) == 0 {
			t.Fatal("empty set returned without error")
		}
		var doc map[string]any
		if err := json.Unmarshal(data, &doc); err != nil {
			t.Fatalf("parseSet accepted what encoding/json refuses: %v", err)
		}
		elems, ok := doc["keys"].([]any)
		if !ok {
			t.Fatal("accepted a body whose keys is not an array")
		}
		for kid, k := range set.keys {
			checkAdmitted(t, kid, k, elems)
		}
	})
}

func checkAdmitted(t *testing.T, kid string, k *Key, elems []any) {
	t.Helper()
	if kid == "" || k.Kid != kid {
		t.Fatalf("key indexed %q has kid %q", kid, k.Kid)
	}
	if k.Public == nil || k.Public.E != 65537 {
		t.Fatalf("kid %q: exponent is not 65537", kid)
	}
	if bits := k.Public.N.BitLen(); bits < 2048 || bits > 8192 || k.Public.N.Bit(0) == 0 {
		t.Fatalf("kid %q: modulus of %d bits (odd: %v)", kid, bits, k.Public.N.Bit(0) == 1)
	}
	var matches []map[string]any
	for _, el := range elems {
		if m, ok := el.(map[string]any); ok && m["kid"] == kid {
			matches = append(matches, m)
		}
	}
	if len(matches) != 1 {
		t.Fatalf("kid %q appears in %d key objects, admitted anyway", kid, len(matches))
	}
	m := matches[0]
	if m["kty"] != "RSA" {
		t.Fatalf("kid %q: kty %v admitted", kid, m["kty"])
	}
	if use, ok := m["use"]; ok && use != "sig" {
		t.Fatalf("kid %q: use %v admitted", kid, use)
	}
	if ops, ok := m["key_ops"]; ok {
		list, isList := ops.([]any)
		if !isList || !slices.Contains(list, any("verify")) {
			t.Fatalf("kid %q: key_ops %v admitted", kid, ops)
		}
	}
	if alg, ok := m["alg"]; ok {
		if !slices.Contains([]any{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg) || alg != k.Alg {
			t.Fatalf("kid %q: alg %v admitted as %q", kid, alg, k.Alg)
		}
	} else if k.Alg != "" {
		t.Fatalf("kid %q: alg %q invented", kid, k.Alg)
	}
	n, ok := m["n"].(string)
	if !ok || strings.ContainsAny(n, "\r\n=") {
		t.Fatalf("kid %q: n %v admitted", kid, m["n"])
	}
	nb, err := base64.RawURLEncoding.Strict().DecodeString(n)
	if err != nil || new(big.Int).SetBytes(nb).Cmp(k.Public.N) != 0 {
		t.Fatalf("kid %q: modulus does not match n (%v)", kid, err)
	}
	e, ok := m["e"].(string)
	if !ok || strings.ContainsAny(e, "\r\n=") {
		t.Fatalf("kid %q: e %v admitted", kid, m["e"])
	}
	eb, err := base64.RawURLEncoding.Strict().DecodeString(e)
	if err != nil || new(big.Int).SetBytes(eb).Cmp(big.NewInt(65537)) != 0 {
		t.Fatalf("kid %q: e %q is not 65537", kid, e)
	}
}

func BenchmarkParseSet(b *testing.B) {
	data, err := os.ReadFile(filepath.Join("testdata", "keys.json"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := parseSet(bytes.Clone(data)); err != nil {
			b.Fatal(err)
		}
	}
}
