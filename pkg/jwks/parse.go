package jwks

import (
	"bytes"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strings"

	jose "github.com/cognito-extauthz/cognito-extauthz/pkg/token/alg"
)

// Rules a key can fail; they appear in the warn log that names the key.
const (
	ruleNotObject    = "not a JSON object without duplicate members"
	ruleKid          = "kid missing, empty or not a string"
	ruleKty          = "kty is not RSA"
	ruleUse          = "use is neither absent nor sig"
	ruleKeyOps       = "key_ops present without verify"
	ruleAlg          = "alg is not an RSA signature algorithm"
	ruleDuplicateKid = "kid appears more than once in the set"
	rulePrivate      = "private key members published: anyone holding the set can sign with it"
)

// Set-level parse failures; fetch maps them to the parse and no_keys
// results.
var (
	errNotKeySet = errors.New(`body is not a {"keys":[...]} JSON object`)
	errNoKeys    = errors.New("key set has no admissible key")
)

// privateMembers are the RSA private-key members of RFC 7518 section 6.3.2.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth"}

// keySet is one immutable, admitted key set. It is replaced as a whole,
// never modified, so readers need no lock.
type keySet struct {
	keys map[string]*Key
}

// droppedKey is one key the admission rules refused, for the warn log.
type droppedKey struct {
	kid  string // as found; "" when the key had none
	rule string
}

// parseResult is what parseSet learned about a body besides its keys.
type parseResult struct {
	dropped []droppedKey
}

