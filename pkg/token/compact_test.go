package token_test

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

// The compact form answers every question a decision asks exactly as the
// full form does, for the claims it keeps, and reads every other claim as
// absent (fail closed).
func TestCompactAnswersLikeFull(t *testing.T) {
	full := verifyJSON(t, access(map[string]string{
		"custom:tenant": `"acme"`,
		"custom:big":    `"` + strings.Repeat("x", 250) + `"`,
		"i":             `42`,
		"obj":           `{"z":1,"a":[true,null]}`,
		"s_crlf":        `"a\r\nb"`,
		"null":          `null`,
	}))
	keep := []string{"cognito:groups", "custom:tenant", "i", "missing", "null", "obj", "s_crlf", "sub"}
	tests := []struct {
		name       string
		keepGroups bool
	}{{"groups kept", true}, {"groups dropped", false}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full.Compact(keep, tt.keepGroups)
			for _, name := range keep {
				fv, fok := full.Format(name)
				cv, cok := c.Format(name)
				if fv != cv || fok != cok {
					t.Errorf("Format(%q): compact %q, %v; full %q, %v", name, cv, cok, fv, fok)
				}
			}
			for _, f := range []*token.Claims{full, c} {
				if v, ok := f.Scalar("custom:tenant"); v != "acme" || !ok {
					t.Errorf("Scalar(custom:tenant) = %q, %v; want acme, true", v, ok)
				}
				if _, ok := f.Scalar("obj"); ok {
					t.Error("Scalar(obj) is ok: an object is no scalar")
				}
				if f.Present("null") || !f.Present("sub") { // a null claim reads as absent
					t.Errorf("Present(null) = %v, Present(sub) = %v", f.Present("null"), f.Present("sub"))
				}
			}
			for _, name := range keep {
				fv, fok := full.Scalar(name)
				cv, cok := c.Scalar(name)
				if fok != cok || (fok && fv != cv) {
					t.Errorf("Scalar(%q): compact %q, %v; full %q, %v", name, cv, cok, fv, fok)
				}
				if fp, cp := full.Present(name), c.Present(name); fp != cp {
					t.Errorf("Present(%q): compact %v, full %v", name, cp, fp)
				}
			}
			for _, name := range []string{"custom:big", "email", "jti", "exp", "version"} {
				if c.Present(name) {
					t.Errorf("Present(%q) on the compact form; a claim not kept must read as absent", name)
				}
				if _, ok := c.Scalar(name); ok {
					t.Errorf("Scalar(%q) present on the compact form", name)
				}
				if v, ok := c.Format(name); ok {
					t.Errorf("Format(%q) = %q on the compact form; a claim not kept must read as absent", name, v)
				}
				if _, ok := c.Value(name); ok {
					t.Errorf("Value(%q) present on the compact form", name)
				}
			}
			same := []struct{ name, full, compact string }{
				{"TokenUse", full.TokenUse(), c.TokenUse()},
				{"Subject", full.Subject(), c.Subject()},
				{"Username", full.Username(), c.Username()},
				{"ClientID", full.ClientID(), c.ClientID()},
				{"Issuer", full.Issuer(), c.Issuer()},
				{"Pool", full.Pool(), c.Pool()},
				{"Scopes", strings.Join(full.Scopes(), " "), strings.Join(c.Scopes(), " ")},
			}
			for _, s := range same {
				if s.full != s.compact {
					t.Errorf("%s: compact %q, full %q", s.name, s.compact, s.full)
				}
			}
			if !c.Expiry().Equal(full.Expiry()) {
				t.Errorf("Expiry: compact %v, full %v", c.Expiry(), full.Expiry())
			}
			if !c.HasAnyScope([]string{"pets/write"}) || c.HasAnyScope([]string{"pets/delete"}) {
				t.Error("HasAnyScope differs from the token's scopes")
			}
			if got := c.InAnyGroup([]string{"admins"}); got != tt.keepGroups {
				t.Errorf("InAnyGroup(admins) = %v with keepGroups %v", got, tt.keepGroups)
			}
			if tt.keepGroups && !slices.Equal(c.Groups(), full.Groups()) {
				t.Errorf("Groups: compact %q, full %q", c.Groups(), full.Groups())
			}
			if got := c.Compact(nil, false); got != c {
				t.Error("compacting a compact Claims made a new one")
			}
			m := c.Map()
			if len(m) != 5 || m["custom:tenant"] != "acme" { // groups, tenant, i, obj, sub
				t.Errorf("Map of the compact form = %v", m)
			}
		})
	}
}

