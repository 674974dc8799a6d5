package policy

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// compile builds the immutable Snapshot from a validated policy; it runs
// only when validation found no problem. data is the source, for the
// digest.
func compile(v *validated, data []byte) *Snapshot {
	s := &Snapshot{
		routes:       make([]*Route, 0, len(v.routes)),
		byName:       make(map[string]*Route, len(v.routes)),
		defaultAllow: v.defaultAllow,
		responses:    v.responses,
		revocation:   v.revocation,
	}
	sum := sha256.Sum256(data)
	s.digest = hex.EncodeToString(sum[:])
	var headers []string
	for _, d := range v.routes {
		s.routes = append(s.routes, d.r)
		s.byName[d.r.Name] = d.r
		for _, h := range d.r.ClaimHeaders {
			headers = append(headers, h.Header)
		}
	}
	s.index()
	slices.Sort(headers)
	s.claimHeaders = exactCopy(slices.Compact(headers))
	s.forgeable, s.claimClass = forgeable(s.claimHeaders)
	s.authorizers, s.keySources = compileAuthorizers(v.authorizers, s.routes)
	return s
}

// compileAuthorizers fingerprints every authorizer and returns them sorted
// by name, with the key sources of those a route uses. An unused
// authorizer contributes no key source: one with an unreachable JWKS must
// not hold readiness back.
func compileAuthorizers(byName map[string]*Authorizer, routes []*Route) ([]*Authorizer, []jwks.Source) {
	reads := kept(routes)
	var azs []*Authorizer
	var sources []jwks.Source
	jwt := map[*Authorizer]bool{}
	for _, r := range routes {
		if r.Authorizer != nil && r.Mode == ModeJWT {
			jwt[r.Authorizer] = true
		}
	}
	for _, az := range byName {
		// Only an authorizer that serves jwt routes admits tokens by HTTP
		// API's app client rule; the others keep the stricter one alone.
		az.Token.AudienceRule = jwt[az]
		k, used := reads[az]
		az.Kept, az.KeepGroups = k.claims, k.groups
		az.Fingerprint = fingerprint(az.Token, az.Kept, az.KeepGroups)
		azs = append(azs, az)
		if !used {
			continue
		}
		for _, p := range az.Token.Pools {
			sources = append(sources, p.Keys)
		}
	}
	slices.SortFunc(azs, func(a, b *Authorizer) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(sources, compareSource)
	return azs, slices.Compact(sources)
}

// keptClaims is what the routes of one authorizer read from its tokens.
type keptClaims struct {
	claims []string
	groups bool
}

// kept returns, for each authorizer a route uses, the claims its routes
// read beyond the fixed ones (claim headers and claim requirements: sorted,
// without duplicates) and whether any of them requires groups. It makes one
// pass over the routes, whatever the number of authorizers.
func kept(routes []*Route) map[*Authorizer]keptClaims {
	all := map[*Authorizer]keptClaims{}
	for _, r := range routes {
		if r.Authorizer == nil {
			continue
		}
		k := all[r.Authorizer]
		for _, h := range r.ClaimHeaders {
			k.claims = append(k.claims, h.Claim)
		}
		for _, c := range r.Claims {
			k.claims = append(k.claims, c.Claim)
		}
		k.groups = k.groups || len(r.Groups) > 0
		all[r.Authorizer] = k
	}
	for az, k := range all {
		slices.Sort(k.claims)
		k.claims = exactCopy(slices.Compact(k.claims))
		all[az] = k
	}
	return all
}

// exactCopy returns a copy of s whose capacity is its length, nil for an
// empty s. slices.Clip would keep the whole array s was gathered in
// (every claim of every route) reachable from the Snapshot.
func exactCopy(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := make([]string, len(s))
	copy(out, s)
	return out
}

func compareSource(a, b jwks.Source) int {
	return cmp.Or(cmp.Compare(a.URL, b.URL), cmp.Compare(a.File, b.File))
}

// forgeable returns, for the claim header names, every spelling the
// anti-forgery rule removes (each name, its all-'_' twin and its all-'-'
// twin: sorted, without duplicates, capacity equal to length) and the set
// of their CGI names, against which a request's other underscored spellings
// ("x-user_sub") are checked.
func forgeable(names []string) ([]string, map[string]bool) {
	out := make([]string, 0, 2*len(names))
	class := make(map[string]bool, len(names))
	for _, n := range names {
		cgi := httpsyntax.CGIName(n)
		class[cgi] = true
		out = append(out, n, cgi, strings.ReplaceAll(n, "-", "_"))
	}
	slices.Sort(out)
	return slices.Clip(slices.Compact(out)), class
}
