package policy

import (
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v4"

	"github.com/cognito-extauthz/cognito-extauthz/internal/httpsyntax"
)

// The readers below turn one document value into a Go value, reporting a
// problem at the value when it cannot be. Each returns false without a
// report for an alias (decode reported it) and for a value decode already
// found to have the wrong shape.

// str returns a scalar's text. Numbers, booleans and dates are taken as
// written; null, lists and mappings are problems.
func (r *reporter) str(v docValue) (string, bool) {
	n := v.Node
	switch {
	case !v.usable():
		return "", false
	case n.Kind != yaml.ScalarNode:
		r.problemf(n, v.Path(), "must be a string, not %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return n.Value, true
	case "!!null":
		r.problemf(n, v.Path(), "must not be empty")
		return "", false
	}
	r.problemf(n, v.Path(), "unsupported YAML tag %s", n.ShortTag())
	return "", false
}

// word is a non-empty string without whitespace or control characters.
func (r *reporter) word(v docValue) (string, bool) {
	s, ok := r.str(v)
	if !ok {
		return "", false
	}
	switch {
	case s == "":
		r.problemf(v.Node, v.Path(), "must not be empty")
		return "", false
	case !isWord(s):
		r.problemf(v.Node, v.Path(), "%q must not contain whitespace or control characters", s)
		return "", false
	}
	return s, true
}

// isWord reports whether a non-empty s has no whitespace and no control
// character: a scope, a group, an app client id.
func isWord(s string) bool {
	return !httpsyntax.HasControl(s) && !strings.ContainsFunc(s, isSpace)
}

// keyword reads one of a fixed set of words. Keywords are case-insensitive
// (NONE, none and None are one value); the canonical spelling is returned.
func (r *reporter) keyword(v docValue, want ...string) (string, bool) {
	s, ok := r.str(v)
	if !ok {
		return "", false
	}
	for _, w := range want {
		if strings.EqualFold(s, w) {
			return w, true
		}
	}
	r.problemf(v.Node, v.Path(), "%q is not %s", s, orList(want))
	return "", false
}

// orList renders a, b or c.
func orList(ws []string) string {
	if len(ws) < 2 {
		return strings.Join(ws, "")
	}
	return strings.Join(ws[:len(ws)-1], ", ") + " or " + ws[len(ws)-1]
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0, 0x2028, 0x2029, 0x3000:
		return true
	}
	return false
}

func (r *reporter) boolean(v docValue) (bool, bool) {
	if !v.usable() {
		return false, false
	}
	n := v.Node
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		r.problemf(n, v.Path(), "must be true or false, not %s", describe(n))
		return false, false
	}
	return b, true
}

// items returns a list's items; an empty list is a problem unless
// allowEmpty.
func items[T any](r *reporter, l docList[T], allowEmpty bool) ([]T, bool) {
	switch {
	case !l.usable():
		return nil, false
	case len(l.Items) == 0 && !allowEmpty:
		r.problemf(l.Node, l.Path(), "must not be an empty list (omit the field instead)")
		return nil, false
	}
	return l.Items, true
}

// words reads a list of words, dropping repeats.
func (r *reporter) words(l docList[docValue], allowEmpty bool) ([]string, bool) {
	items, ok := items(r, l, allowEmpty)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for _, it := range items {
		w, wok := r.word(it)
		if !wok {
			ok = false
			continue
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	return out, ok
}

// duration reads a Go duration (300s, 5m) or whole seconds (300), from 0
// to limit.
func (r *reporter) duration(v docValue, limit time.Duration) (time.Duration, bool) {
	if !v.usable() {
		return 0, false
	}
	n := v.Node
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		r.problemf(n, v.Path(), "must be a duration such as 300s or 5m, or whole seconds, not %s", describe(n))
		return 0, false
	}
	s := n.Value
	var d time.Duration
	if secs, err := strconv.ParseUint(s, 10, 63); err == nil {
		if secs > uint64(limit/time.Second) {
			r.problemf(n, v.Path(), "%s is more than the maximum of %s", s+"s", limit)
			return 0, false
		}
		d = time.Duration(secs) * time.Second
	} else {
		var perr error
		if d, perr = time.ParseDuration(s); perr != nil {
			r.problemf(n, v.Path(), "%q is not a duration such as 300s or 5m, nor whole seconds", s)
			return 0, false
		}
	}
	switch {
	case d < 0:
		r.problemf(n, v.Path(), "must not be negative")
		return 0, false
	case d > limit:
		r.problemf(n, v.Path(), "%s is more than the maximum of %s", d, limit)
		return 0, false
	}
	return d, true
}

// claimValue returns a required claim value in the form claims are
// formatted for comparison: strings as they are, integers in decimal,
// booleans true/false.
func (r *reporter) claimValue(v docValue) (string, bool) {
	if !v.usable() {
		return "", false
	}
	n := v.Node
	if n.Kind != yaml.ScalarNode {
		r.problemf(n, v.Path(), "a required claim value must be a string, an integer or a boolean, not %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str":
		return n.Value, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			r.problemf(n, v.Path(), "integer %s is out of range; quote it to compare as a string", n.Value)
			return "", false
		}
		return strconv.FormatInt(i, 10), true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			r.problemf(n, v.Path(), "%s is not a boolean", n.Value)
			return "", false
		}
		return strconv.FormatBool(b), true
	case "!!null":
		r.problemf(n, v.Path(), "a required claim value must not be empty")
		return "", false
	}
	r.problemf(n, v.Path(), "a required claim value must be a string, an integer or a boolean, not %s; quote it to compare as a string", describe(n))
	return "", false
}

// missing reports a required field that is absent, at its parent.
func (r *reporter) missing(parent, field docValue, format string, args ...any) {
	r.problemf(parent.Node, field.Path(), "required field is missing: "+format, args...)
}