// Compact sizes its one allocation from the lengths of the fixed claims,
// the kept values and the groups; no one of them may be long enough, or
// numerous enough, to upset that sum.
func TestCompactLopsidedClaims(t *testing.T) {
	tests := []struct {
		name     string
		override map[string]string
	}{
		{"client id longer than sub, username and scope together", map[string]string{
			"client_id": `"` + strings.Repeat("c", 200) + `"`, "username": `"a"`, "scope": "", "cognito:groups": "",
		}},
		{"scope longer than sub, username and client id together", map[string]string{
			"scope": `"` + manyNames("s", 60, " ") + `"`, "cognito:groups": "",
		}},
		{"more groups than four plus the kept claims", map[string]string{
			"cognito:groups": `["` + manyNames("g", 12, `","`) + `"]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := verifyJSON(t, access(tt.override))
			c := full.Compact(nil, true)
			same := []struct{ name, full, compact string }{
				{"Subject", full.Subject(), c.Subject()},
				{"Username", full.Username(), c.Username()},
				{"ClientID", full.ClientID(), c.ClientID()},
				{"Scopes", strings.Join(full.Scopes(), " "), strings.Join(c.Scopes(), " ")},
				{"Groups", strings.Join(full.Groups(), ","), strings.Join(c.Groups(), ",")},
			}
			for _, s := range same {
				if s.full != s.compact {
					t.Errorf("%s: compact %q, full %q", s.name, s.compact, s.full)
				}
			}
		})
	}
}

// manyNames returns n names prefix00, prefix01, ... joined by sep.
func manyNames(prefix string, n int, sep string) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%02d", prefix, i)
	}
	return strings.Join(names, sep)
}

// Size is what the byte bound of the cache counts, so it must not be
// below what a compact Claims really takes on the heap, whichever part of
// it is large.
func TestCompactSizeCoversHeap(t *testing.T) {
	long := func(c byte) string { return `"` + strings.Repeat(string(c), 300) + `"` }
	tests := []struct {
		name    string
		payload string
	}{
		{"id token, a kept custom claim", idTok(map[string]string{
			"custom:tenant": `"acme"`,
			"custom:bio":    `"` + strings.Repeat("b", 250) + `"`,
		})},
		{"long username", access(map[string]string{"username": long('u')})},
		{"long client id", access(map[string]string{"client_id": long('c')})},
		{"many scopes", access(map[string]string{"scope": `"` + manyNames("s", 40, " ") + `"`})},
		{"many groups", access(map[string]string{"cognito:groups": `["` + manyNames("g", 40, `","`) + `"]`})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full := verifyJSON(t, tt.payload)
			keep := []string{"custom:tenant", "email"}
			const n = 20_000
			out := make([]*token.Claims, n)
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range out {
				out[i] = full.Compact(keep, true)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			perEntry := int(after.HeapAlloc-before.HeapAlloc) / n
			size := out[0].Size()
			runtime.KeepAlive(out)
			if perEntry > size {
				t.Fatalf("a compact Claims takes %d heap bytes, Size says %d: the cache bound would be exceeded", perEntry, size)
			}
			if size > perEntry+perEntry/4+64 {
				t.Fatalf("Size %d is far above the %d heap bytes a compact Claims takes: the cache would hold needlessly few", size, perEntry)
			}
			t.Logf("compact Claims: %d heap bytes, Size %d", perEntry, size)
		})
	}
}
