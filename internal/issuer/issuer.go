// Package issuer is a local stand-in for an Amazon Cognito user pool: it
// holds RSA signing keys, serves them as a Cognito-shaped JWKS, and mints ID
// and access tokens with Cognito's claim shapes. `extauthz dev` runs one, and
// tests across the repository use it to get genuinely signed tokens, hostile
// ones included. It is not an identity provider: it authenticates no one.
package issuer

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultClientID is the app client id used when TokenOptions.ClientID is
// empty.
const DefaultClientID = "1example23456789app0client"

// keyBits is the modulus size of generated keys, as Cognito's.
const keyBits = 2048

// Issuer is a local Cognito-shaped token issuer. It is safe for concurrent
// use.
type Issuer struct {
	iss    string
	poolID string

	mu     sync.RWMutex
	id     *signingKey   // signs ID tokens
	access *signingKey   // signs access tokens and Sign's output
	extra  []*signingKey // added by AddKey
	jwks   []byte        // the published set, rebuilt on every key change
}

type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

// New returns an issuer whose tokens carry iss as their iss claim, for the
// user pool poolID. It generates two fresh RSA-2048 keys, one for ID tokens
// and one for access tokens, since Cognito signs the two kinds with different
// kids.
func New(iss, poolID string) (*Issuer, error) {
	if iss == "" {
		return nil, errors.New("new issuer: empty issuer URL")
	}
	if poolID == "" {
		return nil, errors.New("new issuer: empty pool id")
	}
	id, access, err := newPair()
	if err != nil {
		return nil, fmt.Errorf("new issuer %q: %w", iss, err)
	}
	i := &Issuer{iss: iss, poolID: poolID, id: id, access: access}
	if err := i.rebuild(); err != nil {
		return nil, fmt.Errorf("new issuer %q: %w", iss, err)
	}
	return i, nil
}

// URL returns the issuer URL, the iss claim of every token.
func (i *Issuer) URL() string { return i.iss }

// JWKS returns the public keys as a JWKS document, {"keys":[...]}, each key
// with kty RSA, alg RS256, use sig, e AQAB and its kid: the ID-token key
// first, then the access-token key, then keys added with AddKey. The slice
// is the caller's.
func (i *Issuer) JWKS() []byte {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return append([]byte(nil), i.jwks...)
}

// PublicKey is one published verification key of the issuer.
type PublicKey struct {
	Kid string
	Key *rsa.PublicKey
}

// PublicKeys returns the published keys in JWKS order: the ID-token key,
// the access-token key, then keys added with AddKey.
func (i *Issuer) PublicKeys() []PublicKey {
	i.mu.RLock()
	defer i.mu.RUnlock()
	var out []PublicKey
	for _, k := range append([]*signingKey{i.id, i.access}, i.extra...) {
		pub := k.priv.PublicKey
		out = append(out, PublicKey{Kid: k.kid, Key: &pub})
	}
	return out
}

// ServeHTTP serves JWKS() to GET and HEAD requests for any path ending in
// /.well-known/jwks.json, with Cache-Control: max-age=3600 as Cognito
// sends; every other request gets 404.
func (i *Issuer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || !strings.HasSuffix(r.URL.Path, "/.well-known/jwks.json") {
		http.NotFound(w, r)
		return
	}
	body := i.JWKS()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "max-age=3600")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// TokenOptions describe one token. Zero fields take defaults.
type TokenOptions struct {
	// Subject is the sub claim; empty means a fresh random UUID.
	Subject string
	// Username is cognito:username (ID token) or username (access token);
	// empty means Subject.
	Username string
	// ClientID is aud (ID token) or client_id (access token); empty means
	// DefaultClientID.
	ClientID string
	// Email, when set, adds email and email_verified=true to an ID token.
	Email string
	// Scopes become the space-joined scope claim of an access token; the
	// claim is left out when there are none.
	Scopes []string
	// Groups become cognito:groups; the claim is left out when there are
	// none.
	Groups []string
	// Claims add or override claims; a nil value deletes the claim.
	Claims map[string]any
	// Header adds or overrides JOSE header members; a nil value deletes
	// the member. A kid naming one of the issuer's keys selects that key
	// for signing.
	Header map[string]any
	// IssuedAt is iat and auth_time; zero means now.
	IssuedAt time.Time
	// TTL is exp minus iat; zero means one hour. A negative TTL makes an
	// already expired token.
	TTL time.Duration
}

