package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/tlsfiles"
	"github.com/cognito-extauthz/cognito-extauthz/internal/tracing"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// serverFlags are shared by serve and dev.
type serverFlags struct {
	grpcAddr, adminAddr string
	logLevel, logFormat string
	jwksFetchTimeout    time.Duration
	jwksMissWait        time.Duration
	jwksRefreshInterval time.Duration
	jwksMaxBytes        int64
	jwksAllowHTTP       bool
	tokenCacheSize      int
	tokenCacheMaxBytes  int64
	checkTimeout        time.Duration
	shutdownGrace       time.Duration
	shutdownDelay       time.Duration
	reloadInterval      time.Duration
	reloadSettle        time.Duration
	maxMessageBytes     int
	maxHeaders          int
	maxHeaderBytes      int
	reflection          bool
	httpAuthzAddr       string
	logAllows           bool
	enableAdminRPC      bool
	enablePprof         bool
	policy              policyFlags
}

// registerHTTPAuthz adds --http-authz-addr with the command's default ("" is
// off).
func (f *serverFlags) registerHTTPAuthz(fs *flag.FlagSet, def string) {
	fs.StringVar(&f.httpAuthzAddr, "http-authz-addr", def,
		"HTTP authorization listen address (/envoy/<path>, /auth, /nginx for Envoy http_service, Traefik, Caddy, nginx); empty is off")
}

func (f *serverFlags) register(fs *flag.FlagSet, grpcAddr, adminAddr, logFormat string, reflection bool) {
	fs.StringVar(&f.grpcAddr, "grpc-addr", grpcAddr, "gRPC listen address (ext_authz Check and grpc.health.v1)")
	fs.StringVar(&f.adminAddr, "admin-addr", adminAddr, "admin HTTP listen address (/healthz, /readyz, /metrics)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", logFormat, "log format: json or console")
	fs.DurationVar(&f.jwksFetchTimeout, "jwks-fetch-timeout", 5*time.Second, "timeout of one JWKS fetch, body included")
	fs.DurationVar(&f.jwksMissWait, "jwks-miss-wait", 250*time.Millisecond,
		"longest a check whose token names an unknown kid waits for the JWKS refetch (at most 32 such checks per JWKS URL wait at once, never past --check-timeout); the others, and those still waiting then, are denied 503 jwks_unavailable while the refetch goes on")
	fs.DurationVar(&f.jwksRefreshInterval, "jwks-refresh-interval", 10*time.Minute, "background JWKS refresh interval")
	fs.Int64Var(&f.jwksMaxBytes, "jwks-max-bytes", 1<<20, "largest JWKS document accepted, in bytes")
	fs.BoolVar(&f.jwksAllowHTTP, "jwks-allow-http", false, "allow plain-http JWKS URLs to non-loopback hosts")
	fs.IntVar(&f.tokenCacheSize, "token-cache-size", authz.DefaultCacheSize, "most verified tokens kept in memory (0 disables the cache)")
	fs.Int64Var(&f.tokenCacheMaxBytes, "token-cache-max-bytes", authz.DefaultCacheMaxBytes, "most memory the verified-token cache may take, in bytes (estimated; at least 1MiB)")
	fs.DurationVar(&f.checkTimeout, "check-timeout", 2*time.Second, "longest a check may take when Envoy's deadline is later")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 15*time.Second, "on SIGTERM, how long in-flight checks may take to finish")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long after health turns NOT_SERVING")
	fs.DurationVar(&f.reloadInterval, "reload-interval", 5*time.Second, "poll interval of the policy file watcher (fallback to fsnotify)")
	fs.DurationVar(&f.reloadSettle, "reload-settle", server.DefaultReloadSettle, "a changed policy file is applied only once its content has stayed the same this long (0: at once, only for writers that rename a complete file into place)")
	fs.IntVar(&f.maxMessageBytes, "grpc-max-message-bytes", server.DefaultMaxMessageBytes, "largest CheckRequest accepted; larger ones are refused with gRPC RESOURCE_EXHAUSTED")
	fs.IntVar(&f.maxHeaders, "max-request-headers", check.DefaultMaxHeaders, "a checked request with more headers is denied (431, request_too_large)")
	fs.IntVar(&f.maxHeaderBytes, "max-request-header-bytes", check.DefaultMaxHeaderBytes, "a checked request whose headers, path and host exceed this many bytes is denied (431, request_too_large)")
	fs.BoolVar(&f.reflection, "grpc-reflection", reflection, "register gRPC server reflection (for grpcurl)")
	fs.BoolVar(&f.enableAdminRPC, "enable-admin-rpc", false, "serve extauthz.v1.Admin/Explain on the gRPC listener (answers whether a token is valid: keep the port private)")
	fs.BoolVar(&f.enablePprof, "enable-pprof", false, "serve Go's profiler under /debug/pprof/ on the admin listener (exposes internals: keep the port private)")
	fs.BoolVar(&f.logAllows, "log-allows", true, "write a decision log line for allowed checks too (denials are always logged)")
	f.policy.register(fs)
}

