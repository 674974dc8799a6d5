package policy

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

func (v *validator) route(d *routeDoc, index int) {
	def := &routeDef{r: &Route{index: index}, doc: d}
	v.out.routes = append(v.out.routes, def)
	if d.bad {
		return
	}
	r := def.r
	v.routeName(def)
	if d.DryRun.Set() {
		r.DryRun, _ = v.boolean(d.DryRun)
	}
	if !d.Match.Set() {
		v.missing(d.docValue, d.Match.docValue, "a route needs match.path")
	} else {
		def.matchOK = v.match(&d.Match, r)
	}

	// With an authorization value that is not understood, whether an
	// authorizer is required is not known either: that is not reported.
	authKnown := true
	if d.Authorization.Set() {
		a, ok := v.keyword(d.Authorization, "NONE", "COGNITO_USER_POOLS")
		authKnown = ok
		r.NoAuth = a == "NONE"
	}
	if r.NoAuth {
		for _, req := range d.requirements() {
			if req.Set() {
				v.problemf(req.Key, req.Path(), "not allowed on an authorization: NONE route, which checks no token")
			}
		}
		return
	}
	v.routeAuthorizer(d, r, authKnown)
	v.routeMode(d, r)
	if d.Groups.Set() {
		r.Groups, _ = v.words(d.Groups, true)
	}
	if d.Claims.Set() {
		r.Claims = v.claims(d.Claims)
	}
	if d.ClaimHeaders.Set() {
		r.ClaimHeaders = v.claimHeaders(d.ClaimHeaders, r.Authorizer)
	}
	v.share(r)
}

// share makes the strings a route has in common with other routes (scopes,
// groups, claim names and values, claim header names) one copy each: a
// large policy repeats a few of them on thousands of routes, and each
// route would otherwise keep its own copies for as long as the policy is
// in force.
func (v *validator) share(r *Route) {
	for i, s := range r.Scopes {
		r.Scopes[i] = v.intern(s)
	}
	for i, s := range r.Groups {
		r.Groups[i] = v.intern(s)
	}
	for i, c := range r.Claims {
		r.Claims[i] = ClaimRequirement{Claim: v.intern(c.Claim), Value: v.intern(c.Value)}
	}
	for i, h := range r.ClaimHeaders {
		r.ClaimHeaders[i] = ClaimHeader{Header: v.intern(h.Header), Claim: v.intern(h.Claim)}
	}
}

// intern returns the first copy of s seen in this policy.
func (v *validator) intern(s string) string {
	if c, ok := v.strs[s]; ok {
		return c
	}
	v.strs[s] = s
	return s
}

// requirements are the fields that ask something of a token; an
// authorization: NONE route may have none of them.
func (d *routeDoc) requirements() []docValue {
	return []docValue{d.Authorizer, d.Mode, d.Scopes.docValue, d.Groups.docValue, d.Claims.docValue, d.ClaimHeaders.docValue}
}

func (v *validator) routeName(def *routeDef) {
	d := def.doc
	if !d.Name.Set() {
		v.missing(d.docValue, d.Name, "every route has a unique name")
		return
	}
	s, ok := v.str(d.Name)
	if !ok {
		return
	}
	if !nameRE.MatchString(s) || len(s) > maxNameLen {
		v.problemf(d.Name.Node, d.Name.Path(), "route name %q: use 1 to %d of A-Z a-z 0-9 . _ - (it is a metric label and an Envoy context_extensions value)", s, maxNameLen)
		return
	}
	def.r.Name, def.named = s, true
}

func (v *validator) routeAuthorizer(d *routeDoc, r *Route, authKnown bool) {
	if !d.Authorizer.Set() {
		if authKnown {
			v.missing(d.docValue, d.Authorizer, "name an authorizer, or set authorization: NONE")
		}
		return
	}
	s, ok := v.str(d.Authorizer)
	if !ok {
		return
	}
	// An authorizer with problems of its own has them reported where it is
	// defined; only a name defined nowhere is reported here.
	az, known := v.out.authorizers[s]
	if !known {
		if k := suggest(s, v.authorizerNames); k != "" {
			v.problemf(d.Authorizer.Node, d.Authorizer.Path(), "unknown authorizer %q: did you mean %q?", s, k)
		} else {
			v.problemf(d.Authorizer.Node, d.Authorizer.Path(), "unknown authorizer %q", s)
		}
		return
	}
	r.Authorizer = az
}

