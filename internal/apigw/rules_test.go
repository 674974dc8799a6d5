package apigw_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/apigw"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// Exports below are small but shaped as API Gateway writes them; rest and
// httpAPI wrap paths (and more) in the rest of a document.
const restSchemes = `
components:
  securitySchemes:
    users:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
      x-amazon-apigateway-authorizer:
        type: cognito_user_pools
        providerARNs: [arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI]
    lambda:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: custom
      x-amazon-apigateway-authorizer:
        type: token
        authorizerUri: arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:auth/invocations
    api_key: { type: apiKey, name: x-api-key, in: header }
`

func rest(body string) string {
	return "openapi: 3.0.1\ninfo: {title: t, version: v}\n" + body + restSchemes
}

func httpAPI(body string) string {
	return "openapi: 3.0.1\ninfo: {title: t, version: v}\nx-amazon-apigateway-importexport-version: '1.0'\n" + body
}

type imported struct {
	res  *apigw.Result
	snap *policy.Snapshot
}

func doImport(t *testing.T, doc string) imported {
	t.Helper()
	res, err := apigw.Import([]byte(doc), "export.yaml")
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	snap, err := policy.Parse(res.Policy, "imported.yaml", policy.Options{})
	if err != nil {
		t.Fatalf("the policy does not load: %v\n%s", err, res.Policy)
	}
	return imported{res, snap}
}

// route returns the named route, failing the test when it is missing.
func (im imported) route(t *testing.T, name string) *policy.Route {
	t.Helper()
	r, ok := im.snap.RouteByName(name)
	if !ok {
		var names []string
		for _, r := range im.snap.Routes() {
			names = append(names, r.Name)
		}
		t.Fatalf("no route %q; routes: %v\n%s", name, names, im.res.Policy)
	}
	return r
}

// denies reports whether a route is a deny-all route.
func denies(r *policy.Route) bool {
	return slices.ContainsFunc(r.Claims, func(c policy.ClaimRequirement) bool { return c.Claim == "token_use" && c.Value == "not-carried" })
}

// wantFindings checks that each finding path (a prefix is enough) was
// reported, and nothing else.
func (im imported) wantFindings(t *testing.T, paths ...string) {
	t.Helper()
	if len(im.res.Findings) != len(paths) {
		t.Errorf("%d findings, want %d:\n%s", len(im.res.Findings), len(paths), findings(im.res))
	}
	for _, p := range paths {
		if !slices.ContainsFunc(im.res.Findings, func(f apigw.Finding) bool { return strings.HasPrefix(f.Path, p) }) {
			t.Errorf("no finding at %s:\n%s", p, findings(im.res))
		}
	}
}

func TestSecurityRequirements(t *testing.T) {
	im := doImport(t, rest(`
security: [{users: []}]
paths:
  /inherited:
    get: {}
  /open:
    get: {security: []}
  /either:
    get: {security: [{lambda: []}, {users: [a/b]}, {api_key: []}]}
  /both:
    get: {security: [{users: [], lambda: []}]}
  /undefined:
    get: {security: [{nobody: []}]}
  /anonymous:
    get: {security: [{}]}
  /iam:
    get: {x-amazon-apigateway-auth: {type: AWS_IAM}}
`))
	if r := im.route(t, "get-inherited"); r.NoAuth || r.Mode != policy.ModeIdentity || denies(r) {
		t.Errorf("the document's security is not inherited: %+v", r)
	}
	if r := im.route(t, "get-open"); !r.NoAuth {
		t.Error("security: [] is not authorization NONE")
	}
	if r := im.route(t, "get-either"); r.Mode != policy.ModeAccess || !slices.Equal(r.Scopes, []string{"a/b"}) || denies(r) {
		t.Errorf("the carried alternative is not taken: %+v", r)
	}
	for _, name := range []string{"get-both", "get-undefined", "get-anonymous", "get-iam"} {
		if r := im.route(t, name); !denies(r) || r.Authorizer == nil || r.Authorizer.Name != "users" {
			t.Errorf("%s does not deny every request with the carried authorizer: %+v", name, r)
		}
	}
	im.wantFindings(t,
		`$.paths["/either"].get.security[0].lambda`, `$.paths["/either"].get.security[2]`,
		`$.paths["/both"].get.security[0].lambda`,
		`$.paths["/undefined"].get.security[0].nobody`,
		`$.paths["/anonymous"].get.security[0]`,
		`$.paths["/iam"].get["x-amazon-apigateway-auth"]`)
}

