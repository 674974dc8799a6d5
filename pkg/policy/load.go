package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/token"
)

const (
	// maxPolicySize bounds what Load reads: a policy is hand-written and
	// small; a huge file is a mistake (or a device) and is refused.
	maxPolicySize = 4 << 20

	defaultResultTTL = 300 * time.Second
	// maxResultTTL is API Gateway's maximum authorizerResultTtlInSeconds.
	maxResultTTL = time.Hour
	maxClockSkew = 5 * time.Minute
)

var (
	nameRE        = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)
	yamlLineErrRE = regexp.MustCompile(`^yaml: line ([0-9]+): (.*)$`)
)

// maxNameLen bounds route and authorizer names, which become metric label
// values.
const maxNameLen = 128

// Load reads the policy file at path and parses it with Parse. A file that
// is not valid comes back as Problems, every one of them at once.
func Load(path string, opts Options) (*Snapshot, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicySize+1))
	if err != nil {
		return nil, fmt.Errorf("read policy %q: %w", path, err)
	}
	if len(data) > maxPolicySize {
		return nil, fmt.Errorf("read policy %q: larger than %d bytes", path, maxPolicySize)
	}
	return Parse(data, path, opts)
}

// Parse strictly decodes a policy, validates all of it, and compiles it.
// name is the file name used in problem text; a relative jwksFile is
// resolved against its directory. Any problem, unknown fields included,
// fails the whole policy: the error is then Problems, listing every problem
// in file order, and the Snapshot is nil.
func Parse(data []byte, name string, opts Options) (*Snapshot, error) {
	l := &loader{file: name, dir: filepath.Dir(name), opts: opts}
	if len(data) > maxPolicySize {
		return nil, Problems{{File: name, Message: fmt.Sprintf("policy is larger than %d bytes", maxPolicySize)}}
	}
	if root := l.document(data); root != nil {
		l.noAliases(root)
		l.top(root)
	}
	if len(l.probs) > 0 {
		sortProblems(l.probs)
		return nil, l.probs
	}
	s := l.compile()
	sum := sha256.Sum256(data)
	s.digest = hex.EncodeToString(sum[:])
	return s, nil
}

// loader holds what is decoded so far and every problem found.
type loader struct {
	file  string
	dir   string
	opts  Options
	probs Problems

	authorizers map[string]*authorizerDef
	routes      []*routeDef
	defaultAll  bool
	responses   map[string]GatewayResponse
}

type authorizerDef struct {
	az *Authorizer // nil when the authorizer has problems
}

// routeDef is a decoded route and the places its cross-checks report at.
type routeDef struct {
	r       *Route
	path    string
	name    *yaml.Node // nil when absent or bad
	match   *yaml.Node
	matchOK bool // template, methods and host all valid
}

func (l *loader) problemf(n *yaml.Node, path, format string, args ...any) {
	p := Problem{File: l.file, Path: path, Message: fmt.Sprintf(format, args...)}
	if n != nil {
		p.Line, p.Column = n.Line, n.Column
	}
	l.probs = append(l.probs, p)
}

// document parses the YAML text and returns the root mapping node.
func (l *loader) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			l.problemf(nil, "", "policy is empty")
		} else {
			l.syntax(err)
		}
		return nil
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		l.syntax(err)
		return nil
	default:
		at := &extra
		if len(extra.Content) > 0 {
			at = extra.Content[0]
		}
		l.problemf(at, "", "the file holds more than one YAML document; a policy is one document")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		l.problemf(nil, "", "policy is empty")
		return nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		l.problemf(root, "", "policy is empty")
		return nil
	}
	return root
}

func (l *loader) syntax(err error) {
	msg := err.Error()
	if m := yamlLineErrRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		l.probs = append(l.probs, Problem{File: l.file, Line: line, Message: "invalid YAML: " + m[2]})
		return
	}
	l.problemf(nil, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// noAliases refuses anchors and aliases: an aliased value would report its
// problems at the anchor, far from the place that uses it, and merge keys
// would hide fields from review.
func (l *loader) noAliases(n *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		l.problemf(n, "", "YAML aliases (*%s) are not supported: write the value out", n.Value)
		return
	}
	if n.Anchor != "" {
		l.problemf(n, "", "YAML anchors (&%s) are not supported: write the value out", n.Anchor)
	}
	for _, c := range n.Content {
		l.noAliases(c)
	}
}

// ---- generic node helpers ----

type pair struct {
	name     string
	key, val *yaml.Node
}

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