// routeMode reads scopes and mode. As API Gateway REST: scopes on the
// method mean an access token, none an ID token. jwt, API Gateway HTTP
// API's JWT authorizer, is only ever chosen explicitly.
func (v *validator) routeMode(d *routeDoc, r *Route) {
	if d.Scopes.Set() {
		r.Scopes, _ = v.words(d.Scopes, true)
	}
	r.Mode = ModeIdentity
	if len(r.Scopes) > 0 {
		r.Mode = ModeAccess
	}
	if d.Mode.Set() {
		switch m, _ := v.keyword(d.Mode, "identity-claims", "access-scopes", "jwt"); m {
		case "identity-claims":
			r.Mode = ModeIdentity
		case "access-scopes":
			r.Mode = ModeAccess
		case "jwt":
			r.Mode = ModeJWT
		}
	}
	if r.Mode == ModeIdentity && len(r.Scopes) > 0 {
		v.problemf(d.Scopes.Key, d.Scopes.Path(), "scopes need mode access-scopes or jwt: identity-claims routes take ID tokens, which carry no scope claim")
	}
	// API Gateway's JWT authorizer cannot be created without an audience,
	// and without one any app client of the pool would pass.
	if r.Mode == ModeJWT && r.Authorizer != nil && len(r.Authorizer.Token.ClientIDs) == 0 {
		v.problemf(d.Mode.Node, d.Mode.Path(), "mode jwt needs appClientIds on authorizer %q: the token's aud (else its client_id) must be one of them, as API Gateway's JWT authorizer requires an audience", r.Authorizer.Name)
	}
}

func (v *validator) match(d *matchDoc, r *Route) bool {
	if d.bad {
		return false
	}
	ok := !d.keysBad
	if !d.Template.Set() {
		v.missing(d.docValue, d.Template, "a path template such as /pets/{petId}")
		ok = false
	} else if s, sok := v.str(d.Template); !sok {
		ok = false
	} else if segs, err := parseTemplate(s); err != nil {
		v.problemf(d.Template.Node, d.Template.Path(), "invalid path template %q: %v", s, err)
		ok = false
	} else {
		r.Template, r.segs = s, segs
	}
	r.methods = methodAny
	if d.Methods.Set() {
		var mok bool
		r.methods, mok = v.methods(d.Methods)
		ok = ok && mok
	}
	if d.Host.Set() {
		if s, sok := v.str(d.Host); !sok {
			ok = false
		} else if h, err := parseHostPattern(s); err != nil {
			v.problemf(d.Host.Node, d.Host.Path(), "%v", err)
			ok = false
		} else {
			r.host = hostPattern{name: v.intern(h.name), port: v.intern(h.port)}
		}
	}
	return ok
}

// methods reads match.methods. HTTP methods are keywords here, so get and
// GET are one method (API Gateway's OpenAPI import writes them lower case).
func (v *validator) methods(l docList[docValue]) (methodSet, bool) {
	items, ok := items(v.reporter, l, false)
	var set methodSet
	for _, it := range items {
		s, wok := v.word(it)
		if !wok {
			ok = false
			continue
		}
		up := strings.ToUpper(s)
		if up == "ANY" {
			set |= methodAny
		} else if b := methodBit(up); b != 0 {
			set |= b
		} else {
			v.problemf(it.Node, it.Path(), "unknown method %q: want GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY", s)
			ok = false
		}
	}
	return set, ok
}

