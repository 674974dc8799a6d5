package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v4"
)

// yamlLineErrRE reads the place out of a YAML error that is not a
// *yaml.LoadError.
var yamlLineErrRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)

// decode parses data as one YAML document and fills the document model
// strictly: unknown fields, duplicate keys, keys that are not strings,
// anchors and aliases, and values of the wrong shape (a list where a
// mapping is needed, ...) are problems. It applies no policy rule; that is
// validate's job. It returns nil when there is no document to validate.
func decode(r *reporter, data []byte) *document {
	root := parseYAML(r, data)
	if root == nil {
		return nil
	}
	noAliases(r, root)
	doc := &document{}
	decodeInto(r, doc, nil, root, place{})
	return doc
}

// parseYAML parses the YAML text and returns the root node.
//
// It uses go.yaml.in/yaml/v4: yaml/v3 placed a syntax error at the line
// where the enclosing block or flow collection starts (its parser's
// "context mark", and that one 0-based), so an indentation slip on line 4
// of a route was reported at line 2. v4's LoadError carries the line and
// column where the problem was found, and the context separately.
func parseYAML(r *reporter, data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			r.problemf(nil, "", "policy is empty")
		} else {
			r.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		r.syntax(err)
		return nil
	default:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		r.problemf(at, "", "the file holds more than one YAML document; a policy is one document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		r.problemf(nil, "", "policy is empty")
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		r.problemf(root, "", "policy is empty")
		return nil
	}
	return root
}

// syntax reports a YAML syntax error at the place the parser found it.
func (r *reporter) syntax(err error) {
	var le *yaml.LoadError
	if errors.As(err, &le) && le.Mark.Line > 0 {
		msg := "invalid YAML: " + le.Message
		if c := le.ContextMark.Line; le.ContextMsg != "" && c > 0 && c != le.Mark.Line {
			msg += fmt.Sprintf(" (%s that starts at line %d)", le.ContextMsg, c)
		}
		r.add(Problem{File: r.file, Line: le.Mark.Line, Column: le.Mark.Column, Message: msg})
		return
	}
	msg := err.Error()
	if m := yamlLineErrRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		r.add(Problem{File: r.file, Line: line, Message: "invalid YAML: " + m[2]})
		return
	}
	r.problemf(nil, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// noAliases refuses anchors and aliases: an aliased value would report its
// problems at the anchor, far from the place that uses it, and merge keys
// would hide fields from review.
func noAliases(r *reporter, n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		r.problemf(n, "", "YAML aliases (*%s) are not supported: write the value out", n.Value)
		return
	}
	if n.Anchor != "" {
		r.problemf(n, "", "YAML anchors (&%s) are not supported: write the value out", n.Anchor)
	}
	for _, c := range n.Content {
		noAliases(r, c)
	}
}

// collection is implemented by docList and docMap, which decode themselves.
type collection interface {
	decodeFrom(r *reporter, key, n *yaml.Node, at place)
}

// decodeInto decodes n into ptr: a *docValue, a *docList, a *docMap, or a
// pointer to a struct that embeds docValue and tags its fields with `policy:"name"`.
func decodeInto(r *reporter, ptr any, key, n *yaml.Node, at place) {
	switch p := ptr.(type) {
	case *docValue:
		p.Node, p.Key = n, key
		p.setPlace(at)
	case collection:
		p.decodeFrom(r, key, n, at)
	default:
		decodeStruct(r, reflect.ValueOf(ptr).Elem(), key, n, at)
	}
}

func (l *docList[T]) decodeFrom(r *reporter, key, n *yaml.Node, at place) {
	l.Node, l.Key = n, key
	l.setPlace(at)
	switch n.Kind {
	case yaml.AliasNode:
		l.bad = true
		return
	case yaml.SequenceNode:
	default:
		r.problemf(n, l.Path(), "must be a list, not %s", describe(n))
		l.bad = true
		return
	}
	l.Items = make([]T, len(n.Content))
	for i, it := range n.Content {
		decodeInto(r, &l.Items[i], nil, it, itemOf(&l.docValue, i))
	}
}

func (m *docMap[T]) decodeFrom(r *reporter, key, n *yaml.Node, at place) {
	m.Node, m.Key = n, key
	m.setPlace(at)
	ps, ok := r.mapping(n, &m.docValue)
	if ps == nil && !ok {
		m.bad = true
		return
	}
	m.keysBad = !ok
	m.Entries = make([]docEntry[T], len(ps))
	for i, p := range ps {
		m.Entries[i] = docEntry[T]{Name: p.name, Key: p.key}
		decodeInto(r, &m.Entries[i].Val, p.key, p.val, fieldOf(&m.docValue, p.name))
	}
}

