// Package extauthz is the Envoy edge: it turns an ext_authz v3 CheckRequest
// into an authz.Request, asks for a decision, and turns the decision back
// into a CheckResponse. It holds no policy logic of its own.
package grpcauthz

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Options configures a Server.
type Options struct {
	// Snapshot returns the policy in force; each check reads it once.
	Snapshot func() *policy.Snapshot
	// Authorizer makes the decisions.
	Authorizer *authz.Authorizer
	// Logger receives what is not a decision: panics and configuration
	// errors.
	Logger *zap.Logger
	// DecisionLogger receives the decision log, one line per check,
	// sampled under floods (see SampleFirst). nil is Logger.Named("decision").
	DecisionLogger *zap.Logger
	// OmitAllows leaves allowed checks out of the decision log; denials
	// and dry runs are always logged.
	OmitAllows bool
	// Metrics, when non-nil, counts checks and observes their latency.
	Metrics *Metrics
	// Tracer, when non-nil, traces every check as a server span. nil
	// costs the check nothing.
	Tracer trace.Tracer
	// Limits bounds the size of a request that is judged at all.
	Limits Limits
	// Timeout, when positive, bounds a check from the arrival of its
	// stream (see TapArrival), decoding included; a check whose deadline
	// passed before the decision began is answered deadline_exceeded.
	Timeout time.Duration
}

// Server implements envoy.service.auth.v3.Authorization.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	opts      Options
	log       *zap.Logger
	decisions *zap.Logger
	tracer    trace.Tracer
}

// NewServer returns a Server.
func NewServer(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	opts.Limits = opts.Limits.withDefaults()
	dl := opts.DecisionLogger
	if dl == nil {
		dl = log.Named("decision")
	}
	return &Server{opts: opts, log: log, decisions: newDecisionLog(dl, opts.Metrics), tracer: opts.Tracer}
}

// Register adds the Authorization service to g.
func (s *Server) Register(g *grpc.Server) { authv3.RegisterAuthorizationServer(g, s) }

// appendFalse is shared by every header option: Envoy releases disagree on
// what an unset append means (envoy#43310), so it is always explicit. Proto
// messages are safe to share for concurrent marshalling.
var appendFalse = wrapperspb.Bool(false)

// Check answers one authorization request. It always returns a
// CheckResponse (the gRPC status inside it carries the verdict), never a
// gRPC error: Envoy treats an RPC error per failure_mode_allow, and this
// service decides failure itself, closed.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, _ error) {
	start := time.Now()
	// snap is read inside the deferred recover, so a panic in the Snapshot
	// func itself is recovered too (grpc-go does not recover handler
	// panics: one escaping here would kill the process).
	var (
		snap *policy.Snapshot
		span trace.Span // nil unless tracing is on
	)
	defer func() {
		if p := recover(); p != nil {
			// A panic must never become an allow, nor kill the process
			// that every request of the mesh depends on.
			s.log.Error("check panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			d := &authz.Decision{Reason: reason.Internal, Detail: fmt.Sprint("panic: ", p)}
			resp = Response(snap, d)
			s.observe(span, nil, d, start)
		}
	}()
	snap = s.snapshot()
	ctx, late := deadline(ctx, s.opts.Timeout)

	var hs requestHeaders
	var areq authz.Request
	d, lower := s.opts.Limits.exceeded(req)
	if d != nil {
		// Log the request line only: reading a header of this request is
		// the cost being refused.
		hr := req.GetAttributes().GetRequest().GetHttp()
		areq = authz.Request{Method: hr.GetMethod(), Path: hr.GetPath(), Headers: &hs}
		resp = Response(snap, d)
		s.observe(span, &areq, d, start)
		return resp, nil
	}
	toRequest(req, lower, &hs, &areq)
	if s.tracer != nil {
		ctx, span = s.startSpan(ctx, &hs)
	}
	d = late
	if d == nil {
		d = ended(ctx)
	}
	if d == nil {
		d = s.opts.Authorizer.Decide(ctx, snap, &areq)
	}
	resp = wireResponse(snap, d)
	s.observe(span, &areq, d, start)
	return resp, nil
}

