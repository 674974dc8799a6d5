// Package explain runs one decision exactly as a check would and says why:
// which routes could have matched and why each won or lost, and each
// requirement of the matched route with what the token had. The CLI's
// `explain` uses it locally; the Admin/Explain RPC uses it inside a running
// service, from the live policy and keys. Its output never holds the token
// or its signature.
package explain

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	extauthzv1 "github.com/cognito-extauthz/cognito-extauthz/proto/extauthz/v1"
)

// CheckRequest turns an ExplainRequest into the CheckRequest Envoy would
// send for it.
func CheckRequest(req *extauthzv1.ExplainRequest) *authv3.CheckRequest {
	cr := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: strings.ToUpper(req.GetMethod()), Path: req.GetPath(), Host: req.GetHost(),
			Headers: req.GetHeaders(),
		}},
	}}
	if req.GetRoute() != "" {
		cr.Attributes.ContextExtensions = map[string]string{"route": req.GetRoute()}
	}
	return cr
}

// Explain decides req under snap with az, through exactly the translation
// and decision Check uses, and describes the outcome. sources reports the
// state of the key cache, shown alongside (nil: none shown); it is read
// after the decision, which may have loaded keys.
func Explain(ctx context.Context, snap *policy.Snapshot, az *authz.Authorizer, sources func() []jwks.SourceStatus, req *extauthzv1.ExplainRequest) (*extauthzv1.Decision, error) {
	cr := CheckRequest(req)
	d, resp := grpcauthz.Decide(ctx, snap, az, cr)
	msg := describe(d, resp)
	msg.RouteCandidates = candidates(snap, cr)
	for _, r := range authz.Requirements(d) {
		msg.Requirements = append(msg.Requirements, &extauthzv1.Requirement{Name: r.Name, Want: r.Want, Got: r.Got, Ok: r.OK})
	}
	var statuses []jwks.SourceStatus
	if sources != nil {
		statuses = sources()
	}
	for _, st := range statuses {
		ks := &extauthzv1.KeySourceStatus{
			Source: st.Source.String(), Loaded: st.Loaded, Keys: int32(st.Keys), LastError: st.LastError,
		}
		if !st.LastSuccess.IsZero() {
			ks.LastSuccess = timestamppb.New(st.LastSuccess)
		}
		msg.Jwks = append(msg.Jwks, ks)
	}
	if d.Claims != nil {
		claims, err := structpb.NewStruct(plainJSON(d.Claims.Map()).(map[string]any))
		if err != nil {
			return nil, fmt.Errorf("claims: %w", err)
		}
		msg.Claims = claims
	}
	return msg, nil
}

// candidates lists the routes the request could match. A route named by
// context_extensions is the only candidate: path matching is skipped.
func candidates(snap *policy.Snapshot, cr *authv3.CheckRequest) []*extauthzv1.RouteCandidate {
	if snap == nil {
		return nil
	}
	httpReq := cr.GetAttributes().GetRequest().GetHttp()
	if name := cr.GetAttributes().GetContextExtensions()["route"]; name != "" {
		r, ok := snap.RouteByName(name)
		if !ok {
			return []*extauthzv1.RouteCandidate{{Route: name, Why: "named by context_extensions but not in the policy"}}
		}
		c := candidate(r)
		c.Won, c.Why = true, "named by context_extensions; path matching skipped"
		return []*extauthzv1.RouteCandidate{c}
	}
	cs, _ := snap.Candidates(httpReq.GetMethod(), httpReq.GetHost(), httpReq.GetPath())
	out := make([]*extauthzv1.RouteCandidate, 0, len(cs))
	for _, c := range cs {
		rc := candidate(c.Route)
		rc.Won, rc.Why = c.Won, c.Why
		out = append(out, rc)
	}
	return out
}

func candidate(r *policy.Route) *extauthzv1.RouteCandidate {
	return &extauthzv1.RouteCandidate{Route: r.Name, Path: r.Template, Methods: r.MethodsString(), Host: r.HostString()}
}

