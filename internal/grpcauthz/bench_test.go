package grpcauthz_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// benchServer is the edge as the service runs it: real key cache, default
// verified-token cache, an info-level JSON logger (allows are not logged,
// denials are) writing to io.Discard, and metrics.
func benchServer(b *testing.B, timeout time.Duration) (*testenv.Env, *grpcauthz.Server) {
	b.Helper()
	return benchServerRevoking(b, timeout, nil)
}

// benchServerRevoking is benchServer with a revocation list in force.
func benchServerRevoking(b *testing.B, timeout time.Duration, list *revocation.List) (*testenv.Env, *grpcauthz.Server) {
	b.Helper()
	env := testenv.New(b)
	snap := env.Policy(b, testenv.Policy)
	keys := testenv.Keys(b, snap, jwks.Options{})
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	az := authz.New(keys, authz.Options{CacheSize: authz.DefaultCacheSize, Timeout: timeout})
	az.SetRevocations(list)
	srv := grpcauthz.NewServer(grpcauthz.Options{
		Snapshot:   func() *policy.Snapshot { return snap },
		Authorizer: az,
		Logger:     log,
		Observer:   check.NewObserver(check.ObserverOptions{Logger: log, Metrics: check.NewMetrics(prometheus.NewRegistry())}),
	})
	return env, srv
}

// mustCheck runs one check in process and fails the benchmark unless its
// verdict is want: a benchmark of the wrong path measures nothing.
func mustCheck(b *testing.B, srv *grpcauthz.Server, req *authv3.CheckRequest, want reason.Code) {
	b.Helper()
	resp, err := srv.Check(context.Background(), req)
	if err != nil {
		b.Fatalf("check: %v", err)
	}
	got := reason.Code(resp.GetStatus().GetMessage())
	if resp.GetStatus().GetCode() == 0 {
		got = reason.Allowed
	}
	if got != want {
		b.Fatalf("check answered %s, want %s", got, want)
	}
}

// BenchmarkCheck measures the Check handler in process (no network).
// Targets: cached < 10 µs and < 40 allocs; fresh within 2x of one RS256
// verification (BenchmarkRS256Verify).
func BenchmarkCheck(b *testing.B) {
	env, srv := benchServer(b, 0)
	ctx := context.Background()

	b.Run("cached", func(b *testing.B) {
		req := call{path: "/pets", headers: benchHeaders(bearer(env.ID(b, issuer.TokenOptions{
			Email: "a@example.com", Groups: []string{"admins", "staff"}})))}.request()
		mustCheck(b, srv, req, reason.Allowed) // warms the verified-token cache
		b.ReportAllocs()
		for b.Loop() {
			_, _ = srv.Check(ctx, req)
		}
	})

	b.Run("cached_own_timeout", func(b *testing.B) {
		// As `extauthz serve` runs by default (--check-timeout 2s) when the
		// caller's context has no deadline: the server adds its own.
		env, srv := benchServer(b, 2*time.Second)
		req := call{path: "/pets", headers: benchHeaders(bearer(env.ID(b, issuer.TokenOptions{
			Email: "a@example.com", Groups: []string{"admins", "staff"}})))}.request()
		mustCheck(b, srv, req, reason.Allowed)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = srv.Check(ctx, req)
		}
	})

	// The revocation list is consulted on every check, cached token or
	// not: its cost with no entries and with a million live ones (UUIDs,
	// as Cognito's) must not show against the cached check above.
	for _, n := range []int{0, 1_000_000} {
		b.Run(fmt.Sprintf("cached_revocation_%d", n), func(b *testing.B) {
			env, srv := benchServerRevoking(b, 0, revocationList(b, n))
			req := call{path: "/pets", headers: benchHeaders(bearer(env.ID(b, issuer.TokenOptions{
				Email: "a@example.com", Groups: []string{"admins", "staff"}})))}.request()
			mustCheck(b, srv, req, reason.Allowed)
			b.ReportAllocs()
			for b.Loop() {
				_, _ = srv.Check(ctx, req)
			}
		})
	}

	var (
		ringOnce sync.Once
		ring     []*authv3.CheckRequest
	)
	b.Run("fresh", func(b *testing.B) {
		// The nocache route's authorizer has resultTtl 0s: every check
		// verifies the signature. A ring of distinct tokens keeps it
		// honest about per-token work anyway.
		ringOnce.Do(func() {
			toks := mintMany(b, 4096, func() string { return env.ID(b, issuer.TokenOptions{Email: "a@example.com"}) })
			for _, tok := range toks {
				ring = append(ring, call{path: "/nocache", headers: benchHeaders(bearer(tok))}.request())
			}
		})
		mustCheck(b, srv, ring[0], reason.Allowed)
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			_, _ = srv.Check(ctx, ring[i%len(ring)])
			i++
		}
	})

	b.Run("deny_malformed", func(b *testing.B) {
		req := call{path: "/pets", headers: benchHeaders(bearer("eyJhbGciOiJSUzI1NiJ9.not-base64!.sig"))}.request()
		mustCheck(b, srv, req, reason.TokenMalformed)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = srv.Check(ctx, req)
		}
	})

	b.Run("deny_no_route", func(b *testing.B) {
		req := call{path: "/v2/orders/42/items", headers: benchHeaders(bearer(env.ID(b, issuer.TokenOptions{})))}.request()
		mustCheck(b, srv, req, reason.RouteNotFound)
		b.ReportAllocs()
		for b.Loop() {
			_, _ = srv.Check(ctx, req)
		}
	})
}

