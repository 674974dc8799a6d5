// Package server assembles the running service: the ext_authz gRPC server
// with gRPC health, the admin HTTP server (/healthz, /readyz, /metrics), the
// shared JWKS cache, policy hot reload, and graceful shutdown.
package server

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/watch"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// authService is the name Envoy's gRPC health check may ask about.
const authService = "envoy.service.auth.v3.Authorization"

// Config is everything the service is started with.
type Config struct {
	// PolicyPath is the policy file, watched for changes. Empty means the
	// policy is Snapshot, fixed for the life of the process.
	PolicyPath string
	Snapshot   *policy.Snapshot
	Policy     policy.Options

	GRPCAddr  string // e.g. ":9001"
	AdminAddr string // e.g. ":9002"
	// GRPCListener and AdminListener, when set, are used instead of
	// binding the addresses (tests, socket activation).
	GRPCListener  net.Listener
	AdminListener net.Listener

	// HTTPAuthzAddr, when set, serves the HTTP authorization mode
	// (internal/httpauthz) there; empty means off. HTTPAuthzListener, when set,
	// is used instead of binding it.
	HTTPAuthzAddr     string
	HTTPAuthzListener net.Listener
	// HTTPAuthzTLS, when set, puts the HTTP authorization listener behind
	// TLS (mTLS when its config requires client certificates), kept
	// current by its Run like GRPCTLS.
	HTTPAuthzTLS TLSSource

	JWKS           jwks.Options // Logger and Registerer are filled in here
	TokenCacheSize int
	// TokenCacheMaxBytes bounds the verified-token cache's estimated
	// memory; 0 means authz.DefaultCacheMaxBytes.
	TokenCacheMaxBytes int64
	CheckTimeout       time.Duration
	// ShutdownDelay keeps serving after health turns NOT_SERVING, so
	// that load balancers stop sending before the listener closes.
	ShutdownDelay time.Duration
	// ShutdownGrace bounds how long in-flight checks may take to finish.
	ShutdownGrace time.Duration
	// ReloadInterval is the poll fallback of the policy watcher.
	ReloadInterval time.Duration
	// ReloadSettle is how long a changed policy file must keep the same
	// content before it is applied, so that a file rewritten in place is
	// never applied half-written. Zero means DefaultReloadSettle; a
	// negative value applies every change at once (only safe when every
	// writer replaces the file atomically).
	ReloadSettle time.Duration
	// MaxMessageBytes is the largest CheckRequest accepted (gRPC
	// RESOURCE_EXHAUSTED above it); zero means DefaultMaxMessageBytes.
	MaxMessageBytes int
	// RequestLimits bounds the headers a check judges on either edge
	// (request_too_large denial above them); zero fields take the
	// defaults of internal/check.
	RequestLimits check.Limits
	// Reflection registers gRPC server reflection (for grpcurl).
	Reflection bool
	// AdminHandlers are extra admin HTTP routes (the dev issuer's JWKS).
	AdminHandlers map[string]http.Handler
	// GRPCTLS, when set, puts the gRPC listener behind TLS (mTLS when its
	// config asks for client certificates); nil serves plaintext.
	GRPCTLS TLSSource

	Logger *zap.Logger
	// DecisionLogger receives one line per check; nil is
	// Logger.Named("decision"). It should not be sampled already: the
	// edge samples it and counts what it drops.
	DecisionLogger *zap.Logger
	// OmitAllows leaves allowed checks out of the decision log.
	OmitAllows bool
	// TracerProvider, when non-nil, traces checks and JWKS loads. nil
	// turns tracing off at no cost per check.
	TracerProvider trace.TracerProvider
	// EnableAdminRPC serves extauthz.v1.Admin (Explain) on the gRPC
	// listener. Off by default: it answers whether a token is valid.
	EnableAdminRPC bool
	// Version and Commit label extauthz_build_info.
	Version, Commit string
}

