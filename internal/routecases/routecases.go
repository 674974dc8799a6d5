// Package routecases holds the route-confusion cases shared by the tests
// that hold the service to agreement with real upstreams: a policy with the
// shapes such attacks need, the protection level of each of its routes, the
// attack requests, and a byte-exact HTTP/1.1 sender that reports which
// upstream handler served a request.
package routecases

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Policy has a protected resource under each weaker fallback real policies
// have (a public catch-all, a hostless or greedy parent, a public literal
// beside a protected parameter). ${POOL}, ${ISSUER} and ${JWKS} are
// testenv's placeholders.
const Policy = `
apiVersion: cognito-extauthz/v1
authorizers:
  users:
    userPools: [{userPoolId: ${POOL}, issuer: ${ISSUER}, jwksUri: ${JWKS}}]
routes:
  - { name: root,      match: { path: / },                              authorization: NONE }
  - { name: public,    match: { path: "/{proxy+}" },                    authorization: NONE }
  - { name: admin,     match: { path: /admin },                         authorizer: users, groups: [admins] }
  - { name: admin-any, match: { path: "/admin/{proxy+}" },              authorizer: users, groups: [admins] }
  - { name: console-any, match: { path: "/console/{proxy+}" },          authorizer: users, groups: [admins] }
  - { name: users-get, match: { path: "/users/{id}", methods: [GET] },  authorizer: users, claimHeaders: { x-user-sub: sub } }
  - { name: pet-api,   match: { path: "/pets/{petId}", host: api.example.com }, authorizer: users, groups: [admins] }
  - { name: pets-any,  match: { path: "/pets/{proxy+}" },               authorizer: users }
  - { name: readme,    match: { path: /files/readme },                  authorization: NONE }
  - { name: file,      match: { path: "/files/{name}" },                authorizer: users }
defaultAction: deny
`

// Level is each route's protection: 0 public, 1 any valid token, 2 the
// admins group. Upstream handlers carry the same names.
var Level = map[string]int{
	"root": 0, "public": 0, "readme": 0,
	"users-get": 1, "pets-any": 1, "file": 1,
	"admin": 2, "admin-any": 2, "pet-api": 2, "console-any": 2,
}

// NoHost as an Attack's Host sends no :authority (no Host line) at all;
// "" means the usual api.example.com.
const NoHost = "-"

// Attack is one request of the route-confusion class and the verdict the
// service must give it when sent without a token ("" means allowed).
type Attack struct {
	Name    string
	Method  string
	Host    string
	Path    string
	Headers map[string]string
	Route   string // context_extensions route
	Want    reason.Code
}

// Authority is the :authority the request carries; "" for NoHost.
func (a Attack) Authority() string {
	switch a.Host {
	case NoHost:
		return ""
	case "":
		return "api.example.com"
	}
	return a.Host
}

