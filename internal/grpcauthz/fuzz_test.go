package grpcauthz_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// FuzzCheck feeds arbitrary methods, paths, hosts, headers, header_map
// entries and context routes through the edge's translation and the
// decision. It must never panic, and never allow a request except with a
// token verified against the test issuer, on a NONE route, or by default
// allow; every response must agree with its decision.
func FuzzCheck(f *testing.F) {
	env := testenv.New(f)
	deny := newFixture(f, fixtureOptions{env: env})
	allow := newFixture(f, fixtureOptions{env: env, policy: readTestdata(f, "default-allow.yaml")})
	tokens := []string{
		"",
		env.ID(f, issuer.TokenOptions{Email: "f@example.com", Groups: []string{"admins"}}),
		env.Access(f, issuer.TokenOptions{Scopes: []string{"pets/read"}}),
		env.ID(f, issuer.TokenOptions{TTL: -time.Minute}),
	}

	f.Add("GET", "/pets", "api.example.com", "x-user-sub", "forged", "", []byte(nil), "", uint8(1), false)
	f.Add("GET", "/pets/7", "api.example.com", "authorization", "Bearer x.y.z", "authorization", []byte("Bearer a.b.c"), "", uint8(2), false)
	f.Add("delete", "/pets/%2e%2e/health", "", "cookie", "id_token=a.b.c", "Authorization", []byte("bearer  "+tokens[1]), "", uint8(0), false)
	f.Add("GET", "/q?access_token="+tokens[2], "h", "", "", "", []byte(nil), "", uint8(0), false)
	f.Add("GET", "/c", "h", "cookie", "id_token="+tokens[1], "", []byte(nil), "", uint8(0), false)
	f.Add("GET", "/x", "h", "x-token", tokens[1], "", []byte(nil), "by-header", uint8(0), false)
	f.Add("POST", "/nowhere", "h", "x-user-email", "forged", "", []byte(nil), "", uint8(1), true)
	f.Add("GET", "/anything", "h", "", "", "", []byte(nil), "health", uint8(0), false)
	f.Add("GET", "/me", "h", "authorization", "Bearer "+tokens[3], "", []byte(nil), "me", uint8(0), true)
	f.Add("GET", "/pets/\x00", "\xff", "\x00", "\r\n", ":path", []byte("/health"), "list-pets", uint8(1), false)

	f.Fuzz(func(t *testing.T, method, path, host, hk, hv, rk string, rv []byte, route string, tokenSel uint8, defaultAllow bool) {
		fx := deny
		if defaultAllow {
			fx = allow
		}
		c := call{method: method, host: host, path: path, route: route, headers: map[string]string{}}
		if hk != "" {
			c.headers[hk] = hv
		}
		if tok := tokens[int(tokenSel)%len(tokens)]; tok != "" {
			c.headers["authorization"] = "Bearer " + tok
		}
		req := c.request()
		// call.request() fills defaults for empty method and host; the
		// fuzzer may want them empty.
		req.Attributes.Request.Http.Method = method
		req.Attributes.Request.Http.Host = host
		if rk != "" {
			c.raw = [][2]string{{rk, string(rv)}}
			req.Attributes.Request.Http.HeaderMap = c.request().GetAttributes().GetRequest().GetHttp().GetHeaderMap()
		}

		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		d, resp := grpcauthz.Decide(ctx, fx.snap, fx.az, req)
		if d == nil || resp == nil {
			t.Fatalf("nil decision or response")
		}

		if !d.Allowed {
			if resp.GetStatus().GetCode() == 0 || resp.GetOkResponse() != nil {
				t.Fatalf("denial %s answered as OK", d.Reason)
			}
			dr := resp.GetDeniedResponse()
			if dr == nil || dr.GetStatus().GetCode() < 400 || dr.GetStatus().GetCode() > 599 {
				t.Fatalf("denial %s without a 4xx/5xx denied_response: %v", d.Reason, resp)
			}
			return
		}
		if resp.GetStatus().GetCode() != 0 || resp.GetOkResponse() == nil || resp.GetDeniedResponse() != nil {
			t.Fatalf("allow answered as %v", resp)
		}
		switch d.Reason {
		case reason.Allowed:
			if d.Claims == nil || d.Claims.Issuer() != env.IssuerURL() {
				t.Fatalf("allowed without claims from the test issuer")
			}
			if d.Route == nil || d.Route.NoAuth {
				t.Fatalf("token allow without a token route")
			}
			if d.Claims.Expiry().Before(time.Now()) {
				t.Fatalf("allowed an expired token")
			}
		case reason.NoAuth:
			if d.Route == nil || !d.Route.NoAuth {
				t.Fatalf("authorization_none on a route that is not NONE")
			}
		case reason.DefaultAllow:
			if !fx.snap.DefaultAllow() || d.Route != nil {
				t.Fatalf("default_allow under defaultAction deny or with a route")
			}
		default:
			t.Fatalf("allowed with reason %s", d.Reason)
		}
		// Anti-forgery holds on every allow.
		set := map[string]bool{}
		for _, h := range resp.GetOkResponse().GetHeaders() {
			set[h.GetHeader().GetKey()] = true
			//lint:ignore SA1019 the test checks the deprecated append field because the service sets it explicitly
			if h.GetAppend() == nil || h.GetAppend().GetValue() {
				t.Fatalf("header %s without append=false", h.GetHeader().GetKey())
			}
		}
		for _, n := range fx.snap.ClaimHeaderNames() {
			if !set[n] && !slices.Contains(resp.GetOkResponse().GetHeadersToRemove(), n) {
				t.Fatalf("claim header %s neither set nor removed", n)
			}
		}
	})
}
