package revocation

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/promreg"
)

// Results: the result label of extauthz_revocation_updates_total.
const (
	// ResultSuccess: the file was loaded, or Redis was read in full.
	ResultSuccess = "success"
	// ResultFailure: the file could not be read or parsed (the last good
	// list stays), or a Redis connection, sync or lookup failed.
	ResultFailure = "failure"
	// ResultUnchanged: the file was read again with the same content.
	ResultUnchanged = "unchanged"
	// ResultUnsettled: the file changed while it was being settled.
	ResultUnsettled = "unsettled"
	// ResultEntry: one entry learned from a Redis notification.
	ResultEntry = "entry"
	// ResultInvalid: a Redis member or notification that is not an entry,
	// skipped.
	ResultInvalid = "invalid"
)

var resultsBySource = map[string][]string{
	SourceFile:  {ResultSuccess, ResultFailure, ResultUnchanged, ResultUnsettled},
	SourceRedis: {ResultSuccess, ResultFailure, ResultEntry, ResultInvalid},
}

type metrics struct {
	entries *prometheus.GaugeVec
	updates *prometheus.CounterVec
	up      *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer, log *zap.Logger) *metrics {
	m := &metrics{
		entries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "extauthz_revocation_entries",
			Help: "Revocation entries held in memory, by source (file, redis).",
		}, []string{"source"}),
		updates: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_revocation_updates_total",
			Help: "Revocation list updates by source and result (success, failure, unchanged, unsettled, entry, invalid).",
		}, []string{"source", "result"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "extauthz_revocation_source_up",
			Help: "1 when the revocation source was last read successfully (file) or is connected and synced (redis); 0 while the last known list is served.",
		}, []string{"source"}),
	}
	if reg != nil {
		m.entries = promreg.Register(reg, m.entries, log)
		m.updates = promreg.Register(reg, m.updates, log)
		m.up = promreg.Register(reg, m.up, log)
	}
	return m
}

// source is the metric handles of one source, every series created at
// zero so an alert has a series to evaluate before the first event.
type sourceMetrics struct {
	entries prometheus.Gauge
	up      prometheus.Gauge
	updates map[string]prometheus.Counter
}

func (m *metrics) source(name string) *sourceMetrics {
	s := &sourceMetrics{
		entries: m.entries.WithLabelValues(name),
		up:      m.up.WithLabelValues(name),
		updates: map[string]prometheus.Counter{},
	}
	for _, r := range resultsBySource[name] {
		s.updates[r] = m.updates.WithLabelValues(name, r)
	}
	return s
}

func (s *sourceMetrics) count(result string, n int) {
	if n > 0 {
		s.updates[result].Add(float64(n))
	}
}

func (s *sourceMetrics) setUp(up bool) {
	if up {
		s.up.Set(1)
	} else {
		s.up.Set(0)
	}
}
