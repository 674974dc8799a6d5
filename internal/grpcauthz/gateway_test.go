package grpcauthz_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestGatewayResponses: the policy's gatewayResponses restyle denials as
// API Gateway's do (headers added or replaced, status replaced, DEFAULT_4XX
// and DEFAULT_5XX fallbacks), never the gRPC verdict, the body or the
// reason header.
func TestGatewayResponses(t *testing.T) {
	f := newFixture(t, fixtureOptions{policy: readTestdata(t, "gateway-responses.yaml")})
	id := f.env.ID(t, issuer.TokenOptions{})

	tests := []struct {
		name    string
		call    call
		grpc    codes.Code
		status  int
		body    string
		reason  reason.Code
		headers map[string]string // must be present with these values
		absent  []string
	}{
		{
			name: "UNAUTHORIZED, no token", call: call{path: "/pets"},
			grpc: codes.Unauthenticated, status: 419, body: `{"message":"Unauthorized"}`, reason: reason.TokenMissing,
			headers: map[string]string{"access-control-allow-origin": "*", "x-custom": "unauthorized",
				"www-authenticate": "Bearer", "content-type": "application/json"},
		},
		{
			name: "UNAUTHORIZED, expired", call: call{path: "/pets", headers: bearer(f.env.ID(t, issuer.TokenOptions{TTL: -time.Hour}))},
			grpc: codes.Unauthenticated, status: 419, body: `{"message":"The incoming token has expired"}`, reason: reason.TokenExpired,
			headers: map[string]string{"access-control-allow-origin": "*",
				"www-authenticate": `Bearer error="invalid_token", error_description="token expired"`},
		},
		{
			name: "ACCESS_DENIED falls back to DEFAULT_4XX",
			call: call{path: "/pets/1", headers: bearer(f.env.Access(t, issuer.TokenOptions{Scopes: []string{"x"}}))},
			grpc: codes.PermissionDenied, status: 403, body: `{"message":"Forbidden"}`, reason: reason.ScopeMissing,
			headers: map[string]string{"access-control-allow-origin": "https://app.example.com",
				"www-authenticate": `Bearer error="insufficient_scope", scope="pets/read"`},
			absent: []string{"x-custom"},
		},
		{
			name: "MISSING_AUTHENTICATION_TOKEN replaces content-type, no DEFAULT_4XX",
			call: call{path: "/nowhere", headers: bearer(id)},
			grpc: codes.PermissionDenied, status: 403, body: `{"message":"Missing Authentication Token"}`, reason: reason.RouteNotFound,
			headers: map[string]string{"content-type": "application/problem+json"},
			absent:  []string{"access-control-allow-origin", "www-authenticate"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := f.check(t, tt.call.request())
			if got := codes.Code(resp.GetStatus().GetCode()); got != tt.grpc {
				t.Errorf("grpc = %v, want %v", got, tt.grpc)
			}
			dr := resp.GetDeniedResponse()
			if got := int(dr.GetStatus().GetCode()); got != tt.status {
				t.Errorf("status = %d, want %d", got, tt.status)
			}
			if dr.GetBody() != tt.body {
				t.Errorf("body = %s, want %s", dr.GetBody(), tt.body)
			}
			h := headerOptions(t, dr.GetHeaders())
			if h["x-extauthz-reason"] != string(tt.reason) {
				t.Errorf("x-extauthz-reason = %q, want %s", h["x-extauthz-reason"], tt.reason)
			}
			for k, v := range tt.headers {
				if h[k] != v {
					t.Errorf("%s = %q, want %q", k, h[k], v)
				}
			}
			for _, k := range tt.absent {
				if v, ok := h[k]; ok {
					t.Errorf("%s = %q, want absent", k, v)
				}
			}
		})
	}

	t.Run("DEFAULT_5XX", func(t *testing.T) {
		down := testenv.New(t)
		down.SetMode(testenv.Down)
		g := newFixture(t, fixtureOptions{env: down, noWait: true, policy: readTestdata(t, "gateway-responses.yaml")})
		resp := g.check(t, call{path: "/pets", headers: bearer(down.ID(t, issuer.TokenOptions{}))}.request())
		if codes.Code(resp.GetStatus().GetCode()) != codes.Unavailable {
			t.Errorf("grpc = %v", codes.Code(resp.GetStatus().GetCode()))
		}
		dr := resp.GetDeniedResponse()
		if dr.GetStatus().GetCode() != 502 {
			t.Errorf("status = %d, want 502", dr.GetStatus().GetCode())
		}
		h := headerOptions(t, dr.GetHeaders())
		if h["retry-after"] != "5" || h["x-extauthz-reason"] != string(reason.JWKSUnavailable) {
			t.Errorf("headers = %v", h)
		}
		if _, ok := h["access-control-allow-origin"]; ok {
			t.Errorf("DEFAULT_4XX applied to a 5xx")
		}
	})
}

// TestGatewayResponsesCannotOverrideReason: the reason header is refused
// in a policy in any spelling, and DenialFor writes it last.
func TestGatewayResponsesCannotOverrideReason(t *testing.T) {
	env := testenv.New(t)
	for _, name := range []string{"x-extauthz-reason", "X-Extauthz-Reason", "X-EXTAUTHZ-REASON"} {
		for _, kind := range []string{"UNAUTHORIZED", "DEFAULT_4XX", "DEFAULT_5XX", "ACCESS_DENIED"} {
			doc := `
apiVersion: cognito-extauthz/v1
routes:
  - name: health
    match: { path: /health }
    authorization: NONE
gatewayResponses:
  ` + kind + `:
    headers: { "` + name + `": allowed }
`
			_, err := policy.Parse([]byte(env.Expand(doc)), "reason.yaml", policy.Options{})
			if err == nil {
				t.Errorf("%s %s: a policy overriding %s loaded", kind, name, name)
				continue
			}
			if !strings.Contains(err.Error(), "x-extauthz-reason") {
				t.Errorf("%s %s: error does not name the header: %v", kind, name, err)
			}
		}
	}

	// With overrides present, every class still ends with the true reason.
	snap := env.Policy(t, readTestdata(t, "gateway-responses.yaml"))
	for _, code := range []reason.Code{reason.TokenMissing, reason.KidUnknown, reason.TokenExpired, reason.GroupMissing,
		reason.RouteNotFound, reason.Internal, reason.JWKSUnavailable} {
		d := check.DenialFor(snap, code, nil)
		n := 0
		for _, h := range d.Headers {
			if h.Name == "x-extauthz-reason" {
				n++
				if h.Value != string(code) {
					t.Errorf("%s: x-extauthz-reason = %q", code, h.Value)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s: %d x-extauthz-reason headers", code, n)
		}
		if d.Status < 400 || d.Status > 599 || d.GRPCCode == codes.OK {
			t.Errorf("%s: override turned a denial into %d/%v", code, d.Status, d.GRPCCode)
		}
	}
}
