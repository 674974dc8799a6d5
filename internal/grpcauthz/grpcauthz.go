// Package grpcauthz is the Envoy gRPC edge: it serves
// envoy.service.auth.v3.Authorization/Check, turning a CheckRequest into an
// authz.Request and the decision into a CheckResponse. It owns its codec
// and request decoder; the denial table, metrics, decision log, spans and
// limits are internal/check's, shared with the HTTP edge. It holds no
// policy logic of its own.
package grpcauthz

import (
	"context"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// Options configures a Server.
type Options struct {
	// Snapshot returns the policy in force; each check reads it once.
	Snapshot check.Snapshots
	// Authorizer makes the decisions.
	Authorizer *authz.Authorizer
	// Logger receives panics.
	Logger *zap.Logger
	// Observer, when non-nil, records every check (metrics, decision log,
	// span).
	Observer *check.Observer
	// Limits bounds the size of a request that is judged at all.
	Limits check.Limits
	// Timeout, when positive, bounds a check from the arrival of its
	// stream (see TapArrival), decoding included; a check whose deadline
	// passed before the decision began is answered deadline_exceeded.
	Timeout time.Duration
}

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	opts Options
	log  *zap.Logger
}

// NewServer returns a Server.
func NewServer(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	opts.Limits = opts.Limits.WithDefaults()
	return &Server{opts: opts, log: log}
}

// Register adds the Authorization service to g.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// appendFalse is shared by every header option: Envoy releases disagree on
// what an unset append means (envoy#43310), so it is always explicit. Proto
// messages are safe to share for concurrent marshalling.
var appendFalse = wrapperspb.Bool(false)

// checkSpanName is the span of one Check, named as the gRPC
// instrumentation names RPC spans.
const checkSpanName = "envoy.service.auth.v3.Authorization/Check"

// Check answers one authorization request. It always returns a
// CheckResponse (the gRPC status inside it carries the verdict), never a
// gRPC error: Envoy treats an RPC error per failure_mode_allow, and this
// service decides failure itself, closed.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, _ error) {
	start := time.Now()
	// snap is read inside the guard, so a panic in the Snapshot func
	// itself is recovered too (grpc-go does not recover handler panics:
	// one escaping here would kill the process).
	var (
		snap *policy.Snapshot
		span trace.Span // nil unless tracing is on
	)
	defer check.Guard(s.log, nil, func(d *authz.Decision) {
		resp = Response(snap, d)
		s.opts.Observer.Observe(check.EdgeGRPC, span, nil, d, start)
	})
	snap = s.opts.Snapshot.Load()
	ctx, late := check.Deadline(ctx, arrival(ctx), s.opts.Timeout)

	var hs requestHeaders
	var areq authz.Request
	d, lower := exceeded(s.opts.Limits, req)
	if d != nil {
		// Log the request line only: reading a header of this request is
		// the cost being refused.
		hr := req.GetAttributes().GetRequest().GetHttp()
		areq = authz.Request{Method: hr.GetMethod(), Path: hr.GetPath(), Headers: &hs}
		resp = Response(snap, d)
		s.opts.Observer.Observe(check.EdgeGRPC, span, &areq, d, start)
		return resp, nil
	}
	toRequest(req, lower, &hs, &areq)
	if s.opts.Observer.Tracing() {
		ctx, span = s.startSpan(ctx, &hs)
	}
	d = late
	if d == nil {
		d = check.Ended(ctx)
	}
	if d == nil {
		d = s.opts.Authorizer.Decide(ctx, snap, &areq)
	}
	resp = Response(snap, d)
	s.opts.Observer.Observe(check.EdgeGRPC, span, &areq, d, start)
	return resp, nil
}

// startSpan starts the server span of a check. Its parent is the W3C trace
// context of the checked request (Envoy's own span for that request), else
// that of the gRPC call.
func (s *Server) startSpan(ctx context.Context, hs *requestHeaders) (context.Context, trace.Span) {
	md, _ := metadata.FromIncomingContext(ctx)
	return s.opts.Observer.StartSpan(ctx, checkSpanName,
		[]propagation.TextMapCarrier{headerCarrier{hs}, metadataCarrier(md)},
		attribute.String("rpc.system", "grpc"),
		attribute.String("rpc.service", "envoy.service.auth.v3.Authorization"),
		attribute.String("rpc.method", "Check"))
}