// benchHeaders adds the headers a typical browser request through Envoy
// carries, so header lookups work on a realistic map.
func benchHeaders(h map[string]string) map[string]string {
	for k, v := range map[string]string{
		":authority": "api.example.com", ":method": "GET", ":path": "/pets", ":scheme": "https",
		"accept": "application/json", "accept-encoding": "gzip, deflate, br", "accept-language": "en-US,en;q=0.9",
		"user-agent":                     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36",
		"x-forwarded-for":                "203.0.113.7",
		"x-forwarded-proto":              "https",
		"x-request-id":                   "3f1c5c9e-8f7a-4c1e-9a53-1d2e3f4a5b6c",
		"x-envoy-expected-rq-timeout-ms": "15000",
	} {
		h[k] = v
	}
	return h
}

// BenchmarkRS256Verify is the yardstick for BenchmarkCheck/fresh: one
// rsa.VerifyPKCS1v15 of a SHA-256 digest with a 2048-bit key, the floor of
// any RS256 check.
func BenchmarkRS256Verify(b *testing.B) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("header.payload"))
	sig, err := rsa.SignPKCS1v15(nil, priv, crypto.SHA256, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := rsa.VerifyPKCS1v15(&priv.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckGRPC is the cached check over a real loopback gRPC
// connection, for reference: the transport's share of a check.
func BenchmarkCheckGRPC(b *testing.B) {
	env, srv := benchServer(b, 0)
	client := serve(b, srv)
	b.Run("cached", func(b *testing.B) {
		req := call{path: "/pets", headers: benchHeaders(bearer(env.ID(b, issuer.TokenOptions{Email: "a@example.com"})))}.request()
		mustCheck(b, srv, req, reason.Allowed)
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			resp, err := client.Check(ctx, req)
			if err != nil || resp.GetStatus().GetCode() != 0 {
				b.Fatalf("check: %v %v", err, resp.GetStatus())
			}
		}
	})
}

// revocationList loads a list file of n live jti entries (random UUIDs,
// none of them the benchmark's tokens).
func revocationList(b *testing.B, n int) *revocation.List {
	b.Helper()
	var sb strings.Builder
	until := time.Now().Add(12 * time.Hour).UTC().Format(time.RFC3339)
	var u [16]byte
	for range n {
		_, _ = rand.Read(u[:])
		fmt.Fprintf(&sb, "jti %x-%x-%x-%x-%x %s\n", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16], until)
	}
	path := filepath.Join(b.TempDir(), "revoked.txt")
	if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	l, err := revocation.New(revocation.Config{File: path, FileSettle: -1})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = l.Close() })
	if file, _ := l.Len(); file != n {
		b.Fatalf("the list holds %d entries, want %d", file, n)
	}
	return l
}
