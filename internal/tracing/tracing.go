// Package tracing sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables, and nothing else: an operator who knows the OTel
// specification needs no flag of ours. Tracing is off (a no-op provider,
// which costs a check nothing) unless an OTLP endpoint is configured.
package tracing

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is the service.name resource attribute unless
// OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES says otherwise.
const ServiceName = "cognito-extauthz"

// Provider is the configured tracer provider and how to flush it.
type Provider struct {
	trace.TracerProvider
	// Enabled is false when no endpoint is configured: spans are not
	// recorded at all.
	Enabled bool
	// Protocol is the OTLP protocol in use ("grpc" or "http/protobuf"),
	// "" when disabled.
	Protocol string
	sdk      *sdktrace.TracerProvider
}

// Shutdown flushes buffered spans and stops the exporter. It is a no-op
// when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p.sdk == nil {
		return nil
	}
	return p.sdk.Shutdown(ctx)
}

// FromEnv builds the provider the OTEL_* variables describe. getenv is
// os.Getenv in production. Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT
// or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set (and OTEL_SDK_DISABLED is
// not true); the protocol is OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else
// OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf. Everything else
// (headers, TLS, timeouts, sampler, batching, resource) the exporters and
// the SDK read from the environment themselves, as the specification
// defines it.
func FromEnv(ctx context.Context, version string, getenv func(string) string) (*Provider, error) {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") ||
		getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "" {
		return &Provider{TracerProvider: noop.NewTracerProvider()}, nil
	}
	protocol := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if protocol == "" {
		protocol = "http/protobuf"
	}
	var (
		exp *otlptrace.Exporter
		err error
	)
	switch protocol {
	case "grpc":
		exp, err = otlptracegrpc.New(ctx)
	case "http/protobuf":
		exp, err = otlptracehttp.New(ctx)
	default:
		// http/json is in the specification but not in the Go exporter:
		// refusing it beats silently sending nothing.
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL %q: want grpc or http/protobuf", protocol)
	}
	if err != nil {
		return nil, fmt.Errorf("otlp %s exporter: %w", protocol, err)
	}
	res, err := resource.Merge(
		resource.NewWithAttributes(semconv.SchemaURL,
			semconv.ServiceName(ServiceName), semconv.ServiceVersion(version)),
		// Environment last, so OTEL_SERVICE_NAME and
		// OTEL_RESOURCE_ATTRIBUTES win over our defaults.
		resource.Environment(),
	)
	if err != nil {
		return nil, fmt.Errorf("otel resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
	)
	return &Provider{TracerProvider: sdk, Enabled: true, Protocol: protocol, sdk: sdk}, nil
}
