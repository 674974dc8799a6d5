package token

import (
	"encoding/json"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// maxJSONDepth bounds the nesting of objects and arrays in a header or
// payload. Cognito tokens nest three levels at most (identities: an array of
// objects); the bound keeps recursion shallow on hostile input.
const maxJSONDepth = 32

// jsonError is a strict-JSON failure. It names an offset, never the text, so
// it is safe to log.
type jsonError struct {
	what string
	off  int
}

func (e *jsonError) Error() string { return fmt.Sprintf("json: %s at offset %d", e.what, e.off) }

// parseObject decodes data, which must hold exactly one JSON object, into the
// same values encoding/json produces with UseNumber (map[string]any, []any,
// string, json.Number, bool, nil). It is stricter than encoding/json, and the
// differences are all rejections:
//   - a member name repeated in one object (after unescaping) is an error,
//     because JOSE libraries disagree on which copy wins (RFC 7515 leaves it
//     open) and a parser differential is a signature bypass;
//   - invalid UTF-8, and \u escapes that are unpaired surrogates, are errors
//     rather than being replaced with U+FFFD (RFC 8725 section 3.7);
//   - nesting deeper than maxJSONDepth is an error.
//
// Token JSON is parsed by hand because encoding/json has no way to reject
// duplicate names, and a second pass just to find them would cost as much as
// the decode itself on the hot path.
//
// The strings it returns without an escape in them are substrings of one
// copy of data, made up front: one allocation instead of one per name and
// value. They keep that copy alive while any of them is; Claims.Compact,
// which the token cache stores, copies what it keeps.
func parseObject(data []byte) (map[string]any, error) {
	return parseWith(data, string(data))
}

// parseOwnedObject is parseObject without the up-front copy: the strings
// it returns are cut from data itself, so data must never change while any
// of them lives. Verify passes the buffer decodeSegments made for this
// token alone, which nothing writes after decoding.
func parseOwnedObject(data []byte) (map[string]any, error) {
	return parseWith(data, unsafe.String(unsafe.SliceData(data), len(data)))
}

func parseWith(data []byte, src string) (map[string]any, error) {
	p := parser{data: data, src: src}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, p.fail("not an object")
	}
	v, err := p.object()
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.fail("data after the object")
	}
	return v, nil
}

type parser struct {
	data  []byte
	src   string // data as a string: escape-free strings are cut from it
	pos   int
	depth int
}

func (p *parser) fail(what string) error { return &jsonError{what: what, off: p.pos} }

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (any, error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	default:
		return nil, p.fail("unexpected character")
	}
}

func (p *parser) literal(lit string) error {
	if len(p.data)-p.pos < len(lit) || string(p.data[p.pos:p.pos+len(lit)]) != lit {
		return p.fail("bad literal")
	}
	p.pos += len(lit)
	return nil
}

func (p *parser) enter() error {
	p.depth++
	if p.depth > maxJSONDepth {
		return p.fail("nested too deeply")
	}
	return nil
}

// object parses an object; p.data[p.pos] is '{'.
func (p *parser) object() (map[string]any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++
	hint := 0
	if p.depth == 1 {
		// The top-level object takes most of the input: a Cognito
		// payload runs about 30-40 bytes per claim. Sizing the map up
		// front saves its growth steps; the cap keeps a huge input from
		// asking for a huge map before a member is read.
		hint = min((len(p.data)-p.pos)/40, 64)
	}
	m := make(map[string]any, hint)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		p.depth--
		return m, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("expected a member name")
		}
		at := p.pos
		name, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("expected ':'")
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		// A name already present leaves the map's size unchanged: one
		// hash of the name instead of a lookup and then an insert.
		before := len(m)
		m[name] = v
		if len(m) == before {
			return nil, &jsonError{what: "duplicate member name", off: at}
		}
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			p.depth--
			return m, nil
		default:
			return nil, p.fail("expected ',' or '}'")
		}
	}
}

// array parses an array; p.data[p.pos] is '['.
func (p *parser) array() ([]any, error) {
	if err := p.enter(); err != nil {
		return nil, err
	}
	p.pos++
	a := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		p.depth--
		return a, nil
	}
	for {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.fail("unexpected end")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			p.depth--
			return a, nil
		default:
			return nil, p.fail("expected ',' or ']'")
		}
	}
}

// number parses a number per RFC 8259 section 6 and keeps its literal text.
func (p *parser) number() (json.Number, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	switch {
	case p.pos < len(p.data) && p.data[p.pos] == '0':
		p.pos++
	case p.pos < len(p.data) && p.data[p.pos] >= '1' && p.data[p.pos] <= '9':
		p.digits()
	default:
		return "", p.fail("bad number")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if p.digits() == 0 {
			return "", p.fail("bad number")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if p.digits() == 0 {
			return "", p.fail("bad number")
		}
	}
	return json.Number(p.src[start:p.pos]), nil
}

func (p *parser) digits() int {
	n := 0
	for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
		p.pos++
		n++
	}
	return n
}

// str parses a string; p.data[p.pos] is '"'.
func (p *parser) str() (string, error) {
	p.pos++
	start := p.pos
	// Fast path: printable ASCII with no escapes, the common case.
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := p.src[start:p.pos]
			p.pos++
			return s, nil
		}
		if c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			break
		}
		p.pos++
	}
	buf := make([]byte, p.pos-start, p.pos-start+16)
	copy(buf, p.data[start:p.pos])
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(buf), nil
		case c < 0x20:
			return "", p.fail("control character in string")
		case c == '\\':
			r, err := p.escape()
			if err != nil {
				return "", err
			}
			buf = utf8.AppendRune(buf, r)
		case c < utf8.RuneSelf:
			buf = append(buf, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size <= 1 {
				return "", p.fail("invalid UTF-8")
			}
			buf = append(buf, p.data[p.pos:p.pos+size]...)
			p.pos += size
		}
	}
	return "", p.fail("unterminated string")
}

// escape decodes one escape sequence; p.data[p.pos] is '\\'.
func (p *parser) escape() (rune, error) {
	if p.pos+1 >= len(p.data) {
		return 0, p.fail("unterminated escape")
	}
	c := p.data[p.pos+1]
	p.pos += 2
	switch c {
	case '"', '\\', '/':
		return rune(c), nil
	case 'b':
		return '\b', nil
	case 'f':
		return '\f', nil
	case 'n':
		return '\n', nil
	case 'r':
		return '\r', nil
	case 't':
		return '\t', nil
	case 'u':
		r, err := p.hex4()
		if err != nil {
			return 0, err
		}
		if !utf16.IsSurrogate(r) {
			return r, nil
		}
		if r >= 0xdc00 || p.pos+1 >= len(p.data) || p.data[p.pos] != '\\' || p.data[p.pos+1] != 'u' {
			return 0, p.fail("unpaired surrogate")
		}
		p.pos += 2
		r2, err := p.hex4()
		if err != nil {
			return 0, err
		}
		if d := utf16.DecodeRune(r, r2); d != utf8.RuneError {
			return d, nil
		}
		return 0, p.fail("unpaired surrogate")
	default:
		p.pos -= 2
		return 0, p.fail("bad escape")
	}
}

func (p *parser) hex4() (rune, error) {
	if len(p.data)-p.pos < 4 {
		return 0, p.fail("bad \\u escape")
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, p.fail("bad \\u escape")
		}
	}
	p.pos += 4
	return r, nil
}
