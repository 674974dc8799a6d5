package token

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jws"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token/alg"
)

// Keys finds one verification key by kid in one key source. *jwks.Cache
// satisfies it. Errors are jwks.ErrKidUnknown, jwks.ErrUnavailable, or the
// context's error.
type Keys interface {
	Key(ctx context.Context, src jwks.Source, kid string) (*jwks.Key, error)
}

// Verifier checks Cognito tokens against an authorizer's Config. It holds no
// per-request state and is safe for concurrent use.
type Verifier struct {
	keys Keys
	now  func() time.Time
}

// NewVerifier returns a Verifier that finds keys in keys and reads the clock
// from now; a nil now means time.Now.
func NewVerifier(keys Keys, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	return &Verifier{keys: keys, now: now}
}

// rsaVerifiers maps each algorithm of alg.RSA, the only ones a token may
// name, to its jwx verifier, looked up once: a verifier holds only its
// algorithm. RS256, RS384 and RS512 are verified by the key itself (see
// verifySignature); jwx verifies PS256, PS384 and PS512.
var rsaVerifiers = func() map[string]jws.Verifier2 {
	m := map[string]jws.Verifier2{}
	for _, name := range alg.RSA() {
		if a, ok := jwa.LookupSignatureAlgorithm(name); ok {
			if v, err := jws.VerifierFor(a); err == nil {
				m[name] = v
			}
		}
	}
	return m
}()

// verifySignature checks sig over input with key under algName. RS256 (all
// Cognito signs with), RS384 and RS512 go to the key's PKCS #1 v1.5
// verification, which keeps the modulus's precomputation between tokens
// (a third of a verification's CPU with crypto/rsa, which rebuilds it per
// call); tests hold it to jwx's verdict. PS256/384/512 go to jwx.
func verifySignature(key *jwks.Key, algName string, input, sig []byte) error {
	switch algName {
	case "RS256":
		d := sha256.Sum256(input)
		return key.VerifyPKCS1v15(crypto.SHA256, d[:], sig)
	case "RS384":
		d := sha512.Sum384(input)
		return key.VerifyPKCS1v15(crypto.SHA384, d[:], sig)
	case "RS512":
		d := sha512.Sum512(input)
		return key.VerifyPKCS1v15(crypto.SHA512, d[:], sig)
	}
	verifier := rsaVerifiers[algName]
	if verifier == nil {
		return fmt.Errorf("no verifier for %s", algName)
	}
	return verifier.Verify(key.Public, input, sig)
}

// forbiddenHeaders are JOSE header parameters that would change how the
// token is verified or decoded (keys or certificates supplied by the token,
// critical extensions, unencoded payloads, compression, encryption, nesting).
// None is ever honoured; their presence alone rejects the token.
var forbiddenHeaders = []string{"jwk", "jku", "x5u", "x5c", "x5t", "x5t#S256", "crit", "b64", "zip", "enc", "cty"}

// maxNumericDate is 9999-12-31T23:59:59Z. A NumericDate beyond it is not a
// date any issuer means, and bounding it keeps time arithmetic from
// overflowing.
const maxNumericDate = 253402300799

// maxInDetail bounds how much attacker-chosen text (a kid, an iss) reaches
// a log line.
const maxInDetail = 64

