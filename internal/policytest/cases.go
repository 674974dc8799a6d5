// Package policytest runs declarative test cases against a policy, as
// `extauthz test` does: each case is a request, a token (claims minted and
// signed with a key made for this run, or a literal token verified with the
// policy's own keys) and the outcome expected of the decision.
//
// The test key is trusted only by the Runner of this package, which holds
// it in memory, answers every key lookup of its own decisions with it, and
// never writes it anywhere. No code of the module but the test command
// imports this package (tests aside; a test keeps it so), and no policy
// field or serve flag refers to it: a token minted here never passes
// `serve`.
package policytest

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// maxCasesSize bounds a cases file: cases are hand-written.
const maxCasesSize = 4 << 20

// Case is one test case.
type Case struct {
	Name string
	// File and Line locate the case for messages; empty and 0 for a case
	// built in code.
	File string
	Line int
	// Request is the request the case decides.
	Request Request
	// Claims, when not nil, are minted into a token signed with the test
	// key, over defaults taken from the route the request matches. A nil
	// value removes a default claim.
	Claims map[string]any
	// Token, when not empty, is sent as it is and verified with the
	// policy's own keys. A case has Claims or Token or neither (no
	// credentials), never both.
	Token  string
	Expect Expect
}

// Request is the request of a case.
type Request struct {
	Method  string            // upper case; GET when not given
	Path    string            // request target, query included
	Host    string            // optional
	Headers map[string]string // names lower case
}

// Expect is what the decision must be. Only what is set is compared,
// Allow always.
type Expect struct {
	Allow  bool
	Reason string // a reason code, "" not compared
	Status int    // the HTTP status the client gets (200 on an allow), 0 not compared
	// Headers, on an allow, are headers of the request as the upstream
	// receives it (the request's own, less those the decision removes,
	// with those it sets: claim headers, forged ones stripped); on a
	// denial, headers of the response. An empty value means the header
	// must be absent. Names lower case.
	Headers map[string]string
}

// Problem is one thing wrong with a cases file, at its place: the policy
// loader's type, so both files' problems read alike (file:line:col: path:
// what).
type Problem = policy.Problem

// Problems is every problem of a cases file, in file order.
type Problems = policy.Problems

// Load reads and parses a cases file. A file that is not valid comes back
// as Problems, all of them.
func Load(path string) ([]Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read cases %q: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxCasesSize+1))
	if err != nil {
		return nil, fmt.Errorf("read cases %q: %w", path, err)
	}
	return Parse(data, path)
}

// Parse reads a cases file: one YAML document with a non-empty `cases`
// list. Unknown fields, duplicate keys, anchors and aliases, values of the
// wrong type, duplicate case names and unknown reason codes are problems.
func Parse(data []byte, file string) ([]Case, error) {
	p := &parser{file: file}
	if len(data) > maxCasesSize {
		p.add(nil, "", "cases file is larger than %d bytes", maxCasesSize)
		return nil, p.probs
	}
	root := p.document(data)
	if root == nil {
		return nil, p.probs
	}
	var cases []Case
	fields := p.mapping(root, "", "cases")
	list := fields["cases"]
	switch {
	case list == nil:
		p.add(root, "", "a cases file has a `cases` list")
	case list.Kind != yaml.SequenceNode || len(list.Content) == 0:
		p.add(list, "cases", "must be a non-empty list of cases")
	default:
		seen := map[string]int{}
		for i, n := range list.Content {
			c := p.testCase(n, fmt.Sprintf("cases[%d]", i))
			if c == nil {
				continue
			}
			if line, dup := seen[c.Name]; dup {
				p.add(n, fmt.Sprintf("cases[%d].name", i), "duplicate case name %q (first at line %d)", c.Name, line)
			}
			seen[c.Name] = c.Line
			cases = append(cases, *c)
		}
	}
	if len(p.probs) > 0 {
		slices.SortStableFunc(p.probs, func(a, b Problem) int {
			return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
		})
		return nil, p.probs
	}
	return cases, nil
}

// parser collects every problem of one file.
type parser struct {
	file  string
	probs Problems
}

