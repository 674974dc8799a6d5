// Package reason defines the stable snake_case codes that explain every
// decision. One code is shared by the x-extauthz-reason response header, the
// decision log line and the metrics label, so an operator can follow a denial
// from a client report to a dashboard without translation.
//
// It is a supported Go API, the error vocabulary of packages policy and
// token: a code, once published, is never renamed or given another
// meaning; new codes may be added.
package reason

import "errors"

// Code is a stable, snake_case reason for a decision. Codes are part of the
// external contract: never rename one.
type Code string

// Codes for allowed requests.
const (
	// Allowed: a token was verified and every route requirement held.
	Allowed Code = "allowed"
	// NoAuth: the route has authorization NONE.
	NoAuth Code = "authorization_none"
	// DefaultAllow: no route matched and the policy's defaultAction is allow.
	DefaultAllow Code = "default_allow"
)

// Codes for requests denied with 401 (the token is absent or not acceptable).
const (
	TokenMissing     Code = "token_missing"      // no token in the identity source
	TokenAmbiguous   Code = "token_ambiguous"    // the identity source carried more than one value
	TokenMalformed   Code = "token_malformed"    // not a compact JWS of the strict shape, or its JSON is unusable
	HeaderInvalid    Code = "header_invalid"     // JOSE header names a forbidden parameter (crit, b64, jku, jwk, x5u, x5c, zip, ...)
	AlgNotAllowed    Code = "alg_not_allowed"    // header alg outside the allowed list (none and HMAC never allowed)
	KidMissing       Code = "kid_missing"        // header has no usable kid
	KidUnknown       Code = "kid_unknown"        // kid not in the issuing pool's JWKS, even after a refetch
	SignatureInvalid Code = "signature_invalid"  // the signature does not verify with the pool's key
	IssuerUnknown    Code = "issuer_unknown"     // iss names no pool of the route's authorizer
	TokenExpired     Code = "token_expired"      // exp is in the past (beyond clockSkew)
	ClaimInvalid     Code = "claim_invalid"      // exp/nbf/iat missing, of the wrong type, or nbf/iat in the future
	TokenUseMismatch Code = "token_use_mismatch" // token_use is not what the route's mode requires
	ClientNotAllowed Code = "client_not_allowed" // aud (ID token) or client_id (access token) not in appClientIds (on jwt routes: aud, else client_id)
	TokenRevoked     Code = "token_revoked"      // jti or origin_jti on the revocation list, or sub listed with a time after the token's iat
)

// Codes for requests denied with 403.
const (
	ScopeMissing  Code = "scope_missing"   // none of the route's scopes is in the token's scope claim
	GroupMissing  Code = "group_missing"   // none of the route's groups is in cognito:groups
	ClaimMismatch Code = "claim_mismatch"  // a required claim value differs
	RouteNotFound Code = "route_not_found" // no route matched (defaultAction deny), or an unknown context_extensions route name
	PathInvalid   Code = "path_invalid"    // the request path is ambiguous: no canonical form, a dot-segment, or upstreams could route it differently
	HostInvalid   Code = "host_invalid"    // the host is not a valid host[:port] and a host-scoped route could serve the path
	// RequestTooLarge (431): the check request carries more headers, or
	// more header bytes, than the service judges; refused before any
	// header is read.
	RequestTooLarge Code = "request_too_large"
)

// Codes for requests refused with 503: the service cannot decide, so it fails
// closed.
const (
	JWKSUnavailable  Code = "jwks_unavailable"  // the pool's keys cannot be had and none are cached
	DeadlineExceeded Code = "deadline_exceeded" // the check's deadline passed before a decision
	Canceled         Code = "canceled"          // the caller went away before a decision
	Internal         Code = "internal_error"    // a bug or an unexpected state; never an allow
	// RevocationUnavailable: the revocation list is older than the
	// policy's staleAfter (its Redis unreachable that long), or has not
	// been read yet: a revoked token cannot be told from a good one.
	RevocationUnavailable Code = "revocation_unavailable"
)

// Codes for requests refused with 400: the authorization request itself
// cannot be used, so there is nothing to decide on.
const (
	// RequestInvalid: an HTTP authorization request without its method or
	// URI header, with one of them repeated, or otherwise unusable. Never an
	// allow: a proxy that lost the original request must not get a yes.
	RequestInvalid Code = "request_invalid"
)

// Error is a failure that carries its reason code. Detail is safe to log: it
// never holds a token, a signature or a cookie.
type Error struct {
	Code   Code
	Detail string
	Err    error
}

// New returns an *Error with the code and a loggable detail.
func New(code Code, detail string) *Error { return &Error{Code: code, Detail: detail} }

// Wrap returns an *Error with the code that wraps err. err's text is logged,
// so it must not contain token material.
func Wrap(code Code, detail string, err error) *Error {
	return &Error{Code: code, Detail: detail, Err: err}
}

func (e *Error) Error() string {
	s := string(e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Of returns the code carried by err, or Internal when err carries none.
func Of(err error) Code {
	var re *Error
	if errors.As(err, &re) {
		return re.Code
	}
	return Internal
}

// All returns every code, allow codes first. proto/extauthz/v1 lists the
// same codes as the Reason enum; a test keeps the two in step.
func All() []Code {
	return []Code{
		Allowed, NoAuth, DefaultAllow,
		TokenMissing, TokenAmbiguous, TokenMalformed, HeaderInvalid, AlgNotAllowed, KidMissing,
		KidUnknown, SignatureInvalid, IssuerUnknown, TokenExpired, ClaimInvalid, TokenUseMismatch,
		ClientNotAllowed, TokenRevoked,
		ScopeMissing, GroupMissing, ClaimMismatch, RouteNotFound, PathInvalid, HostInvalid,
		RequestTooLarge,
		JWKSUnavailable, DeadlineExceeded, Canceled, Internal, RevocationUnavailable,
		RequestInvalid,
	}
}
