// Package server assembles the running service: the ext_authz gRPC server
// with gRPC health, the admin HTTP server (/healthz, /readyz, /metrics), the
// shared JWKS cache, policy hot reload, and graceful shutdown.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/extauthz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/watch"
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
	// Reflection registers gRPC server reflection (for grpcurl).
	Reflection bool
	// AdminHandlers are extra admin HTTP routes (the dev issuer's JWKS).
	AdminHandlers map[string]http.Handler

	Logger *zap.Logger
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
	lastLoad prometheus.Gauge

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
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	s.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "extauthz_policy_reloads_total",
		Help: "Policy reload attempts by result (success|failure|unchanged).",
	}, []string{"result"})
	s.lastLoad = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "extauthz_policy_last_reload_success_timestamp_seconds",
		Help: "When the policy in force was loaded.",
	})
	s.registry.MustRegister(s.reloads, s.lastLoad)
	for _, r := range []string{"success", "failure", "unchanged"} {
		s.reloads.WithLabelValues(r)
	}

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

	jopts := cfg.JWKS
	jopts.Logger = log.Named("jwks")
	jopts.Registerer = s.registry
	s.keys = jwks.New(jopts)
	s.authz = authz.New(s.keys, authz.Options{
		CacheSize:     cfg.TokenCacheSize,
		CacheMaxBytes: cfg.TokenCacheMaxBytes,
		Timeout:       cfg.CheckTimeout,
	})
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

	s.grpc = grpc.NewServer(
		grpc.ForceServerCodecV2(newCodec()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: 15 * time.Minute}),
	)
	edge := extauthz.NewServer(extauthz.Options{
		Snapshot:   s.snap.Load,
		Authorizer: s.authz,
		Logger:     log.Named("check"),
		Metrics:    extauthz.NewMetrics(s.registry),
	})
	edge.Register(s.grpc)
	s.health = health.NewServer()
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	s.health.SetServingStatus(authService, healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Reflection {
		reflection.Register(s.grpc)
	}

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
	errc := make(chan error, 2)
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
	s.log.Info("serving",
		zap.String("grpc_addr", s.GRPCAddr()),
		zap.String("admin_addr", s.AdminAddr()),
		zap.String("policy_digest", s.snap.Load().Digest()),
		zap.Int("routes", len(s.snap.Load().Routes())))

	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.becomeReady(bg)
	}()
	if s.cfg.PolicyPath != "" {
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := watch.Watch(bg, s.cfg.PolicyPath, s.cfg.ReloadInterval, s.log.Named("watch"), s.Reload); err != nil {
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
				s.Reload()
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

// becomeReady waits for the first policy's keys, then turns health on.
func (s *Server) becomeReady(ctx context.Context) {
	sources := s.snap.Load().KeySources()
	s.keys.Sync(sources)
	for {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := s.keys.Wait(wctx, sources)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("waiting for jwks before becoming ready", zap.Error(err))
	}
	s.ready.Store(true)
	if !s.draining.Load() {
		s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		s.health.SetServingStatus(authService, healthpb.HealthCheckResponse_SERVING)
		s.log.Info("ready")
	}
}

// Reload loads the policy file again and, when it is valid, swaps it in
// atomically. Any error keeps the policy in force. Checks never see a
// half-applied policy: each reads one snapshot pointer once.
func (s *Server) Reload() {
	if s.cfg.PolicyPath == "" {
		return
	}
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	next, err := policy.Load(s.cfg.PolicyPath, s.cfg.Policy)
	if err != nil {
		s.reloads.WithLabelValues("failure").Inc()
		s.log.Error("policy reload rejected; keeping the policy in force",
			zap.String("path", s.cfg.PolicyPath),
			zap.String("policy_digest", s.snap.Load().Digest()),
			zap.Error(err))
		return
	}
	cur := s.snap.Load()
	if next.Digest() == cur.Digest() {
		s.reloads.WithLabelValues("unchanged").Inc()
		return
	}
	// Fetch the new policy's keys before it takes effect, while keeping
	// the old sources for checks still running on the old snapshot.
	newSources := next.KeySources()
	s.keys.Sync(union(cur.KeySources(), newSources))
	wait := s.cfg.JWKS.FetchTimeout
	if wait <= 0 {
		wait = 5 * time.Second
	}
	wctx, cancel := context.WithTimeout(context.Background(), wait+time.Second)
	if err := s.keys.Wait(wctx, newSources); err != nil {
		// The policy is valid; an unreachable key set is an operational
		// problem confined to the routes that use it (they fail closed).
		s.log.Warn("new policy's jwks not all loaded; applying it anyway", zap.Error(err))
	}
	cancel()
	s.snap.Store(next)
	s.keys.Sync(newSources)
	s.reloads.WithLabelValues("success").Inc()
	s.lastLoad.SetToCurrentTime()
	s.log.Info("policy reloaded",
		zap.String("path", s.cfg.PolicyPath),
		zap.String("previous_digest", cur.Digest()),
		zap.String("policy_digest", next.Digest()),
		zap.Int("routes", len(next.Routes())))
}

func union(a, b []jwks.Source) []jwks.Source {
	seen := make(map[jwks.Source]bool, len(a)+len(b))
	out := make([]jwks.Source, 0, len(a)+len(b))
	for _, list := range [][]jwks.Source{a, b} {
		for _, src := range list {
			if !seen[src] {
				seen[src] = true
				out = append(out, src)
			}
		}
	}
	return out
}

func (s *Server) shutdown() {
	s.log.Info("shutting down: health NOT_SERVING, draining checks",
		zap.Duration("delay", s.cfg.ShutdownDelay), zap.Duration("grace", s.cfg.ShutdownGrace))
	s.draining.Store(true)
	s.health.Shutdown()
	if s.cfg.ShutdownDelay > 0 {
		time.Sleep(s.cfg.ShutdownDelay)
	}
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	grace := s.cfg.ShutdownGrace
	if grace <= 0 {
		grace = 15 * time.Second
	}
	t := time.NewTimer(grace)
	select {
	case <-done:
		t.Stop()
	case <-t.C:
		s.log.Warn("shutdown grace expired; closing remaining streams")
		s.grpc.Stop()
		<-done
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.admin.Shutdown(ctx); err != nil {
		s.log.Warn("admin server shutdown", zap.Error(err))
	}
	s.keys.Close()
	s.log.Info("stopped")
}
