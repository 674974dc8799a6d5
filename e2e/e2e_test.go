package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// expect is what one check must return.
type expect struct {
	code    codes.Code
	status  int    // denied HTTP status
	reason  string // x-extauthz-reason
	body    string // denied JSON body
	wwwAuth string // denied WWW-Authenticate, exactly; "" means absent
	// On an allow: exactly the headers set, and names that must be among
	// headers_to_remove.
	set    map[string]string
	remove []string
	// metadata entries that must be present, compared as JSON.
	metadata map[string]any
}

const (
	bodyUnauthorized = `{"message":"Unauthorized"}`
	bodyExpired      = `{"message":"The incoming token has expired"}`
	bodyForbidden    = `{"message":"Forbidden"}`
	bodyNoRoute      = `{"message":"Missing Authentication Token"}`
	invalidToken     = `Bearer error="invalid_token"`
	insufficient     = `Bearer error="insufficient_scope"`
)

func unauthorized(reason string) expect {
	return expect{code: codes.Unauthenticated, status: 401, reason: reason, body: bodyUnauthorized, wwwAuth: invalidToken}
}

func forbidden(reason, wwwAuth string) expect {
	return expect{code: codes.PermissionDenied, status: 403, reason: reason, body: bodyForbidden, wwwAuth: wwwAuth}
}

var noRoute = expect{code: codes.PermissionDenied, status: 403, reason: "route_not_found", body: bodyNoRoute}

