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
	size := len(c.tokenUse) + len(c.subject) + len(c.username) + len(c.clientID) +
		len(c.issuer) + len(c.pool)
	scope, _ := c.all["scope"].(string)
	size += len(scope)
	for _, name := range keep {
		if v, ok := c.Format(name); ok {
			kept = append(kept, keptClaim{name: name, value: v})
			size += len(v)
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
	use, sub, user, client, iss, pool, sc := put(c.tokenUse), put(c.subject), put(c.username),
		put(c.clientID), put(c.issuer), put(c.pool), put(scope)
	values := make([]span, len(kept))
	for i := range kept {
		values[i] = put(kept[i].value)
	}
	groupSpans := make([]span, len(groups))
	for i, g := range groups {
		groupSpans[i] = put(g)
	}
	buf := b.String()
	at := func(s span) string { return buf[s.from:s.to] }

	out := &Claims{
		tokenUse: at(use),
		subject:  at(sub),
		username: at(user),
		clientID: at(client),
		issuer:   at(iss),
		pool:     at(pool),
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

func (c *Claims) keptValue(name string) (any, bool) {
	for _, k := range c.kept {
		if k.name == name {
			return k.value, true
		}
	}
	return nil, false
}

// memoAllowance is what Size counts for the memo a caller may attach
// (see Memo), per byte of the claims it may copy and per value: the edge's
// encoded metadata copies six claims and the scopes, each with a few bytes
// of framing and a field name.
const (
	memoPerValue = 24
	memoFixed    = 64
)

// Size estimates the heap bytes a compact Claims occupies, including one
// memo built from its fixed claims. It errs high: the figure is what a
// cache counts against its byte bound.
func (c *Claims) Size() int {
	const header = int(unsafe.Sizeof(Claims{}))
	strs := len(c.tokenUse) + len(c.subject) + len(c.username) + len(c.clientID) + len(c.issuer) + len(c.pool)
	n := header + strs
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
	// The memo: a slice header, and a copy of the fixed claims and scopes.
	n += int(unsafe.Sizeof([]byte(nil))) + memoFixed + strs + memoPerValue*(6+len(c.scopes))
	for _, s := range c.scopes {
		n += len(s)
	}
	return n
}

// Memo returns build(c), calling build at most once per Claims in the
// common case (two goroutines that race on the first call may both build;
// one result is kept). It lets the edge derive its response form of a
// verified token once and reuse it for every request the cache answers.
// build must be a pure function of c; the result must not be modified.
func (c *Claims) Memo(build func(*Claims) []byte) []byte {
	if p := c.memo.Load(); p != nil {
		return *p
	}
	b := build(c)
	if c.memo.CompareAndSwap(nil, &b) {
		return b
	}
	return *c.memo.Load()
}