func (p *parser) add(n *yaml.Node, path, format string, args ...any) {
	pr := Problem{File: p.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		pr.Line, pr.Column = n.Line, n.Column
	}
	p.probs = append(p.probs, pr)
}

// document parses data as exactly one YAML document without anchors or
// aliases and returns its root.
func (p *parser) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.add(nil, "", "cases file is empty")
			return nil
		}
		var le *yaml.LoadError
		if errors.As(err, &le) {
			p.probs = append(p.probs, Problem{File: p.file, Line: le.Mark.Line, Column: le.Mark.Column, Message: "invalid YAML: " + le.Message})
			return nil
		}
		p.add(nil, "", "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		p.add(&extra, "", "the file holds more than one YAML document")
		return nil
	}
	if len(doc.Content) == 0 {
		p.add(nil, "", "cases file is empty")
		return nil
	}
	root := doc.Content[0]
	if aliased(p, root) {
		return nil
	}
	return root
}

// aliased reports anchors and aliases: a case must read as written.
func aliased(p *parser, n *yaml.Node) bool {
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		p.add(n, "", "YAML anchors and aliases are not supported: write the value out")
		return true
	}
	bad := false
	for _, c := range n.Content {
		bad = aliased(p, c) || bad
	}
	return bad
}

// mapping reads n as a mapping with only the known keys and returns their
// values. An unknown or repeated key is a problem.
func (p *parser) mapping(n *yaml.Node, path string, known ...string) map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "must be a mapping with %s", strings.Join(known, ", "))
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		kp := join(path, k.Value)
		switch {
		case !slices.Contains(known, k.Value):
			p.add(k, kp, "unknown field %q (known: %s)", k.Value, strings.Join(known, ", "))
		case out[k.Value] != nil:
			p.add(k, kp, "field %q is given twice", k.Value)
		default:
			out[k.Value] = v
		}
	}
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// testCase reads one case; nil when it has problems.
func (p *parser) testCase(n *yaml.Node, path string) *Case {
	before := len(p.probs)
	f := p.mapping(n, path, "name", "request", "claims", "token", "expect")
	c := &Case{File: p.file, Line: n.Line}
	c.Name = p.requiredString(n, f["name"], join(path, "name"), "every case has a name")
	if f["request"] == nil {
		p.add(n, join(path, "request"), "every case has a request (method, path)")
	} else {
		c.Request = p.request(f["request"], join(path, "request"))
	}
	if f["claims"] != nil && f["token"] != nil {
		p.add(f["token"], join(path, "token"), "give claims (a token minted for the case) or token (a literal token), not both")
	}
	if v := f["claims"]; v != nil {
		if v.Kind != yaml.MappingNode {
			p.add(v, join(path, "claims"), "must be a mapping of claim names to values")
		} else if val, ok := p.value(v, join(path, "claims")); ok {
			c.Claims = val.(map[string]any)
		}
	}
	if v := f["token"]; v != nil {
		c.Token = p.requiredString(n, v, join(path, "token"), "")
	}
	if f["expect"] == nil {
		p.add(n, join(path, "expect"), "every case has an expect (allow: true or false)")
	} else {
		c.Expect = p.expect(f["expect"], join(path, "expect"))
	}
	if len(p.probs) > before {
		return nil
	}
	return c
}

func (p *parser) request(n *yaml.Node, path string) Request {
	f := p.mapping(n, path, "method", "path", "host", "headers")
	r := Request{Method: "GET"}
	if v := f["method"]; v != nil {
		r.Method = strings.ToUpper(p.requiredString(n, v, join(path, "method"), ""))
		if r.Method != "" && !isToken(r.Method) {
			p.add(v, join(path, "method"), "%q is not an HTTP method", v.Value)
		}
	}
	r.Path = p.requiredString(n, f["path"], join(path, "path"), "the request target, e.g. /pets/7")
	if r.Path != "" && !strings.HasPrefix(r.Path, "/") {
		p.add(f["path"], join(path, "path"), "must start with /")
	}
	if v := f["host"]; v != nil {
		r.Host = p.requiredString(n, v, join(path, "host"), "")
	}
	r.Headers = p.headers(f["headers"], join(path, "headers"))
	return r
}

