package apigw

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v4"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// emit writes the policy: authorizers in the order of their schemes, the
// deny-all placeholder last; routes in the order of the export; then
// defaultAction deny (REST's answer to a request no resource matches) and
// the carried gateway responses. Every authorizer and route says where it
// came from.
func (im *importer) emit(file string) ([]byte, error) {
	root := mapping()
	root.add("apiVersion", str(policy.APIVersion))
	if azs := im.emitAuthorizers(); len(azs.Content) > 0 {
		root.add("authorizers", azs)
	}
	routes := &yaml.Node{Kind: yaml.SequenceNode}
	for _, r := range im.routes {
		routes.Content = append(routes.Content, im.emitRoute(r))
	}
	if len(routes.Content) == 0 {
		// A policy has at least one route; an export without operations
		// gets one that matches nothing API Gateway would route.
		n := mapping()
		n.HeadComment = "The export has no operation that could be carried."
		n.add("name", str(im.rNames.unique("no-operations", "route")))
		n.add("match", flow(mapping().add("path", str("/.well-known/extauthz-no-operations"))))
		n.add("authorization", str("NONE"))
		routes.Content = append(routes.Content, n.Node)
	}
	root.add("routes", routes)
	unmatched := "As API Gateway REST: a request no route matches is refused (403 Missing Authentication Token)."
	if im.http {
		unmatched = "A request no route matches is refused: 403 Missing Authentication Token (HTTP API answers 404 Not Found)."
	}
	root.addc(unmatched, "defaultAction", str("deny"))
	if len(im.response) > 0 {
		root.add("gatewayResponses", im.emitResponses())
	}
	doc := &yaml.Node{Kind: yaml.DocumentNode, HeadComment: im.header(file), Content: []*yaml.Node{root.Node}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("write policy: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("write policy: %w", err)
	}
	return b.Bytes(), nil
}

func (im *importer) header(file string) string {
	lines := []string{
		"Imported by `extauthz import apigateway` from " + file + ", an API Gateway " + im.kind() + " export.",
		"Each authorizer and route names the place in the export it came from (a JSON path).",
	}
	if n := len(im.findings); n > 0 {
		lines = append(lines, fmt.Sprintf("%d things could not be carried: they are listed on stderr, and routes that", n),
			"could not be carried deny every request. Review them before you deploy.")
	}
	return strings.Join(lines, "\n")
}

func (im *importer) emitAuthorizers() *ymap {
	azs := mapping()
	emit := func(az *authorizer) {
		n := mapping()
		pools := &yaml.Node{Kind: yaml.SequenceNode}
		for _, arn := range az.arns {
			pools.Content = append(pools.Content, mapping().add("arn", str(arn)).Node)
		}
		if az.poolID != "" {
			pools.Content = append(pools.Content, mapping().add("userPoolId", str(az.poolID)).add("issuer", str(az.issuer)).Node)
		}
		n.add("userPools", pools)
		if len(az.clients) > 0 {
			n.add("appClientIds", flow(list(az.clients...)))
		}
		n.add("identitySource", str(az.source))
		if az.ttl != "" {
			n.add("resultTtl", str(az.ttl))
		}
		comment := "Placeholder: no authorizer of the export could be carried. Its pool does not exist,\nso a service running this policy never becomes ready until you replace it."
		if !az.placeholder {
			kind := "COGNITO_USER_POOLS authorizer"
			if az.jwt {
				kind = "JWT authorizer"
			}
			comment = strings.Join(append([]string{kind + " from " + az.from}, az.note...), "\n")
		}
		azs.addc(comment, az.name, n)
	}
	for _, name := range im.order {
		if az := im.schemes[name].az; az != nil {
			emit(az)
		}
	}
	if im.deny != nil && im.deny.placeholder {
		emit(im.deny)
	}
	return azs
}

func (im *importer) emitRoute(r *route) *yaml.Node {
	n := mapping()
	n.HeadComment = strings.Join(append([]string{r.label + " from " + r.from}, r.notes...), "\n")
	n.add("name", str(r.name))
	m := mapping()
	if !r.any || len(r.methods) > 0 {
		m.add("methods", flow(list(r.methods...)))
	}
	m.add("path", str(r.template))
	n.add("match", flow(m))
	if r.noAuth {
		n.add("authorization", str("NONE"))
		return n.Node
	}
	n.add("authorizer", str(r.az.name))
	n.add("mode", str(r.mode))
	if len(r.scopes) > 0 {
		n.add("scopes", flow(list(r.scopes...)))
	}
	if r.deny {
		// Verification admits token_use id or access only, so this claim
		// requirement never holds: every request is denied, 401 without a
		// valid token, 403 with one.
		n.add("claims", flow(mapping().add("token_use", str("not-carried"))))
	}
	return n.Node
}

func (im *importer) emitResponses() *ymap {
	out := mapping()
	for _, r := range im.response {
		n := mapping()
		if r.status != 0 {
			n.add("statusCode", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(r.status)})
		}
		if len(r.headers) > 0 {
			h := mapping()
			for _, kv := range r.headers {
				h.add(kv[0], str(kv[1]))
			}
			n.add("headers", h)
		}
		out.addc("from "+r.from, r.typ, n)
	}
	return out
}

// ymap is a YAML mapping node being built.
type ymap struct{ *yaml.Node }

func mapping() *ymap { return &ymap{&yaml.Node{Kind: yaml.MappingNode}} }

func (m *ymap) add(k string, v any) *ymap { return m.addc("", k, v) }

// addc adds k: v with a comment above the key.
func (m *ymap) addc(comment, k string, v any) *ymap {
	var vn *yaml.Node
	switch v := v.(type) {
	case *yaml.Node:
		vn = v
	case *ymap:
		vn = v.Node
	}
	kn := str(k)
	kn.HeadComment = comment
	m.Content = append(m.Content, kn, vn)
	return m
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func list(items ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for _, s := range items {
		n.Content = append(n.Content, str(s))
	}
	return n
}

// flow renders a collection on one line: {a: 1} and [a, b].
func flow(v any) *yaml.Node {
	var n *yaml.Node
	switch v := v.(type) {
	case *yaml.Node:
		n = v
	case *ymap:
		n = v.Node
	}
	n.Style = yaml.FlowStyle
	for _, c := range n.Content {
		if c.Kind == yaml.SequenceNode {
			c.Style = yaml.FlowStyle
		}
	}
	return n
}
