// Package rsapkcs1 verifies RSASSA-PKCS1-v1_5 signatures (JWS RS256, RS384
// and RS512) with a public key prepared once.
//
// crypto/rsa.VerifyPKCS1v15 rebuilds the modulus's Montgomery constants
// from the *rsa.PublicKey on every call, and on a token the service has not
// seen before that is a third of the verification's CPU: the standard
// library offers no way to keep them per key. This package keeps them, with
// the same arithmetic (filippo.io/bigmod is the standard library's
// crypto/internal/fips140/bigmod, exported), and checks the signature the
// way crypto/rsa does (RFC 8017 section 8.2.2): the signature is exactly
// the modulus's length and below it, and the recovered encoded message
// equals, byte for byte, the one built from the digest. Nothing of the
// encoding is parsed, so no lax-padding forgery (Bleichenbacher 2006)
// applies. The tests hold it to crypto/rsa on valid, corrupted and crafted
// signatures.
package rsapkcs1

import (
	"crypto"
	"crypto/rsa"
	"crypto/subtle"
	"errors"
	"fmt"

	"filippo.io/bigmod"
)

// ErrVerification is the one error a signature that does not verify gets,
// whatever the reason, as crypto/rsa does.
var ErrVerification = errors.New("rsapkcs1: verification error")

// digestInfo is the DER prefix of DigestInfo for each hash (RFC 8017
// section 9.2, note 1): what precedes the digest in the encoded message.
var digestInfo = map[crypto.Hash][]byte{
	crypto.SHA256: {0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20},
	crypto.SHA384: {0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02, 0x05, 0x00, 0x04, 0x30},
	crypto.SHA512: {0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03, 0x05, 0x00, 0x04, 0x40},
}

// PublicKey is an RSA public key ready to verify PKCS #1 v1.5 signatures.
// It is immutable and safe for concurrent use.
type PublicKey struct {
	n    *bigmod.Modulus
	e    uint
	size int
	// head holds, per hash, the encoded message up to the digest:
	// 0x00 0x01 0xff... 0x00 DigestInfo-prefix.
	head map[crypto.Hash][]byte
}

// New prepares pub. It refuses what crypto/rsa would refuse to verify
// with: a modulus that is not odd or under 1024 bits, an exponent under 2,
// even, or over 2^31-1.
func New(pub *rsa.PublicKey) (*PublicKey, error) {
	if pub == nil || pub.N == nil {
		return nil, errors.New("rsapkcs1: no key")
	}
	if pub.N.Sign() != 1 || pub.N.Bit(0) == 0 {
		return nil, errors.New("rsapkcs1: modulus is not positive and odd")
	}
	if bits := pub.N.BitLen(); bits < 1024 {
		return nil, fmt.Errorf("rsapkcs1: %d-bit modulus, under 1024 bits", bits)
	}
	if pub.E < 3 || pub.E&1 == 0 || pub.E > 1<<31-1 {
		return nil, fmt.Errorf("rsapkcs1: public exponent %d", pub.E)
	}
	n, err := bigmod.NewModulus(pub.N.Bytes())
	if err != nil {
		return nil, fmt.Errorf("rsapkcs1: %w", err)
	}
	k := &PublicKey{n: n, e: uint(pub.E), size: n.Size(), head: make(map[crypto.Hash][]byte, len(digestInfo))}
	for h, prefix := range digestInfo {
		// The padding string is at least 8 bytes (RFC 8017 section 9.2,
		// step 3); every modulus New admits leaves room for it.
		headLen := k.size - h.Size()
		head := make([]byte, headLen)
		head[1] = 0x01
		for i := 2; i < headLen-len(prefix)-1; i++ {
			head[i] = 0xff
		}
		copy(head[headLen-len(prefix):], prefix)
		k.head[h] = head
	}
	return k, nil
}

// Size is the modulus's length in bytes, which is every signature's.
func (k *PublicKey) Size() int { return k.size }

// Verify reports whether sig is k's PKCS #1 v1.5 signature of the digest
// hashed made with h (SHA-256, SHA-384 or SHA-512). Every failure is
// ErrVerification.
func (k *PublicKey) Verify(h crypto.Hash, hashed, sig []byte) error {
	head, ok := k.head[h]
	if !ok || len(hashed) != h.Size() || len(sig) != k.size {
		return ErrVerification
	}
	s, err := bigmod.NewNat().SetBytes(sig, k.n)
	if err != nil {
		// sig >= n: not a signature (RFC 8017 section 5.2.2, step 1).
		return ErrVerification
	}
	em := bigmod.NewNat().ExpShortVarTime(s, k.e, k.n).Bytes(k.n)
	// Both halves are compared whatever the first says; the inputs are
	// public, so this is tidiness, not a timing defence.
	headOK := subtle.ConstantTimeCompare(em[:len(head)], head)
	digestOK := subtle.ConstantTimeCompare(em[len(head):], hashed)
	if headOK&digestOK != 1 {
		return ErrVerification
	}
	return nil
}
