package grpcauthz

import (
	"context"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/tap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
)

// exceeded returns a request_too_large denial when req is over the limits,
// else nil. It counts before anything else reads a header, and stops
// counting at the first limit crossed. On the way it learns whether every
// key of the headers map is a lower-case token without '_' (lower), which
// lets header lookups skip a walk of the map; that costs no second walk.
func exceeded(l check.Limits, req *authv3.CheckRequest) (d *authz.Decision, lower bool) {
	h := req.GetAttributes().GetRequest().GetHttp()
	m, raw := h.GetHeaders(), h.GetHeaderMap().GetHeaders()
	if d := l.TooMany(len(m) + len(raw)); d != nil {
		return d, false
	}
	size := len(h.GetPath()) + len(h.GetHost()) + len(h.GetMethod())
	lower = len(raw) == 0
	for k, v := range m {
		size += len(k) + len(v)
		lower = lower && lowerToken(k)
	}
	for _, hv := range raw {
		size += len(hv.GetKey()) + len(hv.GetValue()) + len(hv.GetRawValue())
	}
	if d := l.TooBig(size); d != nil {
		return d, false
	}
	return nil, lower
}

type arrivalKey struct{}

// TapArrival is a grpc.InTapHandle that stamps each stream with the time
// its headers arrived, before its message is read and decoded. Check
// measures its timeout from that stamp, so time spent receiving and
// decoding a large request counts against the check's deadline.
func TapArrival(ctx context.Context, _ *tap.Info) (context.Context, error) {
	return context.WithValue(ctx, arrivalKey{}, time.Now()), nil
}

// arrival is the stamp TapArrival put in ctx, zero when there is none.
func arrival(ctx context.Context) time.Time {
	t, _ := ctx.Value(arrivalKey{}).(time.Time)
	return t
}
