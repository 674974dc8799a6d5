package grpcauthz_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestCheckPanics: a panic anywhere in a check, the Snapshot func
// included, becomes a 503 internal_error CheckResponse and an error log
// line; the process keeps serving.
func TestCheckPanics(t *testing.T) {
	t.Run("snapshot func", func(t *testing.T) {
		var panicking atomic.Bool
		var f *fixture
		f = newFixture(t, fixtureOptions{snapshot: func() *policy.Snapshot {
			if panicking.Load() {
				panic("snapshot exploded")
			}
			return f.snap
		}})
		tok := f.env.ID(t, issuer.TokenOptions{})
		req := call{path: "/pets", headers: bearer(tok)}.request()
		wantAllowed(t, f.check(t, req))

		panicking.Store(true)
		// In process first: a panic escaping Check would kill the test
		// binary over gRPC (grpc-go does not recover handler panics).
		resp, err := checkRecovering(f, req)
		if err != nil {
			t.Fatalf("%v", err)
		}
		wantDenied(t, resp, denyUnavail(reason.Internal))

		resp = f.check(t, req)
		wantDenied(t, resp, denyUnavail(reason.Internal))
		if !strings.Contains(f.logs.String(), `"msg":"check panicked"`) {
			t.Errorf("no panic log line:\n%s", f.logs.String())
		}

		panicking.Store(false)
		wantAllowed(t, f.check(t, req))
	})

	t.Run("nil authorizer", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{nilAuthorizer: true})
		tok := f.env.ID(t, issuer.TokenOptions{})
		resp, err := checkRecovering(f, call{path: "/pets", headers: bearer(tok)}.request())
		if err != nil {
			t.Fatalf("%v", err)
		}
		wantDenied(t, resp, denyUnavail(reason.Internal))
		wantDenied(t, f.check(t, call{path: "/pets", headers: bearer(tok)}.request()), denyUnavail(reason.Internal))
		// The server still answers.
		wantDenied(t, f.check(t, call{path: "/pets"}.request()), denyMissing(reason.TokenMissing))
	})

	t.Run("nil snapshot", func(t *testing.T) {
		f := newFixture(t, fixtureOptions{snapshot: func() *policy.Snapshot { return nil }})
		wantDenied(t, f.check(t, call{path: "/health"}.request()), denyUnavail(reason.Internal))
	})
}

// checkRecovering calls the handler in process and turns an escaped panic
// into an error.
func checkRecovering(f *fixture, req *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("Check let a panic escape (would crash the process over gRPC): %v", p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err = f.srv.Check(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("Check returned an error instead of a CheckResponse: %w", err)
	}
	return resp, nil
}