// mapping returns the entries of a mapping in file order. Keys must be
// plain scalars and unique.
func (l *loader) mapping(n *yaml.Node, path string) ([]pair, bool) {
	if n.Kind == yaml.AliasNode {
		return nil, false // reported by noAliases
	}
	if n.Kind != yaml.MappingNode {
		l.problemf(n, path, "must be a mapping, not %s", describe(n))
		return nil, false
	}
	seen := make(map[string]*yaml.Node, len(n.Content)/2)
	out := make([]pair, 0, len(n.Content)/2)
	ok := true
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null" {
			if k.Kind != yaml.AliasNode {
				l.problemf(k, path, "a key must be a plain string, not %s", describe(k))
			}
			ok = false
			continue
		}
		if first, dup := seen[k.Value]; dup {
			l.problemf(k, keyPath(path, k.Value), "duplicate key %q (first at line %d)", k.Value, first.Line)
			ok = false
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{name: k.Value, key: k, val: v})
	}
	return out, ok
}

// fields decodes a mapping with a fixed set of keys; any other key is an
// error.
func (l *loader) fields(n *yaml.Node, path string, known ...string) (map[string]pair, bool) {
	ps, ok := l.mapping(n, path)
	if ps == nil && !ok {
		return nil, false
	}
	m := make(map[string]pair, len(ps))
	for _, p := range ps {
		if !slices.Contains(known, p.name) {
			l.unknownField(p, path, known)
			ok = false
			continue
		}
		m[p.name] = p
	}
	return m, ok
}

func (l *loader) unknownField(p pair, path string, known []string) {
	for _, k := range known {
		if strings.EqualFold(k, p.name) {
			l.problemf(p.key, keyPath(path, p.name), "unknown field %q: did you mean %q?", p.name, k)
			return
		}
	}
	l.problemf(p.key, keyPath(path, p.name), "unknown field %q (known fields: %s)", p.name, strings.Join(known, ", "))
}

// str returns a scalar's text. Numbers, booleans and dates are taken as
// written; null, lists and mappings are errors.
func (l *loader) str(n *yaml.Node, path string) (string, bool) {
	switch {
	case n.Kind == yaml.AliasNode:
		return "", false
	case n.Kind != yaml.ScalarNode:
		l.problemf(n, path, "must be a string, not %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		return n.Value, true
	case "!!null":
		l.problemf(n, path, "must not be empty")
		return "", false
	}
	l.problemf(n, path, "unsupported YAML tag %s", n.ShortTag())
	return "", false
}

// word is a non-empty string without whitespace or control characters.
func (l *loader) word(n *yaml.Node, path string) (string, bool) {
	s, ok := l.str(n, path)
	if !ok {
		return "", false
	}
	switch {
	case s == "":
		l.problemf(n, path, "must not be empty")
		return "", false
	case hasControl(s) || strings.ContainsFunc(s, isSpace):
		l.problemf(n, path, "%q must not contain whitespace or control characters", s)
		return "", false
	}
	return s, true
}

func isSpace(r rune) bool {
	switch r {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0x85, 0xA0, 0x2028, 0x2029, 0x3000:
		return true
	}
	return false
}

func (l *loader) boolean(n *yaml.Node, path string) (bool, bool) {
	if n.Kind == yaml.AliasNode {
		return false, false
	}
	var b bool
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
		l.problemf(n, path, "must be true or false, not %s", describe(n))
		return false, false
	}
	return b, true
}

// seq returns a list's items; an empty list is an error unless allowEmpty.
func (l *loader) seq(n *yaml.Node, path string, allowEmpty bool) ([]*yaml.Node, bool) {
	switch {
	case n.Kind == yaml.AliasNode:
		return nil, false
	case n.Kind != yaml.SequenceNode:
		l.problemf(n, path, "must be a list, not %s", describe(n))
		return nil, false
	case len(n.Content) == 0 && !allowEmpty:
		l.problemf(n, path, "must not be an empty list (omit the field instead)")
		return nil, false
	}
	return n.Content, true
}

// words decodes a list of words, dropping repeats.
func (l *loader) words(n *yaml.Node, path string, allowEmpty bool) ([]string, bool) {
	items, ok := l.seq(n, path, allowEmpty)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		w, wok := l.word(it, indexPath(path, i))
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

// duration reads a Go duration (300s, 5m) or whole seconds (300).
func (l *loader) duration(n *yaml.Node, path string, limit time.Duration) (time.Duration, bool) {
	if n.Kind == yaml.AliasNode {
		return 0, false
	}
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!int") {
		l.problemf(n, path, "must be a duration such as 300s or 5m, or whole seconds, not %s", describe(n))
		return 0, false
	}
	s := n.Value
	var d time.Duration
	if secs, err := strconv.ParseUint(s, 10, 63); err == nil {
		if secs > uint64(limit/time.Second) {
			l.problemf(n, path, "%s is more than the maximum of %s", s+"s", limit)
			return 0, false
		}
		d = time.Duration(secs) * time.Second
	} else {
		var perr error
		d, perr = time.ParseDuration(s)
		if perr != nil {
			l.problemf(n, path, "%q is not a duration such as 300s or 5m, nor whole seconds", s)
			return 0, false
		}
	}
	switch {
	case d < 0:
		l.problemf(n, path, "must not be negative")
		return 0, false
	case d > limit:
		l.problemf(n, path, "%s is more than the maximum of %s", d, limit)
		return 0, false
	}
	return d, true
}

