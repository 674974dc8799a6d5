package grpcauthz_test

import (
	"context"
	"fmt"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

func floodRequest(n int, token string) *authv3.CheckRequest {
	h := make(map[string]string, n+1)
	for i := range n {
		h[fmt.Sprintf("x-h%d", i)] = "v"
	}
	h["authorization"] = "Bearer " + token
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Path: "/pets", Headers: h,
		}},
	}}
}

// TestHeaderFloodCostIsConstant: a request over the header limit is refused
// before any header is read, so what the handler allocates for it does not
// grow with the number of headers (10,000 or 100,000 cost the same), and it
// is refused even though its token is valid.
func TestHeaderFloodCostIsConstant(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tok := f.env.ID(t, issuer.TokenOptions{})
	small, big := floodRequest(10_000, tok), floodRequest(100_000, tok)
	ctx := context.Background()
	for _, req := range []*authv3.CheckRequest{small, big} {
		resp, err := f.srv.Check(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		wantDenied(t, resp, denial{codes.InvalidArgument, 431,
			`{"message":"Request Header Fields Too Large"}`, "", reason.RequestTooLarge})
	}
	allocs := func(req *authv3.CheckRequest) float64 {
		return testing.AllocsPerRun(20, func() { _, _ = f.srv.Check(ctx, req) })
	}
	a, b := allocs(small), allocs(big)
	// Ten times the headers must not cost more: a cost that grew with the
	// flood would be thousands of allocations. A couple either way come
	// from the decision log's sampler, which starts dropping lines after
	// the first hundred in a second.
	if b > a+2 {
		t.Fatalf("refusing 10,000 headers took %v allocations, 100,000 took %v: the cost grows with the flood", a, b)
	}
	if b > 40 {
		t.Fatalf("refusing a flood took %v allocations, want a small constant", b)
	}
}
