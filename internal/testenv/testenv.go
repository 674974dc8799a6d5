// Package testenv gives tests real parts to run against: a local
// Cognito-shaped issuer whose JWKS is served by a real HTTP server that
// counts its hits and can be made to fail, hang or rotate keys, plus helpers
// to compile policies that point at it.
package testenv

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// PoolID is the pool id of the test issuer.
const PoolID = "local_testpool"

// ClientID is the app client the test policies allow.
const ClientID = "client-a"

// Mode is how the JWKS server answers.
type Mode int32

// JWKS server modes.
const (
	Up   Mode = iota // serve the issuer's JWKS
	Down             // answer 500
	Hang             // hold the request until the client gives up or the test ends
)

// Env is one issuer and its JWKS server.
type Env struct {
	Issuer *issuer.Issuer
	Server *httptest.Server
	hits   atomic.Int64
	mode   atomic.Int32
	stop   chan struct{}
}

// New starts a JWKS server and an issuer whose iss is on it. Both stop when
// the test ends.
func New(t testing.TB) *Env {
	t.Helper()
	e := &Env{stop: make(chan struct{})}
	e.Server = httptest.NewServer(http.HandlerFunc(e.serve))
	iss, err := issuer.New(e.Server.URL+"/"+PoolID, PoolID)
	if err != nil {
		e.Server.Close()
		t.Fatalf("new issuer: %v", err)
	}
	e.Issuer = iss
	t.Cleanup(func() {
		close(e.stop)
		e.Server.Close()
	})
	return e
}

func (e *Env) serve(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/.well-known/jwks.json") {
		http.NotFound(w, r)
		return
	}
	e.hits.Add(1)
	switch Mode(e.mode.Load()) {
	case Down:
		http.Error(w, "unavailable", http.StatusInternalServerError)
	case Hang:
		select {
		case <-r.Context().Done():
		case <-e.stop:
		}
	default:
		e.Issuer.ServeHTTP(w, r)
	}
}

// SetMode changes how the JWKS server answers from now on.
func (e *Env) SetMode(m Mode) { e.mode.Store(int32(m)) }

// Hits is how many JWKS requests the server has received.
func (e *Env) Hits() int64 { return e.hits.Load() }

// IssuerURL is the iss of the tokens the issuer mints.
func (e *Env) IssuerURL() string { return e.Issuer.URL() }

// JWKSURL is where the issuer's JWKS is served.
func (e *Env) JWKSURL() string { return e.Issuer.URL() + "/.well-known/jwks.json" }

// Expand replaces ${ISSUER}, ${JWKS} and ${POOL} in a policy document.
func (e *Env) Expand(doc string) string {
	return strings.NewReplacer(
		"${ISSUER}", e.IssuerURL(),
		"${JWKS}", e.JWKSURL(),
		"${POOL}", PoolID,
	).Replace(doc)
}

// Policy compiles a policy document after Expand, failing the test on any
// problem.
func (e *Env) Policy(t testing.TB, doc string) *policy.Snapshot {
	t.Helper()
	snap, err := policy.Parse([]byte(e.Expand(doc)), "test-policy.yaml", policy.Options{})
	if err != nil {
		t.Fatalf("test policy: %v", err)
	}
	return snap
}

// Keys returns a JWKS cache with the snapshot's sources loaded. opts may
// tune timeouts; its zero value is fine.
func Keys(t testing.TB, snap *policy.Snapshot, opts jwks.Options) *jwks.Cache {
	t.Helper()
	c := jwks.New(opts)
	t.Cleanup(c.Close)
	if err := c.Prepare(context.Background(), snap.KeySources(), nil, 10*time.Second); err != nil {
		t.Fatalf("load test keys: %v", err)
	}
	return c
}

// ID mints an ID token for the allowed client, failing the test on error.
func (e *Env) ID(t testing.TB, o issuer.TokenOptions) string {
	t.Helper()
	if o.ClientID == "" {
		o.ClientID = ClientID
	}
	tok, err := e.Issuer.IDToken(o)
	if err != nil {
		t.Fatalf("mint id token: %v", err)
	}
	return tok
}

// Access mints an access token for the allowed client, failing the test on
// error.
func (e *Env) Access(t testing.TB, o issuer.TokenOptions) string {
	t.Helper()
	if o.ClientID == "" {
		o.ClientID = ClientID
	}
	tok, err := e.Issuer.AccessToken(o)
	if err != nil {
		t.Fatalf("mint access token: %v", err)
	}
	return tok
}

// Sign signs arbitrary header and claims with the issuer's key.
func (e *Env) Sign(t testing.TB, header, claims map[string]any) string {
	t.Helper()
	tok, err := e.Issuer.Sign(header, claims)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return tok
}