// ---- the document ----

func (l *loader) top(root *yaml.Node) {
	f, ok := l.fields(root, "", "apiVersion", "authorizers", "routes", "defaultAction", "gatewayResponses")
	if f == nil && !ok {
		return
	}
	if p, has := f["apiVersion"]; !has {
		l.problemf(root, "apiVersion", "required field is missing: set apiVersion: %s", APIVersion)
	} else if v, vok := l.str(p.val, "apiVersion"); vok && v != APIVersion {
		l.problemf(p.val, "apiVersion", "unsupported apiVersion %q: want %s", v, APIVersion)
	}

	l.authorizers = map[string]*authorizerDef{}
	if p, has := f["authorizers"]; has {
		l.authorizerMap(p.val)
	}

	if p, has := f["routes"]; !has {
		l.problemf(root, "routes", "required field is missing: a policy needs at least one route")
	} else if items, sok := l.seq(p.val, "routes", false); sok {
		for i, it := range items {
			l.route(it, indexPath("routes", i), i)
		}
		l.crossCheckRoutes()
	}

	if p, has := f["defaultAction"]; has {
		if v, vok := l.str(p.val, "defaultAction"); vok {
			switch v {
			case "deny":
			case "allow":
				l.defaultAll = true
			default:
				l.problemf(p.val, "defaultAction", "%q is not deny or allow", v)
			}
		}
	}

	l.responses = map[string]GatewayResponse{}
	if p, has := f["gatewayResponses"]; has {
		l.gatewayResponses(p.val)
	}
}

func (l *loader) authorizerMap(n *yaml.Node) {
	ps, _ := l.mapping(n, "authorizers")
	for _, p := range ps {
		path := keyPath("authorizers", p.name)
		if !nameRE.MatchString(p.name) || len(p.name) > maxNameLen {
			l.problemf(p.key, path, "authorizer name %q: use 1 to %d of A-Z a-z 0-9 . _ -", p.name, maxNameLen)
		}
		l.authorizers[p.name] = &authorizerDef{az: l.authorizer(p.val, path, p.name)}
	}
}

// authorizer decodes one authorizer; nil when it has problems.
func (l *loader) authorizer(n *yaml.Node, path, name string) *Authorizer {
	f, ok := l.fields(n, path, "userPools", "appClientIds", "identitySource", "stripToken", "resultTtl", "clockSkew", "algorithms")
	if f == nil && !ok {
		return nil
	}
	az := &Authorizer{
		Name:      name,
		Token:     &token.Config{},
		Source:    IdentitySource{Kind: SourceHeader, Name: "authorization"},
		ResultTTL: defaultResultTTL,
	}
	if p, has := f["userPools"]; !has {
		l.problemf(n, keyPath(path, "userPools"), "required field is missing: list at least one user pool")
		ok = false
	} else if pools, pok := l.pools(p.val, keyPath(path, "userPools")); pok {
		az.Token.Pools = pools
	} else {
		ok = false
	}
	if p, has := f["appClientIds"]; has {
		ids, iok := l.words(p.val, keyPath(path, "appClientIds"), true)
		slices.Sort(ids)
		az.Token.ClientIDs = ids
		ok = ok && iok
	}
	if p, has := f["identitySource"]; has {
		pp := keyPath(path, "identitySource")
		if s, sok := l.str(p.val, pp); sok {
			src, err := parseIdentitySource(s)
			if err != nil {
				l.problemf(p.val, pp, "%v", err)
				ok = false
			} else {
				az.Source = src
			}
		} else {
			ok = false
		}
	}
	if p, has := f["stripToken"]; has {
		b, bok := l.boolean(p.val, keyPath(path, "stripToken"))
		az.StripToken = b
		ok = ok && bok
	}
	if p, has := f["resultTtl"]; has {
		d, dok := l.duration(p.val, keyPath(path, "resultTtl"), maxResultTTL)
		az.ResultTTL = d
		ok = ok && dok
	}
	if p, has := f["clockSkew"]; has {
		d, dok := l.duration(p.val, keyPath(path, "clockSkew"), maxClockSkew)
		az.Token.ClockSkew = d
		ok = ok && dok
	}
	if p, has := f["algorithms"]; has {
		algs, aok := l.algorithms(p.val, keyPath(path, "algorithms"))
		az.Token.Algorithms = algs
		ok = ok && aok
	}
	if !ok {
		return nil
	}
	return az
}

