package tracing_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/cognito-extauthz/cognito-extauthz/internal/tracing"
)

// receiver collects the spans an OTLP exporter sends, over either
// transport.
type receiver struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []*tracepb.Span
	got   chan struct{}
}

func newReceiver() *receiver { return &receiver{got: make(chan struct{}, 16)} }

func (r *receiver) add(req *collectortrace.ExportTraceServiceRequest) {
	r.mu.Lock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			r.spans = append(r.spans, ss.GetSpans()...)
		}
	}
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *receiver) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	r.add(req)
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected export "+req.URL.Path+" "+req.Header.Get("Content-Type"), http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(req.Body)
	var msg collectortrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &msg); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.add(&msg)
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// TestFromEnvOff: no endpoint, or the SDK disabled, is a no-op provider.
func TestFromEnvOff(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"nothing set":       {},
		"protocol only":     {"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
		"sdk disabled":      {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"},
		"service name only": {"OTEL_SERVICE_NAME": "x"},
	} {
		t.Run(name, func(t *testing.T) {
			p, err := tracing.FromEnv(context.Background(), "test", env(vars))
			if err != nil {
				t.Fatal(err)
			}
			if p.Enabled {
				t.Fatalf("tracing on with %v", vars)
			}
			_, span := p.Tracer("t").Start(context.Background(), "x")
			if span.SpanContext().IsValid() || span.IsRecording() {
				t.Errorf("a span is recorded with tracing off")
			}
		})
	}
}

// TestFromEnvBadProtocol: an unsupported protocol is a configuration
// error, not silent loss of every span.
func TestFromEnvBadProtocol(t *testing.T) {
	_, err := tracing.FromEnv(context.Background(), "test", env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
	}))
	if err == nil {
		t.Fatal("http/json accepted")
	}
}

// TestExportHTTP and TestExportGRPC send a span to a real in-process OTLP
// receiver configured only through OTEL_* variables.
func TestExportHTTP(t *testing.T) {
	rec := newReceiver()
	srv := httptest.NewServer(rec)
	defer srv.Close()
	vars := map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": srv.URL + "/v1/traces"}
	exportOne(t, vars, rec, "http/protobuf")
}

func TestExportGRPC(t *testing.T) {
	rec := newReceiver()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(g, rec)
	go func() { _ = g.Serve(lis) }()
	defer g.Stop()
	vars := map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://" + lis.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
		"OTEL_EXPORTER_OTLP_INSECURE": "true",
	}
	exportOne(t, vars, rec, "grpc")
}

func exportOne(t *testing.T, vars map[string]string, rec *receiver, wantProtocol string) {
	t.Helper()
	// The exporters read the environment themselves, as the specification
	// says; FromEnv only decides on/off and the protocol.
	for k, v := range vars {
		t.Setenv(k, v)
	}
	p, err := tracing.FromEnv(context.Background(), "v1.2.3", env(vars))
	if err != nil {
		t.Fatal(err)
	}
	if !p.Enabled || p.Protocol != wantProtocol {
		t.Fatalf("enabled %v protocol %q, want on with %q", p.Enabled, p.Protocol, wantProtocol)
	}
	_, span := p.Tracer("t").Start(context.Background(), "probe")
	span.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown (flush): %v", err)
	}
	select {
	case <-rec.got:
	case <-ctx.Done():
		t.Fatal("the receiver got nothing")
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.spans) != 1 || rec.spans[0].GetName() != "probe" {
		t.Errorf("received %v, want the one probe span", rec.spans)
	}
}
