package httpauthz_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/httpauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// BenchmarkServeHTTP is the HTTP edge's share of an authorization request:
// translation, the decision on a cached token, and the answer, without the
// network. Compare with internal/grpcauthz's BenchmarkCheck for the gRPC edge.
func BenchmarkServeHTTP(b *testing.B) {
	env := testenv.New(b)
	snap := env.Policy(b, testenv.Policy)
	az := authz.New(testenv.Keys(b, snap, jwks.Options{}), authz.Options{CacheSize: 1000})
	h := httpauthz.New(httpauthz.Options{Snapshot: func() *policy.Snapshot { return snap }, Authorizer: az})
	id := env.ID(b, issuer.TokenOptions{Email: "a@example.com"})
	for _, bc := range []struct {
		name   string
		target string
		header http.Header
	}{
		{"envoy_allow", "/envoy/pets", http.Header{"Authorization": {"Bearer " + id}}},
		{"nginx_allow", "/nginx", http.Header{"Authorization": {"Bearer " + id}, "X-Original-Method": {"GET"}, "X-Original-Uri": {"/pets"}}},
		{"auth_deny", "/auth", http.Header{"X-Forwarded-Method": {"GET"}, "X-Forwarded-Uri": {"/pets"}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := &http.Request{Method: "GET", RequestURI: bc.target, URL: &url.URL{Path: bc.target},
				Header: bc.header, Host: "api.example.com", Body: http.NoBody}
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != http.StatusOK && w.Code != http.StatusUnauthorized {
					b.Fatalf("status %d", w.Code)
				}
			}
		})
	}
}
