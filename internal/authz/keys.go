package authz

import (
	"context"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// cachedKeys is the optional, non-blocking side of a key source: the key
// when it is already held, nil otherwise. *jwks.Cache has it.
type cachedKeys interface {
	Cached(src jwks.Source, kid string) *jwks.Key
}

// timeoutKeys caps a key lookup that has to wait for a JWKS fetch at
// timeout (when positive) and at the check's deadline (WithCheckDeadline),
// when the caller's own deadline is later or absent. A key already held is
// returned without a context or a timer: the check of an unseen token
// signed by a known key, the common case under load, pays for neither.
type timeoutKeys struct {
	keys    token.Keys
	timeout time.Duration
}

func (t timeoutKeys) Key(ctx context.Context, src jwks.Source, kid string) (*jwks.Key, error) {
	if c, ok := t.keys.(cachedKeys); ok {
		if k := c.Cached(src, kid); k != nil {
			return k, nil
		}
	}
	limit, bounded := CheckDeadline(ctx)
	if t.timeout > 0 {
		if own := time.Now().Add(t.timeout); !bounded || own.Before(limit) {
			limit, bounded = own, true
		}
	}
	if dl, ok := ctx.Deadline(); bounded && (!ok || dl.After(limit)) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, limit)
		defer cancel()
	}
	return t.keys.Key(ctx, src, kid)
}

type checkDeadlineKey struct{}

// WithCheckDeadline returns ctx carrying d as the latest a check may wait
// for a key, without a timer: the deadline is armed only when a check has
// to wait (a JWKS fetch), which a check of a cached token never does.
func WithCheckDeadline(ctx context.Context, d time.Time) context.Context {
	return context.WithValue(ctx, checkDeadlineKey{}, d)
}

// CheckDeadline returns the deadline WithCheckDeadline put in ctx.
func CheckDeadline(ctx context.Context) (time.Time, bool) {
	d, ok := ctx.Value(checkDeadlineKey{}).(time.Time)
	return d, ok
}
