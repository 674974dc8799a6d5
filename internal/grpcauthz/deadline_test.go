package grpcauthz_test

import (
	"context"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// TestCheckAfterTheContextEnded: a check whose context ended before the
// decision began is denied, even on a route that needs no token, whether
// the stream's own deadline (Options.Timeout from TapArrival) passed, the
// caller's deadline passed, or the caller canceled; a live context is
// judged.
func TestCheckAfterTheContextEnded(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	server := func(timeout time.Duration) *grpcauthz.Server {
		return grpcauthz.NewServer(grpcauthz.Options{
			Snapshot:   func() *policy.Snapshot { return f.snap },
			Authorizer: f.az,
			Timeout:    timeout,
		})
	}
	const short = 20 * time.Millisecond
	public := call{path: "/health"}.request()
	tests := []struct {
		name    string
		timeout time.Duration // Options.Timeout
		ctx     func() (context.Context, context.CancelFunc)
		want    reason.Code // "" for an allow
	}{
		{"live", short, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 20*time.Second)
		}, ""},
		{"arrived within the timeout", 10 * time.Second, func() (context.Context, context.CancelFunc) {
			ctx, _ := grpcauthz.TapArrival(context.Background(), nil)
			return ctx, func() {}
		}, ""},
		{"arrived longer ago than the timeout", short, func() (context.Context, context.CancelFunc) {
			ctx, _ := grpcauthz.TapArrival(context.Background(), nil)
			time.Sleep(short + 10*time.Millisecond)
			return ctx, func() {}
		}, reason.DeadlineExceeded},
		{"caller's deadline passed", short, func() (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		}, reason.DeadlineExceeded},
		{"caller canceled", short, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, reason.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := tt.ctx()
			defer cancel()
			resp, err := server(tt.timeout).Check(ctx, public)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == "" {
				wantAllowed(t, resp)
				return
			}
			wantDenied(t, resp, denyUnavail(tt.want))
		})
	}
}