// Attacks are the ways through found by an attacker with real Express 4 and
// Go net/http upstreams behind the service, and their neighbours.
var Attacks = []Attack{
	// Case: Express routes /ADMIN to the admin router.
	{Name: "case/upper", Method: "GET", Path: "/ADMIN", Want: reason.PathInvalid},
	{Name: "case/mixed deep", Method: "GET", Path: "/Admin/users", Want: reason.PathInvalid},
	{Name: "case/encoded", Method: "GET", Path: "/%41dmin", Want: reason.PathInvalid},
	{Name: "case/dotless i folds to I", Method: "GET", Path: "/adm%C4%B1n", Want: reason.PathInvalid},
	// Dot segments, whatever Envoy's normalize_path does.
	{Name: "dots/dot-dot out of admin", Method: "GET", Path: "/admin/../public", Want: reason.PathInvalid},
	{Name: "dots/semicolon dot-dot", Method: "GET", Path: "/admin/x;/../../public", Want: reason.PathInvalid},
	{Name: "dots/dot-dot into admin", Method: "GET", Path: "/public/../admin", Want: reason.PathInvalid},
	{Name: "dots/single dot", Method: "GET", Path: "/./admin", Want: reason.PathInvalid},
	{Name: "dots/encoded", Method: "GET", Path: "/public/%2e%2e/admin", Want: reason.PathInvalid},
	// ';' and escapes that upstreams read differently.
	{Name: "semicolon/matrix parameter on admin", Method: "GET", Path: "/admin;jsessionid=1", Want: reason.PathInvalid},
	{Name: "escape/raw reading is a protected param", Method: "GET", Path: "/files/%72eadme", Want: reason.PathInvalid},
	// Host: malformed hosts never skip a host-scoped route.
	{Name: "host/empty", Method: "GET", Host: NoHost, Path: "/pets/7", Want: reason.HostInvalid},
	{Name: "host/two ports", Method: "GET", Host: "api.example.com:443:443", Path: "/pets/7", Want: reason.HostInvalid},
	{Name: "host/userinfo", Method: "GET", Host: "u@api.example.com", Path: "/pets/7", Want: reason.HostInvalid},
	{Name: "host/trailing dots", Method: "GET", Host: "api.example.com..", Path: "/pets/7", Want: reason.HostInvalid},
	{Name: "host/empty port", Method: "GET", Host: "api.example.com:", Path: "/pets/7", Want: reason.HostInvalid},
	{Name: "host/bare ipv6", Method: "GET", Host: "::1", Path: "/pets/7", Want: reason.HostInvalid},
	// Methods: HEAD runs the GET handler; override headers tunnel GET.
	{Name: "method/HEAD is judged as GET", Method: "HEAD", Path: "/users/1", Want: reason.TokenMissing},
	{Name: "method/X-HTTP-Method-Override", Method: "POST", Path: "/users/1", Headers: map[string]string{"x-http-method-override": "GET"}, Want: reason.TokenMissing},
	{Name: "method/X-HTTP-Method", Method: "POST", Path: "/users/1", Headers: map[string]string{"x-http-method": "get"}, Want: reason.TokenMissing},
	{Name: "method/X-Method-Override", Method: "POST", Path: "/users/1", Headers: map[string]string{"x-method-override": "GET"}, Want: reason.TokenMissing},
	{Name: "method/override joined by Envoy", Method: "POST", Path: "/users/1", Headers: map[string]string{"x-http-method-override": "PATCH, GET"}, Want: reason.TokenMissing},
	{Name: "method/_method query", Method: "POST", Path: "/users/1?_method=GET", Want: reason.TokenMissing},
	{Name: "method/override into admin", Method: "POST", Path: "/admin", Headers: map[string]string{"x-http-method-override": "GET"}, Want: reason.TokenMissing},
	// The override query key as upstreams decode it: Express's
	// method-override percent-decodes keys, PHP also makes '.' and ' '
	// into '_', ASP.NET ignores case, Rack 2 splits pairs at ';'.
	{Name: "override key/%5F", Method: "POST", Path: "/users/1?%5Fmethod=GET", Want: reason.TokenMissing},
	{Name: "override key/%5f", Method: "POST", Path: "/users/1?%5fmethod=GET", Want: reason.TokenMissing},
	{Name: "override key/encoded letter", Method: "POST", Path: "/users/1?_%6Dethod=GET", Want: reason.TokenMissing},
	{Name: "override key/after another parameter", Method: "POST", Path: "/users/1?tab=1&%5Fmethod=GET", Want: reason.TokenMissing},
	{Name: "override key/fully encoded", Method: "POST", Path: "/users/1?%5F%6D%65%74%68%6F%64=GET", Want: reason.TokenMissing},
	{Name: "override key/PHP dot", Method: "POST", Path: "/users/1?.method=GET", Want: reason.TokenMissing},
	{Name: "override key/PHP space", Method: "POST", Path: "/users/1?+method=GET", Want: reason.TokenMissing},
	{Name: "override key/upper case", Method: "POST", Path: "/users/1?_METHOD=GET", Want: reason.TokenMissing},
	{Name: "override key/semicolon", Method: "POST", Path: "/users/1?a=1;_method=GET", Want: reason.TokenMissing},
	{Name: "override key/encoded into admin", Method: "POST", Path: "/admin?%5Fmethod=GET", Want: reason.TokenMissing},
	{Name: "override header/underscore spelling", Method: "POST", Path: "/users/1", Headers: map[string]string{"x_http_method_override": "GET"}, Want: reason.TokenMissing},
	// A trailing slash under a greedy route: Go's "/console/", Express's
	// "/console/*" and Spring's "/console/**" serve these from the console.
	{Name: "trailing slash/subtree root", Method: "GET", Path: "/console/", Want: reason.TokenMissing},
	{Name: "trailing slash/repeated", Method: "GET", Path: "/console//", Want: reason.TokenMissing},
	{Name: "trailing slash/with a query", Method: "GET", Path: "/console/?tab=users", Want: reason.TokenMissing},
	{Name: "trailing slash/exact and subtree", Method: "GET", Path: "/admin/", Want: reason.TokenMissing},
	{Name: "trailing slash/HEAD", Method: "HEAD", Path: "/console/", Want: reason.TokenMissing},
	// A route named by Envoy keeps its own methods and host.
	{Name: "named route/DELETE on a GET route", Method: "DELETE", Path: "/users/1", Route: "users-get", Want: reason.RouteNotFound},
	{Name: "named route/other host", Method: "GET", Host: "other.example.com", Path: "/pets/7", Route: "pet-api", Want: reason.RouteNotFound},
	{Name: "named route/malformed host", Method: "GET", Host: "api.example.com:1:2", Path: "/pets/7", Route: "pet-api", Want: reason.HostInvalid},
}

