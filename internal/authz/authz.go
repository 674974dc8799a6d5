// Package authz makes the authorization decision: given the current policy
// snapshot and one request, it finds the route, extracts and verifies the
// token (through the verified-token cache), checks the route's requirements,
// and says what the upstream request should look like. It knows nothing of
// Envoy or protobuf: the edge translates to and from it.
package authz

import (
	"context"
	"crypto/sha256"
	"errors"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/internal/tokencache"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// Headers gives read access to the request's headers. Names are asked for
// in lower case.
type Headers interface {
	// Get returns the value of the header and how many times the request
	// carried it (0 when absent). When count > 1 the value is the first.
	Get(name string) (value string, count int)
	// All returns every value of the header in order.
	All(name string) []string
}

// Request is what the decision needs to know about one HTTP request.
type Request struct {
	Method string // upper-case
	Host   string // :authority, possibly with a port
	Path   string // raw request target, query included, not decoded
	// RouteName is the policy route Envoy selected through the
	// context_extensions key "route"; empty when Envoy selected none.
	RouteName string
	Headers   Headers
	// Underscored lists the names (lower case) of the request's headers
	// that hold a '_', nil when none does (the usual case, so the edges
	// fill it from the walk they already make). A CGI-style upstream reads
	// "x_user-sub" as X-User-Sub and "x_http_method_override" as the
	// method-override header (policy.CGIName), so the decision removes such
	// spellings of claim headers and honours such override headers.
	Underscored []string
}

// Header is one header to set on the upstream request.
type Header struct {
	Name  string // lower-case
	Value string
}

// Decision is the outcome of one check.
type Decision struct {
	Allowed bool
	// DryRun is set when the route is in dry run and the real decision
	// was a denial: Allowed is then true, Reason is the denial's reason,
	// and the request goes upstream marked (see DryRunHeader).
	DryRun bool
	Reason reason.Code
	// Detail explains a denial for logs; it never holds token material.
	Detail string
	// Route is the matched route, nil when none matched.
	Route *policy.Route
	// Claims is set when a token was verified, even when the route's
	// requirements then failed. With the verified-token cache on they are
	// the compact form (token.Claims.Compact) whether the cache answered or
	// not, so a hit and a miss decide alike.
	Claims *token.Claims
	// CacheHit reports whether Claims came from the verified-token cache.
	CacheHit bool
	// Revocation is the outcome of the revocation check when a list was
	// consulted (RevocationNotListed, RevocationListed, RevocationStale),
	// "" when none is in force or no token verified.
	Revocation string

	// On allow: headers to set (overwriting), header names to remove,
	// query parameters to remove.
	SetHeaders    []Header
	RemoveHeaders []string
	RemoveQuery   []string
	// Unset names the claim headers removed although the token holds
	// their claim, because its value could not travel in a header
	// unambiguously (control characters, a list element with a comma).
	Unset []string
}

// RouteName returns the matched route's name, or "" when none matched.
func (d *Decision) RouteName() string {
	if d.Route == nil {
		return ""
	}
	return d.Route.Name
}

// Options configures an Authorizer.
type Options struct {
	// CacheSize bounds the verified-token cache in entries; 0 disables it.
	CacheSize int
	// CacheMaxBytes bounds the cache's estimated memory; 0 means
	// DefaultCacheMaxBytes, a negative value no byte bound.
	CacheMaxBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Timeout caps a verification, which may wait for a shared key
	// refetch, when the caller's deadline is later or absent; 0 means no
	// cap of our own. Only a cache miss can wait, so only a cache miss pays
	// for the timer.
	Timeout time.Duration
}

// DefaultCacheSize is the default bound of the verified-token cache.
const DefaultCacheSize = 100_000

// DefaultCacheMaxBytes is the default byte bound of the verified-token
// cache: room for DefaultCacheSize typical Cognito tokens (about 700 bytes
// each, overhead included) while capping what large or hostile tokens can
// take. k8s/base's memory limit and GOMEMLIMIT are sized from it.
const DefaultCacheMaxBytes = 96 << 20

// Authorizer decides requests. It is safe for concurrent use; the policy
// snapshot is passed in per call so that each request sees exactly one.
type Authorizer struct {
	verifier    *token.Verifier
	cache       *tokencache.Cache[token.Claims]
	now         func() time.Time
	revocations atomic.Pointer[revocation.List]
}

// New returns an Authorizer that verifies tokens with keys.
func New(keys token.Keys, opts Options) *Authorizer {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	maxBytes := opts.CacheMaxBytes
	if maxBytes == 0 {
		maxBytes = DefaultCacheMaxBytes
	}
	keys = timeoutKeys{keys: keys, timeout: opts.Timeout}
	return &Authorizer{
		verifier: token.NewVerifier(keys, now),
		cache:    tokencache.New[token.Claims](opts.CacheSize, maxBytes),
		now:      now,
	}
}

// CacheBytes reports the estimated memory the cached tokens occupy.
func (a *Authorizer) CacheBytes() int64 { return a.cache.Bytes() }

// CacheLen reports how many verified tokens are cached.
func (a *Authorizer) CacheLen() int { return a.cache.Len() }

// DryRunHeader carries, to the upstream, the reason a dry-run route would
// have denied the request.
const DryRunHeader = "x-extauthz-dry-run"

// Decide returns the decision for req under snap. It never returns an
// allow by default: every path to Allowed=true is explicit, and a dry-run
// route's is one.
//
// A request that names another method in an override header (or a
// _method query parameter) is decided once per method and allowed only
// when every decision allows: the upstream may run either method's
// handler.
func (a *Authorizer) Decide(ctx context.Context, snap *policy.Snapshot, req *Request) *Decision {
	if snap == nil {
		return deny(reason.Internal, "no policy loaded")
	}
	ms := methods(req)
	d := a.decideDry(ctx, snap, req)
	for _, m := range ms[1:] {
		if !d.Allowed {
			break
		}
		alt := *req
		alt.Method = m
		o := a.decideDry(ctx, snap, &alt)
		if !o.Allowed {
			o.Detail = "as method override " + m + ": " + o.Detail
			return o
		}
		// An upstream that honours the override runs the overriding
		// method's handler: its route is the one reported, its claim
		// headers win.
		d = merge(o, d)
	}
	return d
}

// decideDry is decide for req under its own method. A request with a
// trailing slash may have a second route to satisfy (policy.Resolve): it
// is allowed only when both routes allow it, and the subtree's route is
// the one reported.
func (a *Authorizer) decideDry(ctx context.Context, snap *policy.Snapshot, req *Request) *Decision {
	route, also, d := a.route(snap, req)
	if d != nil {
		return d
	}
	d = a.decideRoute(ctx, snap, req, route)
	if also == nil || !d.Allowed {
		return d
	}
	o := a.decideRoute(ctx, snap, req, also)
	if !o.Allowed {
		o.Detail = "as route " + also.Name + " (the path without its trailing slash): " + o.Detail
		return o
	}
	return merge(d, o)
}

// decideRoute is the decision for req on route, with a dry-run route's
// override applied.
func (a *Authorizer) decideRoute(ctx context.Context, snap *policy.Snapshot, req *Request, route *policy.Route) *Decision {
	d := a.decide(ctx, snap, req, route)
	if route.DryRun {
		a.dryRun(snap, req, d)
	}
	return d
}

// dryRun lets a dry-run route's request through. A would-be denial keeps
// its reason, gets the claim headers when the token verified, and is marked
// for the upstream; the anti-forgery removals apply either way, and a
// client's own x-extauthz-dry-run header never reaches the upstream.
func (a *Authorizer) dryRun(snap *policy.Snapshot, req *Request, d *Decision) {
	if d.Allowed {
		// RemoveHeaders may be the snapshot's shared slice; its capacity
		// equals its length, so append copies.
		d.RemoveHeaders = append(d.RemoveHeaders, DryRunHeader)
		return
	}
	d.Allowed, d.DryRun = true, true
	if d.Claims != nil && d.Route.Authorizer != nil {
		a.mutations(snap, d.Route, d.Claims, req, d)
	} else {
		d.RemoveHeaders = forged(snap, req, nil)
	}
	d.SetHeaders = append(d.SetHeaders, Header{Name: DryRunHeader, Value: string(d.Reason)})
}

// decide is the decision for req on route.
func (a *Authorizer) decide(ctx context.Context, snap *policy.Snapshot, req *Request, route *policy.Route) *Decision {
	if route.NoAuth {
		return allowWithoutToken(snap, req, route, reason.NoAuth)
	}
	az := route.Authorizer
	if az == nil {
		// Compile guarantees an authorizer on every non-NONE route; a nil
		// here is a bug, and a bug must not open the door.
		return &Decision{Reason: reason.Internal, Detail: "route has no authorizer", Route: route}
	}

	raw, code := extract(az.Source, req)
	if code != "" {
		return &Decision{Reason: code, Route: route, Detail: "identity source " + az.Source.String()}
	}

	claims, hit, err := a.verify(ctx, az, raw)
	if err != nil {
		var re *reason.Error
		if !errors.As(err, &re) {
			re = reason.Wrap(reason.Internal, "verify", err)
		}
		return &Decision{Reason: re.Code, Detail: re.Error(), Route: route}
	}
	if rd := a.revoked(route, claims); rd != nil {
		rd.CacheHit = hit
		return rd
	}
	d := &Decision{Route: route, Claims: claims, CacheHit: hit}
	if a.revocations.Load() != nil {
		d.Revocation = RevocationNotListed
	}
	if code, detail := requirements(route, claims); code != "" {
		d.Reason, d.Detail = code, detail
		return d
	}
	// A decision reached after the caller gave up is not trusted to be
	// acted upon; Envoy has already failed the request anyway.
	if err := ctx.Err(); err != nil {
		return &Decision{Reason: ctxReason(err), Detail: "check deadline", Route: route}
	}
	d.Allowed, d.Reason = true, reason.Allowed
	a.mutations(snap, route, claims, req, d)
	return d
}

func deny(code reason.Code, detail string) *Decision {
	return &Decision{Reason: code, Detail: detail}
}

func ctxReason(err error) reason.Code {
	if errors.Is(err, context.DeadlineExceeded) {
		return reason.DeadlineExceeded
	}
	return reason.Canceled
}

// route finds the route for req (and, for a path with a trailing slash,
// the second route it must satisfy), or returns the denial (or default
// allow) when there is none.
func (a *Authorizer) route(snap *policy.Snapshot, req *Request) (route, also *policy.Route, d *Decision) {
	if req.RouteName != "" {
		r, ok := snap.RouteByName(req.RouteName)
		if !ok {
			// Envoy names a route the policy lacks: a configuration error
			// between the two, and the safe answer is no.
			return nil, nil, deny(reason.RouteNotFound, "context_extensions route not in policy")
		}
		// Naming a route skips path matching, never the route's own
		// methods and host: "route: users-get" on a DELETE is no GET.
		if code := r.Admits(req.Method, req.Host); code != "" {
			return nil, nil, &Decision{Reason: code, Route: r, Detail: "context_extensions route does not serve this method or host"}
		}
		return r, nil, nil
	}
	r, also, code := snap.Resolve(req.Method, req.Host, req.Path)
	if r != nil {
		return r, also, nil
	}
	if code == reason.RouteNotFound && snap.DefaultAllow() {
		return nil, nil, allowWithoutToken(snap, req, nil, reason.DefaultAllow)
	}
	if code == "" {
		code = reason.RouteNotFound
	}
	return nil, nil, deny(code, "no route matched")
}

// allowWithoutToken allows a request that carries no verified identity: it
// still strips every claim header name of the policy, so a client cannot
// forge one on any route.
func allowWithoutToken(snap *policy.Snapshot, req *Request, route *policy.Route, code reason.Code) *Decision {
	return &Decision{
		Allowed:       true,
		Reason:        code,
		Route:         route,
		RemoveHeaders: forged(snap, req, nil),
	}
}

// forged returns the header names an allowed request loses so that no
// client can forge a claim header: every spelling of every claim header
// name of the policy (policy.ForgeableHeaderNames) that set does not hold,
// and every underscored header of the request that a CGI-style upstream
// would read as a claim header. The result may be the snapshot's shared
// slice, whose capacity equals its length, so appending to it copies.
func forged(snap *policy.Snapshot, req *Request, set []Header) []string {
	names := snap.ForgeableHeaderNames()
	if len(set) == 0 && len(req.Underscored) == 0 {
		return names
	}
	out := make([]string, 0, len(names)+len(req.Underscored)+1)
	for _, n := range names {
		if !isSet(set, n) {
			out = append(out, n)
		}
	}
	for _, n := range req.Underscored {
		if snap.IsClaimHeader(n) && !isSet(set, n) && !contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// verify returns the claims of raw for the authorizer, from the cache when
// it holds them.
func (a *Authorizer) verify(ctx context.Context, az *policy.Authorizer, raw string) (*token.Claims, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, reason.Wrap(ctxReason(err), "before verification", err)
	}
	useCache := a.cache != nil && az.ResultTTL > 0
	var k tokencache.Key
	if useCache {
		k = cacheKey(az, raw)
		// The claims are read where the cache holds them: an entry is
		// one allocation (with the claims' pointer-free string blob).
		if c := a.cache.Lookup(k, a.now()); c != nil {
			return c, true, nil
		}
	}
	c, err := a.verifier.Verify(ctx, az.Token, raw)
	if err != nil {
		return nil, false, err
	}
	if useCache {
		// Keep only what the routes of this authorizer read; the cache key
		// covers that set through the fingerprint.
		c = c.Compact(az.Kept, az.KeepGroups)
		now := a.now()
		expires := now.Add(az.ResultTTL)
		// Never past exp: a cached answer must not outlive the token.
		if exp := c.Expiry(); exp.Before(expires) {
			expires = exp
		}
		a.cache.Put(k, *c, c.Size(), expires, now)
	}
	return c, false, nil
}

// cacheKey hashes the authorizer's fingerprint with the token, so entries of
// one authorizer are never served to another with different pools, clients
// or skew, and the token itself is not kept as a key. It is
// SHA-256(fingerprint || SHA-256(token)): the token is hashed where it
// lies, without a copy or an allocation.
func cacheKey(az *policy.Authorizer, raw string) tokencache.Key {
	var buf [2 * sha256.Size]byte
	copy(buf[:], az.Fingerprint[:])
	t := sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
	copy(buf[sha256.Size:], t[:])
	return sha256.Sum256(buf[:])
}

// requirements checks what the route asks of a verified token. They are
// checked on every request, cached token or not.
func requirements(route *policy.Route, c *token.Claims) (reason.Code, string) {
	switch route.Mode {
	case policy.ModeIdentity, policy.ModeAccess:
		if want := route.Mode.TokenUse(); c.TokenUse() != want {
			return reason.TokenUseMismatch, "route " + route.Mode.String() + " needs token_use " + want
		}
	case policy.ModeJWT:
		// Either token type, as API Gateway HTTP API's JWT authorizer.
	default:
		// Compile gives every route with an authorizer a mode; a route
		// without one must not let any token through.
		return reason.Internal, "route has no mode"
	}
	if !clientAllowed(route.Mode, c) {
		return reason.ClientNotAllowed, "app client not allowed (" + clientRule(route.Mode) + ")"
	}
	if len(route.Scopes) > 0 && !c.HasAnyScope(route.Scopes) {
		return reason.ScopeMissing, "none of the route's scopes granted"
	}
	if len(route.Groups) > 0 && !c.InAnyGroup(route.Groups) {
		return reason.GroupMissing, "none of the route's groups held"
	}
	for _, req := range route.Claims {
		// A required value is a scalar: a list or object claim never
		// equals it, even when its rendering would (["acme"] is not acme).
		if v, ok := c.Scalar(req.Claim); !ok || v != req.Value {
			return reason.ClaimMismatch, "claim " + req.Claim + " does not have the required value"
		}
	}
	return "", ""
}

// clientAllowed applies the authorizer's appClientIds as the route's mode
// reads them. Verification checked both readings and refused a token that
// fails both; the two differ only on tokens with both aud and client_id,
// or neither.
func clientAllowed(m policy.Mode, c *token.Claims) bool {
	if m == policy.ModeJWT {
		return c.ClientAllowedByAudience()
	}
	return c.ClientAllowedByUse()
}

// clientRule names the claim clientAllowed compares, for details and
// explain.
func clientRule(m policy.Mode) string {
	if m == policy.ModeJWT {
		return "aud, else client_id"
	}
	return "aud of an ID token, client_id of an access token"
}

// mutations fills in the header changes of an allowed request.
func (a *Authorizer) mutations(snap *policy.Snapshot, route *policy.Route, c *token.Claims, req *Request, d *Decision) {
	set := make([]Header, 0, len(route.ClaimHeaders))
	for _, ch := range route.ClaimHeaders {
		v, ok := c.Format(ch.Claim)
		if !ok || !validHeaderValue(v) {
			// Absent claim, or a value that cannot travel in a header:
			// the header is removed below rather than passed as the
			// client sent it. A present claim is noted for the log.
			if c.Present(ch.Claim) {
				d.Unset = append(d.Unset, ch.Header)
			}
			continue
		}
		set = append(set, Header{Name: ch.Header, Value: v})
	}
	d.SetHeaders = set

	remove := forged(snap, req, set)
	az := route.Authorizer
	if az.StripToken {
		switch az.Source.Kind {
		case policy.SourceHeader:
			remove = append(remove, az.Source.Name)
		case policy.SourceQuery:
			d.RemoveQuery = []string{az.Source.Name}
		case policy.SourceCookie:
			if v, ok := cookieHeaderWithout(req.Headers.All("cookie"), az.Source.Name); ok {
				d.SetHeaders = append(d.SetHeaders, Header{Name: "cookie", Value: v})
			} else {
				remove = append(remove, "cookie")
			}
		}
	}
	d.RemoveHeaders = remove
}

func isSet(set []Header, name string) bool {
	for _, h := range set {
		if h.Name == name {
			return true
		}
	}
	return false
}

// validHeaderValue reports whether v may be sent as an HTTP field value
// (RFC 9110 section 5.5): visible ASCII, obs-text, space and tab, with no
// leading or trailing whitespace. Control characters would either be
// rejected by Envoy (validate_mutations) or split the header.
func validHeaderValue(v string) bool {
	return httpsyntax.ValidFieldValue(v) && strings.TrimSpace(v) == v
}