func (l *loader) pools(n *yaml.Node, path string) ([]token.Pool, bool) {
	items, ok := l.seq(n, path, false)
	if !ok {
		return nil, false
	}
	pools := make([]token.Pool, 0, len(items))
	owner := map[string]int{} // issuer -> pool index
	for i, it := range items {
		pp := indexPath(path, i)
		pool, pok := l.pool(it, pp)
		if !pok {
			ok = false
			continue
		}
		reported := map[int]bool{}
		for _, iss := range pool.Issuers {
			if j, dup := owner[iss]; dup {
				if !reported[j] {
					l.problemf(it, pp, "issuer %q is also an issuer of %s: two pools of one authorizer cannot share an issuer", iss, indexPath(path, j))
					reported[j] = true
				}
				ok = false
				continue
			}
			owner[iss] = i
		}
		pools = append(pools, pool)
	}
	return pools, ok
}

func (l *loader) pool(n *yaml.Node, path string) (token.Pool, bool) {
	var pool token.Pool
	f, ok := l.fields(n, path, "arn", "userPoolId", "issuer", "jwksUri", "jwksFile")
	if f == nil && !ok {
		return pool, false
	}
	get := func(k string) (*yaml.Node, string, bool) {
		p, has := f[k]
		if !has {
			return nil, "", false
		}
		s, sok := l.word(p.val, keyPath(path, k))
		if !sok {
			ok = false
			return nil, "", false
		}
		return p.val, s, true
	}
	arnNode, arn, hasARN := get("arn")
	idNode, id, hasID := get("userPoolId")
	issNode, iss, hasIss := get("issuer")
	uriNode, uri, hasURI := get("jwksUri")
	fileNode, file, hasFile := get("jwksFile")
	if !ok {
		return pool, false
	}

	if hasIss {
		if err := checkIssuer(iss); err != nil {
			l.problemf(issNode, keyPath(path, "issuer"), "%v", err)
			ok = false
		}
	}
	// With both, jwksFile wins: the contract calls it "offline keys, no
	// fetching", and its own example sets both. jwksUri is still checked,
	// so a typo there is reported rather than ignored.
	_ = fileNode
	if hasURI {
		if err := checkJWKSURL(uri, l.opts.AllowHTTPJWKS); err != nil {
			l.problemf(uriNode, keyPath(path, "jwksUri"), "%v", err)
			ok = false
		}
	}
	if hasFile {
		if !filepath.IsAbs(file) {
			file = filepath.Join(l.dir, file)
		}
		file = filepath.Clean(file)
	}

	// Region and id are needed unless both the issuers and the key source
	// are given: then an emulator's id such as local_5vr8DTla is fine.
	relaxed := hasIss && (hasURI || hasFile)
	var region string
	switch {
	case hasARN && hasID:
		l.problemf(idNode, keyPath(path, "userPoolId"), "arn and userPoolId are exclusive: give one")
		return pool, false
	case hasARN:
		r, pid, err := parseARN(arn)
		if err != nil {
			l.problemf(arnNode, keyPath(path, "arn"), "%v", err)
			return pool, false
		}
		region, pool.ID = r, pid
	case hasID:
		if relaxed {
			pool.ID = id
			break
		}
		r, err := parsePoolID(id)
		if err != nil {
			l.problemf(idNode, keyPath(path, "userPoolId"), "%v (any id is accepted only when both issuer and jwksUri or jwksFile are given)", err)
			return pool, false
		}
		region, pool.ID = r, id
	default:
		l.problemf(n, path, "a pool needs arn or userPoolId")
		return pool, false
	}
	if !ok {
		return pool, false
	}

	if hasIss {
		pool.Issuers = []string{iss}
	} else {
		pool.Issuers = cognitoIssuers(region, pool.ID)
	}
	switch {
	case hasFile:
		pool.Keys = jwks.Source{File: file}
	case hasURI:
		pool.Keys = jwks.Source{URL: uri}
	case hasIss:
		u := strings.TrimSuffix(iss, "/") + "/.well-known/jwks.json"
		if err := checkJWKSURL(u, l.opts.AllowHTTPJWKS); err != nil {
			l.problemf(issNode, keyPath(path, "issuer"), "the JWKS URL derived from the issuer is not acceptable: %v; set jwksUri or jwksFile", err)
			return pool, false
		}
		pool.Keys = jwks.Source{URL: u}
	default:
		pool.Keys = jwks.Source{URL: cognitoJWKSURL(region, pool.ID)}
	}
	return pool, true
}

