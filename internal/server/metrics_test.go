package server_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
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

// TestReloadForgetsRemovedRoutes: a reload that renames a route drops the
// old name's check counters from /metrics (a long-lived process under a
// churning policy would otherwise keep every name it ever served), while
// the routes that stay keep their counts and the "none" series remain.
func TestReloadForgetsRemovedRoutes(t *testing.T) {
	env, k, base, r := startWatched(t)

	tok := env.ID(t, issuer.TokenOptions{})
	if c := r.code(t, "/pets", tok); c != codes.OK {
		t.Fatalf("GET /pets = %v, want OK", c)
	}
	if c := r.code(t, "/pets/7", ""); c != codes.Unauthenticated {
		t.Fatalf("GET /pets/7 without a token = %v, want Unauthenticated", c)
	}
	route := func(name string) map[string]string { return map[string]string{"route": name} }
	mfs := scrape(t, r)
	if find(mfs, "extauthz_checks_total", route("list-pets")) == nil || find(mfs, "extauthz_checks_total", route("pet")) == nil {
		t.Fatal("no series for list-pets and pet after a check on each")
	}

	renamed := strings.Replace(base, "  - name: list-pets\n", "  - name: pets-listing\n", 1)
	if renamed == base {
		t.Fatal("test policy edit did not apply")
	}
	k.write(t, "policy.yaml", renamed)
	wait.For(t, liveWithin, "renamed route in force", func() bool {
		resp, err := r.check(context.Background(), "/pets", tok)
		return err == nil && resp.GetDynamicMetadata().GetFields()[check.MetaRoute].GetStringValue() == "pets-listing"
	})

	mfs = scrape(t, r)
	if m := find(mfs, "extauthz_checks_total", route("list-pets")); m != nil {
		t.Errorf("list-pets still on /metrics after the reload removed it: %v", m)
	}
	if m := find(mfs, "extauthz_checks_total", map[string]string{"route": "pet", "reason": "token_missing"}); m.GetCounter().GetValue() != 1 {
		t.Errorf("pet's token_missing count after the reload = %v, want 1 (kept)", m)
	}
	if find(mfs, "extauthz_checks_total", route("pets-listing")) == nil {
		t.Error("no series for the new route name")
	}
	if find(mfs, "extauthz_checks_total", map[string]string{"route": "none", "reason": "route_not_found"}) == nil {
		t.Error(`the "none" series went with the removed route`)
	}
}