func TestMethodsAndNames(t *testing.T) {
	im := doImport(t, rest(`
paths:
  /a:
    get: {operationId: "List things!", security: [{users: []}]}
    post: {operationId: "List things!"}
    x-amazon-apigateway-any-method: {security: [{users: [a/admin]}]}
  /b:
    get: {}
    put: {}
    post: {}
    patch: {}
    delete: {}
    head: {}
    options: {}
    x-amazon-apigateway-any-method: {}
    trace: {}
  /c/{id}:
    get: {}
  /c/{other}:
    x-amazon-apigateway-any-method: {}
  /bad/{x}y:
    get: {}
`))
	if r := im.route(t, "List-things"); r.MethodsString() != "GET" {
		t.Errorf("List-things: %s", r.MethodsString())
	}
	if r := im.route(t, "List-things-2"); r.MethodsString() != "POST" || !r.NoAuth {
		t.Errorf("a repeated operationId is not made unique: %+v", r)
	}
	if r := im.route(t, "any-a"); r.MethodsString() != "PUT,PATCH,DELETE,OPTIONS" || r.Mode != policy.ModeAccess {
		t.Errorf("ANY beside GET and POST: %s (HEAD stays with GET)", r.MethodsString())
	}
	if r := im.route(t, "any-c-other"); r.MethodsString() != "POST,PUT,PATCH,DELETE,OPTIONS" {
		t.Errorf("ANY of the same path shape: %s", r.MethodsString())
	}
	if _, ok := im.snap.RouteByName("any-b"); ok {
		t.Error("an ANY with every method taken is kept")
	}
	im.wantFindings(t, `$.paths["/b"].trace`, `$.paths["/bad/{x}y"]`)
}

func TestHTTPAPIDefault(t *testing.T) {
	jwt := `
components:
  securitySchemes:
    jwt:
      type: oauth2
      flows: {}
      x-amazon-apigateway-authorizer:
        type: jwt
        identitySource: $request.querystring.access_token
        jwtConfiguration: {issuer: "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Xy12Ab34C", audience: [app1, app2]}
`
	im := doImport(t, httpAPI(`
paths:
  /:
    get: {}
  /{proxy+}:
    post: {security: [{jwt: [s/1]}]}
  $default:
    x-amazon-apigateway-any-method: {isDefaultRoute: true, security: [{jwt: []}]}
`+jwt))
	if r := im.route(t, "default"); r.Template != "/{proxy+}" || r.MethodsString() != "GET,PUT,PATCH,DELETE,HEAD,OPTIONS" || r.Mode != policy.ModeJWT {
		t.Errorf("default: %s %s %v", r.Template, r.MethodsString(), r.Mode)
	}
	if r := im.route(t, "default-root"); r.Template != "/" || r.MethodsString() != "POST,PUT,PATCH,DELETE,OPTIONS" {
		t.Errorf("default-root: %s %s", r.Template, r.MethodsString())
	}
	az := im.route(t, "post-proxy").Authorizer
	if az.Source.String() != "query:access_token" || !slices.Equal(az.Token.ClientIDs, []string{"app1", "app2"}) ||
		!slices.Equal(az.Token.Pools[0].Issuers, []string{"https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Xy12Ab34C"}) {
		t.Errorf("authorizer: %s %v %v", az.Source, az.Token.ClientIDs, az.Token.Pools)
	}
	im.wantFindings(t)

	// An explicit ANY /{proxy+} leaves $default only /.
	im = doImport(t, httpAPI(`
paths:
  /{proxy+}:
    x-amazon-apigateway-any-method: {}
  $default:
    x-amazon-apigateway-any-method: {isDefaultRoute: true, security: [{jwt: []}]}
`+jwt))
	if _, ok := im.snap.RouteByName("default"); ok {
		t.Error("$default kept /{proxy+} beside an ANY route")
	}
	if r := im.route(t, "default-root"); r.Template != "/" || r.MethodsString() != "ANY" {
		t.Errorf("default-root: %s %s", r.Template, r.MethodsString())
	}
}

// TestNothingCarried: an HTTP API whose only authorizer trusts another
// identity provider gets routes that deny everything, on a placeholder
// authorizer whose pool does not exist.
func TestNothingCarried(t *testing.T) {
	im := doImport(t, httpAPI(`
paths:
  /pets:
    get: {security: [{auth0: []}]}
  /open:
    get: {}
x-amazon-apigateway-cors: {allowOrigins: ["*"]}
components:
  securitySchemes:
    auth0:
      type: oauth2
      x-amazon-apigateway-authorizer:
        type: jwt
        jwtConfiguration: {issuer: "https://example.eu.auth0.com/", audience: [api]}
    no-audience:
      type: oauth2
      x-amazon-apigateway-authorizer:
        type: jwt
        jwtConfiguration: {issuer: "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEfGhI"}
`))
	r := im.route(t, "get-pets")
	if !denies(r) || r.Authorizer.Name != "not-carried" {
		t.Errorf("get-pets: %+v", r)
	}
	if !strings.Contains(string(im.res.Policy), "Placeholder") || !strings.Contains(string(im.res.Policy), "userpool/us-east-1_NotCarried") {
		t.Errorf("no placeholder authorizer:\n%s", im.res.Policy)
	}
	if !im.route(t, "get-open").NoAuth {
		t.Error("get-open is not NONE")
	}
	im.wantFindings(t,
		`$.paths["/pets"].get.security[0].auth0`,
		`$["x-amazon-apigateway-cors"]`,
		`$.components.securitySchemes.auth0["x-amazon-apigateway-authorizer"].jwtConfiguration.issuer`,
		`$.components.securitySchemes["no-audience"]["x-amazon-apigateway-authorizer"].jwtConfiguration.audience`)
}

