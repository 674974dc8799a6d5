package check

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestStartSpan: a span continues the first carrier that holds a valid
// traceparent, in the order given; with none it is a root; with tracing
// off there is no span and the context is left alone.
func TestStartSpan(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	o := NewObserver(ObserverOptions{Tracer: tp.Tracer("test")})
	const first, second = "4bf92f3577b34da6a3ce929d0e0e4736", "0af7651916cd43dd8448eb211c80319c"
	carrier := func(trace string) propagation.TextMapCarrier {
		h := http.Header{}
		if trace != "" {
			h.Set("Traceparent", "00-"+trace+"-00f067aa0ba902b7-01")
		}
		return propagation.HeaderCarrier(h)
	}
	for _, tc := range []struct {
		name     string
		carriers []propagation.TextMapCarrier
		want     string // parent trace, "" for a root
	}{
		{"first carrier", []propagation.TextMapCarrier{carrier(first), carrier(second)}, first},
		{"fallback to the second", []propagation.TextMapCarrier{carrier(""), carrier(second)}, second},
		{"none", []propagation.TextMapCarrier{carrier("")}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, span := o.StartSpan(context.Background(), "s", tc.carriers)
			if span == nil {
				t.Fatal("no span with tracing on")
			}
			span.End()
			ended := rec.Ended()
			parent := ended[len(ended)-1].Parent()
			got := ""
			if parent.IsValid() {
				got = parent.TraceID().String()
			}
			if got != tc.want {
				t.Errorf("parent trace %q, want %q", got, tc.want)
			}
		})
	}
	off := NewObserver(ObserverOptions{})
	ctx := context.Background()
	if got, span := off.StartSpan(ctx, "s", []propagation.TextMapCarrier{carrier(first)}); span != nil || got != ctx {
		t.Errorf("tracing off: span %v, context changed %v", span, got != ctx)
	}
	var none *Observer
	if none.Tracing() {
		t.Error("a nil Observer traces")
	}
	none.Observe(EdgeGRPC, nil, nil, nil, time.Now()) // must not panic
}