// TLSSource supplies a listener's TLS configuration and keeps it current
// (certificate rotation) while Run runs; its metrics go on /metrics.
// internal/tlsfiles provides one.
type TLSSource interface {
	Config() *tls.Config
	Run(ctx context.Context) error
	prometheus.Collector
}

// Server is the assembled service. Create it with New, run it with Run.
type Server struct {
	cfg      Config
	log      *zap.Logger
	snap     atomic.Pointer[policy.Snapshot]
	keys     *jwks.Cache
	authz    *authz.Authorizer
	grpc     *grpc.Server
	health   *health.Server
	admin    *http.Server
	grpcLis  net.Listener
	adminLis net.Listener
	registry *prometheus.Registry
	reloads  *prometheus.CounterVec
	checks   *check.Metrics // both edges' check counters
	lastLoad prometheus.Gauge

	// httpAuthz and httpAuthzLis are nil when the HTTP mode is off.
	httpAuthz    *http.Server
	httpAuthzLis net.Listener

	ready    atomic.Bool // latched once the first policy's keys are in
	draining atomic.Bool
	reloadMu sync.Mutex // one reload at a time
}

// New loads the policy, builds every part and binds the listeners. It does
// not serve yet. An invalid policy is an error: the service never starts
// on a policy it cannot enforce.
func New(cfg Config) (*Server, error) {
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	s.registerMetrics()
	s.checks = check.NewMetrics(s.registry)

	snap := cfg.Snapshot
	if cfg.PolicyPath != "" {
		var err error
		snap, err = policy.Load(cfg.PolicyPath, cfg.Policy)
		if err != nil {
			return nil, fmt.Errorf("load policy %q: %w", cfg.PolicyPath, err)
		}
	}
	if snap == nil {
		return nil, errors.New("no policy: set a policy path or a snapshot")
	}
	s.snap.Store(snap)
	s.lastLoad.SetToCurrentTime()
	logWarnings(s.log, snap)

	jopts := cfg.JWKS
	jopts.Logger = log.Named("jwks")
	jopts.Registerer = s.registry
	jopts.TracerProvider = cfg.TracerProvider
	s.keys = jwks.New(jopts)
	s.authz = authz.New(s.keys, authz.Options{
		CacheSize:     cfg.TokenCacheSize,
		CacheMaxBytes: cfg.TokenCacheMaxBytes,
		Timeout:       cfg.CheckTimeout,
	})
	revoked, err := s.newRevocations(snap)
	if err != nil {
		s.keys.Close()
		return nil, err
	}
	s.authz.SetRevocations(revoked)
	s.registerServiceGauges()
	for _, src := range []TLSSource{cfg.GRPCTLS, cfg.HTTPAuthzTLS} {
		if src != nil {
			s.registry.MustRegister(src)
		}
	}

	obs := s.newObserver()
	s.grpc = s.newGRPC(obs)
	s.newHTTPAuthz(obs)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	for p, h := range cfg.AdminHandlers {
		mux.Handle(p, h)
	}
	s.admin = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
	}

	if err := s.listen(); err != nil {
		s.keys.Close()
		return nil, err
	}
	return s, nil
}

// registerServiceGauges registers the gauges read at scrape time.
func (s *Server) registerServiceGauges() {
	s.registry.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "extauthz_token_cache_entries",
			Help: "Verified tokens currently cached.",
		}, func() float64 { return float64(s.authz.CacheLen()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "extauthz_token_cache_bytes",
			Help: "Estimated memory of the cached verified tokens (bounded by --token-cache-max-bytes).",
		}, func() float64 { return float64(s.authz.CacheBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "extauthz_ready",
			Help: "1 when the service is ready to answer checks.",
		}, func() float64 {
			if s.Ready() {
				return 1
			}
			return 0
		}),
	)
}

