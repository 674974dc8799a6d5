// Package jwks is the process-wide cache of JSON Web Key Sets: one entry per
// key source however many pools, authorizers and routes name it.
//
// It is a supported Go API, as the key source of package token: a Cache
// fetches over its own hardened HTTP client (https only unless loopback,
// body cap, no cross-host redirect), keeps stale keys through an outage,
// refetches on an unknown kid at most once per source per window, and
// admits only RSA signing keys of sane size. Exported names keep their
// meaning within a major version of the module.
package jwks

import (
	"crypto"
	"crypto/rsa"
	"errors"

	"github.com/cognito-extauthz/cognito-extauthz/internal/rsapkcs1"
)

// Source names where one user pool's verification keys come from. Exactly
// one of URL or File is set. Source is comparable and is the cache key.
type Source struct {
	URL  string // https JWKS endpoint (http only on loopback, or when allowed)
	File string // local JWKS file: offline keys, never fetched
}

// String returns the URL or the file path, for logs and metric labels.
func (s Source) String() string {
	if s.File != "" {
		return "file:" + s.File
	}
	return s.URL
}

// MarshalText renders the source as String does, so status documents show
// one string per source.
func (s Source) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Key is one verification key that passed the set's admission rules: RSA,
// use absent or "sig", modulus of at least 2048 bits, exponent 65537, and a
// kid that is unique in its set.
type Key struct {
	Kid    string
	Alg    string // the JWK's alg, "" when the JWK had none
	Public *rsa.PublicKey

	// pkcs1 is Public prepared for RS256/384/512 verification, made once
	// when the set is parsed; nil for a Key built as a literal.
	pkcs1 *rsapkcs1.PublicKey
}

// NewKey returns the Key for pub, prepared for VerifyPKCS1v15. It does not
// apply CheckKey.
func NewKey(kid, alg string, pub *rsa.PublicKey) (*Key, error) {
	p, err := rsapkcs1.New(pub)
	if err != nil {
		return nil, err
	}
	return &Key{Kid: kid, Alg: alg, Public: pub, pkcs1: p}, nil
}

// VerifyPKCS1v15 reports whether sig is the key's RSASSA-PKCS1-v1_5
// signature of hashed, a digest made with h (SHA-256, SHA-384 or SHA-512):
// JWS RS256, RS384 and RS512. A Key from NewKey or a parsed set keeps the
// modulus's precomputation, which crypto/rsa would redo on every call; any
// other Key prepares Public each time.
func (k *Key) VerifyPKCS1v15(h crypto.Hash, hashed, sig []byte) error {
	p := k.pkcs1
	if p == nil {
		var err error
		if p, err = rsapkcs1.New(k.Public); err != nil {
			return err
		}
	}
	return p.Verify(h, hashed, sig)
}

// Errors returned by lookups. Callers map them to reason codes.
var (
	// ErrKidUnknown: the source's keys are known, but none has the kid, and
	// a refetch (if one was allowed) did not bring it.
	ErrKidUnknown = errors.New("kid not found in key set")
	// ErrUnavailable: the source has never produced a usable key set (or
	// was never registered), so no answer is possible: fail closed.
	ErrUnavailable = errors.New("key set unavailable")
)
