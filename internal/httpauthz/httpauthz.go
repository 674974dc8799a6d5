// Package httpauthz is the HTTP edge: the same decision as the Envoy gRPC
// edge, asked over plain HTTP/1.1 by Envoy's http_service, Traefik
// forwardAuth, Caddy forward_auth and nginx auth_request. It translates an
// authorization request into an authz.Request and the decision into a
// status, headers and body; the denial table, limits, deadline, metrics,
// decision log and spans are internal/check's, shared with the gRPC edge,
// so both edges answer, count and log alike.
package httpauthz

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Options configures a Handler.
type Options struct {
	// Snapshot returns the policy in force; each request reads it once.
	Snapshot check.Snapshots
	// Authorizer makes the decisions.
	Authorizer *authz.Authorizer
	// Observer, when non-nil, records every decision (metrics, decision
	// log, span), as for gRPC checks.
	Observer *check.Observer
	// Logger receives panics; decisions are logged by the Observer.
	Logger *zap.Logger
	// Limits bounds the headers of a request that is judged at all, as on
	// the gRPC edge; over them the answer is 431 request_too_large.
	Limits check.Limits
	// Timeout, when positive, bounds a request from the moment its headers
	// were read, as --check-timeout bounds a gRPC check.
	Timeout time.Duration
	// MaxBodyBytes caps the authorization request's body (none of the
	// proxies sends one by default; the decision never reads it); 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// DefaultMaxBodyBytes is the default cap of an authorization request body.
const DefaultMaxBodyBytes = 64 << 10

// Handler answers HTTP authorization requests on /envoy/<path>, /auth and
// /nginx.
type Handler struct {
	opts Options
	log  *zap.Logger
}

// New returns a Handler.
func New(opts Options) *Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	opts.Limits = opts.Limits.WithDefaults()
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{opts: opts, log: log}
}

// spanName is the span of one HTTP authorization request.
const spanName = "http authorization"

// abort reports whether a panic is net/http's way of aborting a handler,
// which must reach net/http.
func abort(p any) bool { return p == http.ErrAbortHandler }

// ServeHTTP answers one authorization request: 200 allows, anything else
// denies. Every path that is not an explicit allow writes a denial.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ep := endpointOf(r.RequestURI)
	if ep == endpointNone {
		// Not an authorization request at all: no decision, not counted.
		http.Error(w, `{"message":"Not Found"}`, http.StatusNotFound)
		return
	}
	start := time.Now()
	var (
		snap *policy.Snapshot
		areq authz.Request
		span trace.Span
	)
	defer check.Guard(h.log, abort, func(d *authz.Decision) {
		// Never an allow, never a dead process: a 503 the proxy treats as
		// a denial, with no half-written allow headers.
		clear(w.Header())
		writeDenial(w, snap, d)
		h.opts.Observer.Observe(check.EdgeHTTP, span, nil, d, start)
	})
	snap = h.opts.Snapshot.Load()
	// The same deadline as a gRPC check's, measured from when the headers
	// were read (ReadHeaderTimeout bounds the reading itself).
	ctx, late := check.Deadline(r.Context(), start, h.opts.Timeout)
	if h.opts.Observer.Tracing() {
		ctx, span = h.opts.Observer.StartSpan(ctx, spanName, []propagation.TextMapCarrier{propagation.HeaderCarrier(r.Header)})
	}
	if ctx != r.Context() {
		r = r.WithContext(ctx)
	}
	d := late
	if d == nil {
		d = h.decide(w, r, ep, snap, &areq)
	}
	if d.Allowed {
		writeAllow(w, snap, d)
	} else {
		writeDenial(w, snap, d)
	}
	req := &areq
	if areq.Headers == nil {
		req = nil
	}
	h.opts.Observer.Observe(check.EdgeHTTP, span, req, d, start)
}

// decide bounds the request's headers, reads (and bounds) the body,
// translates the request and asks for the decision.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, ep endpoint, snap *policy.Snapshot, areq *authz.Request) *authz.Decision {
	if d := exceeded(h.opts.Limits, r); d != nil {
		// The request line only, for the log: reading a header of this
		// request is the cost being refused.
		areq.Method, areq.Path, areq.Headers = r.Method, r.URL.Path, headers(nil)
		return d
	}
	if err := drain(w, r, h.opts.MaxBodyBytes); err != nil {
		return &authz.Decision{Reason: reason.RequestInvalid, Detail: err.Error()}
	}
	if detail := translate(ep, r, areq); detail != "" {
		return &authz.Decision{Reason: reason.RequestInvalid, Detail: detail}
	}
	if h.opts.Authorizer == nil {
		return &authz.Decision{Reason: reason.Internal, Detail: "no authorizer"}
	}
	if d := check.Ended(r.Context()); d != nil {
		return d
	}
	return h.opts.Authorizer.Decide(r.Context(), snap, areq)
}

// exceeded returns a request_too_large denial when r's headers are over
// the limits, counted as the gRPC edge counts a CheckRequest's: every
// header line, and the bytes of names, values, target, host and method.
func exceeded(l check.Limits, r *http.Request) *authz.Decision {
	n, size := 0, len(r.RequestURI)+len(r.Host)+len(r.Method)
	for k, vs := range r.Header {
		n += len(vs)
		for _, v := range vs {
			size += len(k) + len(v)
		}
	}
	if d := l.TooMany(n); d != nil {
		return d
	}
	return l.TooBig(size)
}

// drain reads the body up to max, so a large one is refused early and the
// connection can be reused; past max the connection is closed.
func drain(w http.ResponseWriter, r *http.Request, max int64) error {
	if r.ContentLength > max {
		return fmt.Errorf("body of %d bytes over the %d byte limit", r.ContentLength, max)
	}
	_, err := io.Copy(io.Discard, http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("body over the %d byte limit", max)
	}
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	return nil
}

// Response header names of an allow.
const (
	headerRoute  = "x-extauthz-route"
	headerRemove = "x-envoy-auth-headers-to-remove" // honoured by Envoy's http_service
)

// writeAllow answers 200 with the decision's claim headers. Every claim
// header name of the policy that the decision does not set goes out with
// an empty value, so a proxy that copies auth-response headers onto the
// upstream request overwrites a client's forged one.
func writeAllow(w http.ResponseWriter, snap *policy.Snapshot, d *authz.Decision) {
	hdr := w.Header()
	for _, name := range snap.ClaimHeaderNames() {
		hdr[http.CanonicalHeaderKey(name)] = []string{""}
	}
	for _, sh := range d.SetHeaders {
		hdr.Set(sh.Name, sh.Value)
	}
	if name := d.RouteName(); name != "" {
		hdr.Set(headerRoute, name)
	}
	if len(d.RemoveHeaders) > 0 {
		hdr.Set(headerRemove, strings.Join(d.RemoveHeaders, ","))
	}
	w.WriteHeader(http.StatusOK)
}

// writeDenial answers with exactly the gRPC edge's denial: the shared
// table's status, JSON body and headers, gatewayResponses applied.
func writeDenial(w http.ResponseWriter, snap *policy.Snapshot, d *authz.Decision) {
	den := check.DenialFor(snap, d.Reason, d.Route)
	hdr := w.Header()
	for _, hh := range den.Headers {
		hdr.Set(hh.Name, hh.Value)
	}
	w.WriteHeader(den.Status)
	_, _ = io.WriteString(w, den.Body)
}
