package check

import (
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// class is one row of the response table: what each kind of denial answers.
type class struct {
	grpc      codes.Code
	status    int
	body      string // JSON
	wwwAuth   string // WWW-Authenticate, "" for none
	errorType string // x-amzn-ErrorType, as API Gateway sends it
	kind      policy.ResponseKind
}

var (
	classMissing = class{codes.Unauthenticated, http.StatusUnauthorized,
		`{"message":"Unauthorized"}`, `Bearer`, "UnauthorizedException", policy.Unauthorized}
	classInvalid = class{codes.Unauthenticated, http.StatusUnauthorized,
		`{"message":"Unauthorized"}`, `Bearer error="invalid_token"`, "UnauthorizedException", policy.Unauthorized}
	classExpired = class{codes.Unauthenticated, http.StatusUnauthorized,
		`{"message":"The incoming token has expired"}`,
		`Bearer error="invalid_token", error_description="token expired"`, "UnauthorizedException", policy.Unauthorized}
	classForbidden = class{codes.PermissionDenied, http.StatusForbidden,
		`{"message":"Forbidden"}`, `Bearer error="insufficient_scope"`, "AccessDeniedException", policy.AccessDenied}
	classNoRoute = class{codes.PermissionDenied, http.StatusForbidden,
		`{"message":"Missing Authentication Token"}`, "", "MissingAuthenticationTokenException", policy.MissingAuthenticationToken}
	// classTooLarge has no gatewayResponses kind (API Gateway's own front
	// end refuses such requests before any authorizer runs).
	classTooLarge = class{codes.InvalidArgument, http.StatusRequestHeaderFieldsTooLarge,
		`{"message":"Request Header Fields Too Large"}`, "", "BadRequestException", 0}
	classUnavailable = class{codes.Unavailable, http.StatusServiceUnavailable,
		`{"message":"Service Unavailable"}`, "", "AuthorizerFailureException", policy.AuthorizerFailure}
	// classBadRequest answers an authorization request that cannot be
	// decided (the HTTP edge's forward-auth request without its original
	// method or URI). It is the proxy's misconfiguration, not the client's
	// denial, so no gatewayResponses kind restyles it.
	classBadRequest = class{codes.InvalidArgument, http.StatusBadRequest,
		`{"message":"Bad Request"}`, "", "BadRequestException", 0}
)

// classes maps every denial reason to its response. A code missing from
// this table is answered as classUnavailable: an unknown state fails closed.
var classes = map[reason.Code]class{
	reason.TokenMissing: classMissing,

	reason.TokenAmbiguous:   classInvalid,
	reason.TokenMalformed:   classInvalid,
	reason.HeaderInvalid:    classInvalid,
	reason.AlgNotAllowed:    classInvalid,
	reason.KidMissing:       classInvalid,
	reason.KidUnknown:       classInvalid,
	reason.SignatureInvalid: classInvalid,
	reason.IssuerUnknown:    classInvalid,
	reason.ClaimInvalid:     classInvalid,
	reason.TokenUseMismatch: classInvalid,
	reason.ClientNotAllowed: classInvalid,
	reason.TokenRevoked:     classInvalid,

	reason.TokenExpired: classExpired,

	reason.ScopeMissing:  classForbidden,
	reason.GroupMissing:  classForbidden,
	reason.ClaimMismatch: classForbidden,

	reason.RouteNotFound: classNoRoute,
	reason.PathInvalid:   classNoRoute,
	reason.HostInvalid:   classNoRoute,

	reason.RequestTooLarge: classTooLarge,

	reason.JWKSUnavailable:       classUnavailable,
	reason.DeadlineExceeded:      classUnavailable,
	reason.Canceled:              classUnavailable,
	reason.Internal:              classUnavailable,
	reason.RevocationUnavailable: classUnavailable,

	reason.RequestInvalid: classBadRequest,
}

func classOf(code reason.Code) class {
	if c, ok := classes[code]; ok {
		return c
	}
	return classUnavailable
}

// Denial is the protocol-neutral form of a denied answer: what Envoy will
// send to the client. The gRPC edge and `extauthz explain` both use it.
type Denial struct {
	GRPCCode codes.Code
	Status   int
	Body     string
	Headers  []Header
}

// Header is one response header.
type Header struct {
	Name, Value string
}

// DenialFor returns the answer to a denial with the given reason on route
// (nil when none matched), with the policy's gatewayResponses applied.
func DenialFor(snap *policy.Snapshot, code reason.Code, route *policy.Route) Denial {
	c := classOf(code)
	d := Denial{GRPCCode: c.grpc, Status: c.status, Body: c.body}
	d.Headers = make([]Header, 0, 6)
	// Names as the documentation and API Gateway spell them; Envoy lower-cases
	// ext_authz header names itself, and a client reading this response
	// directly finds the spelling it was told to expect.
	d.Headers = append(d.Headers,
		Header{"Content-Type", "application/json"},
		Header{"x-amzn-ErrorType", c.errorType})
	if c.wwwAuth != "" {
		v := c.wwwAuth
		if code == reason.ScopeMissing && route != nil && len(route.Scopes) > 0 {
			v += `, scope="` + quoteEscape(strings.Join(route.Scopes, " ")) + `"`
		}
		d.Headers = append(d.Headers, Header{"WWW-Authenticate", v})
	}
	if snap != nil {
		gr := snap.GatewayResponse(c.kind)
		// An override may restyle a denial, never turn it into a success:
		// policy validation keeps StatusCode within 400-599.
		if gr.StatusCode != 0 {
			d.Status = gr.StatusCode
		}
		for _, h := range gr.Headers {
			d.Headers = setHeader(d.Headers, h.Name, h.Value)
		}
	}
	// Last, so no override can hide or change the reason.
	d.Headers = setHeader(d.Headers, "x-extauthz-reason", string(code))
	return d
}

func setHeader(hs []Header, name, value string) []Header {
	for i := range hs {
		if strings.EqualFold(hs[i].Name, name) {
			hs[i].Value = value
			return hs
		}
	}
	return append(hs, Header{name, value})
}

// quoteEscape escapes a value for an RFC 7230 quoted-string.
func quoteEscape(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
