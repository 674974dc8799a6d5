package token

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

// Claims are the verified claims of one token. They are never modified after
// Verify returns, so one *Claims may be cached and read by many goroutines;
// every accessor that returns a slice or map returns a copy.
//
// Claims come in two forms. Verify returns the full form, every claim as
// decoded. Compact returns the form a cache keeps: only the named claims,
// already formatted.
//
// Both keep their strings (sub, username, client, scopes, groups and, in
// the compact form, the kept claims' values) in packed, one allocation
// without pointers (see packing). A cache of compact Claims then holds
// three objects per token, two of them pointer-free, and the collector,
// which marks the whole cache on every cycle, follows a handful of
// pointers per token instead of one per string.
type Claims struct {
	all    map[string]any // nil in the compact form
	packed string
	// keep names the compact form's kept claims: the authorizer's list,
	// shared by every token it caches, never modified. nil in the full
	// form.
	keep   []string
	expiry int64 // exp, Unix seconds
	// issuedAt is iat, Unix seconds, valid when has holds hasIssuedAt.
	issuedAt int64
	nScopes  uint32
	nGroups  uint32
	// pool is the configured pool whose key verified the token, and
	// issuer the index of the token's iss among its Issuers: the
	// configuration's strings, referenced by every cached token rather
	// than copied into it (noIssuer when iss is none of them).
	pool   *Pool
	issuer uint8
	use    tokenUse
	// has says which of the scope and cognito:groups claims the token
	// holds, so that an empty one reads as empty and an absent one as nil,
	// and which app client rules the token passed.
	has present
}

// present holds the bits hasScope, hasGroups, clientByUse,
// clientByAudience and hasIssuedAt.
type present uint8

const (
	hasScope present = 1 << iota
	hasGroups
	// clientByUse: the app client check by token_use held (see
	// appClients); clientByAudience: the check by aud, else client_id,
	// held. Verify sets at least one; a Claims without either (the zero
	// value) passes no route.
	clientByUse
	clientByAudience
	hasIssuedAt
)

// tokenUse is the token_use claim, which Verify admits only as "id" or
// "access".
type tokenUse uint8

const (
	useOther tokenUse = iota
	useID
	useAccess
)

func useOf(s string) tokenUse {
	switch s {
	case "id":
		return useID
	case "access":
		return useAccess
	}
	return useOther
}

const noIssuer = 255

// keptKind says what a kept claim was, so the compact form answers Scalar
// and Present as the full one does.
type keptKind uint8

const (
	keptAbsent    keptKind = iota // absent or null: not kept
	keptScalar                    // a string, number or boolean
	keptComposite                 // a list or object, formatted
	keptUnusable                  // present, but Format refused it
)

// newClaims builds Claims from a payload that passed every check in Verify,
// so the type assertions below cannot fail for present claims.
func newClaims(all map[string]any, use, clientID string, pool *Pool, expiry time.Time, groups []string) *Claims {
	c := &Claims{
		all:    all,
		use:    useOf(use),
		pool:   pool,
		issuer: noIssuer,
		expiry: expiry.Unix(),
	}
	subject, _ := all["sub"].(string)
	iss, _ := all["iss"].(string)
	for i, configured := range pool.Issuers {
		if iss == configured && i < noIssuer {
			c.issuer = uint8(i)
			break
		}
	}
	var username string
	if use == "id" {
		username, _ = all["cognito:username"].(string)
	} else {
		username, _ = all["username"].(string)
	}
	var scopes []string
	if scope, ok := all["scope"].(string); ok {
		scopes = splitScope(scope)
		c.has |= hasScope
	}
	if groups != nil {
		c.has |= hasGroups
	}
	jti, _ := all["jti"].(string)
	originJTI, _ := all["origin_jti"].(string)
	c.packed, c.nScopes, c.nGroups = packFixed([fixedParts]string{
		partSubject: subject, partUsername: username, partClientID: clientID,
		partJTI: jti, partOriginJTI: originJTI,
	}, scopes, groups, nil, nil)
	return c
}

// fixed returns the fixed strings of c, for packing them again.
func (c *Claims) fixed() [fixedParts]string {
	var out [fixedParts]string
	for i := range out {
		out[i] = c.part(i)
	}
	return out
}

