package httpauthz_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
)

// TestHTTPAuthorizationSpan: each HTTP authorization request is a server
// span continuing the traceparent the proxy forwards, with the decision's
// route, decision and reason, and no token in any attribute.
func TestHTTPAuthorizationSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	f := newFixture(t, fixtureOptions{tracer: tp.Tracer("test")})
	id := f.env.ID(t, issuer.TokenOptions{})
	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	f.do(t, req{path: "/nginx", headers: append(bearer(id),
		h("X-Original-Method", "GET", "X-Original-URI", "/pets", "Traceparent", "00-"+traceID+"-"+spanID+"-01")...)})
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != traceID || s.Parent().SpanID().String() != spanID {
		t.Fatalf("span trace %s parent %s, want %s %s", s.SpanContext().TraceID(), s.Parent().SpanID(), traceID, spanID)
	}
	want := map[string]string{"extauthz.route": "list-pets", "extauthz.decision": "allow", "extauthz.reason": "allowed"}
	got := map[string]string{}
	for _, a := range s.Attributes() {
		got[string(a.Key)] = a.Value.String()
		if v := a.Value.String(); len(v) > 40 && v == id {
			t.Fatalf("attribute %s holds the token", a.Key)
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
}
