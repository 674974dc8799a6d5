package server

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/explain"
	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
)

// gRPC transport limits. Envoy sends one small CheckRequest per client
// request over a few long-lived HTTP/2 connections; these bound what a
// misbehaving or hostile peer can make one connection cost.
const (
	// DefaultMaxMessageBytes is gRPC's own default, made explicit: far
	// above any CheckRequest Envoy builds from its default header limits.
	DefaultMaxMessageBytes = 4 << 20
	// maxConcurrentStreams bounds checks in flight per connection (Envoy
	// opens another connection, or queues, beyond it): with the message
	// cap it bounds the memory one connection can pin.
	maxConcurrentStreams = 256
	// maxHeaderListBytes bounds the gRPC (HTTP/2) metadata of a call, not
	// the checked request's headers, which travel in the message. grpc-go
	// would otherwise accept 16 MiB.
	maxHeaderListBytes = 64 << 10
	// streamWorkers is how many goroutines wait for checks: about the
	// checks in flight on a busy replica (Envoy's pending requests), at
	// a few KiB of stack each.
	streamWorkers = 128
)

func grpcOptions(cfg Config) []grpc.ServerOption {
	maxMsg := cfg.MaxMessageBytes
	if maxMsg <= 0 {
		maxMsg = DefaultMaxMessageBytes
	}
	return []grpc.ServerOption{
		// vtprotobuf marshalling where the build has it (see codec.go).
		grpc.ForceServerCodecV2(grpcauthz.Codec()),
		grpc.MaxRecvMsgSize(maxMsg),
		grpc.MaxConcurrentStreams(maxConcurrentStreams),
		// Streams run on long-lived workers whose stacks have already
		// grown, instead of a new goroutine that grows its stack (a copy)
		// on every check: that copying was a tenth of the CPU of a cached
		// check. Beyond 128 checks in flight, grpc-go starts goroutines.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.MaxHeaderListSize(maxHeaderListBytes),
		// Stamps each stream before its message is read, so the check
		// timeout covers receiving and decoding it.
		grpc.InTapHandle(grpcauthz.TapArrival),
		// Envoy's HTTP/2 keepalive pings every 30 s in the shipped
		// configs; faster pingers are cut off (GOAWAY too_many_pings).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		// Find half-open connections from our side too (a peer on a
		// dead node never sends FIN), and drop idle ones.
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 15 * time.Minute,
			Time:              2 * time.Minute,
			Timeout:           20 * time.Second,
		}),
	}
}

// newObserver is what both edges record their checks with: one set of
// metrics, one decision log, one tracer.
func (s *Server) newObserver() *check.Observer {
	opts := check.ObserverOptions{
		Logger:         s.log.Named("check"),
		DecisionLogger: s.cfg.DecisionLogger,
		OmitAllows:     s.cfg.OmitAllows,
		Metrics:        s.checks,
	}
	if s.cfg.TracerProvider != nil {
		opts.Tracer = s.cfg.TracerProvider.Tracer("github.com/cognito-extauthz/cognito-extauthz/internal/check")
	}
	return check.NewObserver(opts)
}

// newGRPC assembles the gRPC server: ext_authz Check, health, and what the
// operator turned on (reflection, the Admin service).
func (s *Server) newGRPC(obs *check.Observer) *grpc.Server {
	opts := grpcOptions(s.cfg)
	if s.cfg.GRPCTLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(s.cfg.GRPCTLS.Config())))
	}
	g := grpc.NewServer(opts...)
	grpcauthz.NewServer(grpcauthz.Options{
		Snapshot:   s.snap.Load,
		Authorizer: s.authz,
		Logger:     s.log.Named("check"),
		Observer:   obs,
		Limits:     s.cfg.RequestLimits,
		Timeout:    s.cfg.CheckTimeout,
	}).Register(g)
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(authService, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(g, s.health)
	if s.cfg.Reflection {
		reflection.Register(g)
	}
	if s.cfg.EnableAdminRPC {
		explain.NewAdmin(s.snap.Load, s.keys, s.authz).Register(g)
	}
	return g
}
