// Package policy loads the policy file (apiVersion cognito-extauthz/v1),
// validates all of it at once, and compiles it into an immutable Snapshot:
// the authorizers with their token.Config, the routes with a segment trie
// that matches requests the way API Gateway matches resources, and the
// gateway response overrides.
//
// A Snapshot is never modified after Parse returns, so any number of
// goroutines may read one while a reload builds the next.
//
// This package is a supported Go API: a program that wants to check a
// policy file the way the service does (Load, Parse, Problems with their
// file:line:col), or to ask which route a request addresses (Match,
// Resolve, Candidates), can import it. What it promises is what the
// service promises about the policy file: a file that loads here loads in
// the service, with the same routes matched for the same requests.
// Exported names keep their meaning within a major version of the module.
package policy

import (
	"slices"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// APIVersion is the only apiVersion this package reads.
const APIVersion = "cognito-extauthz/v1"

// Options change how a policy is validated.
type Options struct {
	// AllowHTTPJWKS admits plain-http JWKS URLs (written as jwksUri, or
	// derived from an http issuer) to non-loopback hosts. Off, such a URL
	// is an error: keys fetched in clear text can be replaced in flight.
	AllowHTTPJWKS bool
	// MaxBytes is the largest policy accepted, in bytes; a larger one is
	// refused before it is parsed. 0 (or less) means DefaultMaxBytes.
	MaxBytes int64
}

// Mode is what kind of Cognito token a route requires.
type Mode int

// Modes. The first two are API Gateway REST's COGNITO_USER_POOLS
// authorizer: a method without scopes wants an ID token, a method with
// scopes an access token. The third is API Gateway HTTP API's JWT
// authorizer.
const (
	// ModeIdentity requires an ID token (token_use=id): identity-claims.
	ModeIdentity Mode = iota + 1
	// ModeAccess requires an access token (token_use=access): access-scopes.
	ModeAccess
	// ModeJWT accepts either token type; the authorizer's appClientIds
	// must hold the token's aud (else its client_id), and the route's
	// scopes, when it lists any, are read from the scope claim, which ID
	// tokens lack: jwt.
	ModeJWT
)

// TokenUse returns the token_use claim value the mode requires: "" for
// ModeJWT, which takes either, and for the zero Mode of an authorization
// NONE route.
func (m Mode) TokenUse() string {
	switch m {
	case ModeIdentity:
		return "id"
	case ModeAccess:
		return "access"
	}
	return ""
}

// String returns the mode as it is written in the policy file.
func (m Mode) String() string {
	switch m {
	case ModeIdentity:
		return "identity-claims"
	case ModeAccess:
		return "access-scopes"
	case ModeJWT:
		return "jwt"
	}
	return ""
}

// SourceKind is where an authorizer reads the token from.
type SourceKind int

// Identity source kinds.
const (
	// SourceHeader reads a request header.
	SourceHeader SourceKind = iota + 1
	// SourceQuery reads a query parameter.
	SourceQuery
	// SourceCookie reads a cookie.
	SourceCookie
)

// String returns the kind as it is written in the policy file.
func (k SourceKind) String() string {
	switch k {
	case SourceHeader:
		return "header"
	case SourceQuery:
		return "query"
	case SourceCookie:
		return "cookie"
	}
	return ""
}

// IdentitySource names where the token is read. Header names are lower
// case; query parameter and cookie names are exact.
type IdentitySource struct {
	Kind SourceKind
	Name string
}

// String returns the source in the policy's notation, e.g.
// "header:authorization".
func (s IdentitySource) String() string { return s.Kind.String() + ":" + s.Name }

// Authorizer is one named authorizer of the policy.
type Authorizer struct {
	Name string
	// Token is what every token must satisfy whatever the route. It is
	// built by Parse and never mutated.
	Token      *token.Config
	Source     IdentitySource
	StripToken bool
	// ResultTTL is how long a verified token may be reused (never past
	// its exp); 0 disables reuse.
	ResultTTL time.Duration
	// Fingerprint is a SHA-256 over everything that affects token
	// verification (pools, issuers, key sources, client ids, algorithms
	// and clock skew) and over what a cached token keeps (Kept,
	// KeepGroups). The verified-token cache keys on it, so an unchanged
	// authorizer keeps its entries across reloads, and one that changed,
	// or whose routes now read another claim, never reuses them.
	Fingerprint [32]byte
	// Kept are the claims the routes using this authorizer read through
	// claimHeaders and claims requirements: sorted, without duplicates.
	// A cached token keeps these (and the fixed Cognito claims) only.
	Kept []string
	// KeepGroups is true when a route using this authorizer requires
	// groups, so a cached token must keep cognito:groups.
	KeepGroups bool
}

// ClaimRequirement is one exact claim value a route requires. Value is
// compared with the claim formatted as claim headers are (token.Claims'
// Format): strings as they are, integers in decimal, booleans true/false.
type ClaimRequirement struct {
	Claim, Value string
}

// ClaimHeader asks for a claim to be passed upstream in a request header.
type ClaimHeader struct {
	Header string // lower case
	Claim  string
}

// Route is one route of the policy.
type Route struct {
	Name     string
	Template string // as written, e.g. /pets/{petId}
	// NoAuth is true for authorization: NONE routes; Authorizer is then
	// nil and Mode, Scopes, Groups, Claims and ClaimHeaders are empty.
	NoAuth       bool
	Authorizer   *Authorizer
	Mode         Mode
	Scopes       []string           // any one suffices; empty = any access token (any token in jwt mode)
	Groups       []string           // any one must be in cognito:groups
	Claims       []ClaimRequirement // all must hold; sorted by claim
	ClaimHeaders []ClaimHeader      // sorted by header
	// DryRun: the route's decision is computed, logged and counted, but
	// the request is always let through, marked when it would have been
	// denied. For trying a stricter policy without an outage.
	DryRun bool

	methods methodSet
	host    hostPattern
	segs    []segment // the compiled template
	index   int       // position in the file
}

// ResponseKind is a class of denial whose response the policy's
// gatewayResponses may customise.
type ResponseKind int

// Response kinds, named after the API Gateway gateway response types.
const (
	// Unauthorized covers every 401.
	Unauthorized ResponseKind = iota + 1
	// AccessDenied covers the 403s for unmet scopes, groups or claims.
	AccessDenied
	// MissingAuthenticationToken covers the 403 for no matching route.
	MissingAuthenticationToken
	// AuthorizerFailure covers the 503 for keys unavailable or an internal
	// error.
	AuthorizerFailure
)

// String returns the gatewayResponses key of the kind.
func (k ResponseKind) String() string {
	switch k {
	case Unauthorized:
		return "UNAUTHORIZED"
	case AccessDenied:
		return "ACCESS_DENIED"
	case MissingAuthenticationToken:
		return "MISSING_AUTHENTICATION_TOKEN"
	case AuthorizerFailure:
		return "AUTHORIZER_FAILURE"
	}
	return ""
}

// Header is one response header of a gateway response override.
type Header struct {
	Name  string // lower case
	Value string
}

// GatewayResponse customises the response of a denial kind.
type GatewayResponse struct {
	// StatusCode replaces the status; 0 keeps the service's own.
	StatusCode int
	// Headers are added to the response, sorted by name.
	Headers []Header
}

// Snapshot is one compiled policy. It is immutable once Parse returns and
// safe for concurrent use; a reload swaps in a whole new Snapshot.
type Snapshot struct {
	routes []*Route
	byName map[string]*Route
	trie   *node // routes by template, as written
	ftrie  *node // routes by template, literals case-folded
	// literalsFolded is true when every literal of every template is its
	// own fold, so a request already in folded form needs no second walk.
	literalsFolded bool
	defaultAllow   bool
	revocation     *Revocation
	claimHeaders   []string
	forgeable      []string
	claimClass     map[string]bool
	keySources     []jwks.Source
	authorizers    []*Authorizer
	responses      map[string]GatewayResponse
	digest         string
	warnings       Problems
}

// RouteByName returns the route with the given name, as Envoy names it in
// a context_extensions entry.
func (s *Snapshot) RouteByName(name string) (*Route, bool) {
	r, ok := s.byName[name]
	return r, ok
}

// Routes returns the routes in file order.
func (s *Snapshot) Routes() []*Route { return slices.Clone(s.routes) }

// DefaultAllow reports whether a request that matches no route is allowed
// (defaultAction: allow).
func (s *Snapshot) DefaultAllow() bool { return s.defaultAllow }

// ClaimHeaderNames returns every header name that appears in any route's
// claimHeaders: lower case, sorted, without duplicates. These are the
// headers removed from every allowed request that does not set them, so a
// client can never forge one. The slice is shared and must not be
// modified; its capacity equals its length, so appending copies.
func (s *Snapshot) ClaimHeaderNames() []string { return s.claimHeaders }

// Revocation returns the policy's revocation block, nil when it has none
// (no revocation checks, as API Gateway). The result is shared: never
// modify it.
func (s *Snapshot) Revocation() *Revocation { return s.revocation }

// ForgeableHeaderNames returns every spelling of a claim header name that
// an allowed request loses unless the decision sets it: the names of
// ClaimHeaderNames plus their twins with every '-' made '_' and every '_'
// made '-', since a CGI-style upstream reads "x_user_sub" as "x-user-sub"
// (see CGIName). Sorted, without duplicates; shared: must not be modified,
// and its capacity equals its length, so appending copies.
func (s *Snapshot) ForgeableHeaderNames() []string { return s.forgeable }

// IsClaimHeader reports whether a request header name (lower case) is,
// to a CGI-style upstream, one of the policy's claim headers: it catches
// mixed spellings such as "x-user_sub" that ForgeableHeaderNames does not
// list.
func (s *Snapshot) IsClaimHeader(name string) bool { return s.claimClass[httpsyntax.CGIName(name)] }

// KeySources returns the key source of every pool of every authorizer,
// used by a route or not, without duplicates and sorted.
func (s *Snapshot) KeySources() []jwks.Source { return slices.Clone(s.keySources) }

// Authorizers returns every authorizer, sorted by name.
func (s *Snapshot) Authorizers() []*Authorizer { return slices.Clone(s.authorizers) }

// GatewayResponse returns the override for a denial kind. As in API
// Gateway, a kind without its own entry falls back to DEFAULT_4XX (or
// DEFAULT_5XX for AuthorizerFailure); with neither, the zero value. The
// Headers slice is shared and must not be modified.
func (s *Snapshot) GatewayResponse(kind ResponseKind) GatewayResponse {
	name := kind.String()
	if name == "" {
		return GatewayResponse{}
	}
	if r, ok := s.responses[name]; ok {
		return r
	}
	fallback := "DEFAULT_4XX"
	if kind == AuthorizerFailure {
		fallback = "DEFAULT_5XX"
	}
	return s.responses[fallback]
}

// Warnings returns what the policy's lints found valid but probably not
// meant, in file order, in the same file:line:col form as problems. The
// slice is shared and must not be modified.
func (s *Snapshot) Warnings() Problems { return s.warnings }

// Digest returns the SHA-256 of the policy's source bytes in hex, so a
// reload can be logged with what was loaded.
func (s *Snapshot) Digest() string { return s.digest }
