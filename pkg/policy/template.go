package policy

import (
	"errors"
	"fmt"
	"strings"
)

// segKind is the kind of one template segment, in order of precedence.
type segKind uint8

const (
	segLiteral segKind = iota // pets
	segParam                  // {petId}
	segGreedy                 // {proxy+}, last segment only
)

// segment is one compiled template segment: the literal text, or the
// parameter's name.
type segment struct {
	kind segKind
	text string
}

// parseTemplate compiles an API Gateway resource path such as
// /pets/{petId} or /files/{path+}.
func parseTemplate(t string) ([]segment, error) {
	if t == "" {
		return nil, errors.New("path template is empty")
	}
	if t[0] != '/' {
		return nil, errors.New("path template must start with '/'")
	}
	if t == "/" {
		return nil, nil
	}
	if strings.HasSuffix(t, "/") {
		return nil, errors.New("path template must not end with '/' (only \"/\" itself may)")
	}
	parts := strings.Split(t[1:], "/")
	segs := make([]segment, 0, len(parts))
	names := make(map[string]bool, len(parts))
	for i, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("segment %d is empty (\"//\")", i+1)
		}
		if p[0] == '{' && p[len(p)-1] == '}' && len(p) >= 2 {
			name, greedy := p[1:len(p)-1], false
			if strings.HasSuffix(name, "+") {
				name, greedy = name[:len(name)-1], true
			}
			if !validParamName(name) {
				return nil, fmt.Errorf("segment %q: a parameter name is one or more of A-Z a-z 0-9 _", p)
			}
			if names[name] {
				return nil, fmt.Errorf("parameter %q appears twice", name)
			}
			names[name] = true
			if greedy {
				if i != len(parts)-1 {
					return nil, fmt.Errorf("greedy parameter %q must be the last segment", p)
				}
				segs = append(segs, segment{kind: segGreedy, text: name})
				continue
			}
			segs = append(segs, segment{kind: segParam, text: name})
			continue
		}
		if p == "." || p == ".." {
			return nil, fmt.Errorf("segment %q is a dot-segment, which requests never keep", p)
		}
		for j := 0; j < len(p); j++ {
			c := p[j]
			if c == '{' || c == '}' {
				return nil, fmt.Errorf("segment %q: braces must enclose a whole segment, as in {id} or {proxy+}", p)
			}
			if c == ';' {
				// Requests have ';' path parameters cut before matching.
				return nil, fmt.Errorf("segment %q: ';' starts path parameters, which requests never match on", p)
			}
			if !isPchar(c) {
				return nil, fmt.Errorf("segment %q: character %q is not allowed in a path segment", p, c)
			}
		}
		segs = append(segs, segment{kind: segLiteral, text: p})
	}
	return segs, nil
}

func validParamName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// isPchar reports whether c may appear unencoded in a path segment (RFC
// 3986 pchar without pct-encoded: a template literal is compared with the
// decoded request segment, so it is written decoded).
func isPchar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("-._~!$&'()*+,=:@", c) >= 0
}

// shapeKey identifies the set of paths a template matches: parameter
// names do not change it.
func shapeKey(segs []segment) string {
	if len(segs) == 0 {
		return "/"
	}
	var b strings.Builder
	for _, s := range segs {
		switch s.kind {
		case segLiteral:
			b.WriteString("/")
			b.WriteString(s.text)
		case segParam:
			b.WriteString("/{}")
		case segGreedy:
			b.WriteString("/{+}")
		}
	}
	return b.String()
}
