// Package httpauthz is the HTTP edge: the same decision as the Envoy gRPC
// edge, asked over plain HTTP/1.1 by Envoy's http_service, Traefik
// forwardAuth, Caddy forward_auth and nginx auth_request. It translates an
// authorization request into an authz.Request and the decision into a
// status, headers and body; the denial table, metrics and decision log are
// pkg/extauthz's, so both edges answer, count and log alike.
package httpauthz

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Observer records decisions; *grpcauthz.Server is one, so the HTTP edge
// feeds the same metrics, decision log and traces as gRPC checks.
type Observer interface {
	// StartSpan starts a request's server span (nil when tracing is off).
	StartSpan(ctx context.Context, h http.Header) (context.Context, trace.Span)
	Observe(span trace.Span, req *authz.Request, d *authz.Decision, start time.Time)
}

var _ Observer = (*grpcauthz.Server)(nil)

// Options configures a Handler.
type Options struct {
	// Snapshot returns the policy in force; each request reads it once.
	Snapshot func() *policy.Snapshot
	// Authorizer makes the decisions.
	Authorizer *authz.Authorizer
	// Observer, when non-nil, records every decision.
	Observer Observer
	// Logger receives panics; decisions are logged by the Observer.
	Logger *zap.Logger
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
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	return &Handler{opts: opts, log: log}
}

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
		d    *authz.Decision
	)
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			// Never an allow, never a dead process: a 503 the proxy
			// treats as a denial.
			h.log.Error("http authorization panicked", zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
			d = &authz.Decision{Reason: reason.Internal, Detail: fmt.Sprint("panic: ", p)}
			clear(w.Header()) // no half-written allow headers on a denial
			writeDenial(w, snap, d)
			h.observe(nil, nil, d, start)
		}
	}()
	snap = h.snapshot()
	var span trace.Span
	if h.opts.Observer != nil {
		var ctx context.Context
		ctx, span = h.opts.Observer.StartSpan(r.Context(), r.Header)
		r = r.WithContext(ctx)
	}
	d = h.decide(w, r, ep, snap, &areq)
	if d.Allowed {
		writeAllow(w, snap, d)
	} else {
		writeDenial(w, snap, d)
	}
	req := &areq
	if areq.Headers == nil {
		req = nil
	}
	h.observe(span, req, d, start)
}

// decide reads (and bounds) the body, translates the request and asks for
// the decision.
func (h *Handler) decide(w http.ResponseWriter, r *http.Request, ep endpoint, snap *policy.Snapshot, areq *authz.Request) *authz.Decision {
	if err := drain(w, r, h.opts.MaxBodyBytes); err != nil {
		return &authz.Decision{Reason: reason.RequestInvalid, Detail: err.Error()}
	}
	if detail := translate(ep, r, areq); detail != "" {
		return &authz.Decision{Reason: reason.RequestInvalid, Detail: detail}
	}
	if h.opts.Authorizer == nil {
		return &authz.Decision{Reason: reason.Internal, Detail: "no authorizer"}
	}
	return h.opts.Authorizer.Decide(r.Context(), snap, areq)
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

func (h *Handler) snapshot() *policy.Snapshot {
	if h.opts.Snapshot == nil {
		return nil
	}
	return h.opts.Snapshot()
}

func (h *Handler) observe(span trace.Span, req *authz.Request, d *authz.Decision, start time.Time) {
	if h.opts.Observer != nil {
		h.opts.Observer.Observe(span, req, d, start)
	}
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
	den := grpcauthz.DenialFor(snap, d.Reason, d.Route)
	hdr := w.Header()
	for _, hh := range den.Headers {
		hdr.Set(hh.Name, hh.Value)
	}
	w.WriteHeader(den.Status)
	_, _ = io.WriteString(w, den.Body)
}