func parseIdentitySource(s string) (IdentitySource, error) {
	var src IdentitySource
	rest := ""
	switch {
	case strings.HasPrefix(s, "method.request.header."):
		src.Kind, rest = SourceHeader, strings.TrimPrefix(s, "method.request.header.")
	case strings.HasPrefix(s, "header:"):
		src.Kind, rest = SourceHeader, strings.TrimPrefix(s, "header:")
	case strings.HasPrefix(s, "query:"):
		src.Kind, rest = SourceQuery, strings.TrimPrefix(s, "query:")
	case strings.HasPrefix(s, "cookie:"):
		src.Kind, rest = SourceCookie, strings.TrimPrefix(s, "cookie:")
	default:
		return src, fmt.Errorf("identitySource %q: want header:NAME, query:NAME, cookie:NAME or method.request.header.NAME", s)
	}
	switch src.Kind {
	case SourceHeader:
		if !isToken(rest) {
			return src, fmt.Errorf("identitySource %q: %q is not a valid HTTP header name", s, rest)
		}
		rest = strings.ToLower(rest)
		switch {
		case rest == "cookie":
			return src, fmt.Errorf("identitySource %q: to read a cookie, write cookie:NAME", s)
		case rest == "host", hopByHop[rest]:
			return src, fmt.Errorf("identitySource %q: header %q cannot carry a token", s, rest)
		}
	case SourceQuery:
		if !isQueryName(rest) {
			return src, fmt.Errorf("identitySource %q: a query parameter name is one or more of A-Z a-z 0-9 - . _ ~", s)
		}
	case SourceCookie:
		if !isToken(rest) {
			return src, fmt.Errorf("identitySource %q: %q is not a valid cookie name", s, rest)
		}
	}
	src.Name = rest
	return src, nil
}

// rsaAlgorithms are the algorithms Cognito's RSA keys can verify.
var rsaAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}

func (l *loader) algorithms(n *yaml.Node, path string) ([]string, bool) {
	items, ok := l.seq(n, path, false)
	if !ok {
		return nil, false
	}
	var out []string
	for i, it := range items {
		pp := indexPath(path, i)
		a, aok := l.word(it, pp)
		if !aok {
			ok = false
			continue
		}
		up := strings.ToUpper(a)
		switch {
		case slices.Contains(rsaAlgorithms, a):
			if !slices.Contains(out, a) {
				out = append(out, a)
			}
			continue
		case up == "NONE":
			l.problemf(it, pp, "algorithm %q means an unsigned token: never allowed", a)
		case strings.HasPrefix(up, "HS"):
			l.problemf(it, pp, "algorithm %q is HMAC: it would turn the pool's public key into a shared secret anyone can sign with; never allowed", a)
		case strings.HasPrefix(up, "ES"), up == "EDDSA":
			l.problemf(it, pp, "algorithm %q: Cognito signs with RSA keys only; want one of %s", a, strings.Join(rsaAlgorithms, " "))
		case slices.Contains(rsaAlgorithms, up):
			l.problemf(it, pp, "algorithm %q: write it upper case, %s", a, up)
		default:
			l.problemf(it, pp, "unknown algorithm %q: want one of %s", a, strings.Join(rsaAlgorithms, " "))
		}
		ok = false
	}
	return out, ok
}

// ---- routes ----

func (l *loader) route(n *yaml.Node, path string, index int) {
	d := &routeDef{r: &Route{index: index}, path: path}
	l.routes = append(l.routes, d)
	f, ok := l.fields(n, path, "name", "match", "authorization", "authorizer", "mode", "scopes", "groups", "claims", "claimHeaders")
	if f == nil && !ok {
		return
	}
	r := d.r

	if p, has := f["name"]; !has {
		l.problemf(n, keyPath(path, "name"), "required field is missing: every route has a unique name")
	} else if s, sok := l.str(p.val, keyPath(path, "name")); sok {
		if !nameRE.MatchString(s) || len(s) > maxNameLen {
			l.problemf(p.val, keyPath(path, "name"), "route name %q: use 1 to %d of A-Z a-z 0-9 . _ - (it is a metric label and an Envoy context_extensions value)", s, maxNameLen)
		} else {
			r.Name, d.name = s, p.val
		}
	}

	if p, has := f["match"]; !has {
		l.problemf(n, keyPath(path, "match"), "required field is missing: a route needs match.path")
	} else {
		d.match = p.val
		d.matchOK = l.match(p.val, keyPath(path, "match"), r)
	}

	// With an authorization value that is not understood, whether an
	// authorizer is required is not known either: that is not reported.
	authKnown := true
	if p, has := f["authorization"]; has {
		s, sok := l.str(p.val, keyPath(path, "authorization"))
		switch {
		case !sok:
			authKnown = false
		case s == "NONE":
			r.NoAuth = true
		case s == "COGNITO_USER_POOLS":
		default:
			l.problemf(p.val, keyPath(path, "authorization"), "%q is not NONE or COGNITO_USER_POOLS", s)
			authKnown = false
		}
	}
	if r.NoAuth {
		for _, k := range []string{"authorizer", "mode", "scopes", "groups", "claims", "claimHeaders"} {
			if p, has := f[k]; has {
				l.problemf(p.key, keyPath(path, k), "not allowed on an authorization: NONE route, which checks no token")
			}
		}
		return
	}

	if p, has := f["authorizer"]; !has {
		if authKnown {
			l.problemf(n, keyPath(path, "authorizer"), "required field is missing: name an authorizer, or set authorization: NONE")
		}
	} else if s, sok := l.str(p.val, keyPath(path, "authorizer")); sok {
		// An authorizer with problems of its own has them reported where
		// it is defined; only a name defined nowhere is reported here.
		if def, known := l.authorizers[s]; !known {
			l.problemf(p.val, keyPath(path, "authorizer"), "unknown authorizer %q", s)
		} else {
			r.Authorizer = def.az
		}
	}

	var scopesKey *yaml.Node
	if p, has := f["scopes"]; has {
		scopesKey = p.key
		r.Scopes, _ = l.words(p.val, keyPath(path, "scopes"), true)
	}
	// As API Gateway: scopes on the method mean an access token, none an
	// ID token.
	r.Mode = ModeIdentity
	if len(r.Scopes) > 0 {
		r.Mode = ModeAccess
	}
	if p, has := f["mode"]; has {
		if s, sok := l.str(p.val, keyPath(path, "mode")); sok {
			switch s {
			case "identity-claims":
				r.Mode = ModeIdentity
			case "access-scopes":
				r.Mode = ModeAccess
			default:
				l.problemf(p.val, keyPath(path, "mode"), "%q is not identity-claims or access-scopes", s)
			}
		}
	}
	if r.Mode == ModeIdentity && len(r.Scopes) > 0 {
		l.problemf(scopesKey, keyPath(path, "scopes"), "scopes need mode access-scopes: identity-claims routes take ID tokens, which carry no scope claim")
	}

	if p, has := f["groups"]; has {
		r.Groups, _ = l.words(p.val, keyPath(path, "groups"), true)
	}
	if p, has := f["claims"]; has {
		r.Claims = l.claims(p.val, keyPath(path, "claims"))
	}
	if p, has := f["claimHeaders"]; has {
		r.ClaimHeaders = l.claimHeaders(p.val, keyPath(path, "claimHeaders"), r.Authorizer)
	}
}

