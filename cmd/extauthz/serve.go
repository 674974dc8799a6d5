package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/server"
)

// serverFlags are shared by serve and dev.
type serverFlags struct {
	grpcAddr, adminAddr string
	logLevel, logFormat string
	jwksFetchTimeout    time.Duration
	jwksRefreshInterval time.Duration
	jwksMaxBytes        int64
	jwksAllowHTTP       bool
	tokenCacheSize      int
	tokenCacheMaxBytes  int64
	checkTimeout        time.Duration
	shutdownGrace       time.Duration
	shutdownDelay       time.Duration
	reloadInterval      time.Duration
	reflection          bool
}

func (f *serverFlags) register(fs *flag.FlagSet, grpcAddr, adminAddr, logFormat string, reflection bool) {
	fs.StringVar(&f.grpcAddr, "grpc-addr", grpcAddr, "gRPC listen address (ext_authz Check and grpc.health.v1)")
	fs.StringVar(&f.adminAddr, "admin-addr", adminAddr, "admin HTTP listen address (/healthz, /readyz, /metrics)")
	fs.StringVar(&f.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&f.logFormat, "log-format", logFormat, "log format: json or console")
	fs.DurationVar(&f.jwksFetchTimeout, "jwks-fetch-timeout", 5*time.Second, "timeout of one JWKS fetch, body included")
	fs.DurationVar(&f.jwksRefreshInterval, "jwks-refresh-interval", 10*time.Minute, "background JWKS refresh interval")
	fs.Int64Var(&f.jwksMaxBytes, "jwks-max-bytes", 1<<20, "largest JWKS document accepted, in bytes")
	fs.BoolVar(&f.jwksAllowHTTP, "jwks-allow-http", false, "allow plain-http JWKS URLs to non-loopback hosts")
	fs.IntVar(&f.tokenCacheSize, "token-cache-size", authz.DefaultCacheSize, "most verified tokens kept in memory (0 disables the cache)")
	fs.Int64Var(&f.tokenCacheMaxBytes, "token-cache-max-bytes", authz.DefaultCacheMaxBytes, "most memory the verified-token cache may take, in bytes (estimated; at least 1MiB)")
	fs.DurationVar(&f.checkTimeout, "check-timeout", 2*time.Second, "longest a check may take when Envoy's deadline is later")
	fs.DurationVar(&f.shutdownGrace, "shutdown-grace", 15*time.Second, "on SIGTERM, how long in-flight checks may take to finish")
	fs.DurationVar(&f.shutdownDelay, "shutdown-delay", 0, "on SIGTERM, keep serving this long after health turns NOT_SERVING")
	fs.DurationVar(&f.reloadInterval, "reload-interval", 5*time.Second, "poll interval of the policy file watcher (fallback to fsnotify)")
	fs.BoolVar(&f.reflection, "grpc-reflection", reflection, "register gRPC server reflection (for grpcurl)")
}

func (f *serverFlags) validate() error {
	switch {
	case f.jwksFetchTimeout <= 0:
		return fmt.Errorf("--jwks-fetch-timeout must be positive")
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
	}
	return nil
}

func (f *serverFlags) config(log *zap.Logger) server.Config {
	return server.Config{
		Policy:    policy.Options{AllowHTTPJWKS: f.jwksAllowHTTP},
		GRPCAddr:  f.grpcAddr,
		AdminAddr: f.adminAddr,
		JWKS: jwks.Options{
			FetchTimeout:    f.jwksFetchTimeout,
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
		Reflection:         f.reflection,
		Logger:             log,
	}
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var sf serverFlags
	sf.register(fs, ":9001", ":9002", "json", false)
	configPath := fs.String("config", "", "policy file (YAML, apiVersion cognito-extauthz/v1); required")
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
	log, err := newLogger(sf.logLevel, sf.logFormat, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "extauthz serve: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.String("version", version), zap.String("commit", commit))

	cfg := sf.config(log)
	cfg.PolicyPath = *configPath
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
