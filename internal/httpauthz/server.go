package httpauthz

import (
	"net/http"
	"time"

	"go.uber.org/zap"
)

// Limits of the HTTP authorization listener. Proxies ask with small,
// header-only requests on loopback or in-cluster links; a client that is
// slower or bigger than this is tying the listener up, not asking.
const (
	// ReadHeaderTimeout bounds a slow-header (slowloris) client.
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading the whole request, body included.
	ReadTimeout = 10 * time.Second
	// WriteTimeout bounds the decision plus the response write; checks are
	// capped well below it (--check-timeout).
	WriteTimeout = 10 * time.Second
	// IdleTimeout closes keep-alive connections a proxy left unused.
	IdleTimeout = 2 * time.Minute
)

// NewServer returns the http.Server of the HTTP authorization listener with
// its limits set. TLS, when wanted, is the listener's (internal/server
// wraps it with tls.NewListener), so the server itself never needs a
// certificate.
//
// The handler enforces the request limits itself, so that an oversized
// request gets the same 431 request_too_large JSON answer as a gRPC check,
// counted and logged. net/http reads headers up to twice that limit before
// the handler runs; a request larger still is refused by net/http with its
// own plain-text 431, which no handler sees.
func NewServer(h *Handler, log *zap.Logger) *http.Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    2 * h.opts.Limits.MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}