func (l *loader) match(n *yaml.Node, path string, r *Route) bool {
	f, ok := l.fields(n, path, "path", "methods", "host")
	if f == nil && !ok {
		return false
	}
	if p, has := f["path"]; !has {
		l.problemf(n, keyPath(path, "path"), "required field is missing: a path template such as /pets/{petId}")
		ok = false
	} else if s, sok := l.str(p.val, keyPath(path, "path")); !sok {
		ok = false
	} else if segs, err := parseTemplate(s); err != nil {
		l.problemf(p.val, keyPath(path, "path"), "invalid path template %q: %v", s, err)
		ok = false
	} else {
		r.Template, r.segs = s, segs
	}

	r.methods = methodAny
	if p, has := f["methods"]; has {
		r.methods = 0
		items, sok := l.seq(p.val, keyPath(path, "methods"), false)
		ok = ok && sok
		for i, it := range items {
			pp := indexPath(keyPath(path, "methods"), i)
			s, wok := l.word(it, pp)
			if !wok {
				ok = false
				continue
			}
			up := strings.ToUpper(s)
			if up == "ANY" {
				r.methods |= methodAny
			} else if b := methodBit(up); b != 0 {
				r.methods |= b
			} else {
				l.problemf(it, pp, "unknown method %q: want GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS or ANY", s)
				ok = false
			}
		}
	}

	if p, has := f["host"]; has {
		if s, sok := l.str(p.val, keyPath(path, "host")); !sok {
			ok = false
		} else if h, err := parseHostPattern(s); err != nil {
			l.problemf(p.val, keyPath(path, "host"), "%v", err)
			ok = false
		} else {
			r.host = h
		}
	}
	return ok
}

// parseHostPattern reads a route's host: a DNS name, an IPv4 address or a
// bracketed IPv6 address, with an optional port.
func parseHostPattern(s string) (hostPattern, error) {
	if s == "" {
		return hostPattern{}, errors.New("host must not be empty (omit it to match any host)")
	}
	if strings.Contains(s, "*") {
		return hostPattern{}, fmt.Errorf("host %q: wildcards are not supported", s)
	}
	if strings.ContainsAny(s, "/@?#") {
		return hostPattern{}, fmt.Errorf("host %q: want a host name with an optional :port, not a URL", s)
	}
	h := splitAuthority(strings.ToLower(s))
	if strings.HasSuffix(s, ":") {
		return hostPattern{}, fmt.Errorf("host %q has an empty port", s)
	}
	if h.port != "" {
		p, err := strconv.Atoi(h.port)
		if err != nil || p < 1 || p > 65535 || strconv.Itoa(p) != h.port {
			return hostPattern{}, fmt.Errorf("host %q: port %q is not a number from 1 to 65535", s, h.port)
		}
	}
	if strings.HasPrefix(h.name, "[") {
		if !strings.HasSuffix(h.name, "]") || !validIPv6(h.name[1:len(h.name)-1]) {
			return hostPattern{}, fmt.Errorf("host %q is not a valid bracketed IPv6 address", s)
		}
		return h, nil
	}
	if h.name == "" || len(h.name) > 253 {
		return hostPattern{}, fmt.Errorf("host %q is not a valid host name", s)
	}
	for label := range strings.SplitSeq(h.name, ".") {
		if label == "" || len(label) > 63 || strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-") {
			return hostPattern{}, fmt.Errorf("host %q is not a valid host name", s)
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return hostPattern{}, fmt.Errorf("host %q: character %q is not allowed in a host name", s, c)
			}
		}
	}
	return h, nil
}