// verify compares a result with an expectation.
func verify(t *testing.T, got result, want expect) {
	t.Helper()
	if got.code != want.code {
		t.Fatalf("gRPC status %v (reason %q, body %s), want %v", got.code, got.reason, got.body, want.code)
	}
	if want.code == codes.OK {
		if want.set == nil {
			want.set = map[string]string{}
		}
		if !mapsEqual(got.headers, want.set) {
			t.Errorf("headers set = %v, want %v", got.headers, want.set)
		}
		for _, h := range want.remove {
			if !slices.Contains(got.remove, h) {
				t.Errorf("headers_to_remove = %v, want it to contain %q", got.remove, h)
			}
		}
		for _, h := range got.remove {
			if _, set := got.headers[h]; set {
				t.Errorf("header %q is both set and removed", h)
			}
		}
	} else {
		if got.status != want.status {
			t.Errorf("HTTP status %d, want %d", got.status, want.status)
		}
		if !jsonEqual(got.body, want.body) {
			t.Errorf("body %s, want %s", got.body, want.body)
		}
		if got.reason != want.reason {
			t.Errorf("x-extauthz-reason %q, want %q", got.reason, want.reason)
		}
		if www, ok := got.headers["www-authenticate"]; www != want.wwwAuth || ok != (want.wwwAuth != "") {
			t.Errorf("www-authenticate %q (present %v), want %q", www, ok, want.wwwAuth)
		}
		if ct := got.headers["content-type"]; ct != "application/json" {
			t.Errorf("content-type %q, want application/json", ct)
		}
		if want.status == 401 {
			// gatewayResponses.UNAUTHORIZED of the test policy.
			if v := got.headers["access-control-allow-origin"]; v != "*" {
				t.Errorf("access-control-allow-origin %q on a 401, want * (gatewayResponses)", v)
			}
		}
	}
	for k, v := range want.metadata {
		if !jsonEqual(mustJSON(t, got.metadata[k]), mustJSON(t, v)) {
			t.Errorf("dynamic metadata %s = %v, want %v (all: %v)", k, got.metadata[k], v, got.metadata)
		}
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return mustMarshal(x) == mustMarshal(y)
}

func mustMarshal(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCognitoLocal runs every row of the response table (docs/policy.md)
// against real cognito-local tokens through a real `extauthz serve`.
func TestCognitoLocal(t *testing.T) {
	f := setup(t)
	policy := f.writePolicy(t)

	if code, stdout, stderr := run(t, "validate", "--config", policy); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	svc := startService(t, policy, serveOptions{})

	for _, name := range []string{"", authService} {
		if st, err := svc.healthStatus(name); err != nil || st != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, %v; want SERVING once ready", name, st, err)
		}
	}

	aliceID := f.aliceWeb.id
	groups, err := claimStrings(aliceID, "cognito:groups")
	if err != nil {
		t.Fatal(err)
	}
	if !sameSet(groups, f.aliceGroups) {
		t.Fatalf("alice's token has cognito:groups %v, want %v", groups, f.aliceGroups)
	}
	profileHeaders := map[string]string{
		"x-user-sub":    f.alice.sub,
		"x-user-email":  f.alice.email,
		"x-user-groups": strings.Join(groups, ","), // comma-joined, in the token's order
	}
	forged := map[string]string{
		"x-user-sub": "forged-sub", "x-user-email": "evil@example.com",
		"x-user-groups": "admins", "x-client-id": "forged-client",
	}
	allClaimHeaders := []string{"x-user-sub", "x-user-email", "x-user-groups", "x-client-id"}
	withHeaders := func(base map[string]string, extra map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	keyPEM := jwksPublicKeyPEM(t, f.jwksURI)

	cases := []struct {
		name string
		req  request
		want expect
	}{
		{
			name: "ID token on an identity-claims route",
			req:  request{path: "/profile", headers: withHeaders(bearer(aliceID), map[string]string{"x-client-id": "forged-client"})},
			want: expect{code: codes.OK, set: profileHeaders, remove: []string{"x-client-id"},
				metadata: map[string]any{
					"route": "profile", "sub": f.alice.sub, "username": f.alice.username,
					"token_use": "id", "client_id": f.web, "pool": f.pool,
				}},
		},
		{
			name: "same ID token again (verified-token cache)",
			req:  request{path: "/profile", headers: bearer(aliceID)},
			want: expect{code: codes.OK, set: profileHeaders},
		},
		{
			name: "lower-case bearer scheme",
			req:  request{path: "/profile", headers: map[string]string{"authorization": "bearer " + aliceID}},
			want: expect{code: codes.OK, set: profileHeaders},
		},
		{
			name: "bare token without a scheme",
			req:  request{path: "/profile", headers: map[string]string{"authorization": aliceID}},
			want: expect{code: codes.OK, set: profileHeaders},
		},
		{
			name: "access token with the scope cognito-local issues",
			req:  request{path: "/pets/7", headers: bearer(f.aliceWeb.access)},
			want: expect{code: codes.OK, set: map[string]string{"x-client-id": f.web},
				remove: []string{"x-user-sub", "x-user-email", "x-user-groups"},
				metadata: map[string]any{
					"route": "pet", "sub": f.alice.sub, "token_use": "access",
					"client_id": f.web, "scopes": []any{f.scope}, "pool": f.pool,
				}},
		},
		{
			name: "ID token on an access-scopes route",
			req:  request{path: "/pets/7", headers: bearer(aliceID)},
			want: unauthorized("token_use_mismatch"),
		},
		{
			name: "access token on an identity-claims route",
			req:  request{path: "/profile", headers: bearer(f.aliceWeb.access)},
			want: unauthorized("token_use_mismatch"),
		},
		{
			name: "access token without the route's scope",
			req:  request{method: http.MethodDelete, path: "/pets/7", headers: bearer(f.aliceWeb.access)},
			want: forbidden("scope_missing", insufficient+`, scope="pets/admin"`),
		},
		{
			name: "group member on a group route",
			req:  request{path: "/admin/users/42", headers: bearer(aliceID)},
			want: expect{code: codes.OK, remove: allClaimHeaders},
		},
		{
			name: "user in no group on a group route",
			req:  request{path: "/admin/users/42", headers: bearer(f.bobWeb.id)},
			want: forbidden("group_missing", insufficient),
		},
		{
			name: "ID token of an app client the authorizer does not list",
			req:  request{path: "/profile", headers: bearer(f.aliceOther.id)},
			want: unauthorized("client_not_allowed"),
		},
		{
			name: "access token of an app client the authorizer does not list",
			req:  request{path: "/pets/7", headers: bearer(f.aliceOther.access)},
			want: unauthorized("client_not_allowed"),
		},
		{
			name: "claims rewritten to another user, signature kept",
			req:  request{path: "/profile", headers: bearer(rewriteClaims(t, aliceID, map[string]any{"sub": f.bob.sub, "email": f.bob.email}))},
			want: unauthorized("signature_invalid"),
		},
		{
			name: "one signature character changed",
			req:  request{path: "/profile", headers: bearer(flipSignature(t, aliceID))},
			want: unauthorized("signature_invalid"),
		},
		{
			name: "alg none with real claims",
			req:  request{path: "/profile", headers: bearer(withHeader(t, aliceID, `{"alg":"none","typ":"JWT","kid":"CognitoLocal"}`, ""))},
			want: unauthorized("alg_not_allowed"),
		},
		{
			name: "HS256 signed with the pool's public key (key confusion)",
			req:  request{path: "/profile", headers: bearer(hmacSigned(t, aliceID, keyPEM))},
			want: unauthorized("alg_not_allowed"),
		},
		{
			name: "valid token of a pool no authorizer trusts",
			req:  request{path: "/profile", headers: bearer(f.carolID)},
			want: unauthorized("issuer_unknown"),
		},
		{
			name: "expired ID token",
			req:  request{path: "/profile", headers: bearer(f.shortID)},
			want: expect{code: codes.Unauthenticated, status: 401, reason: "token_expired", body: bodyExpired,
				wwwAuth: `Bearer error="invalid_token", error_description="token expired"`},
		},
		{
			name: "no token",
			req:  request{path: "/profile"},
			want: expect{code: codes.Unauthenticated, status: 401, reason: "token_missing", body: bodyUnauthorized, wwwAuth: "Bearer"},
		},
		{
			name: "not a JWT",
			req:  request{path: "/profile", headers: bearer("not-a-token")},
			want: unauthorized("token_malformed"),
		},
		{
			name: "authorization NONE route strips forged claim headers",
			req:  request{path: "/health", headers: forged},
			want: expect{code: codes.OK, remove: allClaimHeaders},
		},
		{
			name: "no route matches",
			req:  request{path: "/nothing/here", headers: bearer(aliceID)},
			want: noRoute,
		},
		{
			name: "method the route does not allow",
			req:  request{method: http.MethodPost, path: "/profile", headers: bearer(aliceID)},
			want: noRoute,
		},
		{
			name: "route chosen by context_extensions",
			req:  request{path: "/not/matched/by/path", route: "profile", headers: bearer(aliceID)},
			want: expect{code: codes.OK, set: profileHeaders},
		},
		{
			name: "context_extensions route the policy lacks",
			req:  request{path: "/profile", route: "no-such-route", headers: bearer(aliceID)},
			want: noRoute,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want.reason == "token_expired" {
				// The token lives one second; wait until it is past its exp.
				time.Sleep(time.Until(f.shortExp.Add(1100 * time.Millisecond)))
			}
			verify(t, svc.check(t, tc.req), tc.want)
		})
	}

	t.Run("metrics count decisions by reason", func(t *testing.T) {
		for _, reason := range []string{"issuer_unknown", "signature_invalid", "token_missing"} {
			if !metricsContain(t, svc, "extauthz_checks_total{", `reason="`+reason+`"`) {
				t.Errorf("no extauthz_checks_total series with reason %q", reason)
			}
		}
	})

	t.Run("check command", func(t *testing.T) {
		code, stdout, stderr := run(t, "check", "--addr", svc.grpcAddr, "--path", "/profile", "--token", aliceID)
		if code != 0 || !strings.Contains(stdout, f.alice.sub) {
			t.Errorf("check with alice's ID token: exit %d, want 0 and her sub in the output\n%s%s", code, stdout, stderr)
		}
		code, stdout, stderr = run(t, "check", "--addr", svc.grpcAddr, "--path", "/profile")
		var out struct {
			Allowed bool
			Reason  string
		}
		if err := json.Unmarshal([]byte(stdout), &out); err != nil || code != 1 || out.Allowed || out.Reason != "token_missing" {
			t.Errorf("check without a token: exit %d, output %+v (%v), want exit 1, token_missing\n%s%s", code, out, err, stdout, stderr)
		}
	})

	t.Run("no token in the logs", func(t *testing.T) {
		logs := svc.proc.logs()
		for _, tok := range []string{aliceID, f.aliceWeb.access, f.bobWeb.id, f.carolID} {
			parts := strings.Split(tok, ".")
			for i, p := range parts {
				if strings.Contains(logs, p) {
					t.Errorf("the service log contains segment %d of a token", i)
				}
			}
		}
	})
}

// TestCLI drives validate and explain with real tokens.
func TestCLI(t *testing.T) {
	f := setup(t)
	policy := f.writePolicy(t)

	t.Run("validate accepts the policy", func(t *testing.T) {
		code, stdout, stderr := run(t, "validate", "--config", policy)
		if code != 0 {
			t.Fatalf("exit %d, want 0\n%s%s", code, stdout, stderr)
		}
	})
	t.Run("validate lists every problem", func(t *testing.T) {
		code, stdout, stderr := run(t, "validate", "--config", "testdata/invalid-policy.yaml")
		out := stdout + stderr
		if code != 1 {
			t.Errorf("exit %d, want 1\n%s", code, out)
		}
		for _, want := range []string{`appClientId`, `"pet-users"`, "invalid-policy.yaml:"} {
			if !strings.Contains(out, want) {
				t.Errorf("output does not mention %s:\n%s", want, out)
			}
		}
	})

	type explained struct {
		Allowed bool              `json:"allowed"`
		Route   string            `json:"route"`
		Reason  string            `json:"reason"`
		Headers map[string]string `json:"headers"`
		Claims  map[string]any    `json:"claims"`
	}
	// explain exits 0 when allowed, 1 when denied.
	explain := func(t *testing.T, path, tok string) explained {
		t.Helper()
		code, stdout, stderr := run(t, "explain", "--config", policy, "--method", "GET", "--path", path, "--token", tok)
		var e explained
		if err := json.Unmarshal([]byte(stdout), &e); err != nil {
			t.Fatalf("explain: exit %d, output is not JSON: %v\n%s%s", code, err, stdout, stderr)
		}
		if want := map[bool]int{true: 0, false: 1}[e.Allowed]; code != want {
			t.Fatalf("explain: exit %d with allowed=%v, want %d\n%s", code, e.Allowed, want, stderr)
		}
		return e
	}
	t.Run("explain an allow", func(t *testing.T) {
		e := explain(t, "/profile", f.aliceWeb.id)
		if !e.Allowed || e.Route != "profile" || e.Claims["sub"] != f.alice.sub || e.Claims["email"] != f.alice.email {
			t.Errorf("explain = %+v, want allowed on route profile with alice's claims", e)
		}
		if e.Headers["x-user-sub"] != f.alice.sub {
			t.Errorf("explain headers = %v, want x-user-sub %s", e.Headers, f.alice.sub)
		}
	})
	t.Run("explain a deny", func(t *testing.T) {
		e := explain(t, "/profile", f.aliceWeb.access)
		if e.Allowed || e.Route != "profile" || e.Reason != "token_use_mismatch" {
			t.Errorf("explain = %+v, want denied on route profile with token_use_mismatch", e)
		}
	})
}

func metricsContain(t *testing.T, svc *service, prefix, substr string) bool {
	t.Helper()
	for line := range strings.Lines(svc.metricsText(t)) {
		if strings.HasPrefix(line, prefix) && strings.Contains(line, substr) {
			return true
		}
	}
	return false
}

// claimStrings reads a string-array claim.
func claimStrings(tok, name string) ([]string, error) {
	m, err := payload(tok)
	if err != nil {
		return nil, err
	}
	raw, _ := m[name].([]any)
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("claim %s: %v is not a string", name, v)
		}
		out = append(out, s)
	}
	return out, nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// rewriteClaims changes claims in the payload and keeps the header and
