package apigw

import (
	"slices"
	"strconv"
	"strings"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// gatewayResponse is one carried x-amazon-apigateway-gateway-responses
// entry.
type gatewayResponse struct {
	typ     string
	from    string
	status  int
	headers [][2]string
}

// carriedResponses are the gateway response types the service answers
// with (an authorizer's denials, a missing route, and their defaults).
// The other types are answers to throttling, WAF, integrations, API keys
// and request validation: nothing the service ever sends, so they are not
// read.
var carriedResponses = []string{"UNAUTHORIZED", "ACCESS_DENIED", "MISSING_AUTHENTICATION_TOKEN", "AUTHORIZER_FAILURE", "DEFAULT_4XX", "DEFAULT_5XX"}

// defaultTemplate is API Gateway's own body for its responses, which the
// service's bodies already are ({"message":"..."}).
const defaultTemplate = `{"message":$context.error.messageString}`

// readGatewayResponses carries static headers and status codes.
func (im *importer) readGatewayResponses() {
	gr, _ := im.root.get("x-amazon-apigateway-gateway-responses")
	seen := map[string]bool{}
	for _, m := range gr.members() {
		typ := strings.ToUpper(m.name)
		if !slices.Contains(carriedResponses, typ) {
			continue
		}
		if seen[typ] {
			im.report(m.val, "gateway response %s given twice; not carried", typ)
			continue
		}
		seen[typ] = true
		r := gatewayResponse{typ: typ, from: m.val.path}
		for _, f := range m.val.members() {
			switch f.name {
			case "statusCode":
				r.status = im.statusCode(f.val)
			case "responseParameters":
				r.headers = im.responseHeaders(f.val)
			case "responseTemplates":
				for _, t := range f.val.members() {
					if body, _ := t.val.str(); strings.Join(strings.Fields(body), "") != defaultTemplate {
						im.report(t.val, "response body not carried: the service answers {\"message\":\"...\"} with API Gateway's messages")
					}
				}
			default:
				im.report(f.val, "gateway response field %s not carried", f.name)
			}
		}
		if r.status != 0 || len(r.headers) > 0 {
			im.response = append(im.response, r)
		}
	}
}

func (im *importer) statusCode(v node) int {
	text, _ := v.str()
	code, err := strconv.Atoi(text)
	if err != nil || code < 400 || code > 599 {
		im.report(v, "statusCode %q not carried: a denial keeps a 4xx or 5xx status", text)
		return 0
	}
	return code
}

// responseHeaders carries gatewayresponse.header.NAME: 'static value'.
func (im *importer) responseHeaders(v node) [][2]string {
	var out [][2]string
	seen := map[string]bool{}
	for _, p := range v.members() {
		name, isHeader := strings.CutPrefix(p.name, "gatewayresponse.header.")
		value, _ := p.val.str()
		static := len(value) >= 2 && value[0] == '\'' && value[len(value)-1] == '\''
		switch {
		case !isHeader:
			im.report(p.val, "response parameter %s not carried", p.name)
		case !static:
			im.report(p.val, "header %s not carried: its value %s is computed per request; only quoted static values are", name, value)
		case seen[strings.ToLower(name)]:
			im.report(p.val, "header %s given twice; not carried", name)
		default:
			value = value[1 : len(value)-1]
			if err := policy.CheckResponseHeader(name, value); err != nil {
				im.report(p.val, "header %s not carried: %v", name, err)
				continue
			}
			seen[strings.ToLower(name)] = true
			out = append(out, [2]string{name, value})
		}
	}
	return out
}
