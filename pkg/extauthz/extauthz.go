// Package extauthz is the Envoy edge: it turns an ext_authz v3 CheckRequest
// into an authz.Request, asks for a decision, and turns the decision back
// into a CheckResponse. It holds no policy logic of its own.
package extauthz

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Options configures a Server.
type Options struct {
	// Snapshot returns the policy in force; each check reads it once.
	Snapshot func() *policy.Snapshot
	// Authorizer makes the decisions.
	Authorizer *authz.Authorizer
	// Logger receives one line per denial (info) and per allow (debug).
	Logger *zap.Logger
	// Metrics, when non-nil, counts checks and observes their latency.
	Metrics *Metrics
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
	return &Server{opts: opts, log: log}
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
	var snap *policy.Snapshot
	defer func() {
		if p := recover(); p != nil {
			// A panic must never become an allow, nor kill the process
			// that every request of the mesh depends on.
			s.log.Error("check panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			d := &authz.Decision{Reason: reason.Internal, Detail: fmt.Sprint("panic: ", p)}
			resp = Response(snap, d)
			s.observe(nil, d, start)
		}
	}()
	snap = s.snapshot()

	var hs requestHeaders
	var areq authz.Request
	toRequest(req, &hs, &areq)
	d := s.opts.Authorizer.Decide(ctx, snap, &areq)
	resp = wireResponse(snap, d)
	s.observe(&areq, d, start)
	return resp, nil
}

// Decide runs one CheckRequest through exactly the translation and decision
// that Check uses, without metrics or logs: for `extauthz explain` and
// tests that want the decision next to the response.
func Decide(ctx context.Context, snap *policy.Snapshot, az *authz.Authorizer, req *authv3.CheckRequest) (*authz.Decision, *authv3.CheckResponse) {
	var hs requestHeaders
	var areq authz.Request
	toRequest(req, &hs, &areq)
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
		resp.DynamicMetadata = allowMetadata(d)
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

// observe records the decision in metrics and the decision log.
func (s *Server) observe(req *authz.Request, d *authz.Decision, start time.Time) {
	elapsed := time.Since(start)
	s.opts.Metrics.observe(d, elapsed)
	switch {
	case d.Allowed:
		if ce := s.log.Check(zap.DebugLevel, "check allowed"); ce != nil {
			ce.Write(decisionFields(req, d, elapsed)...)
		}
	case d.Reason == reason.Internal:
		s.log.Error("check failed", decisionFields(req, d, elapsed)...)
	case d.Reason == reason.JWKSUnavailable:
		s.log.Warn("check failed", decisionFields(req, d, elapsed)...)
	case d.Reason == reason.RouteNotFound && req != nil && req.RouteName != "":
		// Envoy and the policy disagree about route names: an operator
		// must fix configuration, so this is an error, not noise.
		fields := append(decisionFields(req, d, elapsed), zap.String("context_route", req.RouteName))
		s.log.Error("configuration error: context_extensions route not in policy", fields...)
	default:
		if ce := s.log.Check(zap.InfoLevel, "check denied"); ce != nil {
			ce.Write(decisionFields(req, d, elapsed)...)
		}
	}
}

// decisionFields are the decision log fields. They never include a header
// value, the query string, a token or a claim beyond the subject.
func decisionFields(req *authz.Request, d *authz.Decision, elapsed time.Duration) []zap.Field {
	f := make([]zap.Field, 0, 10)
	f = append(f,
		zap.String("reason", string(d.Reason)),
		zap.String("route", d.RouteName()),
		zap.Duration("duration", elapsed),
	)
	if req != nil {
		f = append(f,
			zap.String("method", req.Method),
			zap.String("path", logPath(req.Path)),
		)
		if id, n := req.Headers.Get("x-request-id"); n == 1 {
			f = append(f, zap.String("request_id", truncate(id, 128)))
		}
	}
	if d.Detail != "" {
		f = append(f, zap.String("detail", d.Detail))
	}
	if d.Claims != nil {
		f = append(f, zap.String("sub", d.Claims.Subject()), zap.Bool("cache_hit", d.CacheHit))
	}
	return f
}

// logPath drops the query (an identitySource of query:access_token puts the
// token there) and bounds the length.
func logPath(p string) string {
	if i := strings.IndexAny(p, "?#"); i >= 0 {
		p = p[:i]
	}
	return truncate(p, 256)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Metrics are the check counters and latency histogram.
type Metrics struct {
	checks   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	// counters caches labelled children so the hot path does not hash
	// label values on every check.
	counters sync.Map // counterKey -> prometheus.Counter
	allowed  prometheus.Observer
	denied   prometheus.Observer
}

type counterKey struct{ route, decision, reason string }

// NewMetrics creates the check metrics and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_checks_total",
			Help: "Authorization checks by policy route, decision (allow|deny) and reason code.",
		}, []string{"route", "decision", "reason"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "extauthz_check_duration_seconds",
			Help: "Time to answer a check, by decision.",
			Buckets: []float64{
				0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
				0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
			},
		}, []string{"decision"}),
	}
	if reg != nil {
		reg.MustRegister(m.checks, m.duration)
	}
	m.allowed = m.duration.WithLabelValues("allow")
	m.denied = m.duration.WithLabelValues("deny")
	return m
}

func (m *Metrics) observe(d *authz.Decision, elapsed time.Duration) {
	if m == nil {
		return
	}
	decision, obs := "deny", m.denied
	if d.Allowed {
		decision, obs = "allow", m.allowed
	}
	route := d.RouteName()
	if route == "" {
		route = "none"
	}
	k := counterKey{route, decision, string(d.Reason)}
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.checks.WithLabelValues(k.route, k.decision, k.reason))
	}
	c.(prometheus.Counter).Inc()
	obs.Observe(elapsed.Seconds())
}