func TestAuthorizerDetails(t *testing.T) {
	im := doImport(t, rest(`
paths:
  /a:
    get: {security: [{pools: ["ok/scope", "two words"]}]}
  /b:
    get: {security: [{pools: ["bad scope"]}]}
  /c:
    get: {security: [{plain: []}]}
x-amazon-apigateway-gateway-responses:
  UNAUTHORIZED: {statusCode: "200", responseParameters: {"gatewayresponse.header.X-Api": "'v1'"}}
  MISSING_AUTHENTICATION_TOKEN: {statusCode: 404, responseParameters: {"gatewayresponse.header.x-extauthz-reason": "'no'"}}
  BAD_REQUEST_BODY: {statusCode: 400}
`)+`
    pools:
      type: apiKey
      name: X-Token
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
      x-amazon-apigateway-authorizer:
        type: cognito_user_pools
        providerARNs:
          - arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI
          - arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEfGhI
          - arn:aws:cognito-idp:eu-west-1:123456789012:userpool/eu-west-1_ZzZzZzZzZ
        authorizerResultTtlInSeconds: 7200
        authorizerCredentials: arn:aws:iam::123456789012:role/x
    plain:
      type: apiKey
      name: Authorization
      in: header
      x-amazon-apigateway-authtype: cognito_user_pools
`)
	a := im.route(t, "get-a")
	if !slices.Equal(a.Scopes, []string{"ok/scope"}) || a.Authorizer.Source.String() != "header:x-token" ||
		len(a.Authorizer.Token.Pools) != 2 || a.Authorizer.ResultTTL.Seconds() != 300 {
		t.Errorf("get-a: scopes %v, source %s, %d pools, ttl %s", a.Scopes, a.Authorizer.Source, len(a.Authorizer.Token.Pools), a.Authorizer.ResultTTL)
	}
	if !denies(im.route(t, "get-b")) {
		t.Error("a route whose every scope was dropped does not deny")
	}
	if !denies(im.route(t, "get-c")) || !strings.Contains(findings(im.res), "extensions='apigateway'") {
		t.Errorf("a Cognito scheme without its authorizer: %s", findings(im.res))
	}
	if gr := im.snap.GatewayResponse(policy.Unauthorized); gr.StatusCode != 0 || len(gr.Headers) != 1 || gr.Headers[0].Name != "x-api" {
		t.Errorf("UNAUTHORIZED: %+v", gr)
	}
	if gr := im.snap.GatewayResponse(policy.MissingAuthenticationToken); gr.StatusCode != 404 || len(gr.Headers) != 0 {
		t.Errorf("MISSING_AUTHENTICATION_TOKEN: %+v", gr)
	}
	im.wantFindings(t,
		`$.paths["/a"].get.security[0].pools[1]`,
		`$.paths["/b"].get.security[0].pools[0]`, `$.paths["/b"].get.security[0].pools`,
		`$.paths["/c"].get.security[0].plain`,
		`$["x-amazon-apigateway-gateway-responses"].UNAUTHORIZED.statusCode`,
		`$["x-amazon-apigateway-gateway-responses"].MISSING_AUTHENTICATION_TOKEN.responseParameters`,
		`$.components.securitySchemes.pools["x-amazon-apigateway-authorizer"].authorizerResultTtlInSeconds`,
		`$.components.securitySchemes.pools["x-amazon-apigateway-authorizer"].authorizerCredentials`)
}

// TestNoOperations: a policy needs a route; an export with none gets one
// that matches nothing API Gateway routed.
func TestNoOperations(t *testing.T) {
	im := doImport(t, rest("paths: {}\n"))
	if len(im.snap.Routes()) != 1 || !im.snap.Routes()[0].NoAuth {
		t.Fatalf("routes: %v", im.snap.Routes())
	}
}

// TestUnreadableScopes: scopes that are not a list of strings never read
// as "no scopes" (which would admit any ID token).
func TestUnreadableScopes(t *testing.T) {
	im := doImport(t, rest(`
paths:
  /a:
    get: {security: [{users: {read: true}}]}
  /b:
    get: {security: [{users: [[x]]}]}
  /c:
    get: {security: [{users: []}]}
`))
	for _, name := range []string{"get-a", "get-b"} {
		if !denies(im.route(t, name)) {
			t.Errorf("%s does not deny", name)
		}
	}
	if r := im.route(t, "get-c"); denies(r) || r.Mode != policy.ModeIdentity {
		t.Errorf("get-c: %+v", r)
	}
	im.wantFindings(t, `$.paths["/a"].get.security[0].users`, `$.paths["/b"].get.security[0].users`)
}