func (s *Server) listen() error {
	var err error
	s.grpcLis = s.cfg.GRPCListener
	if s.grpcLis == nil {
		if s.grpcLis, err = net.Listen("tcp", s.cfg.GRPCAddr); err != nil {
			return fmt.Errorf("listen grpc %s: %w", s.cfg.GRPCAddr, err)
		}
	}
	s.adminLis = s.cfg.AdminListener
	if s.adminLis == nil {
		if s.adminLis, err = net.Listen("tcp", s.cfg.AdminAddr); err != nil {
			_ = s.grpcLis.Close()
			return fmt.Errorf("listen admin %s: %w", s.cfg.AdminAddr, err)
		}
	}
	if err := s.listenHTTPAuthz(); err != nil {
		_ = s.grpcLis.Close()
		_ = s.adminLis.Close()
		return err
	}
	return nil
}

// GRPCAddr is the address the gRPC server listens on.
func (s *Server) GRPCAddr() string { return s.grpcLis.Addr().String() }

// AdminAddr is the address the admin HTTP server listens on.
func (s *Server) AdminAddr() string { return s.adminLis.Addr().String() }

// Snapshot returns the policy in force.
func (s *Server) Snapshot() *policy.Snapshot { return s.snap.Load() }

// Ready reports whether checks can be answered: the first policy is in
// force, its keys were fetched once, and shutdown has not begun. Once
// ready, a JWKS outage does not make the service unready: stale keys keep
// working, and a replica that cannot reach the IdP is no worse than its
// peers.
func (s *Server) Ready() bool { return s.ready.Load() && !s.draining.Load() }

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	snap := s.snap.Load()
	body := struct {
		Ready    bool                `json:"ready"`
		Draining bool                `json:"draining"`
		Policy   string              `json:"policy_digest"`
		Routes   int                 `json:"routes"`
		JWKS     []jwks.SourceStatus `json:"jwks"`
	}{s.Ready(), s.draining.Load(), snap.Digest(), len(snap.Routes()), s.keys.Status()}
	w.Header().Set("Content-Type", "application/json")
	if !body.Ready {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}

// Run serves until ctx ends, then shuts down gracefully: health turns
// NOT_SERVING, in-flight checks finish within ShutdownGrace, and Run
// returns nil. It returns an error only when a server fails.
func (s *Server) Run(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() {
		if err := s.grpc.Serve(s.grpcLis); err != nil {
			errc <- fmt.Errorf("serve grpc: %w", err)
		}
	}()
	go func() {
		if err := s.admin.Serve(s.adminLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve admin: %w", err)
		}
	}()
	s.serveHTTPAuthz(errc)
	s.log.Info("serving",
		zap.String("grpc_addr", s.GRPCAddr()),
		zap.String("http_authz_addr", s.HTTPAuthzAddr()),
		zap.Bool("grpc_tls", s.cfg.GRPCTLS != nil),
		zap.Bool("http_authz_tls", s.cfg.HTTPAuthzTLS != nil),
		zap.String("admin_addr", s.AdminAddr()),
		zap.String("policy_digest", s.snap.Load().Digest()),
		zap.Int("routes", len(s.snap.Load().Routes())))

	bg, stopBG := context.WithCancel(context.Background())
	s.startRevocations(bg)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.becomeReady(bg)
	}()
	for _, src := range []TLSSource{s.cfg.GRPCTLS, s.cfg.HTTPAuthzTLS} {
		if src == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := src.Run(bg); err != nil {
				s.log.Error("tls certificate watch stopped; the certificate in force stays", zap.Error(err))
			}
		}()
	}
	if s.cfg.PolicyPath != "" {
		wg.Add(2)
		go func() {
			defer wg.Done()
			reload := func() { s.reload(bg) }
			if err := watch.Watch(bg, s.cfg.PolicyPath, s.cfg.ReloadInterval, s.log.Named("watch"), reload); err != nil {
				s.log.Error("policy watch stopped", zap.Error(err))
			}
		}()
		// The watcher reports changes relative to what it first reads; a
		// change between New's load and that read would go unseen. One
		// reconciling reload, once the watcher is surely up, closes the gap
		// (it is a no-op when the digest is unchanged).
		go func() {
			defer wg.Done()
			t := time.NewTimer(s.cfg.ReloadInterval + time.Second)
			defer t.Stop()
			select {
			case <-bg.Done():
			case <-t.C:
				s.reload(bg)
			}
		}()
	}

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	s.shutdown()
	stopBG()
	wg.Wait()
	return runErr
}

