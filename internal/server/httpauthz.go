package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/internal/httpauthz"
)

// newHTTPAuthz builds the HTTP authorization server when it is configured.
// It records its checks with the gRPC edge's observer, and has the same
// limits and deadline.
func (s *Server) newHTTPAuthz(obs *check.Observer) {
	if s.cfg.HTTPAuthzAddr == "" && s.cfg.HTTPAuthzListener == nil {
		return
	}
	h := httpauthz.New(httpauthz.Options{
		Snapshot:   s.snap.Load,
		Authorizer: s.authz,
		Observer:   obs,
		Logger:     s.log.Named("http_authz"),
		Limits:     s.cfg.RequestLimits,
		Timeout:    s.cfg.CheckTimeout,
	})
	s.httpAuthz = httpauthz.NewServer(h, s.log.Named("http_authz"))
}

func (s *Server) listenHTTPAuthz() error {
	if s.httpAuthz == nil {
		return nil
	}
	lis := s.cfg.HTTPAuthzListener
	if lis == nil {
		var err error
		if lis, err = net.Listen("tcp", s.cfg.HTTPAuthzAddr); err != nil {
			return fmt.Errorf("listen http authz %s: %w", s.cfg.HTTPAuthzAddr, err)
		}
	}
	if s.cfg.HTTPAuthzTLS != nil {
		lis = tls.NewListener(lis, s.cfg.HTTPAuthzTLS.Config())
	}
	s.httpAuthzLis = lis
	return nil
}

// HTTPAuthzAddr is the address of the HTTP authorization listener, "" when
// the HTTP mode is off.
func (s *Server) HTTPAuthzAddr() string {
	if s.httpAuthzLis == nil {
		return ""
	}
	return s.httpAuthzLis.Addr().String()
}

func (s *Server) serveHTTPAuthz(errc chan<- error) {
	if s.httpAuthz == nil {
		return
	}
	go func() {
		if err := s.httpAuthz.Serve(s.httpAuthzLis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("serve http authz: %w", err)
		}
	}()
}

// shutdownHTTPAuthz lets in-flight authorization requests finish within
// grace, then closes what is left. The returned channel closes when done.
func (s *Server) shutdownHTTPAuthz(grace time.Duration) <-chan struct{} {
	done := make(chan struct{})
	if s.httpAuthz == nil {
		close(done)
		return done
	}
	go func() {
		defer close(done)
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		if err := s.httpAuthz.Shutdown(ctx); err != nil {
			s.log.Warn("shutdown grace expired; closing http authz connections")
			_ = s.httpAuthz.Close()
		}
	}()
	return done
}
