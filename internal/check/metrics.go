package check

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// Decision labels: the decision label of the check metrics and the
// decision field of the decision log and the span.
const (
	decisionAllow  = "allow"
	decisionDeny   = "deny"
	decisionDryRun = "dry_run" // a denial a dry-run route let through
)

// edges are the values of the edge label, each series created at zero.
var edges = [...]string{EdgeGRPC, EdgeHTTP}

// noRoute is the route label of a check that matched no route.
const noRoute = "none"

// decisionOf returns the decision label of d.
func decisionOf(d *authz.Decision) string {
	switch {
	case d.DryRun:
		return decisionDryRun
	case d.Allowed:
		return decisionAllow
	}
	return decisionDeny
}

// Metrics are the check counters and latency histogram, shared by both
// edges and told apart by the edge label.
type Metrics struct {
	checks      *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	logsDropped *prometheus.CounterVec
	// counters caches labelled children so the hot path does not hash
	// label values on every check.
	counters sync.Map // counterKey -> prometheus.Counter
	observer map[observerKey]prometheus.Observer
	dropped  map[string]prometheus.Counter
}

type counterKey struct{ route, decision, reason, edge string }

type observerKey struct{ decision, edge string }

// NewMetrics creates the check metrics and registers them with reg. Every
// series of a closed label set (decision, reason, edge) exists from the
// start at zero, under route "none", so rates, ratios and alerts over them
// evaluate before the first event.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		checks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_checks_total",
			Help: "Authorization checks by policy route, decision (allow|deny|dry_run), reason code and edge (grpc|http).",
		}, []string{"route", "decision", "reason", "edge"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "extauthz_check_duration_seconds",
			Help: "Time to answer a check, by decision and edge (grpc|http).",
			Buckets: []float64{
				0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
				0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
			},
		}, []string{"decision", "edge"}),
		logsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "extauthz_decision_logs_dropped_total",
			Help: "Decision log lines not written because a flood of checks was sampled, by decision.",
		}, []string{"decision"}),
		observer: map[observerKey]prometheus.Observer{},
		dropped:  map[string]prometheus.Counter{},
	}
	if reg != nil {
		reg.MustRegister(m.checks, m.duration, m.logsDropped)
	}
	for _, dec := range []string{decisionAllow, decisionDeny, decisionDryRun} {
		for _, e := range edges {
			m.observer[observerKey{dec, e}] = m.duration.WithLabelValues(dec, e)
		}
		m.dropped[dec] = m.logsDropped.WithLabelValues(dec)
	}
	for _, e := range edges {
		for _, code := range reason.All() {
			if isAllowCode(code) {
				m.counter(counterKey{noRoute, decisionAllow, string(code), e})
				continue
			}
			m.counter(counterKey{noRoute, decisionDeny, string(code), e})
			m.counter(counterKey{noRoute, decisionDryRun, string(code), e})
		}
	}
	return m
}

func isAllowCode(c reason.Code) bool {
	return c == reason.Allowed || c == reason.NoAuth || c == reason.DefaultAllow
}

func (m *Metrics) counter(k counterKey) prometheus.Counter {
	c, ok := m.counters.Load(k)
	if !ok {
		c, _ = m.counters.LoadOrStore(k, m.checks.WithLabelValues(k.route, k.decision, k.reason, k.edge))
	}
	return c.(prometheus.Counter)
}

func (m *Metrics) observe(edge string, d *authz.Decision, decision string, elapsed time.Duration) {
	if m == nil {
		return
	}
	route := d.RouteName()
	if route == "" {
		route = noRoute
	}
	m.counter(counterKey{route, decision, string(d.Reason), edge}).Inc()
	if o := m.observer[observerKey{decision, edge}]; o != nil {
		o.Observe(elapsed.Seconds())
	}
}

// ForgetRoutes deletes the check counters of every route not in live, so
// that a reload that removes or renames routes does not leave their series
// on /metrics for the life of the process. The "none" series stay. A check
// still running on the previous policy may bring a series back; it is
// counted from zero, as Prometheus expects of a counter that reappears.
func (m *Metrics) ForgetRoutes(live []*policy.Route) {
	if m == nil {
		return
	}
	keep := make(map[string]bool, len(live))
	for _, r := range live {
		keep[r.Name] = true
	}
	m.counters.Range(func(key, _ any) bool {
		k := key.(counterKey)
		if k.route != noRoute && !keep[k.route] {
			// The series first, then the cached child: the other order
			// lets a concurrent check cache a child the vector no longer
			// holds, whose counts would never reach /metrics again if the
			// route name came back.
			m.checks.DeleteLabelValues(k.route, k.decision, k.reason, k.edge)
			m.counters.Delete(k)
		}
		return true
	})
}

// logDropped counts a decision log line the sampler dropped.
func (m *Metrics) logDropped(decision string) {
	if m == nil {
		return
	}
	if c := m.dropped[decision]; c != nil {
		c.Inc()
	}
}
