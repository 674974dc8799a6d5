package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

func manyHeaders(n int, token string) map[string]string {
	h := make(map[string]string, n+1)
	for i := range n {
		h[fmt.Sprintf("x-h%d", i)] = "v"
	}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	return h
}

func checkWith(ctx context.Context, r *running, path string, headers map[string]string) (*authv3.CheckResponse, error) {
	return r.authz.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: path, Headers: headers,
		}},
	}})
}

// TestHeaderFloodDenied: a check carrying 100,000 headers (the flood that
// took 9.8 s and 12 MB of heap per check) is answered with a CheckResponse
// denial, reason request_too_large and HTTP 431, even with a valid token; its
// memory cost is bounded by the decoded message, not multiplied by the
// decision's header lookups.
func TestHeaderFloodDenied(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy)})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	id := env.ID(t, issuer.TokenOptions{})
	flood := manyHeaders(100_000, id)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := checkWith(ctx, r, "/pets", flood)
	if err != nil {
		t.Fatalf("Check with 100,000 headers: gRPC error %v, want a CheckResponse denial", err)
	}
	if got := resp.GetStatus().GetCode(); codes.Code(got) == codes.OK {
		t.Fatal("Check with 100,000 headers was allowed")
	}
	den := resp.GetDeniedResponse()
	if den.GetStatus().GetCode() != 431 || headerOf(resp, "x-extauthz-reason") != "request_too_large" {
		t.Fatalf("denial = %d %q, want 431 request_too_large", den.GetStatus().GetCode(), headerOf(resp, "x-extauthz-reason"))
	}

	// Memory: the whole process (client marshal + server decode + check)
	// allocates a bounded multiple of the message for one flooded check.
	size := 0
	for k, v := range flood {
		size += len(k) + len(v)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, err := checkWith(ctx, r, "/pets", flood); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if got, limit := after.TotalAlloc-before.TotalAlloc, uint64(40*size); got > limit {
		t.Errorf("one flooded check allocated %d bytes, want <= %d (40x its %d header bytes)", got, limit, size)
	}

	// Just under the limits is judged normally.
	ok := manyHeaders(check.DefaultMaxHeaders-10, id)
	resp, err = checkWith(ctx, r, "/pets", ok)
	if err != nil || codes.Code(resp.GetStatus().GetCode()) != codes.OK {
		t.Fatalf("check with %d headers = %v %v, want allowed", len(ok), resp.GetStatus(), err)
	}
}

func headerOf(resp *authv3.CheckResponse, name string) string {
	for _, h := range resp.GetDeniedResponse().GetHeaders() {
		if strings.EqualFold(h.GetHeader().GetKey(), name) {
			return h.GetHeader().GetValue()
		}
	}
	return ""
}

// TestOversizedMessageRefused: a CheckRequest over the message limit is
// refused by gRPC before it is decoded (RESOURCE_EXHAUSTED), which Envoy
// answers per status_on_error (503 with failure_mode_allow false). The
// connection stays usable for the next check.
func TestOversizedMessageRefused(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), MaxMessageBytes: 64 << 10})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := checkWith(ctx, r, "/health", map[string]string{"x-big": strings.Repeat("a", 65<<10)})
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("Check over the message limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	if c := r.code(t, "/health", ""); c != codes.OK {
		t.Fatalf("next check on the same connection = %v, want OK", c)
	}
}