// Policy is a policy that exercises every feature the decision has; tests
// expand it with Env.Policy.
const Policy = `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools:
      - userPoolId: ${POOL}
        issuer: ${ISSUER}
        jwksUri: ${JWKS}
    appClientIds: [client-a]
    resultTtl: 300s
  strip:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
    stripToken: true
  by-query:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
    identitySource: query:access_token
    stripToken: true
  by-cookie:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
    identitySource: cookie:id_token
    stripToken: true
  by-header:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
    identitySource: header:X-Token
  nocache:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
    resultTtl: 0s
routes:
  - name: list-pets
    match: { methods: [GET], path: /pets }
    authorizer: users
    mode: identity-claims
    claimHeaders: { x-user-sub: sub, x-user-email: email, x-user-groups: "cognito:groups", x-user-verified: email_verified }
  - name: pet
    match: { methods: [GET, DELETE], path: "/pets/{petId}" }
    authorizer: users
    mode: access-scopes
    scopes: [pets/read, pets/admin]
    claimHeaders: { x-client-id: client_id, x-user-sub: sub }
  - name: any-access
    match: { path: /any-access }
    authorizer: users
    mode: access-scopes
  - name: admin
    match: { path: "/admin/{proxy+}" }
    authorizer: users
    mode: identity-claims
    groups: [admins, owners]
  - name: tenant
    match: { path: /tenant }
    authorizer: users
    mode: identity-claims
    claims: { "custom:tenant": acme }
  - name: strip
    match: { path: /strip }
    authorizer: strip
    mode: identity-claims
  - name: by-query
    match: { path: /q }
    authorizer: by-query
    mode: access-scopes
  - name: by-cookie
    match: { path: /c }
    authorizer: by-cookie
    mode: identity-claims
  - name: by-header
    match: { path: /x }
    authorizer: by-header
    mode: identity-claims
  - name: nocache
    match: { path: /nocache }
    authorizer: nocache
    mode: identity-claims
  - name: health
    match: { path: /health }
    authorization: NONE
defaultAction: deny
`

// DryRunPolicy has a dry-run route beside an enforcing one; x-user-email
// is a claim header of the enforcing route only.
const DryRunPolicy = `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - name: reports
    match: { path: /reports }
    authorizer: users
    mode: identity-claims
    groups: [auditors]
    claimHeaders: { x-user-sub: sub }
    dryRun: true
  - name: ledger
    match: { path: /ledger }
    authorizer: users
    mode: identity-claims
    groups: [auditors]
    claimHeaders: { x-user-email: email }
`

// JWTPolicy has jwt-mode routes (API Gateway HTTP API's JWT authorizer)
// beside an access-scopes route on the same authorizer, so a test can show
// the two reading appClientIds differently; tests expand it with
// Env.Policy.
const JWTPolicy = `
apiVersion: cognito-extauthz/v1
authorizers:
  http-api:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
    appClientIds: [client-a]
routes:
  - name: jwt-any
    match: { path: /jwt/any }
    authorizer: http-api
    mode: jwt
    claimHeaders: { x-user-sub: sub }
  - name: jwt-scoped
    match: { path: /jwt/scoped }
    authorizer: http-api
    mode: jwt
    scopes: [pets/read, pets/admin]
  - name: access-any
    match: { path: /access }
    authorizer: http-api
    mode: access-scopes
defaultAction: deny
`

// JWTCase is one request of the jwt-mode table that both edges' tests run
// against JWTPolicy: the path, the token and the reason expected.
type JWTCase struct {
	Name, Path, Token string
	Want              string // a reason code; "allowed" for an allow
}

// JWTCases mints the tokens of the jwt-mode table: both token types, aud
// and client_id, right and wrong, on scoped and unscoped jwt routes, and
// the same tokens on an access-scopes route of the same authorizer.
func (e *Env) JWTCases(t testing.TB) []JWTCase {
	t.Helper()
	id := e.ID(t, issuer.TokenOptions{Subject: "sub-id"})
	access := e.Access(t, issuer.TokenOptions{})
	read := e.Access(t, issuer.TokenOptions{Scopes: []string{"openid", "pets/read"}})
	idOther := e.ID(t, issuer.TokenOptions{ClientID: "client-b"})
	accessOther := e.Access(t, issuer.TokenOptions{ClientID: "client-b", Scopes: []string{"pets/read"}})
	// An aud added to an access token (a pre-token-generation trigger):
	// API Gateway's JWT authorizer reads aud and ignores client_id.
	audRight := e.Access(t, issuer.TokenOptions{ClientID: "client-b", Claims: map[string]any{"aud": ClientID}})
	audWrong := e.Access(t, issuer.TokenOptions{Claims: map[string]any{"aud": "client-b"}})
	// An ID token without aud falls back to client_id.
	idNoAud := e.ID(t, issuer.TokenOptions{Claims: map[string]any{"aud": nil, "client_id": ClientID}})
	expired := e.Access(t, issuer.TokenOptions{TTL: -time.Minute})
	return []JWTCase{
		{"id token, no scopes needed", "/jwt/any", id, "allowed"},
		{"access token, no scopes needed", "/jwt/any", access, "allowed"},
		{"id token on a scoped route", "/jwt/scoped", id, "scope_missing"},
		{"access token without the scope", "/jwt/scoped", access, "scope_missing"},
		{"access token with a scope", "/jwt/scoped", read, "allowed"},
		{"id token, foreign aud", "/jwt/any", idOther, "client_not_allowed"},
		{"access token, foreign client_id", "/jwt/any", accessOther, "client_not_allowed"},
		{"access token, foreign client_id, scoped", "/jwt/scoped", accessOther, "client_not_allowed"},
		{"aud allowed, client_id foreign", "/jwt/any", audRight, "allowed"},
		{"aud allowed, client_id foreign, access-scopes route", "/access", audRight, "client_not_allowed"},
		{"aud foreign, client_id allowed", "/jwt/any", audWrong, "client_not_allowed"},
		{"aud foreign, client_id allowed, access-scopes route", "/access", audWrong, "allowed"},
		{"id token without aud, client_id allowed", "/jwt/any", idNoAud, "allowed"},
		{"id token on the access-scopes route", "/access", id, "token_use_mismatch"},
		{"no token", "/jwt/any", "", "token_missing"},
		{"expired", "/jwt/any", expired, "token_expired"},
	}
}
