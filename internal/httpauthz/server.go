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
	// MaxHeaderBytes bounds the request line and headers: a 16 KiB token
	// plus cookies and forwarding headers fit, with room.
	MaxHeaderBytes = 64 << 10
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
// its limits set. TLS, when wanted, is the listener's (pkg/server wraps it
// with tls.NewListener), so the server itself never needs a certificate.
func NewServer(h http.Handler, log *zap.Logger) *http.Server {
	if log == nil {
		log = zap.NewNop()
	}
	return &http.Server{
		Handler:           h,
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
}
