package authz

import (
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// SetRevocations makes l the deny list every later decision consults; nil
// turns revocation checks off (a policy without a revocation block). The
// server swaps it together with the policy that names it.
func (a *Authorizer) SetRevocations(l *revocation.List) { a.revocations.Store(l) }

// Revocations returns the deny list in force, nil when there is none.
func (a *Authorizer) Revocations() *revocation.List { return a.revocations.Load() }

// revoked checks a verified token, cached or fresh, against the deny list:
// a listed token is a 401 token_revoked whatever the route asks, and then,
// while the list is stale (its Redis unreachable longer than the policy's
// staleAfter, or not read yet), every token is a 503 revocation_unavailable,
// since a revoked one cannot be told from a good one. A token known to be
// revoked gets its 401 even then. It returns nil when the token passes, or
// when no list is in force. The lookup takes no lock and allocates nothing.
func (a *Authorizer) revoked(route *policy.Route, c *token.Claims) *Decision {
	l := a.revocations.Load()
	if l == nil {
		return nil
	}
	now := a.now()
	// A token without iat is older than any sub entry: revoked by one.
	iat, _ := c.IssuedAt()
	if m, ok := l.Revoked(c.JTI(), c.OriginJTI(), c.Subject(), iat, now); ok {
		return &Decision{Reason: reason.TokenRevoked, Route: route, Claims: c,
			Detail: "revoked by " + m.String(), Revocation: RevocationListed}
	}
	if l.Stale(now) {
		return &Decision{Reason: reason.RevocationUnavailable, Route: route, Claims: c,
			Detail:     "the revocation list is stale: its source has been unreachable longer than staleAfter, or not read yet",
			Revocation: RevocationStale}
	}
	return nil
}

// Revocation check outcomes, for explain.
const (
	RevocationNotListed = "not listed"
	RevocationListed    = "listed"
	RevocationStale     = "list stale"
)