func (p *parser) expect(n *yaml.Node, path string) Expect {
	f := p.mapping(n, path, "allow", "reason", "status", "headers")
	var e Expect
	if v := f["allow"]; v == nil {
		p.add(n, join(path, "allow"), "say whether the request is allowed: allow: true or allow: false")
	} else if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&e.Allow) != nil {
		p.add(v, join(path, "allow"), "must be true or false")
	}
	if v := f["reason"]; v != nil {
		e.Reason = p.requiredString(n, v, join(path, "reason"), "")
		if e.Reason != "" && !slices.Contains(reason.All(), reason.Code(e.Reason)) {
			p.add(v, join(path, "reason"), "unknown reason code %q", e.Reason)
		}
	}
	if v := f["status"]; v != nil {
		if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" || v.Decode(&e.Status) != nil || e.Status < 100 || e.Status > 599 {
			p.add(v, join(path, "status"), "must be an HTTP status code (an integer from 100 to 599)")
			e.Status = 0
		}
	}
	e.Headers = p.headers(f["headers"], join(path, "headers"))
	return e
}

// headers reads a mapping of header names to string values; names are
// case-insensitive and lower-cased.
func (p *parser) headers(n *yaml.Node, path string) map[string]string {
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(n, path, "must be a mapping of header names to values")
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		name := strings.ToLower(k.Value)
		kp := join(path, k.Value)
		if !isToken(name) {
			p.add(k, kp, "%q is not a valid header name", k.Value)
			continue
		}
		if _, dup := out[name]; dup {
			p.add(k, kp, "header %q is given twice (names are case-insensitive)", name)
			continue
		}
		if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
			p.add(v, kp, "must be a string")
			continue
		}
		out[name] = v.Value
	}
	return out
}

// requiredString reads a string scalar; a nil n is reported as missing
// with the hint (when there is one).
func (p *parser) requiredString(parent, n *yaml.Node, path, hint string) string {
	if n == nil {
		if hint != "" {
			p.add(parent, path, "missing: %s", hint)
		}
		return ""
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || n.Value == "" {
		p.add(n, path, "must be a non-empty string")
		return ""
	}
	return n.Value
}

// value converts a YAML value into what a JSON encoder writes back as the
// same JSON: strings, int64, float64, bool, nil, []any, map[string]any.
// Timestamps stay strings (claims such as exp are numbers).
func (p *parser) value(n *yaml.Node, path string) (any, bool) {
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]any{}
		ok := true
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.Value == "" {
				p.add(k, path, "a claim name is a non-empty string")
				ok = false
				continue
			}
			if _, dup := m[k.Value]; dup {
				p.add(k, join(path, k.Value), "claim %q is given twice", k.Value)
				ok = false
				continue
			}
			val, vok := p.value(v, join(path, k.Value))
			m[k.Value], ok = val, ok && vok
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		ok := true
		for i, e := range n.Content {
			val, vok := p.value(e, fmt.Sprintf("%s[%d]", path, i))
			l, ok = append(l, val), ok && vok
		}
		return l, ok
	case yaml.ScalarNode:
		return p.scalar(n, path)
	}
	p.add(n, path, "unsupported YAML value")
	return nil, false
}

func (p *parser) scalar(n *yaml.Node, path string) (any, bool) {
	switch n.ShortTag() {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if n.Decode(&b) == nil {
			return b, true
		}
	case "!!int":
		if i, err := strconv.ParseInt(strings.ReplaceAll(n.Value, "_", ""), 0, 64); err == nil {
			return i, true
		}
	case "!!float":
		var f float64
		if n.Decode(&f) == nil && f == f && f < 1e308 && f > -1e308 {
			return f, true
		}
	default:
		return n.Value, true
	}
	p.add(n, path, "value %q cannot be written as JSON", n.Value)
	return nil, false
}

// isToken reports whether s is an RFC 9110 token (header names, methods).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
