package grpcauthz_test

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	otelcodes "go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// nonZero returns the series of a counter family with a non-zero value,
// keyed by their sorted label pairs.
func nonZero(t testing.TB, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for key, v := range series(t, reg, name) {
		if v != 0 {
			out[key] = v
		}
	}
	return out
}

// series returns every series of a counter family by its label pairs.
func series(t testing.TB, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var pairs []string
			for _, l := range m.GetLabel() {
				pairs = append(pairs, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(pairs)
			out[strings.Join(pairs, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestMetricsZeroAtStart: every (decision, reason) series, the latency of
// every decision and the log drop counters exist before the first check,
// so alerts and dashboards evaluate from start-up.
func TestMetricsZeroAtStart(t *testing.T) {
	reg := prometheus.NewRegistry()
	check.NewMetrics(reg)
	checks := series(t, reg, "extauthz_checks_total")
	for _, code := range reason.All() {
		decisions := []string{"deny", "dry_run"}
		if code == reason.Allowed || code == reason.NoAuth || code == reason.DefaultAllow {
			decisions = []string{"allow"}
		}
		for _, dec := range decisions {
			for _, edge := range []string{check.EdgeGRPC, check.EdgeHTTP} {
				key := fmt.Sprintf(`decision=%q,edge=%q,reason=%q,route="none"`, dec, edge, code)
				if v, ok := checks[key]; !ok || v != 0 {
					t.Errorf("extauthz_checks_total{%s} = %v (present %v), want 0 from start-up", key, v, ok)
				}
			}
		}
	}
	dropped := series(t, reg, "extauthz_decision_logs_dropped_total")
	for _, dec := range []string{"allow", "deny", "dry_run"} {
		if _, ok := dropped[fmt.Sprintf("decision=%q", dec)]; !ok {
			t.Errorf("extauthz_decision_logs_dropped_total{decision=%q} missing at start-up", dec)
		}
	}
	mfs, _ := reg.Gather()
	hist := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() == "extauthz_check_duration_seconds" {
			for _, m := range mf.GetMetric() {
				hist[m.GetLabel()[0].GetValue()+"/"+m.GetLabel()[1].GetValue()] = true
			}
		}
	}
	for _, dec := range []string{"allow", "deny", "dry_run"} {
		for _, edge := range []string{check.EdgeGRPC, check.EdgeHTTP} {
			if !hist[dec+"/"+edge] {
				t.Errorf("extauthz_check_duration_seconds{decision=%q,edge=%q} missing at start-up", dec, edge)
			}
		}
	}
}

// TestDecisionLog: one line per check on logger "decision" with the
// documented fields, the path without its query, and no secret anywhere.
func TestDecisionLog(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	id := f.env.ID(t, issuer.TokenOptions{Email: "dora@example.com", Groups: []string{"admins"}})
	access := f.env.Access(t, issuer.TokenOptions{Scopes: []string{"x/y"}})
	secrets := []string{id, access, "sess-" + randomHex(12), "ua-" + randomHex(12), "dora@example.com"}
	hdr := func(tok string) map[string]string {
		return map[string]string{
			"authorization": "Bearer " + tok, "x-request-id": "req-7",
			"cookie": "session=" + secrets[2], "user-agent": secrets[3],
		}
	}
	f.check(t, call{path: "/pets?access_token=" + access, headers: hdr(id)}.request())
	f.check(t, call{path: "/pets/7?x=" + access, headers: hdr(access)}.request())
	f.check(t, call{path: "/nowhere"}.request())

	var got []map[string]any
	for _, l := range f.logs.Lines(t) {
		if l["logger"] == "decision" {
			got = append(got, l)
		}
	}
	if len(got) != 3 {
		t.Fatalf("%d decision lines, want 3 (one per check):\n%s", len(got), f.logs.String())
	}
	want := []map[string]any{
		{"msg": "check allowed", "request_id": "req-7", "method": "GET", "path": "/pets", "host": "api.example.com",
			"route": "list-pets", "decision": "allow", "reason": "allowed", "token_use": "id", "client_id": "client-a"},
		{"msg": "check denied", "request_id": "req-7", "method": "GET", "path": "/pets/7", "host": "api.example.com",
			"route": "pet", "decision": "deny", "reason": "scope_missing", "token_use": "access", "client_id": "client-a"},
		{"msg": "check denied", "method": "GET", "path": "/nowhere", "route": "", "decision": "deny", "reason": "route_not_found"},
	}
	for i, w := range want {
		for k, v := range w {
			if got[i][k] != v {
				t.Errorf("line %d: %s = %v, want %v", i, k, got[i][k], v)
			}
		}
		if _, ok := got[i]["duration"].(float64); !ok {
			t.Errorf("line %d: no numeric duration", i)
		}
		if _, ok := got[i]["trace_id"]; ok {
			t.Errorf("line %d: trace_id present with tracing off", i)
		}
	}
	if s, _ := got[0]["sub"].(string); s == "" {
		t.Errorf("allowed line has no sub")
	}
	if d, ok := got[0]["detail"]; ok {
		t.Errorf("allowed line has a detail %v; an empty detail is left out", d)
	}
	if d, _ := got[2]["detail"].(string); d == "" {
		t.Errorf("route_not_found line has no detail")
	}
	for _, l := range f.logs.Lines(t) {
		if strings.HasPrefix(fmt.Sprint(l["msg"]), "claim header not set") {
			t.Errorf("%q logged though every claim header was set", l["msg"])
		}
	}
	if _, ok := got[2]["sub"]; ok {
		t.Errorf("a check without a verified token logs a sub")
	}
	all := f.logs.String()
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("a secret (token, cookie, header value or claim value) is in the logs: %.24s...", s)
		}
	}
	for _, seg := range strings.Split(id, ".") {
		if strings.Contains(all, seg) {
			t.Errorf("a token segment is in the logs")
		}
	}
}

// TestDecisionLogOmitAllows: --log-allows=false drops allows only.
func TestDecisionLogOmitAllows(t *testing.T) {
	f := newFixture(t, fixtureOptions{omitAllows: true})
	id := f.env.ID(t, issuer.TokenOptions{})
	f.check(t, call{path: "/pets", headers: bearer(id)}.request())
	f.check(t, call{path: "/pets"}.request())
	var msgs []string
	for _, l := range f.logs.Lines(t) {
		if l["logger"] == "decision" {
			msgs = append(msgs, l["msg"].(string))
		}
	}
	if len(msgs) != 1 || msgs[0] != "check denied" {
		t.Errorf("decision lines %v, want only the denial", msgs)
	}
}

// TestDecisionLogSampling: a flood is sampled, and every line not written
// is counted, so written + dropped = checks.
func TestDecisionLogSampling(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	const n = 3 * check.SampleFirst
	req := call{path: "/pets"}.request()
	for range n {
		if _, err := f.srv.Check(context.Background(), req); err != nil {
			t.Fatal(err)
		}
	}
	written := 0
	for _, l := range f.logs.Lines(t) {
		if l["logger"] == "decision" {
			written++
		}
	}
	dropped := series(t, f.reg, "extauthz_decision_logs_dropped_total")[`decision="deny"`]
	if written >= n || dropped == 0 {
		t.Errorf("a flood of %d denials wrote %d lines and dropped %v: not sampled", n, written, dropped)
	}
	if written+int(dropped) != n {
		t.Errorf("written %d + dropped %v != %d checks: drops are not all counted", written, dropped, n)
	}
}

// tracedFixture is a fixture whose checks and JWKS loads are recorded.
func tracedFixture(t *testing.T) (*fixture, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	f := newFixture(t, fixtureOptions{tracer: tp.Tracer("test"), jwks: jwks.Options{TracerProvider: tp}})
	return f, rec
}

const (
	parentTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	parentSpan  = "00f067aa0ba902b7"
	otherTrace  = "0af7651916cd43dd8448eb211c80319c"
)

func traceparent(traceID, spanID string) string { return "00-" + traceID + "-" + spanID + "-01" }

func spansNamed(rec *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

// TestTracingCheckSpan: the check span continues the checked request's
// traceparent (preferred over the gRPC call's), carries route, decision
// and reason, and the JWKS refetch it caused is its child.
func TestTracingCheckSpan(t *testing.T) {
	f, rec := tracedFixture(t)
	before := len(spansNamed(rec, "jwks.fetch"))
	tok := f.env.ID(t, issuer.TokenOptions{Header: map[string]any{"kid": "rotated-kid"}})
	h := bearer(tok)
	h["traceparent"] = traceparent(parentTrace, parentSpan)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", traceparent(otherTrace, parentSpan))
	if _, err := f.client.Check(ctx, call{path: "/pets", headers: h}.request()); err != nil {
		t.Fatal(err)
	}
	checks := spansNamed(rec, "envoy.service.auth.v3.Authorization/Check")
	if len(checks) != 1 {
		t.Fatalf("%d check spans, want 1", len(checks))
	}
	cs := checks[0]
	if got := cs.Parent().TraceID().String(); got != parentTrace {
		t.Errorf("check span parent trace %s, want the checked request's %s", got, parentTrace)
	}
	if got := cs.Parent().SpanID().String(); got != parentSpan {
		t.Errorf("check span parent span %s, want %s", got, parentSpan)
	}
	if cs.SpanKind() != trace.SpanKindServer {
		t.Errorf("check span kind %v, want server", cs.SpanKind())
	}
	attrs := map[string]string{}
	for _, kv := range cs.Attributes() {
		attrs[string(kv.Key)] = kv.Value.String()
	}
	for k, v := range map[string]string{"extauthz.route": "list-pets", "extauthz.decision": "deny", "extauthz.reason": "kid_unknown"} {
		if attrs[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, attrs[k], v)
		}
	}
	fetches := spansNamed(rec, "jwks.fetch")
	if len(fetches) != before+1 {
		t.Fatalf("%d jwks.fetch spans after the check, want %d (the refetch)", len(fetches), before+1)
	}
	child := fetches[len(fetches)-1]
	if child.Parent().SpanID() != cs.SpanContext().SpanID() || child.SpanContext().TraceID() != cs.SpanContext().TraceID() {
		t.Errorf("jwks.fetch parent %v, want the check span %v", child.Parent().SpanID(), cs.SpanContext().SpanID())
	}
	for _, s := range rec.Ended() {
		for _, kv := range s.Attributes() {
			for _, part := range strings.Split(tok, ".") {
				if strings.Contains(kv.Value.String(), part) {
					t.Errorf("span %s attribute %s carries token material", s.Name(), kv.Key)
				}
			}
		}
	}
	var line map[string]any
	for _, l := range f.logs.Lines(t) {
		if l["logger"] == "decision" {
			line = l
		}
	}
	if line["trace_id"] != parentTrace {
		t.Errorf("decision log trace_id %v, want %s", line["trace_id"], parentTrace)
	}
}

// TestTracingSpanStatus: a check span is an error only for a denial that
// is the service's failure (503), not for the client's (401, 403) nor an
// allow.
func TestTracingSpanStatus(t *testing.T) {
	f, rec := tracedFixture(t)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		c    call
		want otelcodes.Code
	}{
		{"allow", context.Background(), call{path: "/health"}, otelcodes.Unset},
		{"401 token missing", context.Background(), call{path: "/pets"}, otelcodes.Unset},
		{"403 no route", context.Background(), call{path: "/nowhere"}, otelcodes.Unset},
		{"503 canceled", canceled, call{path: "/health"}, otelcodes.Error},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(spansNamed(rec, "envoy.service.auth.v3.Authorization/Check"))
			if _, err := f.srv.Check(tt.ctx, tt.c.request()); err != nil {
				t.Fatal(err)
			}
			spans := spansNamed(rec, "envoy.service.auth.v3.Authorization/Check")
			if len(spans) != before+1 {
				t.Fatalf("%d spans after the check, want %d", len(spans), before+1)
			}
			if got := spans[len(spans)-1].Status().Code; got != tt.want {
				t.Errorf("span status %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTracingMetadataFallback: with no traceparent in the checked request,
// the gRPC call's is continued; with neither, the span is a root.
func TestTracingMetadataFallback(t *testing.T) {
	f, rec := tracedFixture(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", traceparent(otherTrace, parentSpan))
	if _, err := f.client.Check(ctx, call{path: "/health"}.request()); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := f.client.Check(cctx, call{path: "/health"}.request()); err != nil {
		t.Fatal(err)
	}
	checks := spansNamed(rec, "envoy.service.auth.v3.Authorization/Check")
	if len(checks) != 2 {
		t.Fatalf("%d check spans, want 2", len(checks))
	}
	if got := checks[0].Parent().TraceID().String(); got != otherTrace {
		t.Errorf("parent trace %s, want the gRPC metadata's %s", got, otherTrace)
	}
	if checks[1].Parent().IsValid() {
		t.Errorf("a check without any traceparent has parent %v", checks[1].Parent())
	}
}
