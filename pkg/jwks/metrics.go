package jwks

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/promreg"
)

// Kid-miss outcomes: the outcome label of extauthz_jwks_kid_miss_total.
const (
	missRefetched   = "refetched"    // the miss waited for a fetch (started or joined) until it answered or the caller gave up
	missRateLimited = "rate_limited" // answered from the cache inside the refetch window, no I/O
	missBudgetSpent = "budget_spent" // waited MissWait for a fetch that had not answered: unavailable
	missWaitersFull = "waiters_full" // MaxMissWaiters lookups already waited: unavailable at once
)

type metrics struct {
	fetches     *prometheus.CounterVec
	keys        *prometheus.GaugeVec
	lastSuccess *prometheus.GaugeVec
	kidMiss     *prometheus.CounterVec
	// fetchDuration times every load, failed ones included: a slow IdP
	// shows here before it times out.
	fetchDuration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, log *zap.Logger) *metrics {
	m := &metrics{
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_jwks_fetches_total",
			Help: "JWKS loads by key source and result (ok, http_status, network, timeout, too_large, parse, no_keys, redirect, url_rejected, file).",
		}, []string{"source", "result"}),
		keys: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "extauthz_jwks_keys",
			Help: "Verification keys currently served per key source.",
		}, []string{"source"}),
		lastSuccess: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "extauthz_jwks_last_success_timestamp_seconds",
			Help: "Unix time of the last successful JWKS load per key source.",
		}, []string{"source"}),
		kidMiss: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_jwks_kid_miss_total",
			Help: "Lookups of a kid not in the cached set, by outcome (refetched, rate_limited, budget_spent, waiters_full).",
		}, []string{"source", "outcome"}),
		fetchDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "extauthz_jwks_fetch_duration_seconds",
			Help:    "Time to load a key set (fetch or file read, parse included), per key source.",
			Buckets: []float64{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"source"}),
	}
	if reg != nil {
		m.fetches = promreg.Register(reg, m.fetches, log)
		m.keys = promreg.Register(reg, m.keys, log)
		m.lastSuccess = promreg.Register(reg, m.lastSuccess, log)
		m.kidMiss = promreg.Register(reg, m.kidMiss, log)
		m.fetchDuration = promreg.Register(reg, m.fetchDuration, log)
	}
	return m
}

// forget deletes every series of a source that is no longer kept.
func (m *metrics) forget(label string) {
	l := prometheus.Labels{"source": label}
	m.fetches.DeletePartialMatch(l)
	m.keys.DeletePartialMatch(l)
	m.lastSuccess.DeletePartialMatch(l)
	m.kidMiss.DeletePartialMatch(l)
	m.fetchDuration.DeletePartialMatch(l)
}

// fetchResults is the closed set of the result label.
var fetchResults = []string{
	resultOK, resultHTTPStatus, resultNetwork, resultTimeout, resultTooLarge,
	resultParse, resultNoKeys, resultRedirect, resultURLRejected, resultFile,
}

// initSource creates every series of a new source at zero, so an alert on
// a rate of failures has a series to evaluate before the first failure.
func (m *metrics) initSource(label string) {
	for _, r := range fetchResults {
		m.fetches.WithLabelValues(label, r)
	}
	m.fetchDuration.WithLabelValues(label)
}
