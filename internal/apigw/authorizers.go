package apigw

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// scheme is one security scheme of the export.
type scheme struct {
	name string
	path string
	// az is the authorizer it became, nil when it cannot be carried; why
	// then says what it is (a Lambda authorizer, IAM, an API key, ...).
	az     *authorizer
	why    string
	apiKey bool // an API key requirement
}

// authorizer is one authorizer of the policy.
type authorizer struct {
	name    string
	from    string   // JSON path in the export
	arns    []string // REST: providerARNs
	poolID  string   // HTTP API: the pool of the issuer
	issuer  string   // HTTP API: the issuer, exactly
	clients []string
	source  string // identitySource in the policy's notation
	ttl     string // resultTtl, "" for the default
	jwt     bool   // an HTTP API JWT authorizer
	note    []string
	// placeholder marks the authorizer made up for deny-all routes when
	// the export has no authorizer that could be carried.
	placeholder bool
}

// readAuthorizers classifies every security scheme.
func (im *importer) readAuthorizers() {
	im.schemes = map[string]*scheme{}
	im.azNames = newNames()
	for _, m := range im.securitySchemes() {
		s := &scheme{name: m.name, path: m.val.path}
		im.classify(s, m.val)
		im.schemes[m.name] = s
		im.order = append(im.order, m.name)
	}
}

func (im *importer) classify(s *scheme, n node) {
	authtype := strings.ToLower(n.getStr("x-amazon-apigateway-authtype"))
	a, hasAuthorizer := n.get("x-amazon-apigateway-authorizer")
	typ := strings.ToLower(a.getStr("type"))
	switch {
	case hasAuthorizer && typ == "cognito_user_pools":
		s.az = im.cognito(s, n, a)
	case hasAuthorizer && typ == "jwt":
		s.az = im.jwt(s, a)
	case hasAuthorizer && (typ == "token" || typ == "request"):
		s.why = fmt.Sprintf("Lambda authorizer %q (type %s)", s.name, typ)
	case hasAuthorizer:
		s.why = fmt.Sprintf("authorizer %q of type %q", s.name, a.getStr("type"))
	case authtype == "cognito_user_pools":
		s.why = fmt.Sprintf("Cognito authorizer %q whose user pools the export does not name (export with --parameters extensions='apigateway' to include its providerARNs)", s.name)
	case authtype == "awssigv4":
		s.why = "AWS_IAM authorization (SigV4)"
	case authtype == "custom":
		s.why = fmt.Sprintf("Lambda authorizer %q", s.name)
	case authtype != "":
		s.why = fmt.Sprintf("authorization type %q of scheme %q", n.getStr("x-amazon-apigateway-authtype"), s.name)
	case strings.EqualFold(n.getStr("type"), "apiKey"):
		s.apiKey = true
		s.why = fmt.Sprintf("API key required (scheme %q, %s %s)", s.name, n.getStr("in"), n.getStr("name"))
	default:
		s.why = fmt.Sprintf("security scheme %q without an API Gateway authorizer", s.name)
	}
	if s.az == nil {
		return
	}
	s.az.name = im.azNames.unique(s.name, "authorizer")
	if im.deny == nil {
		im.deny = s.az
	}
}

// cognito reads a REST COGNITO_USER_POOLS authorizer.
func (im *importer) cognito(s *scheme, n, a node) *authorizer {
	az := &authorizer{from: s.path}
	known := []string{"type", "providerARNs", "authorizerResultTtlInSeconds", "identitySource", "identityValidationExpression"}
	im.unknownFields(a, known)
	arns, ok := a.get("providerARNs")
	list, lok := arns.strs()
	if !ok || !lok || len(list) == 0 {
		s.why = fmt.Sprintf("Cognito authorizer %q without providerARNs", s.name)
		im.report(arns.or(a, "providerARNs"), "%s", s.why)
		return nil
	}
	for i, arn := range list {
		if err := policy.CheckPoolARN(arn); err != nil {
			// A stage variable, or a malformed ARN: the pool is left out,
			// which only narrows whom the authorizer accepts.
			im.report(arns.items()[i], "user pool not carried: %v", err)
			continue
		}
		if !slices.Contains(az.arns, arn) {
			az.arns = append(az.arns, arn)
		}
	}
	if len(az.arns) == 0 {
		s.why = fmt.Sprintf("Cognito authorizer %q, none of whose user pools could be carried", s.name)
		return nil
	}
	src, ok := im.restSource(s, n, a)
	if !ok {
		return nil
	}
	az.source = src
	if v, ok := a.get("authorizerResultTtlInSeconds"); ok {
		az.ttl = im.ttl(v)
	}
	if v, ok := a.get("identityValidationExpression"); ok {
		im.report(v, "identityValidationExpression not carried: API Gateway matches it against an ID token's aud and refuses access tokens; list the app clients in appClientIds instead")
	}
	return az
}

