// Package apigw turns an Amazon API Gateway OpenAPI export into a policy:
// REST APIs (OpenAPI 3 or Swagger 2) with COGNITO_USER_POOLS authorizers,
// and HTTP APIs (OpenAPI 3) with JWT authorizers whose issuer is a Cognito
// user pool. What the policy cannot express is listed as findings, each at
// its JSON path in the export; the policy then denies what it could not
// carry, so an import never opens a door the gateway kept shut.
package apigw

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// MaxExportSize bounds what Import reads: API Gateway itself refuses
// definitions over 6 MB.
const MaxExportSize = 16 << 20

// maxDepth bounds the nesting of the export; schemas nest, but not deeply.
const maxDepth = 200

// Finding is one thing of the export the policy does not carry.
type Finding struct {
	Path    string // JSON path in the export, e.g. $.paths["/pets"].get.security
	Message string
	line    int // where it is in the file, for the order of the report
}

func (f Finding) String() string { return f.Path + ": " + f.Message }

// Result is an imported policy.
type Result struct {
	// Policy is the policy file, YAML with comments naming where each
	// authorizer and route came from. It always loads.
	Policy []byte
	// Findings list what was not carried, in the order of the export.
	Findings []Finding
	// Kind names the export: "REST API (OpenAPI 3.0.1)", "HTTP API
	// (OpenAPI 3.0.1)", "REST API (Swagger 2.0)".
	Kind string
}

// NotExportError is returned for input that is not an API Gateway export.
type NotExportError struct{ Reason string }

func (e *NotExportError) Error() string { return "not an API Gateway export: " + e.Reason }

func notExport(format string, args ...any) error {
	return &NotExportError{Reason: fmt.Sprintf(format, args...)}
}

// Import reads an export (JSON or YAML) and returns the policy. name is the
// file name, for the policy's header comment. Input that is not an API
// Gateway export is a *NotExportError.
func Import(data []byte, name string) (*Result, error) {
	root, err := parse(data)
	if err != nil {
		return nil, err
	}
	im := &importer{root: root}
	if err := im.identify(); err != nil {
		return nil, err
	}
	im.sweepExtensions(im.root, 0)
	im.readAuthorizers()
	im.readPaths()
	im.readGatewayResponses()
	out, err := im.emit(name)
	if err != nil {
		return nil, err
	}
	// The policy must load as the service loads it; anything else is a
	// bug here, never something to print.
	if _, err := policy.Parse(out, "imported.yaml", policy.Options{}); err != nil {
		return nil, fmt.Errorf("imported policy does not load: %w", err)
	}
	slices.SortStableFunc(im.findings, func(a, b Finding) int { return cmp.Compare(a.line, b.line) })
	return &Result{Policy: out, Findings: im.findings, Kind: im.kind()}, nil
}