// IDToken returns a signed Cognito ID token (token_use id): sub, aud,
// cognito:username, email and email_verified when Email is set,
// cognito:groups when Groups is set, auth_time, iat, exp, iss, jti,
// origin_jti and event_id, signed by the ID-token key.
func (i *Issuer) IDToken(o TokenOptions) (string, error) {
	c := i.common(o, "id")
	c["aud"] = clientID(o)
	c["cognito:username"] = username(o, c)
	if o.Email != "" {
		c["email"] = o.Email
		c["email_verified"] = true
	}
	return i.mint(o, c, func() *signingKey { return i.id })
}

// AccessToken returns a signed Cognito access token (token_use access):
// sub, client_id, username, scope (space-joined Scopes, absent when none),
// cognito:groups when Groups is set, auth_time, iat, exp, iss, jti,
// origin_jti, event_id and version 2, and no aud; signed by the access-token
// key.
func (i *Issuer) AccessToken(o TokenOptions) (string, error) {
	c := i.common(o, "access")
	c["client_id"] = clientID(o)
	c["username"] = username(o, c)
	c["version"] = 2
	if len(o.Scopes) > 0 {
		c["scope"] = strings.Join(o.Scopes, " ")
	}
	return i.mint(o, c, func() *signingKey { return i.access })
}

// Sign signs claims under exactly header (nothing is added) and returns the
// compact token, for hostile tests. The key is the one header's kid names
// when the issuer holds it, else the access-token key. The signature uses
// header's alg when it is an RSA algorithm (RS256/384/512, PS256/384/512)
// and RS256 otherwise, so a token whose header lies about its algorithm
// still carries a genuine RSA signature.
func (i *Issuer) Sign(header, claims map[string]any) (string, error) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.signLocked(header, claims, i.access)
}

