package policy

import "strings"

// canonicalPath appends the decoded segments of a request target to segs:
// the query and fragment cut off, ';' path parameters cut from each
// segment, empty segments dropped, each segment percent-decoded once.
//
// It refuses (false) what an upstream might read as a different path than
// the one matched: an invalid escape; an encoded '/' or '\' or control
// character; a raw '\', space or control character; any dot-segment, raw
// ("/a/../b", "/a/./b", "/a/..;/b") or encoded ("%2e%2e"), since whether it
// is resolved, and before or after decoding, differs between Envoy (with
// or without normalize_path), Express (never) and Go's ServeMux (always);
// and a segment that still holds a valid escape after decoding (%2561 ->
// %61), which a second decode would change again. Whether the ';' cut and
// the decoding change the route is judged by Snapshot.readings.
func canonicalPath(p string, segs []string) ([]string, bool) {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	if p == "" || p[0] != '/' {
		return nil, false
	}
	for p != "" {
		p = p[1:] // the '/'
		seg := p
		if i := strings.IndexByte(p, '/'); i >= 0 {
			seg, p = p[:i], p[i:]
		} else {
			p = ""
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c <= ' ' || c == 0x7f || c == '\\' {
				return nil, false
			}
		}
		// Path parameters (RFC 3986 section 3.3 "matrix" parameters) are
		// cut, as Tomcat, Jetty and Spring do before routing: "/admin;x"
		// is the admin resource to such an upstream.
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		escaped := strings.IndexByte(seg, '%') >= 0
		switch seg {
		case "":
			continue
		case ".", "..":
			return nil, false
		}
		if escaped {
			d, ok := unescapeSegment(seg)
			if !ok {
				return nil, false
			}
			seg = d
		}
		segs = append(segs, seg)
	}
	return segs, true
}

// rawSegments appends the segments of a request target as an upstream
// that neither decodes nor cuts ';' before routing (Express, Node's
// router, most JavaScript frameworks) sees them. It runs only on a path
// canonicalPath accepted.
func rawSegments(p string, segs []string) []string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	for seg := range strings.SplitSeq(p[1:], "/") {
		if seg != "" {
			segs = append(segs, seg)
		}
	}
	return segs
}

// fold is the case-insensitive form of a segment: ToLower(ToUpper(s))
// also brings together the Unicode letters that fold onto ASCII ones (the
// Kelvin sign and "k", the long s and "s"), which an upstream comparing
// with simple case folding treats as equal.
func fold(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return strings.ToLower(strings.ToUpper(s))
		}
	}
	return strings.ToLower(s) // no allocation when s has no upper case
}

// folded reports whether every segment is its own fold, without
// allocating.
func folded(segs []string) bool {
	for _, s := range segs {
		for i := 0; i < len(s); i++ {
			if c := s[i]; c >= 0x80 || c >= 'A' && c <= 'Z' {
				return false
			}
		}
	}
	return true
}

func foldAll(segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = fold(s)
	}
	return out
}

// readings matches the path as the upstreams this service may sit in front
// of read it, and reports whether they all land on the same route:
//   - canonical: decoded once, ';' parameters cut (Go's ServeMux, Spring,
//     Tomcat, Jetty, API Gateway);
//   - raw: neither decoded nor cut (Express and other Node routers);
//   - each of those case-folded (Express, ASP.NET and IIS route without
//     case by default).
//
// A request on which they disagree is one where the service could judge a
// public route while the upstream runs a protected handler ("/ADMIN" to a
// public catch-all while Express serves the admin router; "/files/%72eadme"
// to a public /files/readme while Express serves /files/:name), so it is
// refused. Readings that cannot differ from the canonical one are skipped:
// the raw one unless the path holds '%' or ';', the folded ones when the
// policy's literals and the request's segments are already in folded form.
//
// With subtree, each reading gets a final empty segment: the trailing
// slash read as the start of a subtree (see Snapshot.Resolve).
func (s *Snapshot) readings(path string, segs []string, subtree bool, q *query) (*Route, bool) {
	if subtree {
		// segs has the capacity of the caller's buffer; appending to a
		// copy of the slice header leaves the caller's segments as they are.
		segs = append(segs, "")
	}
	r := s.trie.match(segs, q)
	agree := true
	var rawBuf [32]string
	var raw []string
	if strings.ContainsAny(path[:pathEnd(path)], "%;") {
		raw = rawSegments(path, rawBuf[:0])
		if subtree {
			raw = append(raw, "")
		}
		agree = s.trie.match(raw, q) == r
	}
	if s.literalsFolded && folded(segs) && folded(raw) {
		return r, agree
	}
	// Every reading is walked even after a disagreement, so that q learns
	// of every host-scoped route a reading could reach.
	agree = s.ftrie.match(foldAll(segs), q) == r && agree
	if raw != nil {
		agree = s.ftrie.match(foldAll(raw), q) == r && agree
	}
	return r, agree
}

// pathEnd is the length of the path part of a request target.
func pathEnd(p string) int {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		return i
	}
	return len(p)
}

func unescapeSegment(s string) (string, bool) {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			b = append(b, c)
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return "", false
		}
		c = unhex(s[i+1])<<4 | unhex(s[i+2])
		if c < ' ' || c == 0x7f || c == '/' || c == '\\' {
			return "", false
		}
		b = append(b, c)
		i += 2
	}
	d := string(b)
	if d == "." || d == ".." {
		return "", false
	}
	for i := 0; i+2 < len(d); i++ {
		if d[i] == '%' && isHex(d[i+1]) && isHex(d[i+2]) {
			return "", false
		}
	}
	return d, true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}
