package policy

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token/alg"
)

const (
	defaultResultTTL = 300 * time.Second
	// maxResultTTL is API Gateway's maximum authorizerResultTtlInSeconds.
	maxResultTTL = time.Hour
	maxClockSkew = 5 * time.Minute
	// maxNameLen bounds route and authorizer names, which become metric
	// label values.
	maxNameLen = 128
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// validated is the policy after validation: every value read into its Go
// form. compile turns it into a Snapshot, and runs only when validation
// found no problem.
type validated struct {
	// authorizers by name; the value is nil when the authorizer has
	// problems of its own.
	authorizers  map[string]*Authorizer
	routes       []*routeDef
	defaultAllow bool
	responses    map[string]GatewayResponse
	revocation   *Revocation
}

// routeDef is a validated route and the document it came from, for the
// rules that look across routes.
type routeDef struct {
	r       *Route
	doc     *routeDoc
	named   bool // the name is valid
	matchOK bool // template, methods and host all valid
}

// validator applies the policy's rules to a document, collecting every
// problem rather than stopping at the first.
type validator struct {
	*reporter
	dir  string // for relative jwksFile paths
	opts Options
	out  validated
	strs map[string]string // see intern
	// authorizerNames are the defined authorizer names in file order, for
	// a "did you mean" on a route that names an unknown one.
	authorizerNames []string
}

// validate checks the whole document and reads it into its Go form.
func validate(r *reporter, doc *document, dir string, opts Options) *validated {
	v := &validator{reporter: r, dir: dir, opts: opts, strs: map[string]string{}}
	v.out.authorizers = map[string]*Authorizer{}
	v.out.responses = map[string]GatewayResponse{}
	if doc.bad {
		return &v.out
	}
	v.apiVersion(doc)
	for _, e := range doc.Authorizers.Entries {
		v.out.authorizers[e.Name] = v.authorizer(e.Name, &e.Val)
		v.authorizerNames = append(v.authorizerNames, e.Name)
	}
	if !doc.Routes.Set() {
		v.missing(doc.docValue, doc.Routes.docValue, "a policy needs at least one route")
	} else if routes, ok := items(v.reporter, doc.Routes, false); ok {
		for i := range routes {
			v.route(&routes[i], i)
		}
		v.crossCheckRoutes()
	}
	if doc.DefaultAction.Set() {
		a, _ := v.keyword(doc.DefaultAction, "deny", "allow")
		v.out.defaultAllow = a == "allow"
	}
	for _, e := range doc.GatewayResponses.Entries {
		v.gatewayResponse(e.Name, e.Key, &e.Val)
	}
	if doc.Revocation.Set() {
		v.out.revocation = v.revocation(&doc.Revocation)
	}
	return &v.out
}

func (v *validator) apiVersion(doc *document) {
	if !doc.APIVersion.Set() {
		v.missing(doc.docValue, doc.APIVersion, "set apiVersion: %s", APIVersion)
	} else if s, ok := v.str(doc.APIVersion); ok && s != APIVersion {
		v.problemf(doc.APIVersion.Node, doc.APIVersion.Path(), "unsupported apiVersion %q: want %s", s, APIVersion)
	}
}

// authorizer validates one authorizer; nil when it has problems.
func (v *validator) authorizer(name string, d *authorizerDoc) *Authorizer {
	if !nameRE.MatchString(name) || len(name) > maxNameLen {
		v.problemf(d.Key, d.Path(), "authorizer name %q: use 1 to %d of A-Z a-z 0-9 . _ -", name, maxNameLen)
	}
	if d.bad {
		return nil
	}
	ok := !d.keysBad
	az := &Authorizer{
		Name:      name,
		Token:     &token.Config{},
		Source:    IdentitySource{Kind: SourceHeader, Name: "authorization"},
		ResultTTL: defaultResultTTL,
	}
	keep := func(good bool) { ok = ok && good }
	if !d.UserPools.Set() {
		v.missing(d.docValue, d.UserPools.docValue, "list at least one user pool")
		ok = false
	} else {
		var pok bool
		az.Token.Pools, pok = v.pools(d.UserPools)
		keep(pok)
	}
	if d.AppClientIDs.Set() {
		ids, iok := v.words(d.AppClientIDs, true)
		slices.Sort(ids)
		az.Token.ClientIDs = ids
		keep(iok)
	}
	if d.IdentitySource.Set() {
		var sok bool
		az.Source, sok = v.identitySource(d.IdentitySource)
		keep(sok)
	}
	if d.StripToken.Set() {
		var bok bool
		az.StripToken, bok = v.boolean(d.StripToken)
		keep(bok)
	}
	if d.ResultTTL.Set() {
		var dok bool
		az.ResultTTL, dok = v.duration(d.ResultTTL, maxResultTTL)
		keep(dok)
	}
	if d.ClockSkew.Set() {
		var dok bool
		az.Token.ClockSkew, dok = v.duration(d.ClockSkew, maxClockSkew)
		keep(dok)
	}
	if d.Algorithms.Set() {
		var aok bool
		az.Token.Algorithms, aok = v.algorithms(d.Algorithms)
		keep(aok)
	}
	if !ok {
		return nil
	}
	return az
}

func (v *validator) identitySource(val docValue) (IdentitySource, bool) {
	def := IdentitySource{Kind: SourceHeader, Name: "authorization"}
	s, ok := v.str(val)
	if !ok {
		return def, false
	}
	src, err := parseIdentitySource(s)
	if err != nil {
		v.problemf(val.Node, val.Path(), "%v", err)
		return def, false
	}
	return src, true
}

// algorithms reads an authorizer's algorithms. Algorithm names are JOSE
// identifiers compared byte for byte with a token's alg header, so they are
// exact, not keywords: rs256 is refused with a hint.
func (v *validator) algorithms(l docList[docValue]) ([]string, bool) {
	items, ok := items(v.reporter, l, false)
	if !ok {
		return nil, false
	}
	var out []string
	for _, it := range items {
		a, aok := v.word(it)
		if !aok {
			ok = false
			continue
		}
		if err := alg.Check(a); err != nil {
			v.problemf(it.Node, it.Path(), "%v", err)
			ok = false
			continue
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	return out, ok
}

var responseTypes = []string{"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "AUTHORIZER_FAILURE", "DEFAULT_4XX", "DEFAULT_5XX"}

func (v *validator) gatewayResponse(name string, key *yaml.Node, d *gatewayResponseDoc) {
	if !slices.Contains(responseTypes, name) {
		if k := suggest(name, responseTypes); k != "" {
			v.problemf(key, d.Path(), "unknown gateway response type %q: did you mean %q?", name, k)
		} else {
			v.problemf(key, d.Path(), "unknown gateway response type %q (known: %s)", name, strings.Join(responseTypes, ", "))
		}
		return
	}
	if d.bad {
		return
	}
	ok := !d.keysBad
	var gr GatewayResponse
	if d.StatusCode.Set() {
		code, cok := v.statusCode(d.StatusCode)
		gr.StatusCode = code
		ok = ok && cok
	}
	if d.Headers.Set() {
		hs, hok := v.responseHeaders(d.Headers)
		gr.Headers = hs
		ok = ok && hok
	}
	if ok {
		v.out.responses[name] = gr
	}
}

func (v *validator) statusCode(val docValue) (int, bool) {
	if !val.usable() {
		return 0, false
	}
	var code int
	n := val.Node
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&code) != nil {
		v.problemf(n, val.Path(), "must be an integer status code, not %s", describe(n))
		return 0, false
	}
	if code < 400 || code > 599 {
		v.problemf(n, val.Path(), "status code %d is outside 400-599: a denial must stay a denial", code)
		return 0, false
	}
	return code, true
}

func (v *validator) responseHeaders(m docMap[docValue]) ([]Header, bool) {
	ok := !m.bad && !m.keysBad
	out := make([]Header, 0, len(m.Entries))
	seen := map[string]*yaml.Node{}
	for _, e := range m.Entries {
		name := strings.ToLower(e.Name)
		if first, dup := seen[name]; dup {
			v.problemf(e.Key, e.Val.Path(), "header %q is already given as %q at line %d (header names are case-insensitive)", name, first.Value, first.Line)
			ok = false
			continue
		}
		seen[name] = e.Key
		val, vok := v.str(e.Val)
		if !vok {
			ok = false
			continue
		}
		if err := checkResponseHeader(name, val); err != nil {
			v.problemf(e.Key, e.Val.Path(), "%v", err)
			ok = false
			continue
		}
		out = append(out, Header{Name: name, Value: val})
	}
	slices.SortFunc(out, func(a, b Header) int { return cmp.Compare(a.Name, b.Name) })
	return out, ok
}

func parseIdentitySource(s string) (IdentitySource, error) {
	var src IdentitySource
	rest := ""
	switch {
	case strings.HasPrefix(s, "method.request.header."):
		src.Kind, rest = SourceHeader, strings.TrimPrefix(s, "method.request.header.")
	case strings.HasPrefix(s, "header:"):
		src.Kind, rest = SourceHeader, strings.TrimPrefix(s, "header:")
	case strings.HasPrefix(s, "query:"):
		src.Kind, rest = SourceQuery, strings.TrimPrefix(s, "query:")
	case strings.HasPrefix(s, "cookie:"):
		src.Kind, rest = SourceCookie, strings.TrimPrefix(s, "cookie:")
	default:
		return src, fmt.Errorf("identitySource %q: want header:NAME, query:NAME, cookie:NAME or method.request.header.NAME", s)
	}
	switch src.Kind {
	case SourceHeader:
		if !httpsyntax.IsToken(rest) {
			return src, fmt.Errorf("identitySource %q: %q is not a valid HTTP header name", s, rest)
		}
		rest = strings.ToLower(rest)
		switch {
		case rest == "cookie":
			return src, fmt.Errorf("identitySource %q: to read a cookie, write cookie:NAME", s)
		case rest == "host", hopByHop[rest]:
			return src, fmt.Errorf("identitySource %q: header %q cannot carry a token", s, rest)
		}
	case SourceQuery:
		if !isQueryName(rest) {
			return src, fmt.Errorf("identitySource %q: a query parameter name is one or more of A-Z a-z 0-9 - . _ ~", s)
		}
	case SourceCookie:
		if !httpsyntax.IsToken(rest) {
			return src, fmt.Errorf("identitySource %q: %q is not a valid cookie name", s, rest)
		}
	}
	src.Name = rest
	return src, nil
}