// headerCarrier reads the checked request's headers for the propagator. A
// header sent twice is ignored, as W3C Trace Context requires of an
// ambiguous traceparent.
type headerCarrier struct{ h *requestHeaders }

func (c headerCarrier) Get(key string) string {
	if v, n := c.h.Get(key); n == 1 {
		return v
	}
	return ""
}
func (headerCarrier) Set(string, string) {}
func (headerCarrier) Keys() []string     { return nil }

// metadataCarrier reads gRPC metadata for the propagator.
type metadataCarrier metadata.MD

func (c metadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) == 1 {
		return v[0]
	}
	return ""
}
func (metadataCarrier) Set(string, string) {}
func (metadataCarrier) Keys() []string     { return nil }

// Decide runs one CheckRequest through exactly the translation, decision
// and response that Check uses, without limits, metrics or logs: for
// `extauthz explain` and tests that want the decision next to the
// response.
func Decide(ctx context.Context, snap *policy.Snapshot, az *authz.Authorizer, req *authv3.CheckRequest) (*authz.Decision, *authv3.CheckResponse) {
	var hs requestHeaders
	var areq authz.Request
	h := req.GetAttributes().GetRequest().GetHttp()
	lower := len(h.GetHeaderMap().GetHeaders()) == 0
	for k := range h.GetHeaders() {
		lower = lower && lowerToken(k)
	}
	toRequest(req, lower, &hs, &areq)
	d := az.Decide(ctx, snap, &areq)
	return d, Response(snap, d)
}

// Response builds the CheckResponse for a decision: the one builder of
// the edge. Its dynamic metadata is written straight to the wire form
// (wire.go); Metadata reads it back.
func Response(snap *policy.Snapshot, d *authz.Decision) *authv3.CheckResponse {
	var resp *authv3.CheckResponse
	if d.Allowed {
		resp = allowResponse(d)
	} else {
		resp = denyResponse(snap, d)
	}
	wireMetadata(resp, d)
	return resp
}

// Metadata returns the dynamic metadata of a response built by Response,
// as Envoy reads it: for tools and tests, off the hot path.
func Metadata(resp *authv3.CheckResponse) (*structpb.Struct, error) {
	if md := resp.GetDynamicMetadata(); md != nil {
		return md, nil
	}
	b, err := proto.Marshal(resp)
	if err != nil {
		return nil, err
	}
	var out authv3.CheckResponse
	if err := proto.Unmarshal(b, &out); err != nil {
		return nil, err
	}
	if md := out.GetDynamicMetadata(); md != nil {
		return md, nil
	}
	return &structpb.Struct{}, nil
}

// allowResponse is an allow without its dynamic metadata.
func allowResponse(d *authz.Decision) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			Headers:                 headerOptions(d.SetHeaders, func(h authz.Header) (string, string) { return h.Name, h.Value }),
			HeadersToRemove:         d.RemoveHeaders,
			QueryParametersToRemove: d.RemoveQuery,
		}},
	}
}

// headerOptions builds append=false header options. The messages are
// allocated in two slabs rather than two allocations per header: this is
// the hot path of every allowed request.
func headerOptions[H any](hs []H, kv func(H) (string, string)) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	values := make([]corev3.HeaderValue, len(hs))
	slab := make([]corev3.HeaderValueOption, len(hs))
	opts := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		values[i].Key, values[i].Value = kv(h)
		slab[i].Header = &values[i]
		//lint:ignore SA1019 append is deprecated in favour of append_action, but Envoy releases disagree on the default, so it is set explicitly
		slab[i].Append = appendFalse
		opts[i] = &slab[i]
	}
	return opts
}

// denyResponse is a denial without its dynamic metadata.
func denyResponse(snap *policy.Snapshot, d *authz.Decision) *authv3.CheckResponse {
	den := check.DenialFor(snap, d.Reason, d.Route)
	opts := headerOptions(den.Headers, func(h check.Header) (string, string) { return h.Name, h.Value })
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(den.GRPCCode), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(den.Status)},
			Headers: opts,
			Body:    den.Body,
		}},
	}
}