func (l *loader) claims(n *yaml.Node, path string) []ClaimRequirement {
	ps, _ := l.mapping(n, path)
	out := make([]ClaimRequirement, 0, len(ps))
	for _, p := range ps {
		pp := keyPath(path, p.name)
		if p.name == "" {
			l.problemf(p.key, pp, "claim name must not be empty")
			continue
		}
		v, ok := l.claimValue(p.val, pp)
		if !ok {
			continue
		}
		out = append(out, ClaimRequirement{Claim: p.name, Value: v})
	}
	slices.SortFunc(out, func(a, b ClaimRequirement) int { return cmp.Compare(a.Claim, b.Claim) })
	return out
}

// claimValue returns a required claim value in the form claims are
// formatted for comparison: strings as they are, integers in decimal,
// booleans true/false.
func (l *loader) claimValue(n *yaml.Node, path string) (string, bool) {
	if n.Kind == yaml.AliasNode {
		return "", false
	}
	if n.Kind != yaml.ScalarNode {
		l.problemf(n, path, "a required claim value must be a string, an integer or a boolean, not %s", describe(n))
		return "", false
	}
	switch n.ShortTag() {
	case "!!str":
		return n.Value, true
	case "!!int":
		var i int64
		if err := n.Decode(&i); err != nil {
			l.problemf(n, path, "integer %s is out of range; quote it to compare as a string", n.Value)
			return "", false
		}
		return strconv.FormatInt(i, 10), true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			l.problemf(n, path, "%s is not a boolean", n.Value)
			return "", false
		}
		return strconv.FormatBool(b), true
	case "!!null":
		l.problemf(n, path, "a required claim value must not be empty")
		return "", false
	}
	l.problemf(n, path, "a required claim value must be a string, an integer or a boolean, not %s; quote it to compare as a string", describe(n))
	return "", false
}

func (l *loader) claimHeaders(n *yaml.Node, path string, az *Authorizer) []ClaimHeader {
	ps, _ := l.mapping(n, path)
	out := make([]ClaimHeader, 0, len(ps))
	seen := map[string]*yaml.Node{}
	for _, p := range ps {
		pp := keyPath(path, p.name)
		h := strings.ToLower(p.name)
		if err := checkClaimHeaderName(h); err != nil {
			l.problemf(p.key, pp, "%v", err)
			continue
		}
		if first, dup := seen[h]; dup {
			l.problemf(p.key, pp, "header %q is already set by %q at line %d (header names are case-insensitive)", h, first.Value, first.Line)
			continue
		}
		seen[h] = p.key
		if az != nil && az.Source.Kind == SourceHeader && az.Source.Name == h {
			l.problemf(p.key, pp, "header %q is this route's identity source (%s)", h, az.Source)
			continue
		}
		c, ok := l.str(p.val, pp)
		if !ok {
			continue
		}
		if c == "" {
			l.problemf(p.val, pp, "claim name must not be empty")
			continue
		}
		out = append(out, ClaimHeader{Header: h, Claim: c})
	}
	slices.SortFunc(out, func(a, b ClaimHeader) int { return cmp.Compare(a.Header, b.Header) })
	return out
}

// crossCheckRoutes reports duplicate names and routes that match exactly
// the same requests: API Gateway cannot have two such resources, and here
// one of them would silently never match.
func (l *loader) crossCheckRoutes() {
	names := map[string]*routeDef{}
	shapes := map[string][]*routeDef{}
	for _, d := range l.routes {
		if d.name != nil {
			if first, dup := names[d.r.Name]; dup {
				l.problemf(d.name, keyPath(d.path, "name"), "duplicate route name %q (first at %s, line %d)", d.r.Name, first.path, first.name.Line)
			} else {
				names[d.r.Name] = d
			}
		}
		if !d.matchOK {
			continue
		}
		key := shapeKey(d.r.segs) + "\x00" + d.r.host.String()
		for _, o := range shapes[key] {
			if common := o.r.methods & d.r.methods; common != 0 {
				l.problemf(d.match, keyPath(d.path, "match"), "matches exactly the same requests as route %q (%s, line %d): same path shape, same host, methods %s in common", o.r.Name, o.path, o.match.Line, common)
				break
			}
		}
		shapes[key] = append(shapes[key], d)
	}
}

