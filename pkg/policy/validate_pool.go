package policy

import (
	"path/filepath"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// pools validates an authorizer's userPools: each pool on its own, then
// that no two pools share an issuer (the unverified iss picks the pool).
func (v *validator) pools(l docList[poolDoc]) ([]token.Pool, bool) {
	items, ok := items(v.reporter, l, false)
	if !ok {
		return nil, false
	}
	pools := make([]token.Pool, 0, len(items))
	owner := map[string]int{} // issuer -> pool index
	for i := range items {
		d := &items[i]
		pool, pok := v.pool(d)
		if !pok {
			ok = false
			continue
		}
		reported := map[int]bool{}
		for _, iss := range pool.Issuers {
			if j, dup := owner[iss]; dup {
				if !reported[j] {
					v.problemf(d.Node, d.Path(), "issuer %q is also an issuer of %s: two pools of one authorizer cannot share an issuer", iss, indexPath(l.Path(), j))
					reported[j] = true
				}
				ok = false
				continue
			}
			owner[iss] = i
		}
		pools = append(pools, pool)
	}
	return pools, ok
}

// poolText is a pool's fields as written; has* tell which are present.
type poolText struct {
	arn, id, iss, uri, file                string
	hasARN, hasID, hasIss, hasURI, hasFile bool
}

func (v *validator) pool(d *poolDoc) (token.Pool, bool) {
	var pool token.Pool
	if d.bad {
		return pool, false
	}
	t, ok := v.poolText(d)
	if !ok {
		return pool, false
	}
	if t.hasIss {
		if err := checkIssuer(t.iss); err != nil {
			v.problemf(d.Issuer.Node, d.Issuer.Path(), "%v", err)
			ok = false
		}
	}
	// With both, jwksFile wins: "offline keys, no fetching". jwksUri is
	// still checked, so a typo there is reported rather than ignored.
	if t.hasURI {
		if err := jwks.CheckURL(t.uri, v.opts.AllowHTTPJWKS); err != nil {
			v.problemf(d.JWKSURI.Node, d.JWKSURI.Path(), "%v", err)
			ok = false
		}
	}
	region, idOK := v.poolIdentity(d, t, &pool)
	if !idOK || !ok {
		return pool, false
	}
	if t.hasIss {
		pool.Issuers = []string{t.iss}
	} else {
		pool.Issuers = cognitoIssuers(region, pool.ID)
	}
	return pool, v.poolKeys(d, t, region, &pool)
}

// poolText reads a pool's fields, each a word.
func (v *validator) poolText(d *poolDoc) (poolText, bool) {
	ok := !d.keysBad
	get := func(val docValue) (string, bool) {
		if !val.Set() {
			return "", false
		}
		s, sok := v.word(val)
		ok = ok && sok
		return s, sok
	}
	var t poolText
	t.arn, t.hasARN = get(d.ARN)
	t.id, t.hasID = get(d.UserPoolID)
	t.iss, t.hasIss = get(d.Issuer)
	t.uri, t.hasURI = get(d.JWKSURI)
	t.file, t.hasFile = get(d.JWKSFile)
	if t.hasFile {
		if !filepath.IsAbs(t.file) {
			t.file = filepath.Join(v.dir, t.file)
		}
		t.file = filepath.Clean(t.file)
	}
	return t, ok
}

// poolIdentity sets the pool's id and returns its region. Region and id
// are needed unless both the issuer and the key source are given: then an
// emulator's id such as local_5vr8DTla is fine.
func (v *validator) poolIdentity(d *poolDoc, t poolText, pool *token.Pool) (string, bool) {
	relaxed := t.hasIss && (t.hasURI || t.hasFile)
	switch {
	case t.hasARN && t.hasID:
		v.problemf(d.UserPoolID.Node, d.UserPoolID.Path(), "arn and userPoolId are exclusive: give one")
		return "", false
	case t.hasARN:
		region, id, err := parseARN(t.arn)
		if err != nil {
			v.problemf(d.ARN.Node, d.ARN.Path(), "%v", err)
			return "", false
		}
		pool.ID = id
		return region, true
	case t.hasID && relaxed:
		pool.ID = t.id
		return "", true
	case t.hasID:
		region, err := parsePoolID(t.id)
		if err != nil {
			v.problemf(d.UserPoolID.Node, d.UserPoolID.Path(), "%v (any id is accepted only when both issuer and jwksUri or jwksFile are given)", err)
			return "", false
		}
		pool.ID = t.id
		return region, true
	}
	v.problemf(d.Node, d.Path(), "a pool needs arn or userPoolId")
	return "", false
}

// poolKeys sets where the pool's keys come from: jwksFile, jwksUri, the
// issuer's well-known JWKS, or Cognito's.
func (v *validator) poolKeys(d *poolDoc, t poolText, region string, pool *token.Pool) bool {
	switch {
	case t.hasFile:
		pool.Keys = jwks.Source{File: t.file}
	case t.hasURI:
		pool.Keys = jwks.Source{URL: t.uri}
	case t.hasIss:
		u := strings.TrimSuffix(t.iss, "/") + "/.well-known/jwks.json"
		if err := jwks.CheckURL(u, v.opts.AllowHTTPJWKS); err != nil {
			v.problemf(d.Issuer.Node, d.Issuer.Path(), "the JWKS URL derived from the issuer is not acceptable: %v; set jwksUri or jwksFile", err)
			return false
		}
		pool.Keys = jwks.Source{URL: u}
	default:
		pool.Keys = jwks.Source{URL: cognitoJWKSURL(region, pool.ID)}
	}
	return true
}