// TokenUse returns// TokenUse returns "id" or "access".
func (c *Claims) TokenUse() string {
	switch c.use {
	case useID:
		return "id"
	case useAccess:
		return "access"
	}
	return ""
}

// Subject returns the sub claim, "" when absent.
func (c *Claims) Subject() string { return c.part(partSubject) }

// Username returns cognito:username for an ID token and username for an
// access token, "" when absent.
func (c *Claims) Username() string { return c.part(partUsername) }

// ClientID returns the app client: aud for an ID token, client_id for an
// access token; "" when that claim is absent or not a string.
func (c *Claims) ClientID() string { return c.part(partClientID) }

// JTI returns the jti claim, "" when absent or not a string: the token's
// own id, which a revocation entry may name.
func (c *Claims) JTI() string { return c.part(partJTI) }

// OriginJTI returns the origin_jti claim, "" when absent or not a string:
// Cognito gives every token minted from one refresh token (one sign-in)
// the same origin_jti, so one revocation entry can name them all.
func (c *Claims) OriginJTI() string { return c.part(partOriginJTI) }

// IssuedAt returns the iat claim; ok is false when the token has none.
// Verify has checked that a present iat is an integer not in the future.
func (c *Claims) IssuedAt() (t time.Time, ok bool) {
	if c.has&hasIssuedAt == 0 {
		return time.Time{}, false
	}
	return time.Unix(c.issuedAt, 0), true
}

// ClientAllowedByUse reports whether the token passed the authorizer's
// appClientIds as identity-claims and access-scopes routes read them: an ID
// token's aud, or an access token's client_id, is one of them (or the
// authorizer lists none).
func (c *Claims) ClientAllowedByUse() bool { return c.has&clientByUse != 0 }

// ClientAllowedByAudience reports whether the token passed the authorizer's
// appClientIds as API Gateway HTTP API's JWT authorizer reads them (jwt
// routes): the aud claim when the token has one, else client_id, is one of
// them (or the authorizer lists none).
func (c *Claims) ClientAllowedByAudience() bool { return c.has&clientByAudience != 0 }

// Issuer returns the iss claim, which equals one of the issuing pool's
// configured issuers; "" for the 256th and later of a pool's issuers,
// which the index cannot hold (policy pools have one or two).
func (c *Claims) Issuer() string {
	if c.pool == nil || c.issuer == noIssuer {
		return ""
	}
	// newClaims sets issuer only to an index of pool.Issuers.
	return c.pool.Issuers[c.issuer]
}

// Pool returns the configured Pool.ID whose key verified the token.
func (c *Claims) Pool() string {
	if c.pool == nil {
		return ""
	}
	return c.pool.ID
}

// Scopes returns the scope claim split on spaces, nil when absent.
func (c *Claims) Scopes() []string {
	return c.parts(c.firstScope(), int(c.nScopes), c.has&hasScope != 0)
}

// NumScopes and Scope read the scopes without copying them, for the
// per-request response.
func (c *Claims) NumScopes() int { return int(c.nScopes) }

// Scope returns the i-th scope, 0 <= i < NumScopes().
func (c *Claims) Scope(i int) string {
	if i < 0 || i >= int(c.nScopes) {
		panic("token: scope index out of range")
	}
	return c.part(c.firstScope() + i)
}

// Groups returns the cognito:groups claim, nil when absent.
func (c *Claims) Groups() []string {
	return c.parts(c.firstGroup(), int(c.nGroups), c.has&hasGroups != 0)
}

// HasAnyScope reports whether the token grants at least one of want. It
// does not copy, for the per-request route check.
func (c *Claims) HasAnyScope(want []string) bool {
	return c.anyOf(want, c.firstScope(), int(c.nScopes))
}

// InAnyGroup reports whether cognito:groups holds at least one of want.
func (c *Claims) InAnyGroup(want []string) bool {
	return c.anyOf(want, c.firstGroup(), int(c.nGroups))
}

func (c *Claims) anyOf(want []string, first, n int) bool {
	for _, w := range want {
		for i := first; i < first+n; i++ {
			if c.part(i) == w {
				return true
			}
		}
	}
	return false
}

// Expiry returns the exp claim as a time.
func (c *Claims) Expiry() time.Time { return time.Unix(c.expiry, 0) }