var responseTypes = []string{"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "AUTHORIZER_FAILURE", "DEFAULT_4XX", "DEFAULT_5XX"}

func (l *loader) gatewayResponses(n *yaml.Node) {
	ps, _ := l.mapping(n, "gatewayResponses")
	for _, p := range ps {
		path := keyPath("gatewayResponses", p.name)
		if !slices.Contains(responseTypes, p.name) {
			l.problemf(p.key, path, "unknown gateway response type %q (known: %s)", p.name, strings.Join(responseTypes, ", "))
			continue
		}
		f, ok := l.fields(p.val, path, "statusCode", "headers")
		if f == nil && !ok {
			continue
		}
		var gr GatewayResponse
		if sp, has := f["statusCode"]; has {
			var code int
			if sp.val.Kind == yaml.AliasNode {
				ok = false
			} else if sp.val.Kind != yaml.ScalarNode || sp.val.ShortTag() != "!!int" || sp.val.Decode(&code) != nil {
				l.problemf(sp.val, keyPath(path, "statusCode"), "must be an integer status code, not %s", describe(sp.val))
				ok = false
			} else if code < 400 || code > 599 {
				l.problemf(sp.val, keyPath(path, "statusCode"), "status code %d is outside 400-599: a denial must stay a denial", code)
				ok = false
			} else {
				gr.StatusCode = code
			}
		}
		if hp, has := f["headers"]; has {
			hs, hok := l.responseHeaders(hp.val, keyPath(path, "headers"))
			gr.Headers = hs
			ok = ok && hok
		}
		if ok {
			l.responses[p.name] = gr
		}
	}
}

func (l *loader) responseHeaders(n *yaml.Node, path string) ([]Header, bool) {
	ps, ok := l.mapping(n, path)
	out := make([]Header, 0, len(ps))
	seen := map[string]*yaml.Node{}
	for _, p := range ps {
		pp := keyPath(path, p.name)
		name := strings.ToLower(p.name)
		if first, dup := seen[name]; dup {
			l.problemf(p.key, pp, "header %q is already given as %q at line %d (header names are case-insensitive)", name, first.Value, first.Line)
			ok = false
			continue
		}
		seen[name] = p.key
		v, vok := l.str(p.val, pp)
		if !vok {
			ok = false
			continue
		}
		if err := checkResponseHeader(name, v); err != nil {
			l.problemf(p.key, pp, "%v", err)
			ok = false
			continue
		}
		out = append(out, Header{Name: name, Value: v})
	}
	slices.SortFunc(out, func(a, b Header) int { return cmp.Compare(a.Name, b.Name) })
	return out, ok
}

// ---- compile ----

// compile builds the Snapshot; it runs only when there are no problems.
func (l *loader) compile() *Snapshot {
	s := &Snapshot{
		byName:       make(map[string]*Route, len(l.routes)),
		trie:         &node{},
		defaultAllow: l.defaultAll,
		responses:    l.responses,
	}
	var headers []string
	for _, d := range l.routes {
		s.routes = append(s.routes, d.r)
		s.byName[d.r.Name] = d.r
		s.trie.insert(d.r)
		for _, h := range d.r.ClaimHeaders {
			headers = append(headers, h.Header)
		}
	}
	s.trie.finish()
	slices.Sort(headers)
	s.claimHeaders = slices.Clip(slices.Compact(headers))

	// Only authorizers that a route uses contribute key sources: an unused
	// authorizer with an unreachable JWKS must not hold readiness back.
	used := map[*Authorizer]bool{}
	for _, r := range s.routes {
		if r.Authorizer != nil {
			used[r.Authorizer] = true
		}
	}
	for _, def := range l.authorizers {
		s.authorizers = append(s.authorizers, def.az)
		if !used[def.az] {
			continue
		}
		for _, p := range def.az.Token.Pools {
			s.keySources = append(s.keySources, p.Keys)
		}
	}
	slices.SortFunc(s.authorizers, func(a, b *Authorizer) int { return cmp.Compare(a.Name, b.Name) })
	for _, az := range s.authorizers {
		az.Kept, az.KeepGroups = kept(az, s.routes)
		az.Fingerprint = fingerprint(az.Token, az.Kept, az.KeepGroups)
	}
	slices.SortFunc(s.keySources, compareSource)
	s.keySources = slices.Compact(s.keySources)
	return s
}

// kept returns the claims the routes using az read beyond the fixed ones
// (claim headers and claim requirements), and whether any requires groups.
func kept(az *Authorizer, routes []*Route) ([]string, bool) {
	var names []string
	groups := false
	for _, r := range routes {
		if r.Authorizer != az {
			continue
		}
		for _, h := range r.ClaimHeaders {
			names = append(names, h.Claim)
		}
		for _, c := range r.Claims {
			names = append(names, c.Claim)
		}
		groups = groups || len(r.Groups) > 0
	}
	slices.Sort(names)
	return slices.Clip(slices.Compact(names)), groups
}

func compareSource(a, b jwks.Source) int {
	return cmp.Or(cmp.Compare(a.URL, b.URL), cmp.Compare(a.File, b.File))
}
