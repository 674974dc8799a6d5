package apigw_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/policytest"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// row is one request to an imported policy and what API Gateway answers
// it: allowed (200), or denied with its status.
type row struct {
	method, path string
	token        string // a key of the export's tokens; "" sends none
	status       int    // API Gateway's answer: 200 allowed, else the denial's status
	// ours is the service's status where it differs from API Gateway's
	// by design, with why; 0 when the same.
	ours int
	why  string
	// notCarried marks a route whose authorization was not carried: API
	// Gateway's answer depended on it (a Lambda, IAM); the service denies.
	notCarried bool
}

// serve imports an export, loads the policy, and decides every row with
// the gRPC edge's translation of the decision (as `extauthz test` does),
// tokens minted from claims with the test key the policy's pools are
// pointed at.
func serve(t *testing.T, file string, tokens map[string]map[string]any, rows []row) {
	t.Helper()
	res := importFile(t, file)
	snap, err := policy.Parse(res.Policy, file+".policy.yaml", policy.Options{})
	if err != nil {
		t.Fatalf("imported policy does not load: %v", err)
	}
	runner, err := policytest.NewRunner(snap, policytest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		name := fmt.Sprintf("%s %s with %s", r.method, r.path, r.token)
		if r.token == "" {
			name = fmt.Sprintf("%s %s without a token", r.method, r.path)
		}
		t.Run(name, func(t *testing.T) {
			c := policytest.Case{Name: name, Request: policytest.Request{Method: r.method, Path: r.path}}
			if r.token != "" {
				claims, ok := tokens[r.token]
				if !ok {
					t.Fatalf("no token %q", r.token)
				}
				c.Claims = claims
			}
			want := r.status
			if r.ours != 0 {
				want = r.ours
			}
			c.Expect = policytest.Expect{Allow: want == 200 && !r.notCarried, Status: want}
			got := runner.Run(context.Background(), []policytest.Case{c})[0]
			if !got.Pass {
				t.Fatalf("%v (reason %s, detail %s)", got.Diffs, got.Got.GetReason(), got.Got.GetDetail())
			}
		})
	}
}

// petstoreTokens are tokens of the PetStore's pool, and near misses.
var petstoreTokens = map[string]map[string]any{
	"an ID token":                         {"token_use": "id"},
	"an access token":                     {"token_use": "access"},
	"an access token with petstore/write": {"token_use": "access", "scope": "petstore/write"},
	"an access token with petstore/read":  {"token_use": "access", "scope": "openid petstore/read"},
	"an access token with petstore/admin": {"token_use": "access", "scope": "petstore/admin"},
	"an ID token of another pool":         {"token_use": "id", "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Ot4erPo0l"},
	"an expired ID token":                 {"token_use": "id", "exp": 1700000000, "iat": 1699990000},
}

// petstoreRows are API Gateway REST's answers for the PetStore with a
// COGNITO_USER_POOLS authorizer: a method without scopes takes ID tokens,
// a method with scopes access tokens holding one of them.
var petstoreRows = []row{
	{method: "GET", path: "/", status: 200},
	{method: "GET", path: "/", token: "an ID token", status: 200},
	{method: "GET", path: "/pets", token: "an ID token", status: 200},
	{method: "GET", path: "/pets?type=dog&page=2", token: "an ID token", status: 200},
	{method: "GET", path: "/pets", token: "an access token with petstore/read", status: 401},
	{method: "GET", path: "/pets", status: 401},
	{method: "GET", path: "/pets", token: "an ID token of another pool", status: 401},
	{method: "GET", path: "/pets", token: "an expired ID token", status: 401},
	{method: "POST", path: "/pets", token: "an access token with petstore/write", status: 200},
	{method: "POST", path: "/pets", token: "an access token with petstore/read", status: 401, ours: 403, why: "a token without the method's scope is 403 insufficient_scope here"},
	{method: "POST", path: "/pets", token: "an access token", status: 401, ours: 403, why: "a token without the method's scope is 403 insufficient_scope here"},
	{method: "POST", path: "/pets", token: "an ID token", status: 401},
	{method: "POST", path: "/pets", status: 401},
	{method: "OPTIONS", path: "/pets", status: 200},
	{method: "GET", path: "/pets/7", token: "an access token with petstore/read", status: 200},
	{method: "GET", path: "/pets/7", token: "an access token with petstore/admin", status: 200},
	{method: "GET", path: "/pets/7", token: "an access token with petstore/write", status: 401, ours: 403, why: "a token without the method's scope is 403 insufficient_scope here"},
	{method: "GET", path: "/pets/7", token: "an ID token", status: 401},
	{method: "OPTIONS", path: "/pets/7", status: 200},
	// No such method or resource: API Gateway's Missing Authentication
	// Token.
	{method: "DELETE", path: "/pets/7", token: "an access token with petstore/admin", status: 403},
	{method: "GET", path: "/stores", token: "an ID token", status: 403},
	{method: "GET", path: "/pets/7/owner", token: "an access token with petstore/read", status: 403},
}

func TestServePetStoreOpenAPI3(t *testing.T) {
	serve(t, "petstore-rest-oas30.json", petstoreTokens, petstoreRows)
}

func TestServePetStoreSwagger2(t *testing.T) {
	serve(t, "petstore-rest-swagger.yaml", petstoreTokens, petstoreRows)
}