// the original signature: what an attacker who edits a token sends.
func rewriteClaims(t *testing.T, tok string, set map[string]any) string {
	t.Helper()
	m, err := payload(tok)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range set {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// flipSignature changes one character in the middle of the signature; the
// result is still canonical base64url of the same length.
func flipSignature(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	sig := []byte(parts[2])
	i := len(sig) / 2
	if sig[i] == 'A' {
		sig[i] = 'B'
	} else {
		sig[i] = 'A'
	}
	parts[2] = string(sig)
	return strings.Join(parts, ".")
}

// withHeader replaces the JOSE header; sig replaces the signature unless
// empty, when the original is kept.
func withHeader(t *testing.T, tok, header, sig string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	parts[0] = base64.RawURLEncoding.EncodeToString([]byte(header))
	if sig != "" {
		parts[2] = sig
	}
	return strings.Join(parts, ".")
}

// hmacSigned re-signs tok's claims with HS256, using the pool's public key
// (PEM) as the HMAC secret: the classic RS256/HS256 confusion attack.
func hmacSigned(t *testing.T, tok string, keyPEM []byte) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT","kid":"CognitoLocal"}`))
	mac := hmac.New(sha256.New, keyPEM)
	mac.Write([]byte(header + "." + parts[1]))
	return header + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// jwksPublicKeyPEM fetches the first RSA key of a JWKS as PKIX PEM.
func jwksPublicKeyPEM(t *testing.T, url string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct{ Keys []struct{ N, E string } }
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) == 0 {
		t.Fatalf("JWKS %s: %v (%d keys)", url, err, len(set.Keys))
	}
	n, err := base64.RawURLEncoding.DecodeString(set.Keys[0].N)
	if err != nil {
		t.Fatal(err)
	}
	e, err := base64.RawURLEncoding.DecodeString(set.Keys[0].E)
	if err != nil {
		t.Fatal(err)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