// parseSet parses a JWKS body and admits only RSA signature-verification
// keys of sane size (see the rule constants). Each key is judged on its own:
// one bad key drops that key, not the set. A body that is not a
// {"keys":[...]} object fails with errNotKeySet; one with no admissible key
// with errNoKeys.
func parseSet(data []byte) (*keySet, parseResult, error) {
	var res parseResult
	top, err := decodeObject(data)
	if err != nil {
		return nil, res, fmt.Errorf("%w: %w", errNotKeySet, err)
	}
	rawKeys, ok := top["keys"]
	if !ok || !startsWith(rawKeys, '[') {
		return nil, res, fmt.Errorf("%w: keys is missing or not an array", errNotKeySet)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(rawKeys, &elems); err != nil {
		return nil, res, fmt.Errorf("%w: %w", errNotKeySet, err)
	}

	type candidate struct {
		key *Key
	}
	seen := make(map[string]int, len(elems))
	admitted := make([]candidate, 0, len(elems))
	for _, raw := range elems {
		list, err := decodeMembers(raw)
		if err != nil {
			res.dropped = append(res.dropped, droppedKey{rule: ruleNotObject})
			continue
		}
		// Every kid counts towards duplicate detection, even one of a key
		// refused otherwise: an oct or enc key, or a malformed object,
		// sharing a kid with an RSA signing key makes "the key for this
		// kid" ambiguous.
		kids := kidsOf(list)
		for _, kid := range kids {
			seen[kid]++
		}
		members, err := uniqueMembers(list)
		if err != nil {
			res.dropped = append(res.dropped, droppedKey{kid: strings.Join(kids, ","), rule: ruleNotObject})
			continue
		}
		kid, _, _ := stringMember(members, "kid")
		k, rule := admitKey(members)
		if rule == "" && hasAny(members, privateMembers) {
			// A published private key signs for whoever reads the set:
			// tokens under it prove nothing, so the key is never used.
			rule = rulePrivate
		}
		if rule != "" {
			res.dropped = append(res.dropped, droppedKey{kid: kid, rule: rule})
			continue
		}
		admitted = append(admitted, candidate{key: k})
	}

	set := &keySet{keys: make(map[string]*Key, len(admitted))}
	for _, c := range admitted {
		if seen[c.key.Kid] > 1 {
			res.dropped = append(res.dropped, droppedKey{kid: c.key.Kid, rule: ruleDuplicateKid})
			continue
		}
		set.keys[c.key.Kid] = c.key
	}
	if len(set.keys) == 0 {
		return nil, res, errNoKeys
	}
	return set, res, nil
}

// admitKey applies the admission rules to one JWK's members. It returns the
// key, or the first rule the JWK breaks. Only n and e are read; parseSet
// refuses keys that also carry private members.
func admitKey(m map[string]json.RawMessage) (*Key, string) {
	kid, _, err := stringMember(m, "kid")
	if err != nil || kid == "" {
		return nil, ruleKid
	}
	if kty, _, err := stringMember(m, "kty"); err != nil || kty != "RSA" {
		return nil, ruleKty
	}
	if use, present, err := stringMember(m, "use"); err != nil || (present && use != "sig") {
		return nil, ruleUse
	}
	if raw, present := m["key_ops"]; present {
		var ops []string
		if !startsWith(raw, '[') || json.Unmarshal(raw, &ops) != nil || !slices.Contains(ops, "verify") {
			return nil, ruleKeyOps
		}
	}
	alg, algPresent, err := stringMember(m, "alg")
	if err != nil || (algPresent && !jose.IsRSA(alg)) {
		return nil, ruleAlg
	}

	nStr, _, err := stringMember(m, "n")
	if err != nil {
		return nil, ruleModulus
	}
	nBytes, err := decodeBase64URL(nStr)
	if err != nil || len(nBytes) == 0 {
		return nil, ruleModulus
	}
	n := new(big.Int).SetBytes(nBytes)

	pub := &rsa.PublicKey{N: n, E: exponent(m)}
	if err := CheckKey(pub); err != nil {
		return nil, err.Error()
	}
	key, err := NewKey(kid, alg, pub)
	if err != nil {
		// CheckKey admits nothing rsapkcs1 refuses; kept closed regardless.
		return nil, ruleModulus
	}
	return key, ""
}

// exponent returns the JWK's e, or 0 when it is missing, malformed or too
// large, which CheckKey then refuses.
func exponent(m map[string]json.RawMessage) int {
	eStr, _, err := stringMember(m, "e")
	if err != nil {
		return 0
	}
	eBytes, err := decodeBase64URL(eStr)
	if err != nil || len(eBytes) == 0 || len(eBytes) > 4 {
		return 0
	}
	return int(new(big.Int).SetBytes(eBytes).Int64())
}

// member is one name/value pair of a JSON object, value kept raw.
type member struct {
	name  string
	value json.RawMessage
}

// decodeObject decodes one JSON object into its members. Unlike
// json.Unmarshal into a struct it matches member names exactly
// (encoding/json folds case, so "KTY" would fill Kty) and refuses duplicate
// members instead of letting the last one win (RFC 7517 section 4 allows
// either).
func decodeObject(data []byte) (map[string]json.RawMessage, error) {
	list, err := decodeMembers(data)
	if err != nil {
		return nil, err
	}
	return uniqueMembers(list)
}

// decodeMembers decodes one JSON object into its members in order,
// duplicates included. Nothing may follow the object.
func decodeMembers(data []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("read JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("not a JSON object")
	}
	var list []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("read member name: %w", err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, errors.New("member name is not a string")
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("read member %q: %w", name, err)
		}
		list = append(list, member{name: name, value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, fmt.Errorf("read end of object: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return list, nil
}

func uniqueMembers(list []member) (map[string]json.RawMessage, error) {
	m := make(map[string]json.RawMessage, len(list))
	for _, mb := range list {
		if _, dup := m[mb.name]; dup {
			return nil, fmt.Errorf("duplicate member %q", mb.name)
		}
		m[mb.name] = mb.value
	}
	return m, nil
}

// kidsOf returns the distinct non-empty string values of every kid member.
func kidsOf(list []member) []string {
	var kids []string
	for _, mb := range list {
		if mb.name != "kid" || !startsWith(mb.value, '"') {
			continue
		}
		var kid string
		if json.Unmarshal(mb.value, &kid) == nil && kid != "" && !slices.Contains(kids, kid) {
			kids = append(kids, kid)
		}
	}
	return kids
}

// stringMember returns the string value of member name. A member that is
// present but not a JSON string (null included) is an error, so "absent"
// never hides a wrong type.
func stringMember(m map[string]json.RawMessage, name string) (string, bool, error) {
	raw, ok := m[name]
	if !ok {
		return "", false, nil
	}
	if !startsWith(raw, '"') {
		return "", true, fmt.Errorf("%s is not a string", name)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", true, fmt.Errorf("%s: %w", name, err)
	}
	return s, true, nil
}

// decodeBase64URL decodes unpadded base64url strictly. The standard decoder
// silently skips CR and LF even in strict mode, so they are refused here.
func decodeBase64URL(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("line break in base64url")
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("decode base64url: %w", err)
	}
	return b, nil
}

func startsWith(raw json.RawMessage, c byte) bool {
	raw = bytes.TrimLeft(raw, " \t\r\n")
	return len(raw) > 0 && raw[0] == c
}

func hasAny(m map[string]json.RawMessage, names []string) bool {
	for _, n := range names {
		if _, ok := m[n]; ok {
			return true
		}
	}
	return false
}