// Verify runs the token checks that do not depend on the route for one
// authorizer: shape, JOSE header, issuer (before any key lookup), key,
// signature, exp/nbf/iat, token_use, app client and claim types, in that
// order, so that an expired token with a bad signature is reported as
// signature_invalid. Every error is a *reason.Error; its Detail never holds
// token material. The returned Claims are immutable.
func (v *Verifier) Verify(ctx context.Context, cfg *Config, raw string) (*Claims, error) {
	if cfg == nil || v.keys == nil {
		return nil, reason.New(reason.Internal, "verifier without keys or config")
	}
	// Step 0: shape, before any parser sees the bytes.
	h64, p64, s64, err := split(raw)
	if err != nil {
		return nil, err
	}
	seg, err := decodeSegments([3]string{h64, p64, s64})
	if err != nil {
		return nil, err
	}
	hdrJSON, payJSON, sig := seg[0], seg[1], seg[2]

	// Step 1: JOSE header.
	algName, kid, err := checkHeader(cfg, hdrJSON)
	if err != nil {
		return nil, err
	}

	// Step 2: payload JSON and the issuer, before any key lookup, so an
	// attacker-chosen iss never causes I/O.
	claims, err := parseOwnedObject(payJSON)
	if err != nil {
		return nil, reason.Wrap(reason.TokenMalformed, "payload", err)
	}
	iss, isString := claims["iss"].(string)
	if !isString {
		return nil, reason.New(reason.IssuerUnknown, "claim iss is missing or not a string")
	}
	pool := poolFor(cfg, iss)
	if pool == nil {
		return nil, reason.New(reason.IssuerUnknown, fmt.Sprintf("claim iss %q names no configured pool; accepted: %s", clip(iss), acceptedIssuers(cfg)))
	}

	// Step 3: the key, from the issuing pool's key source only.
	key, err := v.keys.Key(ctx, pool.Keys, kid)
	if err != nil {
		return nil, keyError(err, pool, kid)
	}
	if key == nil || key.Public == nil {
		return nil, reason.New(reason.Internal, fmt.Sprintf("key source for pool %s returned no key for kid %q", pool.ID, clip(kid)))
	}
	if key.Alg != "" && key.Alg != algName {
		return nil, reason.New(reason.AlgNotAllowed, fmt.Sprintf("header alg %q differs from key alg %q (pool %s, kid %q)", algName, clip(key.Alg), pool.ID, clip(kid)))
	}
	// The key set admits only such keys; checked again because a weak key
	// here would make every later check meaningless.
	if jwks.CheckKey(key.Public) != nil {
		return nil, reason.New(reason.Internal, fmt.Sprintf("key for kid %q of pool %s is not an acceptable RSA key", clip(kid), pool.ID))
	}

	// Step 4: the signature, before any claim is trusted.
	// The signing input is the first two segments as sent; they are
	// canonical, so they are also the only encoding of what was parsed. It
	// is read where it lies in the token, not copied to the heap.
	input := raw[:len(h64)+1+len(p64)]
	if err := verifySignature(key, algName, unsafe.Slice(unsafe.StringData(input), len(input)), sig); err != nil {
		return nil, reason.New(reason.SignatureInvalid, fmt.Sprintf("signature does not verify with kid %q of pool %s", clip(kid), pool.ID))
	}

	return checkClaims(cfg, pool, claims, v.now())
}

