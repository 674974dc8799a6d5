package policy

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"slices"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token/alg"
)

// fingerprint hashes everything in c that affects whether a token
// verifies, and what a cached token keeps (the claims in kept, and groups
// or not), in an unambiguous encoding (every string length-prefixed).
// Client ids and algorithms are sets, so their order does not count, and
// an absent algorithms list counts as its default, RS256.
func fingerprint(c *token.Config, kept []string, groups bool) [32]byte {
	h := sha256.New()
	str(h, "cognito-extauthz/authorizer-fingerprint/v2")
	num(h, uint64(len(c.Pools)))
	for _, p := range c.Pools {
		str(h, p.ID)
		num(h, uint64(len(p.Issuers)))
		for _, iss := range p.Issuers {
			str(h, iss)
		}
		str(h, p.Keys.URL)
		str(h, p.Keys.File)
	}
	set(h, c.ClientIDs)
	if c.AudienceRule {
		num(h, 1)
	} else {
		num(h, 0)
	}
	algs := c.Algorithms
	if len(algs) == 0 {
		algs = []string{alg.Default}
	}
	set(h, algs)
	num(h, uint64(c.ClockSkew))
	set(h, kept)
	if groups {
		num(h, 1)
	} else {
		num(h, 0)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

func num(h hash.Hash, n uint64) {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], n)
	h.Write(b[:])
}

func str(h hash.Hash, s string) {
	num(h, uint64(len(s)))
	h.Write([]byte(s))
}

func set(h hash.Hash, ss []string) {
	ss = slices.Compact(slices.Sorted(slices.Values(ss)))
	num(h, uint64(len(ss)))
	for _, s := range ss {
		str(h, s)
	}
}
