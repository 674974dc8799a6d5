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
	scope, _ := c.all["scope"].(string)
	kept := make([]keptClaim, 0, len(keep))
	for _, name := range keep {
		raw := c.all[name]
		if raw == nil {
			continue
		}
		kind := keptScalar
		switch raw.(type) {
		case []any, map[string]any:
			kind = keptComposite
		}
		v, ok := c.Format(name)
		if !ok {
			kind, v = keptUnusable, ""
		}
		kept = append(kept, keptClaim{name: name, value: v, kind: kind})
	}
	var groups []string
	if keepGroups {
		groups = c.groups
	}

	var p packer
	p.grow(len(c.subject)+len(c.username)+len(c.clientID)+len(scope), kept, groups)
	sub, user, client, sc := p.add(c.subject), p.add(c.username), p.add(c.clientID), p.add(scope)
	values := make([]int, len(kept))
	for i, k := range kept {
		switch k.value {
		case c.subject: // sub passed as a header is stored once
			values[i] = sub
		case c.username:
			values[i] = user
		case c.clientID:
			values[i] = client
		default:
			values[i] = p.add(k.value)
		}
	}
	first := len(p.spans)
	for _, g := range groups {
		p.add(g)
	}
	p.done()

	out := &Claims{
		use:      c.use,
		subject:  p.get(sub),
		username: p.get(user),
		clientID: p.get(client),
		// The issuer and pool id are the configuration's: referenced.
		pool:   c.pool,
		issuer: c.issuer,
		expiry: c.expiry,
		kept:   kept,
		scopes: splitScope(p.get(sc)),
	}
	for i := range kept {
		kept[i].value = p.get(values[i])
	}
	if len(groups) > 0 {
		out.groups = make([]string, len(groups))
		for i := range groups {
			out.groups[i] = p.get(first + i)
		}
	}
	return out
}

// packer lays strings end to end in one allocation and hands out
// substrings of it.
type packer struct {
	b     strings.Builder
	spans [][2]int
	buf   string
}

func (p *packer) grow(n int, kept []keptClaim, groups []string) {
	for _, k := range kept {
		n += len(k.value) // an upper bound: values equal to a fixed claim share it
	}
	for _, g := range groups {
		n += len(g)
	}
	p.b.Grow(n)
	p.spans = make([][2]int, 0, 4+len(kept)+len(groups))
}

func (p *packer) add(s string) int {
	from := p.b.Len()
	p.b.WriteString(s)
	p.spans = append(p.spans, [2]int{from, p.b.Len()})
	return len(p.spans) - 1
}

func (p *packer) done() { p.buf = p.b.String() }

func (p *packer) get(i int) string { return p.buf[p.spans[i][0]:p.spans[i][1]] }

// splitScope splits a scope claim on spaces (0x20) only (RFC 6749 section
// 3.3); the parts are substrings of scope.
func splitScope(scope string) []string {
	return strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' })
}

func (c *Claims) keptValue(name string) (string, bool) {
	for _, k := range c.kept {
		if k.name == name {
			return k.value, k.kind != keptUnusable
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