// checkClaims runs steps 5 to 8 on a payload whose signature has verified.
func checkClaims(cfg *Config, pool *Pool, claims map[string]any, now time.Time) (*Claims, error) {
	skew := max(cfg.ClockSkew, 0)

	// Step 5: times.
	exp, err := numericDate(claims, "exp", true)
	if err != nil {
		return nil, err
	}
	if exp == 0 {
		return nil, reason.New(reason.ClaimInvalid, "claim exp is zero")
	}
	expiry := time.Unix(exp, 0)
	if !expiry.Add(skew).After(now) {
		return nil, reason.New(reason.TokenExpired, fmt.Sprintf("token expired at %s (pool %s)", expiry.UTC().Format(time.RFC3339), pool.ID))
	}
	for _, name := range [...]string{"nbf", "iat"} {
		t, err := numericDate(claims, name, false)
		if err != nil {
			return nil, err
		}
		if time.Unix(t, 0).After(now.Add(skew)) {
			return nil, reason.New(reason.ClaimInvalid, fmt.Sprintf("claim %s is in the future (pool %s)", name, pool.ID))
		}
	}

	// Step 6: token_use.
	use, _ := claims["token_use"].(string)
	if use != "id" && use != "access" {
		return nil, reason.New(reason.TokenUseMismatch, "claim token_use is not \"id\" or \"access\"")
	}

	// Step 7: the app client, under both rules a route may apply (see
	// appClients). A token that fails both fails every route.
	clientClaim := "client_id"
	if use == "id" {
		clientClaim = "aud"
	}
	clientID, _ := claims[clientClaim].(string)
	clients := appClients(cfg, claims, clientClaim)
	if clients == 0 {
		return nil, reason.New(reason.ClientNotAllowed, fmt.Sprintf("claim %s is not one of the allowed app clients (pool %s)", clientClaim, pool.ID))
	}

	// Step 8: types of the claims decisions read.
	for _, name := range [...]string{"sub", "scope", "username", "cognito:username", "client_id"} {
		if v, present := claims[name]; present {
			if _, ok := v.(string); !ok {
				return nil, reason.New(reason.ClaimInvalid, fmt.Sprintf("claim %s is not a string", name))
			}
		}
	}
	var groups []string
	if v, present := claims["cognito:groups"]; present {
		arr, ok := v.([]any)
		if !ok {
			return nil, reason.New(reason.ClaimInvalid, "claim cognito:groups is not an array")
		}
		groups = make([]string, len(arr))
		for i, g := range arr {
			if groups[i], ok = g.(string); !ok {
				return nil, reason.New(reason.ClaimInvalid, "claim cognito:groups has a member that is not a string")
			}
		}
	}
	c := newClaims(claims, use, clientID, pool, expiry, groups)
	c.has |= clients
	if _, ok := claims["iat"]; ok {
		// numericDate accepted it above: an integer, not in the future.
		iat, _ := numericDate(claims, "iat", false)
		c.issuedAt = iat
		c.has |= hasIssuedAt
	}
	return c, nil
}

// appClients checks the authorizer's appClientIds under the two rules a
// route may apply, and returns the bits of those that hold:
//   - clientByUse, as aws-jwt-verify does: an ID token's aud, an access
//     token's client_id (identity-claims and access-scopes routes);
//   - clientByAudience, as API Gateway HTTP API's JWT authorizer does: aud
//     when the token has one, else client_id (jwt routes). Cognito's ID
//     tokens carry aud and its access tokens client_id, so the two agree on
//     them; they differ on a token with both (an aud added by a
//     pre-token-generation trigger) or neither.
//
// The claim compared must be a string (an aud array never matches). With
// no appClientIds, both hold; the second is tried only with
// cfg.AudienceRule.
func appClients(cfg *Config, claims map[string]any, byUse string) present {
	if len(cfg.ClientIDs) == 0 {
		return clientByUse | clientByAudience
	}
	allowed := func(name string) bool {
		v, ok := claims[name].(string)
		return ok && slices.Contains(cfg.ClientIDs, v)
	}
	var out present
	if allowed(byUse) {
		out |= clientByUse
	}
	if !cfg.AudienceRule {
		return out
	}
	byAudience := "client_id"
	if _, ok := claims["aud"]; ok {
		byAudience = "aud"
	}
	if allowed(byAudience) {
		out |= clientByAudience
	}
	return out
}

// numericDate reads a NumericDate claim that must be a JSON integer literal:
// no fraction, no exponent, not a string, not negative, at most
// maxNumericDate. jwx and others accept strings, floats and 0; a verifier
// that does not check the type itself inherits that leniency. An absent
// optional claim reads as 0.
func numericDate(claims map[string]any, name string, required bool) (int64, error) {
	v, present := claims[name]
	if !present {
		if required {
			return 0, reason.New(reason.ClaimInvalid, fmt.Sprintf("claim %s is missing", name))
		}
		return 0, nil
	}
	n, ok := v.(json.Number)
	if !ok || !isIntegerLiteral(string(n)) {
		return 0, reason.New(reason.ClaimInvalid, fmt.Sprintf("claim %s is not a JSON integer", name))
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || i < 0 || i > maxNumericDate {
		return 0, reason.New(reason.ClaimInvalid, fmt.Sprintf("claim %s is out of range", name))
	}
	return i, nil
}

// isIntegerLiteral reports whether s, a valid JSON number, has neither a
// fraction nor an exponent.
func isIntegerLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '.' || c == 'e' || c == 'E' {
			return false
		}
	}
	return s != ""
}