// becomeReady waits for the first policy's keys, and its revocation
// list's first full read, then turns health on.
func (s *Server) becomeReady(ctx context.Context) {
	sources := s.snap.Load().KeySources()
	for {
		err := s.keys.Prepare(ctx, sources, nil, 30*time.Second)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("waiting for jwks before becoming ready", zap.Error(err))
	}
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.authz.Revocations().Wait(wctx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("waiting for the revocation list before becoming ready", zap.Error(err))
	}
	s.ready.Store(true)
	if !s.draining.Load() {
		s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		s.health.SetServingStatus(authService, healthpb.HealthCheckResponse_SERVING)
		s.log.Info("ready")
	}
}

// registerMetrics registers the process-level metrics, every series of a
// closed label set created at zero.
func (s *Server) registerMetrics() {
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_policy_reloads_total",
		Help: "Policy reload attempts by result (success|failure|unchanged|unsettled).",
	}, []string{"result"})
	s.lastLoad = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "extauthz_policy_last_reload_success_timestamp_seconds",
		Help: "When the policy in force was loaded.",
	})
	s.registry.MustRegister(s.reloads, s.lastLoad, buildInfo(s.cfg.Version, s.cfg.Commit))
	for _, r := range []string{"success", "failure", "unchanged", "unsettled"} {
		s.reloads.WithLabelValues(r)
	}
}

// buildInfo is the constant extauthz_build_info series: which build runs,
// for dashboards that compare replicas during a rollout.
func buildInfo(version, commit string) prometheus.Collector {
	if version == "" {
		version = "dev"
	}
	if commit == "" {
		commit = "unknown"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "extauthz_build_info",
		Help: "Always 1; the labels name the running build.",
		ConstLabels: prometheus.Labels{
			"version": version, "commit": commit, "goversion": runtime.Version(),
		},
	})
	g.Set(1)
	return g
}

func (s *Server) shutdown() {
	s.log.Info("shutting down: health NOT_SERVING, draining checks",
		zap.Duration("delay", s.cfg.ShutdownDelay), zap.Duration("grace", s.cfg.ShutdownGrace))
	s.draining.Store(true)
	s.health.Shutdown()
	if s.httpAuthz != nil {
		// Proxies with pooled connections move to another replica.
		s.httpAuthz.SetKeepAlivesEnabled(false)
	}
	if s.cfg.ShutdownDelay > 0 {
		time.Sleep(s.cfg.ShutdownDelay)
	}
	grace := s.cfg.ShutdownGrace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	httpDone := s.shutdownHTTPAuthz(grace)
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(grace)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		s.log.Warn("shutdown grace expired; closing remaining streams")
		s.grpc.Stop()
		<-done
	}
	<-httpDone
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.admin.Shutdown(ctx); err != nil {
		s.log.Warn("admin server shutdown", zap.Error(err))
	}
	s.keys.Close()
	if err := s.authz.Revocations().Close(); err != nil {
		s.log.Warn("revocation list close", zap.Error(err))
	}
	s.log.Info("stopped")
}

// logWarnings logs what the policy's lints found valid but probably not
// meant, one line each, at load and at every reload.
func logWarnings(log *zap.Logger, snap *policy.Snapshot) {
	for _, w := range snap.Warnings() {
		log.Warn("policy warning", zap.String("digest", snap.Digest()), zap.String("warning", w.String()))
	}
}