// Rotate replaces the ID-token and access-token keys with fresh ones under
// new kids and drops every key added with AddKey: afterwards the JWKS holds
// only the two new keys, and tokens signed before no longer verify.
func (i *Issuer) Rotate() error {
	id, access, err := newPair()
	if err != nil {
		return fmt.Errorf("rotate keys of pool %s: %w", i.poolID, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	oldID, oldAccess, oldExtra := i.id, i.access, i.extra
	i.id, i.access, i.extra = id, access, nil
	if err := i.rebuild(); err != nil {
		i.id, i.access, i.extra = oldID, oldAccess, oldExtra
		return fmt.Errorf("rotate keys of pool %s: %w", i.poolID, err)
	}
	return nil
}

// AddKey publishes one more signing key in the JWKS, as during a rotation
// overlap, and returns its kid. Tokens are signed with it when their Header
// option names that kid.
func (i *Issuer) AddKey() (string, error) {
	k, err := newKey()
	if err != nil {
		return "", fmt.Errorf("add key to pool %s: %w", i.poolID, err)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	i.extra = append(i.extra, k)
	if err := i.rebuild(); err != nil {
		i.extra = i.extra[:len(i.extra)-1]
		return "", fmt.Errorf("add key to pool %s: %w", i.poolID, err)
	}
	return k.kid, nil
}

// common returns the claims both token kinds share.
func (i *Issuer) common(o TokenOptions, use string) map[string]any {
	now := o.IssuedAt
	if now.IsZero() {
		now = time.Now()
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = time.Hour
	}
	sub := o.Subject
	if sub == "" {
		sub = newUUID()
	}
	c := map[string]any{
		"sub":        sub,
		"iss":        i.iss,
		"token_use":  use,
		"auth_time":  now.Unix(),
		"iat":        now.Unix(),
		"exp":        now.Add(ttl).Unix(),
		"jti":        newUUID(),
		"origin_jti": newUUID(),
		"event_id":   newUUID(),
	}
	if len(o.Groups) > 0 {
		c["cognito:groups"] = append([]string(nil), o.Groups...)
	}
	return c
}

// mint applies the overrides and signs; def picks the default key while the
// read lock is held.
func (i *Issuer) mint(o TokenOptions, claims map[string]any, def func() *signingKey) (string, error) {
	for k, v := range o.Claims {
		if v == nil {
			delete(claims, k)
		} else {
			claims[k] = v
		}
	}
	i.mu.RLock()
	defer i.mu.RUnlock()
	key := def()
	header := map[string]any{"kid": key.kid, "alg": "RS256"}
	for k, v := range o.Header {
		if v == nil {
			delete(header, k)
		} else {
			header[k] = v
		}
	}
	return i.signLocked(header, claims, key)
}

// signLocked signs with the key header's kid names if held, else def. The
// caller holds i.mu.
func (i *Issuer) signLocked(header, claims map[string]any, def *signingKey) (string, error) {
	key := def
	if kid, ok := header["kid"].(string); ok {
		if k := i.keyLocked(kid); k != nil {
			key = k
		}
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("sign: encode header: %w", err)
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("sign: encode claims: %w", err)
	}
	enc := base64.RawURLEncoding
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(p)
	alg, _ := header["alg"].(string)
	sig, err := signRSA(key.priv, alg, []byte(input))
	if err != nil {
		return "", fmt.Errorf("sign: %w", err)
	}
	return input + "." + enc.EncodeToString(sig), nil
}

func (i *Issuer) keyLocked(kid string) *signingKey {
	for _, k := range append([]*signingKey{i.id, i.access}, i.extra...) {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// signRSA signs input with the RSA algorithm alg names, or RS256 when alg is
// anything else.
func signRSA(priv *rsa.PrivateKey, alg string, input []byte) ([]byte, error) {
	hash, pss := crypto.SHA256, false
	switch alg {
	case "RS384":
		hash = crypto.SHA384
	case "RS512":
		hash = crypto.SHA512
	case "PS256":
		pss = true
	case "PS384":
		hash, pss = crypto.SHA384, true
	case "PS512":
		hash, pss = crypto.SHA512, true
	}
	h := hash.New()
	h.Write(input)
	digest := h.Sum(nil)
	if pss {
		return rsa.SignPSS(rand.Reader, priv, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.SignPKCS1v15(nil, priv, hash, digest)
}

type jwk struct {
	Alg string `json:"alg"`
	E   string `json:"e"`
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	N   string `json:"n"`
	Use string `json:"use"`
}

// rebuild recomputes the published JWKS; the caller holds i.mu for writing
// (or is New).
func (i *Issuer) rebuild() error {
	set := struct {
		Keys []jwk `json:"keys"`
	}{}
	for _, k := range append([]*signingKey{i.id, i.access}, i.extra...) {
		pub := k.priv.PublicKey
		set.Keys = append(set.Keys, jwk{
			Alg: "RS256",
			E:   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
			Kid: k.kid,
			Kty: "RSA",
			N:   base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			Use: "sig",
		})
	}
	b, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode jwks: %w", err)
	}
	i.jwks = b
	return nil
}

func newPair() (id, access *signingKey, err error) {
	if id, err = newKey(); err != nil {
		return nil, nil, err
	}
	if access, err = newKey(); err != nil {
		return nil, nil, err
	}
	return id, access, nil
}

// newKey generates a key whose kid is, like Cognito's, the standard base64
// of a SHA-256 digest (so kids contain '+', '/' and '=').
func newKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, keyBits)
	if err != nil {
		return nil, fmt.Errorf("generate rsa key: %w", err)
	}
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("encode public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return &signingKey{kid: base64.StdEncoding.EncodeToString(sum[:]), priv: priv}, nil
}

func clientID(o TokenOptions) string {
	if o.ClientID != "" {
		return o.ClientID
	}
	return DefaultClientID
}

func username(o TokenOptions, c map[string]any) any {
	if o.Username != "" {
		return o.Username
	}
	return c["sub"]
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