func algAllowed(allowed []string, name string) bool {
	if len(allowed) == 0 {
		return name == alg.Default
	}
	return slices.Contains(allowed, name)
}

// checkHeader runs step 1: the JOSE header names an allowed RSA algorithm
// and a kid, and nothing that would change how the token is verified.
func checkHeader(cfg *Config, hdrJSON []byte) (algName, kid string, err error) {
	hdr, err := parseOwnedObject(hdrJSON)
	if err != nil {
		return "", "", reason.Wrap(reason.TokenMalformed, "header", err)
	}
	algName, ok := hdr["alg"].(string)
	if !ok {
		return "", "", reason.New(reason.AlgNotAllowed, "header alg is missing or not a string")
	}
	if _, ok := rsaVerifiers[algName]; !ok || !algAllowed(cfg.Algorithms, algName) {
		return "", "", reason.New(reason.AlgNotAllowed, fmt.Sprintf("header alg %q is not allowed", clip(algName)))
	}
	kid, ok = hdr["kid"].(string)
	if !ok || kid == "" {
		return "", "", reason.New(reason.KidMissing, "header kid is missing, empty or not a string")
	}
	for _, name := range forbiddenHeaders {
		if _, present := hdr[name]; present {
			return "", "", reason.New(reason.HeaderInvalid, fmt.Sprintf("header parameter %q is not accepted", name))
		}
	}
	if typ, present := hdr["typ"]; present {
		if _, ok := typ.(string); !ok {
			return "", "", reason.New(reason.HeaderInvalid, "header typ is not a string")
		}
	}
	return algName, kid, nil
}

// poolFor returns the first pool that lists iss exactly, or nil.
func poolFor(cfg *Config, iss string) *Pool {
	if iss == "" {
		return nil
	}
	for i := range cfg.Pools {
		if slices.Contains(cfg.Pools[i].Issuers, iss) {
			return &cfg.Pools[i]
		}
	}
	return nil
}

// keyError maps a key lookup failure to its reason code.
func keyError(err error, pool *Pool, kid string) error {
	detail := fmt.Sprintf("kid %q in keys of pool %s (%s)", clip(kid), pool.ID, pool.Keys)
	switch {
	case errors.Is(err, jwks.ErrKidUnknown):
		return reason.Wrap(reason.KidUnknown, detail, err)
	case errors.Is(err, jwks.ErrUnavailable):
		return reason.Wrap(reason.JWKSUnavailable, detail, err)
	case errors.Is(err, context.DeadlineExceeded):
		return reason.Wrap(reason.DeadlineExceeded, detail, err)
	case errors.Is(err, context.Canceled):
		return reason.Wrap(reason.Canceled, detail, err)
	default:
		return reason.Wrap(reason.Internal, detail, err)
	}
}

// clip shortens attacker-chosen text before it is quoted in a log detail.
func clip(s string) string {
	if len(s) <= maxInDetail {
		return s
	}
	return s[:maxInDetail] + "..."
}

// maxIssuersInDetail bounds the issuer list of an issuer_unknown detail.
const maxIssuersInDetail = 6

// acceptedIssuers lists the iss values cfg accepts, for the issuer_unknown
// detail: with it, a near miss (http://127.0.0.1 vs http://localhost, a
// trailing slash, the other Cognito issuer form) is plain to see. They are
// configuration, not token material.
func acceptedIssuers(cfg *Config) string {
	var b strings.Builder
	n := 0
	for i := range cfg.Pools {
		for _, is := range cfg.Pools[i].Issuers {
			if n == maxIssuersInDetail {
				b.WriteString(", ...")
				return b.String()
			}
			if n > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(is))
			n++
		}
	}
	if n == 0 {
		return "none"
	}
	return b.String()
}