func (f *serverFlags) validate() error {
	switch {
	case f.jwksFetchTimeout <= 0:
		return fmt.Errorf("--jwks-fetch-timeout must be positive")
	case f.jwksMissWait <= 0:
		return fmt.Errorf("--jwks-miss-wait must be positive")
	case f.jwksRefreshInterval < time.Second:
		return fmt.Errorf("--jwks-refresh-interval must be at least 1s")
	case f.jwksMaxBytes < 1024:
		return fmt.Errorf("--jwks-max-bytes must be at least 1024")
	case f.tokenCacheSize < 0:
		return fmt.Errorf("--token-cache-size must not be negative")
	case f.tokenCacheMaxBytes < 1<<20:
		return fmt.Errorf("--token-cache-max-bytes must be at least 1048576 (1 MiB)")
	case f.checkTimeout < 0, f.shutdownGrace < 0, f.shutdownDelay < 0:
		return fmt.Errorf("durations must not be negative")
	case f.reloadInterval < 100*time.Millisecond:
		return fmt.Errorf("--reload-interval must be at least 100ms")
	case f.maxMessageBytes < 64<<10, f.maxHeaders < 1, f.maxHeaderBytes < 1024:
		return fmt.Errorf("--grpc-max-message-bytes must be at least 65536, --max-request-headers at least 1, --max-request-header-bytes at least 1024")
	case f.reloadSettle < 0 || f.reloadSettle > time.Minute:
		return fmt.Errorf("--reload-settle must be between 0s and 1m")
	}
	return f.policy.validate()
}

func (f *serverFlags) config(log, decisions *zap.Logger) server.Config {
	settle := f.reloadSettle
	if settle == 0 {
		settle = -1 // server.Config reads zero as the default
	}
	return server.Config{
		Policy:    f.policy.options(f.jwksAllowHTTP),
		GRPCAddr:  f.grpcAddr,
		AdminAddr: f.adminAddr,
		JWKS: jwks.Options{
			FetchTimeout:    f.jwksFetchTimeout,
			MissWait:        f.jwksMissWait,
			MaxBodyBytes:    f.jwksMaxBytes,
			AllowHTTP:       f.jwksAllowHTTP,
			RefreshInterval: f.jwksRefreshInterval,
		},
		TokenCacheSize:     f.tokenCacheSize,
		TokenCacheMaxBytes: f.tokenCacheMaxBytes,
		CheckTimeout:       f.checkTimeout,
		ShutdownGrace:      f.shutdownGrace,
		ShutdownDelay:      f.shutdownDelay,
		ReloadInterval:     f.reloadInterval,
		ReloadSettle:       settle,
		MaxMessageBytes:    f.maxMessageBytes,
		RequestLimits:      check.Limits{MaxHeaders: f.maxHeaders, MaxHeaderBytes: f.maxHeaderBytes},
		Reflection:         f.reflection,
		HTTPAuthzAddr:      f.httpAuthzAddr,
		Logger:             log,
		DecisionLogger:     decisions,
		OmitAllows:         !f.logAllows,
		EnableAdminRPC:     f.enableAdminRPC,
		AdminHandlers:      f.adminHandlers(),
		Version:            version,
		Commit:             commit,
	}
}

// startTracing turns tracing on when the OTEL_* environment asks for it.
// The returned stop flushes buffered spans; call it after the server
// stopped.
func startTracing(ctx context.Context, cfg *server.Config, log *zap.Logger) (stop func(), err error) {
	tp, err := tracing.FromEnv(ctx, version, os.Getenv)
	if err != nil {
		return nil, err
	}
	if !tp.Enabled {
		return func() {}, nil
	}
	cfg.TracerProvider = tp
	log.Info("tracing on", zap.String("protocol", tp.Protocol))
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := tp.Shutdown(sctx); err != nil {
			log.Warn("tracing shutdown", zap.Error(err))
		}
	}, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs, ":9001", ":9002", "json", false)
	sf.registerHTTPAuthz(fs, "")
	configPath := fs.String("config", "", "policy file (YAML, apiVersion cognito-extauthz/v1); required")
	var grpcTLS, httpTLS listenerTLSFlags
	grpcTLS.register(fs, "grpc", "ext_authz gRPC")
	httpTLS.register(fs, "http-authz", "HTTP authorization")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "extauthz serve: --config (or EXTAUTHZ_CONFIG) is required")
		return exitUsage
	}
	if err := sf.validate(); err != nil {
		fmt.Fprintf(stderr, "extauthz serve: %v\n", err)
		return exitUsage
	}
	log, decisions, err := newLoggers(sf.logLevel, sf.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz serve: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.String("version", version), zap.String("commit", commit))

	cfg := sf.config(log, decisions)
	cfg.PolicyPath = *configPath
	// A TLS flag that cannot be honoured stops start-up: serving plaintext
	// (or TLS without the client check) instead would be failing open.
	src, err := grpcTLS.source(sf.reloadInterval, log, "h2")
	if err == nil && src != nil {
		cfg.GRPCTLS = src
	}
	if err == nil {
		if httpTLS.files != (tlsfiles.Files{}) && cfg.HTTPAuthzAddr == "" {
			err = errors.New("--http-authz-tls-* needs --http-authz-addr")
		} else if src, err = httpTLS.source(sf.reloadInterval, log, "http/1.1"); err == nil && src != nil {
			cfg.HTTPAuthzTLS = src
		}
	}
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		fmt.Fprintf(stderr, "extauthz serve: %v\n", err)
		return exitRuntime
	}
	stopTracing, err := startTracing(ctx, &cfg, log)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz serve: %v\n", err)
		return exitUsage
	}
	defer stopTracing()
	srv, err := server.New(cfg)
	if err != nil {
		log.Error("cannot start", zap.Error(err))
		fmt.Fprintf(stderr, "extauthz serve: %v\n", err)
		return exitRuntime
	}
	if err := srv.Run(ctx); err != nil {
		log.Error("server failed", zap.Error(err))
		return exitRuntime
	}
	return exitOK
}