// describe reads the decision and the CheckResponse Envoy would get into
// the Decision message.
func describe(d *authz.Decision, resp *authv3.CheckResponse) *extauthzv1.Decision {
	code := codes.Code(resp.GetStatus().GetCode())
	// The response's metadata is pre-encoded as Check sends it; an
	// unreadable one shows as none (it cannot be: the encoder is tested
	// against every decision kind).
	md, _ := grpcauthz.Metadata(resp)
	msg := &extauthzv1.Decision{
		Allowed:  code == codes.OK,
		Route:    d.RouteName(),
		Reason:   string(d.Reason),
		Detail:   d.Detail,
		GrpcCode: code.String(),
		DryRun:   d.DryRun,
		Metadata: metadata(md.AsMap()),
	}
	// Lower case, as Envoy forwards them (HTTP/2 on the wire).
	if ok := resp.GetOkResponse(); ok != nil && msg.Allowed {
		for _, h := range ok.GetHeaders() {
			if msg.Headers == nil {
				msg.Headers = map[string]string{}
			}
			msg.Headers[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
		}
		msg.HeadersToRemove = ok.GetHeadersToRemove()
		msg.QueryParametersToRemove = ok.GetQueryParametersToRemove()
	}
	if den := resp.GetDeniedResponse(); den != nil && !msg.Allowed {
		msg.Status = int32(den.GetStatus().GetCode())
		msg.Body = den.GetBody()
		msg.Headers = map[string]string{}
		for _, h := range den.GetHeaders() {
			msg.Headers[strings.ToLower(h.GetHeader().GetKey())] = h.GetHeader().GetValue()
		}
	}
	return msg
}

// metadata reads the dynamic metadata of a response back into its schema.
func metadata(md map[string]any) *extauthzv1.CheckMetadata {
	str := func(k string) string { s, _ := md[k].(string); return s }
	m := &extauthzv1.CheckMetadata{
		Route: str(check.MetaRoute), Sub: str(check.MetaSub), Username: str(check.MetaUsername),
		TokenUse: str(check.MetaTokenUse), ClientId: str(check.MetaClientID), Pool: str(check.MetaPool),
		Reason: str(check.MetaReason),
	}
	m.DryRun, _ = md[check.MetaDryRun].(bool)
	if list, ok := md[check.MetaScopes].([]any); ok {
		for _, v := range list {
			if s, ok := v.(string); ok {
				m.Scopes = append(m.Scopes, s)
			}
		}
	}
	return m
}

// JSON renders a Decision with the proto field names, indented and stable
// (protojson varies its whitespace on purpose; this normalises it).
//
// The metadata is printed as Envoy receives it (what `check` prints): only
// the keys the response carries, not every field of its schema at zero.
func JSON(msg *extauthzv1.Decision) ([]byte, error) {
	md := metadataJSON(msg.GetMetadata())
	bare := proto.Clone(msg).(*extauthzv1.Decision)
	bare.Metadata = nil
	raw, err := protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}.Marshal(bare)
	if err != nil {
		return nil, err
	}
	var compact, out bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, err
	}
	if md != nil {
		b, err := json.Marshal(md)
		if err != nil {
			return nil, err
		}
		compact = *bytes.NewBuffer(bytes.Replace(compact.Bytes(), []byte(`"metadata":null`), append([]byte(`"metadata":`), b...), 1))
	}
	if err := json.Indent(&out, compact.Bytes(), "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// metadataJSON is the dynamic metadata a response carries, keyed as Envoy
// sees it: route always; the token's fields and its scopes when a token
// verified; reason on a denial or a dry run; dry_run when true.
func metadataJSON(m *extauthzv1.CheckMetadata) map[string]any {
	if m == nil {
		return nil
	}
	out := map[string]any{check.MetaRoute: m.GetRoute()}
	if m.GetTokenUse() != "" {
		out[check.MetaSub], out[check.MetaUsername], out[check.MetaTokenUse] = m.GetSub(), m.GetUsername(), m.GetTokenUse()
		out[check.MetaClientID], out[check.MetaPool] = m.GetClientId(), m.GetPool()
		scopes := m.GetScopes()
		if scopes == nil {
			scopes = []string{}
		}
		out[check.MetaScopes] = scopes
	}
	if m.GetReason() != "" {
		out[check.MetaReason] = m.GetReason()
	}
	if m.GetDryRun() {
		out[check.MetaDryRun] = true
	}
	return out
}

// plainJSON turns json.Number values into float64 (exact up to 2^53, which
// covers every NumericDate) or, beyond that, their decimal text, so that a
// claims map fits google.protobuf.Struct.
func plainJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		text := x.String()
		if !strings.ContainsAny(text, ".eE") {
			if n, err := x.Int64(); err == nil && n >= -(1<<53) && n <= 1<<53 {
				return float64(n)
			}
			return text // beyond float64's exact range: keep the digits
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return text
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plainJSON(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainJSON(e)
		}
		return out
	}
	return v
}
