package grpcauthz

import (
	"context"
	"strconv"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/tap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Default request limits. Envoy itself stops at 100 headers and 60 KiB of
// headers unless told otherwise (max_headers_count, max_request_headers_kb),
// so real traffic stays far below these; a request above them is not one
// Envoy forwarded with its defaults, and judging it would cost time linear
// in its size for every header the decision looks up.
const (
	DefaultMaxHeaders     = 1000
	DefaultMaxHeaderBytes = 256 << 10
)

// Limits bounds the request a check judges. Zero fields take the defaults.
type Limits struct {
	// MaxHeaders is the most header entries (pseudo-headers included) a
	// check request may carry.
	MaxHeaders int
	// MaxHeaderBytes is the most bytes of header names and values, path,
	// host and method together.
	MaxHeaderBytes int
}

func (l Limits) withDefaults() Limits {
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// exceeded returns a request_too_large denial when req is over the limits,
// else nil. It counts before anything else reads a header, and stops
// counting at the first limit crossed. On the way it learns whether every
// key of the headers map is a lower-case token (lower), which lets header
// lookups skip a walk of the map; that costs no second walk.
func (l Limits) exceeded(req *authv3.CheckRequest) (d *authz.Decision, lower bool) {
	h := req.GetAttributes().GetRequest().GetHttp()
	m, raw := h.GetHeaders(), h.GetHeaderMap().GetHeaders()
	if n := len(m) + len(raw); n > l.MaxHeaders {
		return &authz.Decision{Reason: reason.RequestTooLarge,
			Detail: "more than " + strconv.Itoa(l.MaxHeaders) + " headers: " + strconv.Itoa(n)}, false
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
	if size > l.MaxHeaderBytes {
		return &authz.Decision{Reason: reason.RequestTooLarge,
			Detail: "headers over " + strconv.Itoa(l.MaxHeaderBytes) + " bytes: " + strconv.Itoa(size)}, false
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

// decodeSlack is how far behind its arrival stamp a check may start and
// still rely on the authorizer's own timeout (measured from the
// verification). Below it the two deadlines differ by less than this, and
// the cached path keeps its zero-timer, zero-allocation cost.
const decodeSlack = time.Millisecond

// deadline bounds the check's waits by the stream's arrival plus timeout
// when receiving and decoding the request took longer than decodeSlack.
// The bound is armed only if the check has to wait for a key
// (authz.WithCheckDeadline), so a check that never waits starts no timer.
// It returns a deadline_exceeded denial when that deadline has already
// passed.
func deadline(ctx context.Context, timeout time.Duration) (context.Context, *authz.Decision) {
	from, ok := ctx.Value(arrivalKey{}).(time.Time)
	if !ok || timeout <= 0 {
		return ctx, nil
	}
	elapsed := time.Since(from)
	switch {
	case elapsed >= timeout:
		return ctx, &authz.Decision{Reason: reason.DeadlineExceeded,
			Detail: "check timeout passed while the request was received and decoded"}
	case elapsed > decodeSlack:
		return authz.WithCheckDeadline(ctx, from.Add(timeout)), nil
	}
	return ctx, nil
}

// ended returns a denial when ctx ended before the decision began: a
// cached or token-less answer would otherwise ignore the deadline.
func ended(ctx context.Context) *authz.Decision {
	switch ctx.Err() {
	case nil:
		return nil
	case context.DeadlineExceeded:
		return &authz.Decision{Reason: reason.DeadlineExceeded, Detail: "deadline passed before the decision"}
	default:
		return &authz.Decision{Reason: reason.Canceled, Detail: "canceled before the decision"}
	}
}