// Decide runs one CheckRequest through exactly the translation and decision
// that Check uses, without metrics or logs: for `extauthz explain` and
// tests that want the decision next to the response.
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

func (s *Server) snapshot() *policy.Snapshot {
	if s.opts.Snapshot == nil {
		return nil
	}
	return s.opts.Snapshot()
}

// Response builds the CheckResponse for a decision, its dynamic metadata
// as structpb values. Exported for tools that replay decisions.
func Response(snap *policy.Snapshot, d *authz.Decision) *authv3.CheckResponse {
	if d.Allowed {
		resp := allowResponse(d)
		resp.DynamicMetadata = dryRunMetadata(d, allowMetadata(d))
		return resp
	}
	resp := denyResponse(snap, d)
	resp.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{
		"route":  structpb.NewStringValue(d.RouteName()),
		"reason": structpb.NewStringValue(string(d.Reason)),
	}}
	return resp
}

// wireResponse is what Check sends: Response with the dynamic metadata
// pre-encoded (see wire.go), the same message on the wire.
func wireResponse(snap *policy.Snapshot, d *authz.Decision) *authv3.CheckResponse {
	var resp *authv3.CheckResponse
	if d.Allowed {
		resp = allowResponse(d)
	} else {
		resp = denyResponse(snap, d)
	}
	wireMetadata(resp, d)
	return resp
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

// dryRunMetadata adds dry_run and the would-be denial's reason to the
// metadata of a dry-run route's let-through request.
func dryRunMetadata(d *authz.Decision, md *structpb.Struct) *structpb.Struct {
	if d.DryRun {
		md.Fields["dry_run"] = structpb.NewBoolValue(true)
		md.Fields["reason"] = structpb.NewStringValue(string(d.Reason))
	}
	return md
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

// allowMetadata is what Envoy writes under envoy.filters.http.ext_authz for
// access logs and later filters (schema: proto/extauthz/v1 CheckMetadata).
// Values come from two slabs instead of two allocations each.
func allowMetadata(d *authz.Decision) *structpb.Struct {
	c := d.Claims
	if c == nil {
		f := map[string]*structpb.Value{"route": structpb.NewStringValue(d.RouteName())}
		return &structpb.Struct{Fields: f}
	}
	scopes := c.Scopes()
	const n = 7 // route sub username token_use client_id pool + scopes
	vals := make([]structpb.Value, n+len(scopes))
	strs := make([]structpb.Value_StringValue, n-1+len(scopes))
	f := make(map[string]*structpb.Value, n)
	i := 0
	str := func(s string) *structpb.Value {
		strs[i].StringValue = s
		vals[i].Kind = &strs[i]
		v := &vals[i]
		i++
		return v
	}
	f["route"] = str(d.RouteName())
	f["sub"] = str(c.Subject())
	f["username"] = str(c.Username())
	f["token_use"] = str(c.TokenUse())
	f["client_id"] = str(c.ClientID())
	f["pool"] = str(c.Pool())
	list := make([]*structpb.Value, len(scopes))
	for j, sc := range scopes {
		list[j] = str(sc)
	}
	vals[i].Kind = &structpb.Value_ListValue{ListValue: &structpb.ListValue{Values: list}}
	f["scopes"] = &vals[i]
	return &structpb.Struct{Fields: f}
}

// denyResponse is a denial without its dynamic metadata.
func denyResponse(snap *policy.Snapshot, d *authz.Decision) *authv3.CheckResponse {
	den := DenialFor(snap, d.Reason, d.Route)
	opts := headerOptions(den.Headers, func(h Header) (string, string) { return h.Name, h.Value })
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(den.GRPCCode), Message: string(d.Reason)},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(den.Status)},
			Headers: opts,
			Body:    den.Body,
		}},
	}
}
