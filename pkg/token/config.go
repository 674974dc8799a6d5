// Package token verifies Cognito user-pool tokens: a strict shape gate, the
// JOSE header, the RS256 signature against the issuing pool's keys, and the
// registered and Cognito claims that do not depend on the route.
//
// This package is a supported Go API: Verifier.Verify accepts a token only
// when the service would (the same shape gate, header rules, signature
// check, issuer selection before any key I/O, and claim rules), and
// reports every refusal as a *reason.Error with a stable code. Keys come
// from anything implementing Keys; *jwks.Cache is the service's. Exported
// names keep their meaning within a major version of the module.
package token

import (
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// Pool is one Cognito user pool an authorizer accepts tokens from.
type Pool struct {
	// ID is the pool id as configured (e.g. us-east-1_AbCdEfGhI or
	// local_5vr8DTla); it is reported in decisions, never compared with
	// token content.
	ID string
	// Issuers are the exact iss values accepted for this pool: both the
	// cognito-idp and the issuer-cognito-idp form, or the one override.
	Issuers []string
	// Keys is where this pool's JWKS comes from.
	Keys jwks.Source
}

// Config is what one authorizer requires of every token, whatever the route.
// It is built once when a policy is compiled and never mutated afterwards.
type Config struct {
	Pools []Pool
	// ClientIDs, when non-empty, must contain an ID token's aud or an
	// access token's client_id (Claims.ClientAllowedByUse).
	ClientIDs []string
	// AudienceRule also admits a token whose aud, when it has one, else
	// client_id, is in ClientIDs: the rule of API Gateway HTTP API's JWT
	// authorizer (Claims.ClientAllowedByAudience). Off, a token must pass
	// the rule above; on, either rule, and the caller checks the one that
	// applies to the request. The two differ only on a token with both aud
	// and client_id, or neither.
	AudienceRule bool
	// Algorithms allowed in the JOSE header; empty means RS256 only. The
	// policy never admits none or HMAC algorithms here.
	Algorithms []string
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration
}