// TestServeHTTPAPI: API Gateway HTTP API's JWT authorizer takes either
// token type from the audience's app client; a route's scopes must be in
// the scope claim (403 otherwise); $default takes what no route matches.
func TestServeHTTPAPI(t *testing.T) {
	const client = "5ujkd0example7pmr1v9q2httpapi"
	tokens := map[string]map[string]any{
		"an ID token":                            {"token_use": "id"},
		"an access token":                        {"token_use": "access"},
		"an access token with pets/read":         {"token_use": "access", "scope": "pets/read"},
		"an access token with pets/write":        {"token_use": "access", "scope": "pets/write"},
		"an access token with pets/admin":        {"token_use": "access", "scope": "pets/admin"},
		"an ID token of another app client":      {"token_use": "id", "aud": "3other0client0id0000000000"},
		"an access token of another client":      {"token_use": "access", "scope": "pets/read", "client_id": "3other0client0id0000000000"},
		"an access token with aud set":           {"token_use": "access", "client_id": "3other0client0id0000000000", "aud": client},
		"an ID token from the other issuer form": {"token_use": "id", "iss": "https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_Hx4tTp9Qa"},
		"an expired access token":                {"token_use": "access", "scope": "pets/read", "exp": 1700000000, "iat": 1699990000},
	}
	rows := []row{
		{method: "GET", path: "/pets", token: "an access token with pets/read", status: 200},
		{method: "GET", path: "/pets", token: "an access token", status: 403},
		{method: "GET", path: "/pets", token: "an ID token", status: 403},
		{method: "GET", path: "/pets", token: "an access token of another client", status: 401},
		{method: "GET", path: "/pets", token: "an expired access token", status: 401},
		{method: "GET", path: "/pets", status: 401},
		{method: "POST", path: "/pets", token: "an access token with pets/write", status: 200},
		{method: "POST", path: "/pets", token: "an access token with pets/read", status: 403},
		{method: "GET", path: "/pets/7", token: "an ID token", status: 200},
		{method: "GET", path: "/pets/7", token: "an access token", status: 200},
		{method: "GET", path: "/pets/7", token: "an access token with aud set", status: 200},
		{method: "GET", path: "/pets/7", token: "an ID token of another app client", status: 401},
		{method: "GET", path: "/pets/7", token: "an ID token from the other issuer form", status: 401},
		{method: "POST", path: "/admin/users", token: "an access token with pets/admin", status: 200},
		{method: "DELETE", path: "/admin/users/9", token: "an access token with pets/admin", status: 200},
		{method: "GET", path: "/admin/users", token: "an access token with pets/read", status: 403},
		{method: "GET", path: "/admin/users", token: "an ID token", status: 403},
		{method: "GET", path: "/health", status: 200},
		// $default: any path and method no route has, including /.
		{method: "GET", path: "/legacy/report", token: "an ID token", status: 200},
		{method: "PUT", path: "/pets/7", token: "an access token", status: 200},
		{method: "GET", path: "/", token: "an ID token", status: 200},
		{method: "GET", path: "/legacy/report", status: 401},
		{method: "POST", path: "/health", status: 401},
		{method: "GET", path: "/legacy/report", token: "an ID token of another app client", status: 401},
	}
	serve(t, "pets-http-api.yaml", tokens, rows)
}

// TestServeLeftovers: what was carried decides as API Gateway; what was
// not (Lambda authorizers, IAM, an API key alone) is denied whatever the
// token.
func TestServeLeftovers(t *testing.T) {
	tokens := map[string]map[string]any{
		"an ID token":                            {"token_use": "id"},
		"an access token with orders/write":      {"token_use": "access", "scope": "orders/write"},
		"an access token with items/admin":       {"token_use": "access", "scope": "items/admin"},
		"an ID token of the stage-variable pool": {"token_use": "id", "iss": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Pa7tNer00"},
	}
	rows := []row{
		// Cognito and an API key: the token is checked, the key is not.
		{method: "GET", path: "/orders", token: "an ID token", status: 200, why: "API Gateway also wanted an x-api-key (reported)"},
		{method: "GET", path: "/orders", status: 401},
		{method: "POST", path: "/orders", token: "an access token with orders/write", status: 200},
		{method: "POST", path: "/orders", token: "an ID token", status: 401},
		// GET /items and ANY /items: GET has its route, the others ANY's.
		{method: "GET", path: "/items", token: "an ID token", status: 200},
		{method: "GET", path: "/items", token: "an access token with items/admin", status: 401},
		{method: "POST", path: "/items", token: "an access token with items/admin", status: 200},
		{method: "DELETE", path: "/items", token: "an ID token", status: 401},
		{method: "PATCH", path: "/items", status: 401},
		// HEAD goes to the GET route here (API Gateway: the ANY method).
		{method: "HEAD", path: "/items", token: "an ID token", status: 401, ours: 200, why: "HEAD is judged by the GET route"},
		{method: "GET", path: "/files/a/b.pdf", status: 200},
		{method: "PUT", path: "/files/a", status: 200},
		{method: "GET", path: "/status", status: 200},
		// A pool named through a stage variable is not carried.
		{method: "GET", path: "/items", token: "an ID token of the stage-variable pool", status: 200, ours: 401, why: "its pool ARN was a stage variable (reported)"},
		// Not carried: denied whatever the token.
		{method: "GET", path: "/reports", token: "an ID token", status: 403, notCarried: true},
		{method: "GET", path: "/reports", status: 401, notCarried: true},
		{method: "POST", path: "/partners/p1", token: "an ID token", status: 403, notCarried: true},
		{method: "GET", path: "/internal/metrics", token: "an ID token", status: 403, notCarried: true},
		{method: "GET", path: "/usage", token: "an ID token", status: 403, notCarried: true},
		{method: "GET", path: "/usage", status: 401, notCarried: true},
	}
	serve(t, "leftovers-rest-oas30.json", tokens, rows)
}
