package token

import (
	"strings"
	"unsafe"
)

// Compact returns the form of c that a verified-token cache keeps: the
// fixed claims (token_use, sub, username, client, issuer, pool, scope,
// cognito:groups when keepGroups) and, of the others, only those named in
// keep, stored as Format renders them. Every string lives in one
// allocation. A decision that reads only kept claims gets the same answer
// from c and from its compact form; any other claim reads as absent, so a
// caller that forgets to keep one fails closed (a missing header, an
// unmet claim requirement), never open. Compacting a compact Claims
// returns it unchanged.
func (c *Claims) Compact(keep []string, keepGroups bool) *Claims {
	if c.all == nil {
		return c
	}
	kept := make([]keptClaim, 0, len(keep))
	// token_use is one of two constants; the issuer and pool id are the
	// configuration's strings (Verify sets them so): these are referenced,
	// not copied.
	use := c.tokenUse
	switch use {
	case "id":
		use = "id"
	case "access":
		use = "access"
	}
	size := len(c.subject) + len(c.username) + len(c.clientID)
	scope, _ := c.all["scope"].(string)
	size += len(scope)
	for _, name := range keep {
		if v, ok := c.Format(name); ok {
			kept = append(kept, keptClaim{name: name, value: v})
			size += len(v) // an upper bound: values equal to a fixed claim share it
		}
	}
	groups := c.groups
	if !keepGroups {
		groups = nil
	}
	for _, g := range groups {
		size += len(g)
	}

	var b strings.Builder
	b.Grow(size)
	type span struct{ from, to int }
	put := func(s string) span {
		from := b.Len()
		b.WriteString(s)
		return span{from, b.Len()}
	}
	sub, user, client, sc := put(c.subject), put(c.username), put(c.clientID), put(scope)
	fixed := [...]struct {
		s  string
		sp span
	}{{c.subject, sub}, {c.username, user}, {c.clientID, client}}
	values := make([]span, len(kept))
	for i := range kept {
		values[i] = span{-1, -1}
		for _, f := range fixed {
			if kept[i].value == f.s {
				values[i] = f.sp // sub passed as a header is stored once
				break
			}
		}
		if values[i].from < 0 {
			values[i] = put(kept[i].value)
		}
	}
	groupSpans := make([]span, len(groups))
	for i, g := range groups {
		groupSpans[i] = put(g)
	}
	buf := b.String()
	at := func(s span) string { return buf[s.from:s.to] }

	out := &Claims{
		tokenUse: use,
		subject:  at(sub),
		username: at(user),
		clientID: at(client),
		issuer:   c.issuer,
		pool:     c.pool,
		expiry:   c.expiry,
		kept:     kept,
	}
	for i := range kept {
		kept[i].value = at(values[i])
	}
	if len(groups) > 0 {
		out.groups = make([]string, len(groups))
		for i := range groups {
			out.groups[i] = at(groupSpans[i])
		}
	}
	out.scopes = splitScope(at(sc))
	return out
}

// splitScope splits a scope claim on spaces (0x20) only (RFC 6749 section
// 3.3); the parts are substrings of scope.
func splitScope(scope string) []string {
	return strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' })
}

func (c *Claims) keptValue(name string) (string, bool) {
	for _, k := range c.kept {
		if k.name == name {
			return k.value, true
		}
	}
	return "", false
}

// Size estimates the heap bytes a compact Claims occupies. It errs high:
// the figure is what a cache counts against its byte bound.
func (c *Claims) Size() int {
	const header = int(unsafe.Sizeof(Claims{}))
	n := header + len(c.subject) + len(c.username) + len(c.clientID)
	n += cap(c.kept) * int(unsafe.Sizeof(keptClaim{}))
	for _, k := range c.kept {
		n += len(k.value)
	}
	n += cap(c.scopes) * int(unsafe.Sizeof(""))
	for _, s := range c.scopes {
		n += len(s) + 1
	}
	n += cap(c.groups) * int(unsafe.Sizeof(""))
	for _, g := range c.groups {
		n += len(g)
	}
	// Allocations are rounded up to size classes: at most 1/8 more for
	// these sizes, plus a few bytes each for the three or four of them.
	return n + n/8 + 32
}
