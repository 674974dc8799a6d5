package apigw

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"
)

// node is one value of the export with its JSON path, e.g.
// $.paths["/pets"].get. The export is read as YAML (a JSON file is YAML
// too), keeping the order of its keys, so the policy lists routes in the
// order the export does.
type node struct {
	*yaml.Node
	path string
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// key is the JSON path of member name of n.
func (n node) key(name string) string {
	if identRE.MatchString(name) {
		return n.path + "." + name
	}
	return n.path + "[" + strconv.Quote(name) + "]"
}

// get returns the member of a mapping; ok is false when n is not a mapping
// or has no such member.
func (n node) get(name string) (node, bool) {
	if n.Node == nil || n.Kind != yaml.MappingNode {
		return node{}, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == name {
			return node{n.Content[i+1], n.key(name)}, true
		}
	}
	return node{}, false
}

// member is one key and value of a mapping.
type member struct {
	name string
	val  node
}

// members returns the members of a mapping in file order, nil for anything
// else.
func (n node) members() []member {
	if n.Node == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	out := make([]member, 0, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		name := n.Content[i].Value
		out = append(out, member{name, node{n.Content[i+1], n.key(name)}})
	}
	return out
}

// items returns the elements of a sequence, nil for anything else.
func (n node) items() []node {
	if n.Node == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]node, len(n.Content))
	for i, c := range n.Content {
		out[i] = node{c, n.path + "[" + strconv.Itoa(i) + "]"}
	}
	return out
}

// isMap reports whether n is a mapping.
func (n node) isMap() bool { return n.Node != nil && n.Kind == yaml.MappingNode }

// isList reports whether n is a sequence.
func (n node) isList() bool { return n.Node != nil && n.Kind == yaml.SequenceNode }

// str returns a scalar's text; ok is false for anything but a non-null
// scalar.
func (n node) str() (string, bool) {
	if n.Node == nil || n.Kind != yaml.ScalarNode || n.ShortTag() == "!!null" {
		return "", false
	}
	return n.Value, true
}

// getStr returns a string member, "" when absent or not a scalar.
func (n node) getStr(name string) string {
	v, ok := n.get(name)
	if !ok {
		return ""
	}
	s, _ := v.str()
	return s
}

// strs returns a list of scalars; ok is false when n is not a list of
// scalars.
func (n node) strs() ([]string, bool) {
	if !n.isList() {
		return nil, false
	}
	var out []string
	for _, it := range n.items() {
		s, ok := it.str()
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

// isExtension reports whether a key is an API Gateway extension.
func isExtension(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), "x-amazon-apigateway-")
}
