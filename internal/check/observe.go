package check

import (
	"context"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

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

// traceContext reads W3C traceparent/tracestate.
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

// ObserverOptions configures an Observer.
type ObserverOptions struct {
	// Logger receives what is not a decision: unset claim headers and
	// configuration errors.
	Logger *zap.Logger
	// DecisionLogger receives the decision log, one line per check,
	// sampled under floods (see SampleFirst). nil is
	// Logger.Named("decision").
	DecisionLogger *zap.Logger
	// OmitAllows leaves allowed checks out of the decision log; denials
	// and dry runs are always logged.
	OmitAllows bool
	// Metrics, when non-nil, counts checks and observes their latency.
	Metrics *Metrics
	// Tracer, when non-nil, traces every check as a server span. nil
	// costs a check nothing.
	Tracer trace.Tracer
}

// Observer records every check of both edges: metrics, span, decision log
// and the warnings a decision calls for. A nil *Observer records nothing.
type Observer struct {
	log        *zap.Logger
	decisions  *zap.Logger
	metrics    *Metrics
	tracer     trace.Tracer
	omitAllows bool
}

// NewObserver returns an Observer.
func NewObserver(opts ObserverOptions) *Observer {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	dl := opts.DecisionLogger
	if dl == nil {
		dl = log.Named("decision")
	}
	return &Observer{log: log, decisions: newDecisionLog(dl, opts.Metrics), metrics: opts.Metrics,
		tracer: opts.Tracer, omitAllows: opts.OmitAllows}
}

// Tracing reports whether checks are traced, so an edge builds the
// carriers of StartSpan only then.
func (o *Observer) Tracing() bool { return o != nil && o.tracer != nil }

// StartSpan starts the server span of a check. Its parent is the W3C trace
// context of the first carrier that holds a valid one (the edges pass the
// checked request's headers first: Envoy's own span for that request). It
// returns ctx and a nil span when tracing is off.
func (o *Observer) StartSpan(ctx context.Context, name string, carriers []propagation.TextMapCarrier, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !o.Tracing() {
		return ctx, nil
	}
	parent := ctx
	for _, c := range carriers {
		if p := traceContext.Extract(ctx, c); trace.SpanContextFromContext(p).IsValid() {
			parent = p
			break
		}
	}
	return o.tracer.Start(parent, name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
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

// Observe records a decision of the given edge (EdgeGRPC, EdgeHTTP) in
// the metrics, the span (from StartSpan; nil when tracing is off) and the
// decision log. req may be nil when the request could not be translated.
func (o *Observer) Observe(edge string, span trace.Span, req *authz.Request, d *authz.Decision, start time.Time) {
	if o == nil {
		return
	}
	elapsed := time.Since(start)
	decision := decisionOf(d)
	o.metrics.observe(edge, d, decision, elapsed)
	if span != nil {
		endSpan(span, d, decision)
	}
	if len(d.Unset) > 0 {
		// The claim's value is not logged: only which headers and route.
		o.log.Warn("claim header not set: its value cannot travel in a header unambiguously",
			zap.String("route", d.RouteName()), zap.Strings("headers", d.Unset))
	}
	if req != nil && d.Reason == reason.RouteNotFound && req.RouteName != "" {
		// Envoy and the policy disagree about route names: an operator
		// must fix configuration, so this is an error, not noise.
		o.log.Error("configuration error: context_extensions route not in policy",
			zap.String("reason", string(d.Reason)), zap.String("context_route", truncate(req.RouteName, 128)))
	}
	level, msg := zapcore.InfoLevel, msgDenied
	switch {
	case decision == decisionAllow:
		if o.omitAllows {
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
	ce := o.decisions.Check(level, msg)
	if ce == nil {
		return
	}
	fp := fieldPool.Get().(*[]zap.Field)
	f := decisionFields((*fp)[:0], edge, span, req, d, decision, elapsed)
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
func decisionFields(f []zap.Field, edge string, span trace.Span, req *authz.Request, d *authz.Decision, decision string, elapsed time.Duration) []zap.Field {
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
		zap.String("edge", edge),
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
