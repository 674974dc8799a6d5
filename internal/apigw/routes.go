package apigw

import (
	"fmt"
	"slices"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// route is one route of the policy.
type route struct {
	name     string
	template string
	shape    string   // the template with parameter names erased
	methods  []string // nil for ANY
	any      bool     // from x-amazon-apigateway-any-method or $default
	label    string   // e.g. GET /pets, for comments
	from     string   // JSON path of the operation
	at       node     // the operation
	opID     string
	noAuth   bool
	az       *authorizer
	mode     string
	scopes   []string
	deny     bool // not carried: the route denies every request
	notes    []string
	catchAll bool // from $default
}

// methodOf maps the operation keys of a path item to methods.
var methodOf = map[string]string{
	"get": "GET", "put": "PUT", "post": "POST", "delete": "DELETE",
	"options": "OPTIONS", "head": "HEAD", "patch": "PATCH",
	"x-amazon-apigateway-any-method": "ANY",
}

// allMethods are the methods API Gateway routes, in the policy's order.
var allMethods = []string{"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}

// readPaths turns every operation into a route, then gives ANY routes the
// methods no other route of their path has, adds the $default catch-all
// and names the routes.
func (im *importer) readPaths() {
	paths, _ := im.root.get("paths")
	var defaults []*route
	for _, p := range paths.members() {
		if p.name == "$default" && im.http {
			defaults = append(defaults, im.operations(p, "/{proxy+}")...)
			continue
		}
		if err := policy.CheckTemplate(p.name); err != nil {
			im.report(p.val, "path not carried: %v; its requests match no route, or a less specific one", err)
			continue
		}
		im.routes = append(im.routes, im.operations(p, p.name)...)
	}
	im.routes = im.resolveMethods(im.routes)
	im.routes = append(im.routes, im.catchAll(defaults)...)
	im.rNames = newNames()
	for _, r := range im.routes {
		r.name = im.rNames.unique(r.baseName(), "route")
	}
}

// operations reads the operations of one path item.
func (im *importer) operations(p member, template string) []*route {
	if !p.val.isMap() {
		im.report(p.val, "path item is not a mapping; not carried")
		return nil
	}
	var out []*route
	for _, op := range p.val.members() {
		method, ok := methodOf[strings.ToLower(op.name)]
		switch {
		case ok:
		case strings.EqualFold(op.name, "trace"):
			im.report(op.val, "method TRACE not carried: API Gateway does not route it")
			continue
		case op.name == "$ref":
			im.report(op.val, "path item reference not followed: its operations are not carried")
			continue
		default:
			continue // parameters, summary, servers, extensions
		}
		r := &route{template: template, shape: shape(template), from: op.val.path, at: op.val, opID: op.val.getStr("operationId")}
		if method == "ANY" {
			r.any = true
		} else {
			r.methods = []string{method}
		}
		r.label = method + " " + p.name
		im.auth(r, op.val)
		out = append(out, r)
	}
	return out
}

// shape erases parameter names: /pets/{id} and /pets/{petId} match the
// same requests.
func shape(template string) string {
	segs := strings.Split(template, "/")
	for i, s := range segs {
		switch {
		case strings.HasSuffix(s, "+}"):
			segs[i] = "{+}"
		case strings.HasPrefix(s, "{"):
			segs[i] = "{}"
		}
	}
	return strings.Join(segs, "/")
}

// requirement is one entry of a security requirement object.
type requirement struct {
	s      *scheme
	name   string
	scopes []string
	at     node
}

// auth sets what a route requires from the operation's security (else the
// document's): the first alternative that names one carried authorizer
// (and nothing else but API keys) is carried; with none, the route denies
// every request.
func (im *importer) auth(r *route, op node) {
	sec, has := op.get("security")
	if !has {
		sec, has = im.root.get("security")
	}
	if xa, ok := op.get("x-amazon-apigateway-auth"); ok {
		switch t := strings.ToUpper(xa.getStr("type")); t {
		case "AWS_IAM":
			im.denyRoute(r, []requirement{{at: xa}}, []string{"AWS_IAM authorization (SigV4)"})
			return
		case "NONE", "":
		default:
			if !has {
				im.denyRoute(r, []requirement{{at: xa}}, []string{"authorization type " + t + " without a security requirement"})
				return
			}
		}
	}
	if !has || (sec.isList() && len(sec.Content) == 0) {
		r.noAuth = true
		return
	}
	if !sec.isList() {
		im.denyRoute(r, []requirement{{at: sec}}, []string{"a security requirement that is not a list"})
		return
	}
	var blocked []requirement
	var whys []string
	for i, alt := range sec.items() {
		carry, keys, blockers := im.alternative(alt)
		if carry == nil || len(blockers) > 0 {
			for _, b := range blockers {
				blocked = append(blocked, b)
				whys = append(whys, b.why())
			}
			continue
		}
		im.carry(r, carry, keys)
		for _, other := range sec.items()[i+1:] {
			im.report(other, "alternative security requirement not carried: a route has one authorizer; requests only it would admit are denied")
		}
		for _, b := range blocked {
			im.report(b.at, "alternative security requirement (%s) not carried: requests only it would admit are denied", b.why())
		}
		return
	}
	im.denyRoute(r, blocked, whys)
}

func (q requirement) why() string {
	if q.s == nil {
		return fmt.Sprintf("security scheme %q, which the export does not define", q.name)
	}
	return q.s.why
}

// alternative sorts one security requirement object's entries: the carried
// authorizer (at most one), API keys, and what blocks carrying it.
func (im *importer) alternative(alt node) (carry *requirement, keys, blockers []requirement) {
	ms := alt.members()
	if len(ms) == 0 {
		return nil, nil, []requirement{{at: alt, s: &scheme{why: "an anonymous alternative ({})"}}}
	}
	for _, m := range ms {
		q := requirement{s: im.schemes[m.name], name: m.name, at: m.val}
		scopes, ok := m.val.strs()
		q.scopes = scopes
		switch {
		case q.s == nil:
			blockers = append(blockers, q)
		case !ok:
			// Scopes that cannot be read must not read as "no scopes".
			q.s = &scheme{why: fmt.Sprintf("scopes of %q that are not a list of strings", m.name)}
			blockers = append(blockers, q)
		case q.s.az != nil && carry == nil:
			carry = &q
		case q.s.az != nil:
			q.s = &scheme{why: fmt.Sprintf("a second authorizer (%q) in one requirement", m.name)}
			blockers = append(blockers, q)
		case q.s.apiKey:
			keys = append(keys, q)
		default:
			blockers = append(blockers, q)
		}
	}
	if carry == nil {
		// API keys alone authorize nobody: the route cannot be carried.
		blockers, keys = append(blockers, keys...), nil
	}
	return carry, keys, blockers
}

// carry gives the route the requirement's authorizer and scopes.
func (im *importer) carry(r *route, q *requirement, keys []requirement) {
	var scopes []string
	for i, s := range q.scopes {
		if err := policy.CheckWord(s); err != nil {
			im.report(q.at.items()[i], "scope not carried: %v", err)
			continue
		}
		if !slices.Contains(scopes, s) {
			scopes = append(scopes, s)
		}
	}
	if len(q.scopes) > 0 && len(scopes) == 0 {
		// Dropping every scope would admit any token: deny instead.
		im.denyRoute(r, []requirement{{at: q.at, s: &scheme{why: "scopes that cannot be carried"}}}, []string{"scopes that cannot be carried"})
		return
	}
	r.az, r.scopes = q.s.az, scopes
	switch {
	case q.s.az.jwt:
		r.mode = "jwt"
	case len(scopes) > 0:
		r.mode = "access-scopes"
	default:
		r.mode = "identity-claims"
	}
	for _, k := range keys {
		im.report(k.at, "%s not enforced: API Gateway also required an API key here; the route checks the token only", k.why())
		r.notes = append(r.notes, "API Gateway also required an API key here, which is not enforced.")
	}
}

// denyRoute makes r deny every request: it keeps the route, so its
// requests are not judged by a less specific route instead.
func (im *importer) denyRoute(r *route, blocked []requirement, whys []string) {
	for _, b := range blocked {
		im.report(b.at, "%s not carried: route %s denies every request", b.why(), r.label)
	}
	r.deny, r.az, r.mode = true, im.denyAuthorizer(), "identity-claims"
	r.notes = append(r.notes, "NOT CARRIED: "+strings.Join(whys, "; ")+".", "This route denies every request until you rewrite it.")
}

// resolveMethods gives each ANY route the methods that no other route of
// its path shape has. HEAD stays with a GET route of the path (a GET route
// also serves HEAD). A route that repeats a method of its shape is
// reported and dropped.
func (im *importer) resolveMethods(routes []*route) []*route {
	byShape := map[string]map[string]bool{}
	var out []*route
	for _, r := range routes {
		taken := byShape[r.shape]
		if taken == nil {
			taken = map[string]bool{}
			byShape[r.shape] = taken
		}
		if !r.any {
			if taken[r.methods[0]] {
				im.report(r.at, "%s repeats a method of another route for the same path shape; not carried", r.label)
				continue
			}
			taken[r.methods[0]] = true
		}
		out = append(out, r)
	}
	var final []*route
	seenAny := map[string]bool{}
	for _, r := range out {
		if r.any {
			if seenAny[r.shape] {
				im.report(r.at, "%s repeats another ANY route for the same path shape; not carried", r.label)
				continue
			}
			seenAny[r.shape] = true
			if !im.complement(r, byShape[r.shape]) {
				continue
			}
		}
		final = append(final, r)
	}
	return final
}

// complement narrows an ANY route to the methods not taken; false when
// none are left.
func (im *importer) complement(r *route, taken map[string]bool) bool {
	if len(taken) == 0 {
		return true
	}
	for _, m := range allMethods {
		if !taken[m] && !(m == "HEAD" && taken["GET"]) {
			r.methods = append(r.methods, m)
		}
	}
	if len(r.methods) == 0 {
		return false
	}
	r.notes = append(r.notes, "The methods no other route of this path has.")
	if taken["GET"] && !taken["HEAD"] {
		r.notes = append(r.notes, "HEAD is judged by this path's GET route (a GET route also serves HEAD); API Gateway would use this one.")
	}
	return true
}

// catchAll turns the HTTP API's $default route into routes for / and
// /{proxy+}, with the methods no other route of those paths has.
func (im *importer) catchAll(defaults []*route) []*route {
	if len(defaults) == 0 {
		return nil
	}
	d := defaults[0]
	for _, extra := range defaults[1:] {
		im.report(extra.at, "a second $default operation; not carried")
	}
	taken := map[string]map[string]bool{shape("/"): {}, shape("/{proxy+}"): {}}
	anyTaken := map[string]bool{}
	for _, r := range im.routes {
		if _, ok := taken[r.shape]; !ok {
			continue
		}
		if r.any && len(r.methods) == 0 {
			anyTaken[r.shape] = true
		}
		for _, m := range r.methods {
			taken[r.shape][m] = true
		}
	}
	var out []*route
	for _, t := range []struct{ template, shape, name string }{{"/{proxy+}", shape("/{proxy+}"), "default"}, {"/", shape("/"), "default-root"}} {
		if anyTaken[t.shape] {
			continue
		}
		r := *d
		r.template, r.shape, r.any, r.catchAll, r.methods = t.template, t.shape, true, true, nil
		r.opID, r.label = t.name, "$default"
		r.notes = append(slices.Clone(d.notes), "$default: what no other route matches.")
		if !im.complement(&r, taken[t.shape]) {
			continue
		}
		out = append(out, &r)
	}
	return out
}

// baseName is the route's name before it is made unique: its operationId,
// else its method and path.
func (r *route) baseName() string {
	if r.opID != "" && sanitize(r.opID) != "" {
		return r.opID
	}
	method := "any"
	if !r.any {
		method = strings.ToLower(r.methods[0])
	}
	p := strings.NewReplacer("{", "", "}", "", "+", "").Replace(r.template)
	if p == "/" {
		p = "root"
	}
	return method + "-" + p
}

// names hands out unique names.
type names struct {
	used map[string]bool
	next map[string]int // the next suffix to try for a base
}

func newNames() *names { return &names{used: map[string]bool{}, next: map[string]int{}} }

// unique makes base a valid, unused name: characters outside
// [A-Za-z0-9._-] become '-', and a taken name gets -2, -3, ...
func (ns *names) unique(base, fallback string) string {
	name := sanitize(base)
	if name == "" || policy.CheckName(name) != nil {
		name = fallback
	}
	candidate := name
	for ns.used[candidate] {
		i := max(ns.next[name], 2)
		ns.next[name] = i + 1
		candidate = fmt.Sprintf("%s-%d", name, i)
	}
	ns.used[candidate] = true
	return candidate
}

// maxBase leaves room for a -NNN suffix within the policy's 128.
const maxBase = 120

func sanitize(s string) string {
	var b strings.Builder
	dash := false
	for i := 0; i < len(s) && b.Len() < maxBase; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' {
			b.WriteByte(c)
			dash = false
			continue
		}
		if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimRight(b.String(), "-")
}
