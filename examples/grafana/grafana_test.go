// Package grafana holds the example dashboard and alert rules; its test
// keeps them valid and in step with the metrics the service exports.
package grafana

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.uber.org/zap"

	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// exported starts the real service and returns every metric name its
// /metrics exposes (histograms with their _bucket, _sum and _count series).
func exported(t *testing.T) map[string]bool {
	t.Helper()
	env := testenv.New(t)
	// With a revocation list, so its series are there too.
	dir := t.TempDir()
	list := filepath.Join(dir, "revoked.txt")
	if err := os.WriteFile(list, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.Replace(testenv.Policy, "defaultAction: deny", "defaultAction: deny\nrevocation: { file: "+list+" }", 1)
	srv, err := server.New(server.Config{
		Snapshot: env.Policy(t, doc), GRPCAddr: "127.0.0.1:0", AdminAddr: "127.0.0.1:0", Logger: zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for !srv.Ready() && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get("http://" + srv.AdminAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	names := map[string]bool{}
	for name, mf := range mfs {
		names[name] = true
		if mf.GetType().String() == "HISTOGRAM" || mf.GetType().String() == "SUMMARY" {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				names[name+suffix] = true
			}
		}
	}
	return names
}

// metricNames returns the metric names a PromQL expression selects; it
// fails the test when the expression does not parse.
func metricNames(t *testing.T, where, expr string) []string {
	t.Helper()
	// Grafana's own variables are not PromQL; give them a value.
	expr = strings.ReplaceAll(expr, "$__rate_interval", "5m")
	e, err := parser.NewParser(parser.Options{}).ParseExpr(expr)
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, expr, err)
		return nil
	}
	var out []string
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	if len(out) == 0 {
		t.Errorf("%s: %q selects no metric", where, expr)
	}
	return out
}

// TestAlertRules: the rules parse and validate as Prometheus loads them
// (rulefmt: YAML schema, PromQL, templates, durations), name the alerts the
// docs/operating.md documents, and query only exported metrics.
func TestAlertRules(t *testing.T) {
	groups, errs := rulefmt.ParseFile("alerts.yaml", false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Errorf("alerts.yaml: %v", err)
	}
	if groups == nil {
		t.FailNow()
	}
	names := exported(t)
	var alerts []string
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			alerts = append(alerts, r.Alert)
			if r.Annotations["summary"] == "" || r.Labels["severity"] == "" {
				t.Errorf("alert %s lacks a summary or a severity", r.Alert)
			}
			for _, m := range metricNames(t, "alert "+r.Alert, r.Expr) {
				if !names[m] {
					t.Errorf("alert %s queries %s, which the service does not export", r.Alert, m)
				}
			}
		}
	}
	sort.Strings(alerts)
	want := []string{"ExtauthzDecisionLogsDropped", "ExtauthzDenyRatioSpike", "ExtauthzJWKSStale",
		"ExtauthzJWKSUnavailable", "ExtauthzNotReady", "ExtauthzPolicyReloadFailing",
		"ExtauthzRevocationInvalidEntries", "ExtauthzRevocationSourceDown"}
	if strings.Join(alerts, ",") != strings.Join(want, ",") {
		t.Errorf("alerts %v, want %v", alerts, want)
	}
}

// TestDashboard: the dashboard is valid JSON whose every query parses and
// selects only metrics the service exports, and it covers decisions and
// reasons, latency, JWKS freshness, reloads and the cache.
func TestDashboard(t *testing.T) {
	raw, err := os.ReadFile("dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string `json:"uid"`
		Panels []struct {
			Title   string `json:"title"`
			Type    string `json:"type"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Annotations struct {
			List []struct {
				Expr string `json:"expr"`
			} `json:"list"`
		} `json:"annotations"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	names := exported(t)
	used := map[string]bool{}
	check := func(where, expr string) {
		for _, m := range metricNames(t, where, expr) {
			used[m] = true
			if !names[m] {
				t.Errorf("%s queries %s, which the service does not export", where, m)
			}
		}
	}
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			check("panel "+p.Title, tg.Expr)
		}
	}
	for _, a := range dash.Annotations.List {
		check("annotation", a.Expr)
	}
	for _, m := range []string{
		"extauthz_checks_total", "extauthz_check_duration_seconds_bucket",
		"extauthz_jwks_last_success_timestamp_seconds", "extauthz_jwks_fetch_duration_seconds_bucket",
		"extauthz_policy_reloads_total", "extauthz_token_cache_entries", "extauthz_build_info",
	} {
		if !used[m] {
			t.Errorf("the dashboard never shows %s", m)
		}
	}
}
