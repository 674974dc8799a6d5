package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

func TestRegisterSharesTheExistingCollector(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first := Register(reg, prometheus.NewCounterVec(opts, []string{"a"}), zap.NewNop())
	second := Register(reg, prometheus.NewCounterVec(opts, []string{"a"}), zap.NewNop())
	if first != second {
		t.Fatal("a second registration did not return the first collector")
	}
	// A clash of another kind is logged and the new collector returned.
	clash := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"})
	if got := Register(reg, clash, zap.NewNop()); got != clash {
		t.Fatal("a conflicting collector was not returned as given")
	}
}
