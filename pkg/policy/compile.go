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
	s.claimHeaders = slices.Clip(slices.Compact(headers))
	s.forgeable, s.claimClass = forgeable(s.claimHeaders)
	s.authorizers, s.keySources = compileAuthorizers(v.authorizers, s.routes)
	return s
}

// compileAuthorizers fingerprints every authorizer and returns them sorted
// by name, with the key sources of those a route uses. An unused
// authorizer contributes no key source: one with an unreachable JWKS must
// not hold readiness back.
func compileAuthorizers(byName map[string]*Authorizer, routes []*Route) ([]*Authorizer, []jwks.Source) {
	used := map[*Authorizer]bool{}
	for _, r := range routes {
		if r.Authorizer != nil {
			used[r.Authorizer] = true
		}
	}
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
		az.Kept, az.KeepGroups = kept(az, routes)
		az.Fingerprint = fingerprint(az.Token, az.Kept, az.KeepGroups)
		azs = append(azs, az)
		if !used[az] {
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

// kept returns the claims the routes using az read beyond the fixed ones
// (claim headers and claim requirements), and whether any requires groups.
func kept(az *Authorizer, routes []*Route) ([]string, bool) {
	var names []string
	groups := false
	for _, r := range routes {
		if r.Authorizer != az {
			continue
		}
		for _, h := range r.ClaimHeaders {
			names = append(names, h.Claim)
		}
		for _, c := range r.Claims {
			names = append(names, c.Claim)
		}
		groups = groups || len(r.Groups) > 0
	}
	slices.Sort(names)
	return slices.Clip(slices.Compact(names)), groups
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
