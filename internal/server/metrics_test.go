package server_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// scrape fetches /metrics and parses it with the Prometheus text parser,
// as a Prometheus server would.
func scrape(t *testing.T, r *running) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := r.get(t, "/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// find returns the metric of family name whose labels include want.
func find(mfs map[string]*dto.MetricFamily, name string, want map[string]string) *dto.Metric {
	for _, m := range mfs[name].GetMetric() {
		ok := true
		for k, v := range want {
			found := false
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			ok = ok && found
		}
		if ok {
			return m
		}
	}
	return nil
}

// TestMetricsScrape: build info, the JWKS fetch duration, and every
// series of a closed label set present (at zero) before any check.
func TestMetricsScrape(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), Version: "v9.8.7", Commit: "abc1234"})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	mfs := scrape(t, r)

	bi := find(mfs, "extauthz_build_info", map[string]string{
		"version": "v9.8.7", "commit": "abc1234", "goversion": runtime.Version(),
	})
	if bi.GetGauge().GetValue() != 1 {
		t.Errorf("extauthz_build_info = %v, want 1 with version, commit, goversion labels", bi)
	}
	fd := find(mfs, "extauthz_jwks_fetch_duration_seconds", map[string]string{"source": env.JWKSURL()})
	if fd.GetHistogram().GetSampleCount() < 1 {
		t.Errorf("extauthz_jwks_fetch_duration_seconds for %s observed nothing after the first load", env.JWKSURL())
	}
	for _, res := range []string{"ok", "http_status", "network", "timeout", "too_large", "parse"} {
		if find(mfs, "extauthz_jwks_fetches_total", map[string]string{"source": env.JWKSURL(), "result": res}) == nil {
			t.Errorf("extauthz_jwks_fetches_total{result=%q} absent before any such fetch", res)
		}
	}
	for _, code := range []reason.Code{reason.TokenMissing, reason.TokenExpired, reason.ScopeMissing, reason.JWKSUnavailable} {
		for _, dec := range []string{"deny", "dry_run"} {
			m := find(mfs, "extauthz_checks_total", map[string]string{"decision": dec, "reason": string(code)})
			if m == nil || m.GetCounter().GetValue() != 0 {
				t.Errorf("extauthz_checks_total{decision=%q,reason=%q} = %v, want present at 0", dec, code, m)
			}
		}
	}
	for _, name := range []string{"extauthz_decision_logs_dropped_total", "extauthz_policy_reloads_total"} {
		if len(mfs[name].GetMetric()) == 0 {
			t.Errorf("%s has no series at start-up", name)
		}
	}

	r.code(t, "/pets", env.ID(t, issuer.TokenOptions{}))
	mfs = scrape(t, r)
	if m := find(mfs, "extauthz_checks_total", map[string]string{"decision": "allow", "route": "list-pets"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("allow on list-pets counted %v, want 1", m)
	}
}