// TestRequestLimits: too many headers, or too many header bytes, is a
// request_too_large CheckResponse (431), whichever form Envoy sends headers in.
func TestRequestLimits(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{
		Snapshot:      env.Policy(t, testenv.Policy),
		RequestLimits: check.Limits{MaxHeaders: 20, MaxHeaderBytes: 4096},
	})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	raw := func(n, size int) *corev3.HeaderMap {
		m := &corev3.HeaderMap{}
		for i := range n {
			m.Headers = append(m.Headers, &corev3.HeaderValue{Key: fmt.Sprintf("x-r%d", i), RawValue: []byte(strings.Repeat("b", size))})
		}
		return m
	}
	for _, tc := range []struct {
		name    string
		headers map[string]string
		raw     *corev3.HeaderMap
		path    string
		denied  bool
	}{
		{"at the count limit", manyHeaders(20, ""), nil, "/health", false},
		{"over the count limit", manyHeaders(21, ""), nil, "/health", true},
		{"raw header_map over the count limit", nil, raw(21, 1), "/health", true},
		{"raw header_map at the count limit", nil, raw(20, 1), "/health", false},
		{"one value over the byte limit", map[string]string{"x-big": strings.Repeat("a", 4096)}, nil, "/health", true},
		{"raw values over the byte limit", nil, raw(5, 1000), "/health", true},
		{"path over the byte limit", nil, nil, "/health?" + strings.Repeat("q", 4096), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			resp, err := r.authz.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
				Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
					Method: "GET", Path: tc.path, Headers: tc.headers, HeaderMap: tc.raw,
				}},
			}})
			if err != nil {
				t.Fatalf("gRPC error %v, want a CheckResponse", err)
			}
			got := headerOf(resp, "x-extauthz-reason")
			if !tc.denied {
				if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
					t.Fatalf("denied %q, want allowed (public route)", got)
				}
				return
			}
			if codes.Code(resp.GetStatus().GetCode()) == codes.OK || got != "request_too_large" ||
				resp.GetDeniedResponse().GetStatus().GetCode() != 431 {
				t.Fatalf("= %v %q, want a 431 request_too_large denial", resp.GetStatus(), got)
			}
		})
	}
}

// TestCheckTimeoutCoversDecode: the check timeout runs from the arrival of
// the stream, not from the handler: with a timeout already spent by the
// time the request is decoded, even a public route is answered
// deadline_exceeded (503), never allowed on a stale clock.
func TestCheckTimeoutCoversDecode(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), CheckTimeout: time.Nanosecond})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := r.check(ctx, "/health", "")
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(resp.GetStatus().GetCode()) != codes.Unavailable || headerOf(resp, "x-extauthz-reason") != "deadline_exceeded" {
		t.Fatalf("= %v %q, want 503 deadline_exceeded", resp.GetStatus(), headerOf(resp, "x-extauthz-reason"))
	}
}

// TestChecksAnsweredAfterSIGTERM: from SIGTERM until GracefulStop (the
// shutdown delay), checks on an open connection, in flight or new, get
// CheckResponses, not gRPC errors, while health says NOT_SERVING.
func TestChecksAnsweredAfterSIGTERM(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{
		Snapshot: env.Policy(t, testenv.Policy),
		// Long enough that the checks below, and seeing NOT_SERVING first,
		// fit inside it on a loaded machine, by seconds.
		ShutdownDelay: 6 * time.Second,
		ShutdownGrace: 10 * time.Second,
	})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	id := env.ID(t, issuer.TokenOptions{})
	if c := r.code(t, "/pets", id); c != codes.OK {
		t.Fatalf("before SIGTERM = %v", c)
	}
	r.cancel()
	wait.For(t, 3*time.Second, "NOT_SERVING", func() bool {
		return r.healthStatus(t, "") == healthpb.HealthCheckResponse_NOT_SERVING
	})
	for i := range 10 {
		for _, tc := range []struct {
			path, token string
			want        codes.Code
		}{{"/pets", id, codes.OK}, {"/pets", "", codes.Unauthenticated}} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			resp, err := r.check(ctx, tc.path, tc.token)
			cancel()
			if err != nil {
				t.Fatalf("check %d after SIGTERM: gRPC error %v, want a CheckResponse", i, err)
			}
			if c := codes.Code(resp.GetStatus().GetCode()); c != tc.want {
				t.Fatalf("check %d after SIGTERM = %v, want %v", i, c, tc.want)
			}
		}
	}
	r.wait(t, 15*time.Second)
}
