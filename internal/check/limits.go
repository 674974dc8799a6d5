package check

import (
	"context"
	"strconv"
	"time"

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

// Limits bounds the request a check judges, on both edges. Zero fields
// take the defaults.
type Limits struct {
	// MaxHeaders is the most header entries (pseudo-headers included) a
	// checked request may carry.
	MaxHeaders int
	// MaxHeaderBytes is the most bytes of header names and values, path,
	// host and method together.
	MaxHeaderBytes int
}

// WithDefaults returns l with its zero fields set to the defaults.
func (l Limits) WithDefaults() Limits {
	if l.MaxHeaders <= 0 {
		l.MaxHeaders = DefaultMaxHeaders
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	return l
}

// TooMany is the request_too_large denial of a request with n headers,
// nil when n is within the limit.
func (l Limits) TooMany(n int) *authz.Decision {
	if n <= l.MaxHeaders {
		return nil
	}
	return &authz.Decision{Reason: reason.RequestTooLarge,
		Detail: "more than " + strconv.Itoa(l.MaxHeaders) + " headers: " + strconv.Itoa(n)}
}

// TooBig is the request_too_large denial of a request whose headers, path,
// host and method take size bytes, nil when size is within the limit.
func (l Limits) TooBig(size int) *authz.Decision {
	if size <= l.MaxHeaderBytes {
		return nil
	}
	return &authz.Decision{Reason: reason.RequestTooLarge,
		Detail: "headers over " + strconv.Itoa(l.MaxHeaderBytes) + " bytes: " + strconv.Itoa(size)}
}

// decodeSlack is how far behind its arrival a check may start and still
// rely on the authorizer's own timeout (measured from the verification).
// Below it the two deadlines differ by less than this, and the cached path
// keeps its zero-timer, zero-allocation cost.
const decodeSlack = time.Millisecond

// Deadline bounds a check's waits by its arrival plus timeout when
// receiving and decoding the request took longer than decodeSlack. The
// bound is armed only if the check has to wait for a key
// (authz.WithCheckDeadline), so a check that never waits starts no timer.
// It returns a deadline_exceeded denial when that deadline has already
// passed. A zero arrival or timeout bounds nothing.
func Deadline(ctx context.Context, arrival time.Time, timeout time.Duration) (context.Context, *authz.Decision) {
	if arrival.IsZero() || timeout <= 0 {
		return ctx, nil
	}
	elapsed := time.Since(arrival)
	switch {
	case elapsed >= timeout:
		return ctx, &authz.Decision{Reason: reason.DeadlineExceeded,
			Detail: "check timeout passed while the request was received and decoded"}
	case elapsed > decodeSlack:
		return authz.WithCheckDeadline(ctx, arrival.Add(timeout)), nil
	}
	return ctx, nil
}

// Ended returns a denial when ctx ended before the decision began: a
// cached or token-less answer would otherwise ignore the deadline. A
// deadline is told from a cancellation; both fail closed.
func Ended(ctx context.Context) *authz.Decision {
	switch ctx.Err() {
	case nil:
		return nil
	case context.DeadlineExceeded:
		return &authz.Decision{Reason: reason.DeadlineExceeded, Detail: "deadline passed before the decision"}
	default:
		return &authz.Decision{Reason: reason.Canceled, Detail: "canceled before the decision"}
	}
}