// Requests are the attacks plus ordinary requests on every route with
// every usual method: the agreement tables send all of them.
func Requests() []Attack {
	out := append([]Attack(nil), Attacks...)
	for _, p := range []string{"/", "/public", "/admin", "/admin/x", "/users/1", "/pets/7", "/pets/7/toys",
		"/files/readme", "/files/x", "/files/my%20doc", "/users/AbC", "/console", "/console/", "/console/x",
		"/console/x/", "/pets/", "/pets/7/", "/files/", "/public/", "/users/1?%5Fmethod=GET"} {
		for _, m := range []string{"GET", "HEAD", "POST", "DELETE"} {
			out = append(out, Attack{Name: m + " " + p, Method: m, Path: p})
		}
	}
	return out
}

// GoMux is a real net/http ServeMux with a handler per policy route, behind
// gorilla/handlers-style method override (a POST with
// X-HTTP-Method-Override runs the named method), as Go services commonly
// run. Each handler answers with its name in X-Handler.
func GoMux() http.Handler {
	mux := http.NewServeMux()
	handle := func(pattern, name string) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("X-Handler", name) })
	}
	handle("/", "public")
	handle("/admin", "admin")
	handle("/admin/", "admin-any")
	handle("/console/", "console-any")
	handle("GET /users/{id}", "users-get")
	handle("api.example.com/pets/{petId}", "pet-api")
	handle("/pets/", "pets-any")
	handle("/files/readme", "readme")
	handle("/files/{name}", "file")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if m := strings.ToUpper(r.Header.Get("X-HTTP-Method-Override")); m != "" {
				r.Method = m
			}
		}
		mux.ServeHTTP(w, r)
	})
}

// Served sends a to the upstream at addr byte for byte (no client library
// cleaning the path), with the given extra headers, and returns the
// handler that served it, or "" when none did (a 4xx or 5xx, or a redirect
// to a cleaned path, which would come back through the service as a new
// request).
func Served(addr string, a Attack, extra map[string]string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", fmt.Errorf("dial upstream: %w", err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\n", a.Method, a.Path)
	if a.Host != NoHost {
		fmt.Fprintf(&b, "Host: %s\r\n", a.Authority())
	}
	for _, hs := range []map[string]string{a.Headers, extra} {
		keys := make([]string, 0, len(hs))
		for k := range hs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(&b, "%s: %s\r\n", k, hs[k])
		}
	}
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", fmt.Errorf("write upstream: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: a.Method})
	if err != nil {
		return "", fmt.Errorf("read upstream: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 300 {
		return "", nil
	}
	return resp.Header.Get("X-Handler"), nil
}
