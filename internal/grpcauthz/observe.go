package grpcauthz

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/metadata"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Decision log messages. The sampler counts per level and message, so
// allows, denials and dry runs are sampled apart: a flood of one never
// hides the others.
const (
	msgAllowed = "check allowed"
	msgDenied  = "check denied"
	msgFailed  = "check failed"
	msgDryRun  = "check dry run"
)

// Sampling of the decision log: per second and message, the first
// SampleFirst lines are written, then one in SampleThereafter.
const (
	SampleFirst      = 100
	SampleThereafter = 100
)

// checkSpanName is the span of one Check, named as the gRPC
// instrumentation names RPC spans.
const checkSpanName = "envoy.service.auth.v3.Authorization/Check"

// traceContext reads and writes W3C traceparent/tracestate.
var traceContext = propagation.TraceContext{}

// newDecisionLog wraps log in a sampler whose drops are counted, so that a
// flood costs bounded log volume and the loss is visible.
func newDecisionLog(log *zap.Logger, m *Metrics) *zap.Logger {
	hook := func(e zapcore.Entry, dec zapcore.SamplingDecision) {
		if dec&zapcore.LogDropped == 0 {
			return
		}
		switch e.Message {
		case msgAllowed:
			m.logDropped(decisionAllow)
		case msgDryRun:
			m.logDropped(decisionDryRun)
		default:
			m.logDropped(decisionDeny)
		}
	}
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, SampleFirst, SampleThereafter, zapcore.SamplerHook(hook))
	}))
}

// startSpan starts the server span of a check. Its parent is the W3C trace
// context of the checked request (Envoy's own span for that request), else
// that of the gRPC call.
func (s *Server) startSpan(ctx context.Context, hs *requestHeaders) (context.Context, trace.Span) {
	parent := traceContext.Extract(ctx, headerCarrier{hs})
	if !trace.SpanContextFromContext(parent).IsValid() {
		md, _ := metadata.FromIncomingContext(ctx)
		parent = traceContext.Extract(ctx, metadataCarrier(md))
	}
	return s.tracer.Start(parent, checkSpanName,
		trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("rpc.system", "grpc"),
			attribute.String("rpc.service", "envoy.service.auth.v3.Authorization"),
			attribute.String("rpc.method", "Check")))
}

// endSpan records the outcome. Only names and codes go in: never a token,
// a claim value or a header value.
func endSpan(span trace.Span, d *authz.Decision, decision string) {
	span.SetAttributes(
		attribute.String("extauthz.route", d.RouteName()),
		attribute.String("extauthz.decision", decision),
		attribute.String("extauthz.reason", string(d.Reason)),
	)
	if classOf(d.Reason).status >= 500 && !d.Allowed {
		span.SetStatus(codes.Error, string(d.Reason))
	}
	span.End()
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

// Observe records a decision made by another edge (the HTTP authorization
// mode of pkg/httpauthz) in this server's metrics, decision log and span
// (from StartSpan; nil when tracing is off), so an operator sees one set of
// counters, one log format and one kind of trace whichever protocol asked.
// req may be nil when the request could not be translated.
func (s *Server) Observe(span trace.Span, req *authz.Request, d *authz.Decision, start time.Time) {
	s.observe(span, req, d, start)
}

// StartSpan starts the server span of an HTTP authorization request,
// continuing the W3C trace context of its headers (the proxy forwards the
// client request's traceparent to the auth request). It returns ctx and a
// nil span when tracing is off.
func (s *Server) StartSpan(ctx context.Context, h http.Header) (context.Context, trace.Span) {
	if s.tracer == nil {
		return ctx, nil
	}
	parent := traceContext.Extract(ctx, propagation.HeaderCarrier(h))
	return s.tracer.Start(parent, "http authorization", trace.WithSpanKind(trace.SpanKindServer))
}

// observe records the decision in metrics, the span and the decision log.
func (s *Server) observe(span trace.Span, req *authz.Request, d *authz.Decision, start time.Time) {
	elapsed := time.Since(start)
	decision := decisionOf(d)
	s.opts.Metrics.observe(d, decision, elapsed)
	if span != nil {
		endSpan(span, d, decision)
	}
	if len(d.Unset) > 0 {
		// The claim's value is not logged: only which headers and route.
		s.log.Warn("claim header not set: its value cannot travel in a header unambiguously",
			zap.String("route", d.RouteName()), zap.Strings("headers", d.Unset))
	}
	if req != nil && d.Reason == reason.RouteNotFound && req.RouteName != "" {
		// Envoy and the policy disagree about route names: an operator
		// must fix configuration, so this is an error, not noise.
		s.log.Error("configuration error: context_extensions route not in policy",
			zap.String("reason", string(d.Reason)), zap.String("context_route", truncate(req.RouteName, 128)))
	}
	level, msg := zapcore.InfoLevel, msgDenied
	switch {
	case decision == decisionAllow:
		if s.opts.OmitAllows {
			return
		}
		msg = msgAllowed
	case decision == decisionDryRun:
		level, msg = zapcore.WarnLevel, msgDryRun
	case d.Reason == reason.Internal:
		level, msg = zapcore.ErrorLevel, msgFailed
	case classOf(d.Reason).status >= 500:
		level, msg = zapcore.WarnLevel, msgFailed
	}
	ce := s.decisions.Check(level, msg)
	if ce == nil {
		return
	}
	fp := fieldPool.Get().(*[]zap.Field)
	f := decisionFields((*fp)[:0], span, req, d, decision, elapsed)
	ce.Write(f...)
	clear(f)
	*fp = f[:0]
	fieldPool.Put(fp)
}

// fieldPool keeps the decision log's field slices: the allow path is
// logged by default, and must not allocate for it.
var fieldPool = sync.Pool{New: func() any {
	f := make([]zap.Field, 0, 16)
	return &f
}}

// decisionFields are the decision log fields. They never include a token,
// a cookie, the query string, a claim beyond the identifiers below, or a
// header value other than x-request-id and the host.
func decisionFields(f []zap.Field, span trace.Span, req *authz.Request, d *authz.Decision, decision string, elapsed time.Duration) []zap.Field {
	if req != nil {
		if id, n := req.Headers.Get("x-request-id"); n == 1 {
			f = append(f, zap.String("request_id", truncate(id, 128)))
		}
	}
	if span != nil {
		if sc := span.SpanContext(); sc.HasTraceID() {
			f = append(f, zap.Stringer("trace_id", sc.TraceID()))
		}
	}
	if req != nil {
		f = append(f,
			zap.String("method", truncate(req.Method, 16)),
			zap.String("path", logPath(req.Path)),
			zap.String("host", truncate(req.Host, 256)),
		)
	}
	f = append(f,
		zap.String("route", d.RouteName()),
		zap.String("decision", decision),
		zap.String("reason", string(d.Reason)),
	)
	if c := d.Claims; c != nil {
		f = append(f,
			zap.String("sub", c.Subject()),
			zap.String("client_id", c.ClientID()),
			zap.String("token_use", c.TokenUse()),
			zap.Bool("cache_hit", d.CacheHit),
		)
	}
	f = append(f, zap.Duration("duration", elapsed))
	if d.Detail != "" {
		f = append(f, zap.String("detail", d.Detail))
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