// structField is one tagged field of a document struct.
type structField struct {
	name  string
	index int
}

var fieldCache sync.Map // reflect.Type -> []structField

// fieldsOf returns the tagged fields of a document struct in declaration
// order, which is also the order "known fields" lists them in.
func fieldsOf(t reflect.Type) []structField {
	if fs, ok := fieldCache.Load(t); ok {
		return fs.([]structField)
	}
	var fs []structField
	for i := range t.NumField() {
		if name, ok := t.Field(i).Tag.Lookup("policy"); ok {
			fs = append(fs, structField{name: name, index: i})
		}
	}
	fieldCache.Store(t, fs)
	return fs
}

// valueOf returns the docValue of an addressable document value: itself,
// or the one a docList, a docMap or a struct embeds (through the promoted
// self method, as reflection may not hand out an unexported field).
func valueOf(rv reflect.Value) *docValue {
	return rv.Addr().Interface().(interface{ self() *docValue }).self()
}

// decodeStruct fills a document struct from a mapping. Every field's place
// is set, present or not.
func decodeStruct(r *reporter, rv reflect.Value, key, n *yaml.Node, at place) {
	self := valueOf(rv)
	self.Node, self.Key = n, key
	self.setPlace(at)
	fields := fieldsOf(rv.Type())
	for _, f := range fields {
		valueOf(rv.Field(f.index)).setPlace(fieldOf(self, f.name))
	}
	ps, ok := r.mapping(n, self)
	if ps == nil && !ok {
		self.bad = true
		return
	}
	self.keysBad = !ok
	for _, p := range ps {
		i := fieldIndex(fields, p.name)
		if i < 0 {
			r.unknownField(p, self.Path(), fields)
			self.keysBad = true
			continue
		}
		decodeInto(r, rv.Field(i).Addr().Interface(), p.key, p.val, fieldOf(self, p.name))
	}
}

func fieldIndex(fs []structField, name string) int {
	for _, f := range fs {
		if f.name == name {
			return f.index
		}
	}
	return -1
}

type pair struct {
	name     string
	key, val *yaml.Node
}

// mapping returns the entries of a mapping in file order. Keys must be
// plain scalars and unique. It returns nil and false when n is not a
// mapping. at is the mapping's value, whose place problems name.
func (r *reporter) mapping(n *yaml.Node, at *docValue) ([]pair, bool) {
	if n.Kind == yaml.AliasNode {
		return nil, false // reported by noAliases
	}
	if n.Kind != yaml.MappingNode {
		r.problemf(n, at.Path(), "must be a mapping, not %s", describe(n))
		return nil, false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	out := make([]pair, 0, len(n.Content)/2)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			if k.Kind != yaml.AliasNode {
				r.problemf(k, at.Path(), "a key must be a plain string, not %s", describe(k))
			}
			ok = false
			continue
		}
		if first, dup := seen[k.Value]; dup {
			r.problemf(k, keyPath(at.Path(), k.Value), "duplicate key %q (first at line %d)", k.Value, first.Line)
			ok = false
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{name: k.Value, key: k, val: v})
	}
	return out, ok
}

func (r *reporter) unknownField(p pair, path string, fields []structField) {
	known := make([]string, len(fields))
	for i, f := range fields {
		known[i] = f.name
	}
	if k := suggest(p.name, known); k != "" {
		r.problemf(p.key, keyPath(path, p.name), "unknown field %q: did you mean %q?", p.name, k)
		return
	}
	r.problemf(p.key, keyPath(path, p.name), "unknown field %q (known fields: %s)", p.name, strings.Join(known, ", "))
}

// describe names the kind of a node for "must be X, not Y" problems.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "empty"
		case "!!str":
			return "a string"
		case "!!int":
			return "an integer"
		case "!!float":
			return "a number"
		case "!!bool":
			return "a boolean"
		}
		return "a " + n.ShortTag() + " value"
	}
	return "an alias"
}

// keyPath appends a mapping key to a path: .key when plain, ["key"]
// otherwise.
func keyPath(path, key string) string {
	if key != "" && strings.Trim(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == "" {
		if path == "" {
			return key
		}
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
