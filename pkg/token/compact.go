package token

import (
	"encoding/binary"
	"strings"
	"unsafe"
)

// Compact returns the form of c that a verified-token cache keeps: the
// fixed claims (token_use, sub, username, client, jti, origin_jti, iat,
// issuer, pool, scope, cognito:groups when keepGroups) and, of the others, only those named in
// keep, stored as Format renders them. keep is retained, not copied: the
// caller passes a list it never modifies (the authorizer's). A decision
// that reads only kept claims gets the same answer from c and from its
// compact form; any other claim reads as absent, so a caller that forgets
// to keep one fails closed (a missing header, an unmet claim requirement),
// never open. Compacting a compact Claims returns it unchanged.
func (c *Claims) Compact(keep []string, keepGroups bool) *Claims {
	if c.all == nil {
		return c
	}
	values := make([]string, len(keep))
	kinds := make([]keptKind, len(keep))
	for j, name := range keep {
		raw := c.all[name]
		if raw == nil {
			continue // absent or null
		}
		kinds[j] = keptScalar
		switch raw.(type) {
		case []any, map[string]any:
			kinds[j] = keptComposite
		}
		v, ok := c.Format(name)
		if !ok {
			kinds[j], v = keptUnusable, ""
		}
		values[j] = v
	}
	out := &Claims{
		keep:   keep,
		expiry: c.expiry,
		// The issuer and pool id are the configuration's: referenced.
		pool:     c.pool,
		issuer:   c.issuer,
		use:      c.use,
		has:      c.has &^ hasGroups,
		issuedAt: c.issuedAt,
	}
	var groups []string
	if keepGroups {
		groups = c.Groups()
		out.has |= c.has & hasGroups
	}
	out.packed, out.nScopes, out.nGroups = packFixed(c.fixed(), c.Scopes(), groups, values, kinds)
	return out
}

// The strings of a Claims, by index in packed: sub, username, client, jti
// and origin_jti, then the scopes, then the groups, then (compact form)
// one formatted value per name in keep.
const (
	partSubject = iota
	partUsername
	partClientID
	partJTI
	partOriginJTI
	fixedParts
)

// packFixed lays out a Claims' strings in one pointer-free allocation:
//
//	end[0] .. end[n-1]   little-endian uint32: where string i ends in data
//	kind[0] .. kind[k-1] the keptKind of each kept value
//	data                 the n strings end to end
//
// where n = fixedParts + scopes + groups + k. Reading string i is two
// loads and a slice of packed: no allocation on the per-request path.
func packFixed(fixed [fixedParts]string, scopes, groups, values []string, kinds []keptKind) (packed string, nScopes, nGroups uint32) {
	n := fixedParts + len(scopes) + len(groups) + len(values)
	size := 0
	for _, s := range fixed {
		size += len(s)
	}
	for _, list := range [...][]string{scopes, groups, values} {
		for _, s := range list {
			size += len(s)
		}
	}
	head := 4*n + len(kinds)
	buf := make([]byte, head+size)
	for j, k := range kinds {
		buf[4*n+j] = byte(k)
	}
	i, end := 0, 0
	add := func(s string) {
		copy(buf[head+end:], s)
		end += len(s)
		binary.LittleEndian.PutUint32(buf[4*i:], uint32(end))
		i++
	}
	for _, s := range fixed {
		add(s)
	}
	for _, list := range [...][]string{scopes, groups, values} {
		for _, s := range list {
			add(s)
		}
	}
	// buf is never written again: the string shares its bytes.
	return unsafe.String(unsafe.SliceData(buf), len(buf)), uint32(len(scopes)), uint32(len(groups))
}

// numParts is n of packFixed's layout.
func (c *Claims) numParts() int {
	return fixedParts + int(c.nScopes) + int(c.nGroups) + len(c.keep)
}

func (c *Claims) firstScope() int { return fixedParts }
func (c *Claims) firstGroup() int { return fixedParts + int(c.nScopes) }
func (c *Claims) firstKept() int  { return fixedParts + int(c.nScopes) + int(c.nGroups) }

// end returns where string i ends in the data of packed.
func (c *Claims) end(i int) int {
	p := c.packed[4*i : 4*i+4]
	return int(uint32(p[0]) | uint32(p[1])<<8 | uint32(p[2])<<16 | uint32(p[3])<<24)
}

// part returns string i of packed, a substring of it.
func (c *Claims) part(i int) string {
	if c.packed == "" {
		return "" // a zero Claims
	}
	data := 4*c.numParts() + len(c.keep)
	from := 0
	if i > 0 {
		from = c.end(i - 1)
	}
	return c.packed[data+from : data+c.end(i)]
}

// parts returns n strings of packed from first on: nil when the claim
// they come from is absent, empty when it is present and empty.
func (c *Claims) parts(first, n int, present bool) []string {
	if !present {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = c.part(first + i)
	}
	return out
}

// keptKind returns the kind of the j-th kept value (compact form).
func (c *Claims) keptKind(j int) keptKind {
	return keptKind(c.packed[4*c.numParts()+j])
}

// kept returns the formatted value and kind of the first kept claim named
// name; keptAbsent when keep does not name it or the token lacked it.
func (c *Claims) kept(name string) (string, keptKind) {
	for j, k := range c.keep {
		if k == name {
			kind := c.keptKind(j)
			if kind == keptAbsent || kind == keptUnusable {
				return "", kind
			}
			return c.part(c.firstKept() + j), kind
		}
	}
	return "", keptAbsent
}

// splitScope splits a scope claim on spaces (0x20) only (RFC 6749 section
// 3.3); the parts are substrings of scope.
func splitScope(scope string) []string {
	return strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' })
}

// Size estimates the heap bytes a compact Claims occupies. It errs high:
// the figure is what a cache counts against its byte bound. The kept
// claims' names and the pool are the configuration's, shared by every
// entry, and not counted.
func (c *Claims) Size() int {
	const header = int(unsafe.Sizeof(Claims{}))
	n := header + len(c.packed)
	// Allocations are rounded up to size classes: at most 1/8 more for
	// these sizes, plus a few bytes each for the two of them.
	return n + n/8 + 32
}
