// Package promreg registers Prometheus collectors the way every part of the
// service needs: a second instance on the same registry (a second key
// cache, a revocation list replaced on a policy reload) shares the first
// one's series instead of failing to register.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Register registers c with reg, or returns the collector already
// registered under the same description. Any other failure is logged and c
// returned unregistered: metrics are never worth refusing to start over.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C, log *zap.Logger) C {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	log.Warn("metric not registered", zap.Error(err))
	return c
}