// parseHostPattern reads a route's host: a DNS name, an IPv4 address or a
// bracketed IPv6 address, with an optional port.
func parseHostPattern(s string) (hostPattern, error) {
	if s == "" {
		return hostPattern{}, errors.New("host must not be empty (omit it to match any host)")
	}
	if strings.Contains(s, "*") {
		return hostPattern{}, fmt.Errorf("host %q: wildcards are not supported", s)
	}
	if strings.ContainsAny(s, "/@?#") {
		return hostPattern{}, fmt.Errorf("host %q: want a host name with an optional :port, not a URL", s)
	}
	h := splitAuthority(strings.ToLower(s))
	if strings.HasSuffix(s, ":") {
		return hostPattern{}, fmt.Errorf("host %q has an empty port", s)
	}
	if h.port != "" {
		p, err := strconv.Atoi(h.port)
		if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != h.port {
			return hostPattern{}, fmt.Errorf("host %q: port %q is not a number from 1 to 65535", s, h.port)
		}
	}
	if strings.HasPrefix(h.name, "[") {
		if !strings.HasSuffix(h.name, "]") || !validIPv6(h.name[1:len(h.name)-1]) {
			return hostPattern{}, fmt.Errorf("host %q is not a valid bracketed IPv6 address", s)
		}
		return h, nil
	}
	if h.name == "" || len(h.name) > 253 {
		return hostPattern{}, fmt.Errorf("host %q is not a valid host name", s)
	}
	for label := range strings.SplitSeq(h.name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return hostPattern{}, fmt.Errorf("host %q is not a valid host name", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return hostPattern{}, fmt.Errorf("host %q: character %q is not allowed in a host name", s, c)
			}
		}
	}
	return h, nil
}

func (v *validator) claims(m docMap[docValue]) []ClaimRequirement {
	out := make([]ClaimRequirement, 0, len(m.Entries))
	for _, e := range m.Entries {
		if e.Name == "" {
			v.problemf(e.Key, e.Val.Path(), "claim name must not be empty")
			continue
		}
		val, ok := v.claimValue(e.Val)
		if !ok {
			continue
		}
		out = append(out, ClaimRequirement{Claim: e.Name, Value: val})
	}
	slices.SortFunc(out, func(a, b ClaimRequirement) int { return cmp.Compare(a.Claim, b.Claim) })
	return out
}

func (v *validator) claimHeaders(m docMap[docValue], az *Authorizer) []ClaimHeader {
	out := make([]ClaimHeader, 0, len(m.Entries))
	seen := map[string]*yaml.Node{}
	for _, e := range m.Entries {
		h := strings.ToLower(e.Name)
		if err := checkClaimHeaderName(h); err != nil {
			v.problemf(e.Key, e.Val.Path(), "%v", err)
			continue
		}
		if first, dup := seen[httpsyntax.CGIName(h)]; dup {
			v.problemf(e.Key, e.Val.Path(), "header %q is already set by %q at line %d (header names are case-insensitive, and CGI-style upstreams read '_' as '-')", h, first.Value, first.Line)
			continue
		}
		seen[httpsyntax.CGIName(h)] = e.Key
		if az != nil && az.Source.Kind == SourceHeader && httpsyntax.CGIName(az.Source.Name) == httpsyntax.CGIName(h) {
			v.problemf(e.Key, e.Val.Path(), "header %q is this route's identity source (%s)", h, az.Source)
			continue
		}
		c, ok := v.str(e.Val)
		if !ok {
			continue
		}
		if c == "" {
			v.problemf(e.Val.Node, e.Val.Path(), "claim name must not be empty")
			continue
		}
		out = append(out, ClaimHeader{Header: h, Claim: c})
	}
	slices.SortFunc(out, func(a, b ClaimHeader) int { return cmp.Compare(a.Header, b.Header) })
	return out
}

// crossCheckRoutes reports duplicate names and routes that match exactly
// the same requests: API Gateway cannot have two such resources, and here
// one of them would silently never match.
func (v *validator) crossCheckRoutes() {
	names := map[string]*routeDef{}
	shapes := map[string][]*routeDef{}
	for _, d := range v.out.routes {
		if d.named {
			if first, dup := names[d.r.Name]; dup {
				v.problemf(d.doc.Name.Node, d.doc.Name.Path(), "duplicate route name %q (first at %s, line %d)", d.r.Name, first.doc.Path(), first.doc.Name.Node.Line)
			} else {
				names[d.r.Name] = d
			}
		}
		if !d.matchOK {
			continue
		}
		key := shapeKey(d.r.segs) + "\x00" + d.r.host.String()
		for _, o := range shapes[key] {
			if common := o.r.methods & d.r.methods; common != 0 {
				v.problemf(d.doc.Match.Node, d.doc.Match.Path(), "matches exactly the same requests as route %q (%s, line %d): same path shape, same host, methods %s in common", o.r.Name, o.doc.Path(), o.doc.Match.Node.Line, common)
				break
			}
		}
		shapes[key] = append(shapes[key], d)
	}
}