// restSource is a REST authorizer's identity source: its identitySource
// (method.request.header.NAME) when the export has one, else the scheme's
// header name.
func (im *importer) restSource(s *scheme, n, a node) (string, bool) {
	if v, ok := a.get("identitySource"); ok {
		text, _ := v.str()
		if name, found := strings.CutPrefix(text, "method.request.header."); found && policy.CheckIdentitySource("header:"+name) == nil {
			return "header:" + name, true
		}
		s.why = fmt.Sprintf("Cognito authorizer %q reads its token from %q", s.name, text)
		im.report(v, "identity source %q not carried", text)
		return "", false
	}
	name := n.getStr("name")
	if in := n.getStr("in"); !strings.EqualFold(in, "header") || policy.CheckIdentitySource("header:"+name) != nil {
		s.why = fmt.Sprintf("Cognito authorizer %q reads its token from %s %q", s.name, in, name)
		im.report(n, "identity source (%s %q) not carried", in, name)
		return "", false
	}
	return "header:" + name, true
}

// ttl reads authorizerResultTtlInSeconds as a resultTtl.
func (im *importer) ttl(v node) string {
	text, _ := v.str()
	secs, err := strconv.Atoi(text)
	if err != nil || secs < 0 || secs > 3600 {
		im.report(v, "authorizerResultTtlInSeconds %q not carried: want 0 to 3600; the default 300s is used", text)
		return ""
	}
	return strconv.Itoa(secs) + "s"
}

// cognitoIssuerRE matches a Cognito user pool issuer, both forms, and the
// China partition's domain.
var cognitoIssuerRE = regexp.MustCompile(`^https://(?:issuer-)?cognito-idp\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^/]+)$`)

// jwt reads an HTTP API JWT authorizer whose issuer is a Cognito pool.
func (im *importer) jwt(s *scheme, a node) *authorizer {
	az := &authorizer{from: s.path, jwt: true}
	im.unknownFields(a, []string{"type", "jwtConfiguration", "identitySource", "authorizerResultTtlInSeconds"})
	cfg, _ := a.get("jwtConfiguration")
	cfg = cfg.or(a, "jwtConfiguration")
	iss, ok := cfg.get("issuer")
	issuer, _ := iss.str()
	m := cognitoIssuerRE.FindStringSubmatch(issuer)
	if !ok || m == nil || policy.CheckPoolID(m[2]) != nil || policy.CheckIssuer(issuer) != nil {
		s.why = fmt.Sprintf("JWT authorizer %q whose issuer %q is not a Cognito user pool", s.name, issuer)
		im.report(iss.or(cfg, "issuer"), "JWT issuer %q not carried: this service verifies Cognito user pool tokens only", issuer)
		return nil
	}
	az.poolID, az.issuer = m[2], issuer
	aud, _ := cfg.get("audience")
	clients, lok := aud.strs()
	for _, c := range clients {
		if policy.CheckWord(c) != nil {
			lok = false
		}
	}
	if !lok || len(clients) == 0 {
		s.why = fmt.Sprintf("JWT authorizer %q without a usable audience", s.name)
		im.report(aud.or(cfg, "audience"), "audience not carried: a jwt route needs the app client ids it admits")
		return nil
	}
	az.clients = slices.Compact(slices.Clone(clients))
	az.source = "header:Authorization" // API Gateway's default
	if v, ok := a.get("identitySource"); ok {
		text, _ := v.str()
		src, ok := httpSource(text)
		if !ok {
			s.why = fmt.Sprintf("JWT authorizer %q reads its token from %q", s.name, text)
			im.report(v, "identity source %q not carried: want $request.header.NAME or $request.querystring.NAME", text)
			return nil
		}
		az.source = src
	}
	az.note = []string{"API Gateway accepts exactly this issuer: the pool's other issuer form is refused too."}
	return az
}

// httpSource reads an HTTP API identity source.
func httpSource(s string) (string, bool) {
	var src string
	if name, ok := strings.CutPrefix(s, "$request.header."); ok {
		src = "header:" + name
	} else if name, ok := strings.CutPrefix(s, "$request.querystring."); ok {
		src = "query:" + name
	} else {
		return "", false
	}
	return src, policy.CheckIdentitySource(src) == nil
}

// or is n, or when n is absent, the place its member name of parent
// would be (at parent's line).
func (n node) or(parent node, name string) node {
	if n.Node != nil {
		return n
	}
	return node{parent.Node, parent.key(name)}
}

// unknownFields reports authorizer fields the import does not read.
func (im *importer) unknownFields(a node, known []string) {
	for _, m := range a.members() {
		if !slices.Contains(known, m.name) && !isExtension(m.name) {
			im.report(m.val, "authorizer field %s not carried", m.name)
		}
	}
}

// denyAuthorizer is the authorizer deny-all routes use: the first that was
// carried, or a placeholder whose pool does not exist, so the service
// never becomes ready on a policy with nothing carried.
func (im *importer) denyAuthorizer() *authorizer {
	if im.deny == nil {
		im.deny = &authorizer{
			name:        im.azNames.unique("not-carried", "authorizer"),
			arns:        []string{"arn:aws:cognito-idp:us-east-1:000000000000:userpool/us-east-1_NotCarried"},
			source:      "header:Authorization",
			placeholder: true,
		}
	}
	return im.deny
}