// Value returns the named claim as decoded: string, json.Number, bool, nil,
// []any or map[string]any (composite values are copies). ok is false when
// the claim is absent; a JSON null is (nil, true). In the compact form a
// retained claim is its formatted string and any other claim is absent.
func (c *Claims) Value(name string) (any, bool) {
	if c.all == nil {
		if v, kind := c.kept(name); kind == keptScalar || kind == keptComposite {
			return v, true
		}
		return nil, false
	}
	v, ok := c.all[name]
	if !ok {
		return nil, false
	}
	return deepCopy(v), true
}

// Map returns a deep copy of every claim, for explain output; in the
// compact form, the retained claims as formatted strings.
func (c *Claims) Map() map[string]any {
	if c.all == nil {
		m := make(map[string]any, len(c.keep))
		for j, name := range c.keep {
			if _, seen := m[name]; seen {
				continue
			}
			if k := c.keptKind(j); k == keptScalar || k == keptComposite {
				m[name] = c.part(c.firstKept() + j)
			}
		}
		return m
	}
	m := make(map[string]any, len(c.all))
	for k, v := range c.all {
		m[k] = deepCopy(v)
	}
	return m
}

// Scalar returns the named claim rendered as Format renders it, when it is
// a single string, number or boolean: a claims requirement is a scalar, and
// a list or object never meets one, even when it renders the same
// (["acme"] is not acme). ok is false otherwise.
func (c *Claims) Scalar(name string) (string, bool) {
	if c.all == nil {
		v, kind := c.kept(name)
		return v, kind == keptScalar
	}
	switch c.all[name].(type) {
	case string, json.Number, bool:
		return c.Format(name)
	}
	return "", false
}

// Present reports whether the token holds the named claim with a non-null
// value, whether or not Format can render it.
func (c *Claims) Present(name string) bool {
	if c.all == nil {
		_, kind := c.kept(name)
		return kind != keptAbsent
	}
	return c.all[name] != nil
}

// Format renders the named claim as an HTTP header value, as API Gateway
// REST passes claims: a string as it is; a number in decimal (an integer
// literal as written, any other number in plain decimal without an
// exponent); a boolean as true or false; an array as its elements joined
// with ',' (a string, number or boolean element by the same rules, an
// object, array or null element as compact JSON); an object as compact JSON
// with sorted member names. ok is false when the claim is absent or null,
// and also when the result cannot be carried in a header field (a control
// character other than tab, such as CR, LF or NUL in a user-editable
// attribute), so that a claim never splits or corrupts a header.
func (c *Claims) Format(name string) (string, bool) {
	if c.all == nil {
		v, kind := c.kept(name)
		return v, kind == keptScalar || kind == keptComposite
	}
	v, ok := c.all[name]
	if !ok || v == nil {
		return "", false
	}
	var s string
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			// Elements are comma-joined, as API Gateway passes
			// cognito:groups; an upstream splits them on commas. An element
			// that would not come back whole from that split (a comma,
			// surrounding space, empty, a nested object or list: a group
			// named "admins,root" would read as "root") makes the whole
			// value unusable rather than ambiguous.
			parts[i], ok = formatScalar(e)
			if !ok || !listElement(parts[i]) {
				return "", false
			}
		}
		s = strings.Join(parts, ",")
	case map[string]any:
		s, ok = compactJSON(v)
	default:
		s, ok = formatScalar(v)
	}
	if !ok || !httpsyntax.ValidFieldValue(s) {
		return "", false
	}
	return s, true
}

// listElement reports whether s survives a comma-join and an upstream's
// split-and-trim unchanged.
func listElement(s string) bool {
	return s != "" && strings.IndexByte(s, ',') < 0 && strings.TrimSpace(s) == s
}

func formatScalar(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		if isIntegerLiteral(string(v)) {
			return string(v), true
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return "", false
		}
		return strconv.FormatFloat(f, 'f', -1, 64), true
	}
	return "", false
}

// compactJSON encodes v without HTML escaping and without a trailing newline.
func compactJSON(v any) (string, bool) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return "", false
	}
	return strings.TrimSuffix(b.String(), "\n"), true
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := maps.Clone(v)
		for k, e := range m {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		a := slices.Clone(v)
		for i, e := range a {
			a[i] = deepCopy(e)
		}
		return a
	default:
		return v
	}
}
