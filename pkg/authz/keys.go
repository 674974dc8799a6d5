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
// timeout, when the caller's own deadline is later or absent. A key
// already held is returned without a context or a timer: the check of an
// unseen token signed by a known key, the common case under load, pays for
// neither.
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
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > t.timeout {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	return t.keys.Key(ctx, src, kid)
}