// parse reads the export as one YAML (or JSON) document.
func parse(data []byte) (node, error) {
	if len(data) > MaxExportSize {
		return node{}, notExport("larger than %d bytes", MaxExportSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return node{}, notExport("the file is empty")
		}
		return node{}, notExport("not JSON or YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return node{}, notExport("more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return node{}, notExport("the file is empty")
	}
	root := node{doc.Content[0], "$"}
	if err := plain(root.Node, 0); err != nil {
		return node{}, err
	}
	if !root.isMap() {
		return node{}, notExport("the document is not a mapping")
	}
	return root, nil
}

// plain refuses anchors, aliases, duplicate keys, non-scalar keys and deep
// nesting: exports have none, and an alias bomb must not be expanded.
func plain(n *yaml.Node, depth int) error {
	if depth > maxDepth {
		return notExport("nested more than %d levels", maxDepth)
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return notExport("YAML anchors or aliases at line %d (exports have none)", n.Line)
	}
	if n.Kind == yaml.MappingNode {
		seen := make(map[string]bool, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return notExport("a key that is not a string at line %d", k.Line)
			}
			if seen[k.Value] {
				return notExport("key %q given twice at line %d", k.Value, k.Line)
			}
			seen[k.Value] = true
		}
	}
	for _, c := range n.Content {
		if err := plain(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// importer holds one import's state.
type importer struct {
	root     node
	swagger  bool   // Swagger 2.0, else OpenAPI 3
	version  string // the openapi or swagger value
	http     bool   // an HTTP API export
	findings []Finding
	schemes  map[string]*scheme
	order    []string // scheme names in file order
	routes   []*route
	deny     *authorizer // the authorizer deny-all routes use
	azNames  *names
	rNames   *names
	response []gatewayResponse
}

// report records a finding at n (or, when n is absent, at its parent's
// line with the path given).
func (im *importer) report(at node, format string, args ...any) {
	line := 0
	if at.Node != nil {
		line = at.Line
	}
	im.findings = append(im.findings, Finding{Path: at.path, Message: fmt.Sprintf(format, args...), line: line})
}

func (im *importer) kind() string {
	api := "REST API"
	if im.http {
		api = "HTTP API"
	}
	spec := "OpenAPI " + im.version
	if im.swagger {
		spec = "Swagger " + im.version
	}
	return api + " (" + spec + ")"
}

// identify checks that the document is an OpenAPI 3 or Swagger 2 file
// with paths, and that API Gateway made it: an x-amazon-apigateway
// extension somewhere, or an execute-api server or host.
func (im *importer) identify() error {
	r := im.root
	if v := r.getStr("swagger"); v != "" {
		if v != "2.0" {
			return notExport("swagger %q: only Swagger 2.0 and OpenAPI 3 are API Gateway export formats", v)
		}
		im.swagger, im.version = true, v
	} else if v := r.getStr("openapi"); strings.HasPrefix(v, "3.") {
		im.version = v
	} else {
		return notExport("no openapi: 3.x or swagger: \"2.0\" field")
	}
	paths, ok := r.get("paths")
	if !ok || !paths.isMap() {
		return notExport("no paths")
	}
	if !hasExtension(r.Node, 0) && !executeAPI(r) {
		return notExport("an OpenAPI file without API Gateway extensions or an execute-api address; export it with `aws apigateway get-export --parameters extensions='apigateway'` (REST) or `aws apigatewayv2 export-api` (HTTP)")
	}
	im.http = im.isHTTPAPI()
	return nil
}

func hasExtension(n *yaml.Node, depth int) bool {
	if depth > maxDepth {
		return false
	}
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			if isExtension(n.Content[i].Value) {
				return true
			}
		}
	}
	for _, c := range n.Content {
		if hasExtension(c, depth+1) {
			return true
		}
	}
	return false
}

// executeAPI reports whether the export's server (OpenAPI 3) or host
// (Swagger 2) is an execute-api endpoint.
func executeAPI(r node) bool {
	if strings.Contains(r.getStr("host"), ".execute-api.") {
		return true
	}
	servers, _ := r.get("servers")
	for _, s := range servers.items() {
		if strings.Contains(s.getStr("url"), ".execute-api.") {
			return true
		}
	}
	return false
}

// isHTTPAPI tells an HTTP API export from a REST one: HTTP API exports
// carry x-amazon-apigateway-importexport-version, and only they have a
// $default route or jwt authorizers.
func (im *importer) isHTTPAPI() bool {
	if im.swagger {
		return false
	}
	if _, ok := im.root.get("x-amazon-apigateway-importexport-version"); ok {
		return true
	}
	paths, _ := im.root.get("paths")
	if _, ok := paths.get("$default"); ok {
		return true
	}
	for _, s := range im.securitySchemes() {
		if a, ok := s.val.get("x-amazon-apigateway-authorizer"); ok && strings.EqualFold(a.getStr("type"), "jwt") {
			return true
		}
	}
	return false
}

// securitySchemes returns components.securitySchemes (OpenAPI 3) or
// securityDefinitions (Swagger 2).
func (im *importer) securitySchemes() []member {
	if im.swagger {
		d, _ := im.root.get("securityDefinitions")
		return d.members()
	}
	c, _ := im.root.get("components")
	s, _ := c.get("securitySchemes")
	return s.members()
}

// Extensions by what the import does with them. Informational ones change
// nothing a request is authorized by; handled ones are read where they
// stand (and reported there when they cannot be carried).
var (
	informational = map[string]bool{
		"x-amazon-apigateway-importexport-version":     true,
		"x-amazon-apigateway-integration":              true,
		"x-amazon-apigateway-integrations":             true,
		"x-amazon-apigateway-binary-media-types":       true,
		"x-amazon-apigateway-minimum-compression-size": true,
		"x-amazon-apigateway-api-key-source":           true,
		"x-amazon-apigateway-endpoint-configuration":   true,
		"x-amazon-apigateway-documentation":            true,
		"x-amazon-apigateway-request-validator":        true,
		"x-amazon-apigateway-request-validators":       true,
		"x-amazon-apigateway-tag-value":                true,
		"x-amazon-apigateway-security-policy":          true,
	}
	handled = map[string]bool{
		"x-amazon-apigateway-any-method":        true,
		"x-amazon-apigateway-authorizer":        true,
		"x-amazon-apigateway-authtype":          true,
		"x-amazon-apigateway-auth":              true,
		"x-amazon-apigateway-gateway-responses": true,
		"x-amazon-apigateway-policy":            true,
		"x-amazon-apigateway-cors":              true,
	}
)

// sweepExtensions reports every x-amazon-apigateway extension the import
// does not know, and the API-wide ones it knows it cannot carry. It does
// not look inside integrations.
func (im *importer) sweepExtensions(n node, depth int) {
	if depth > maxDepth {
		return
	}
	for _, m := range n.members() {
		name := strings.ToLower(m.name)
		switch {
		case name == "x-amazon-apigateway-policy":
			im.report(m.val, "resource policy not carried: the service authorizes by token only; restrict callers (source IPs, VPC endpoints, accounts) in front of Envoy")
		case name == "x-amazon-apigateway-cors":
			im.report(m.val, "CORS not carried: API Gateway answers CORS preflight requests itself, without authorization; configure CORS in Envoy (the cors filter runs before ext_authz) or add authorization: NONE routes for OPTIONS")
		case isExtension(name) && !informational[name] && !handled[name]:
			im.report(m.val, "unknown API Gateway extension %s not carried", m.name)
		}
		if informational[name] {
			continue
		}
		im.sweepExtensions(m.val, depth+1)
	}
	for _, it := range n.items() {
		im.sweepExtensions(it, depth+1)
	}
}
