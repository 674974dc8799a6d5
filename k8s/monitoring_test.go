package k8s_test

import (
	"fmt"
	"log/slog"
	"os"
	"reflect"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// alertsSource is the one source of the shipped alerts; the chart's
// PrometheusRule carries its groups.
const alertsSource = "../examples/grafana/alerts.yaml"

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1) the chart uses, decoded strictly like
// certificate: the operator's module is not imported for a test of YAML.
type serviceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path,omitempty"`
			Interval string `json:"interval,omitempty"`
		} `json:"endpoints"`
	} `json:"spec"`
}

// prometheusRule is the Prometheus Operator's PrometheusRule: its groups
// are Prometheus rule groups, checked with Prometheus's own rulefmt.
type prometheusRule struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Groups []any `json:"groups"`
	} `json:"spec"`
}

// checkMonitoring: a ServiceMonitor scrapes /metrics on a Service port that
// reaches the admin port; a PrometheusRule holds exactly the shipped alerts.
func checkMonitoring(o *objects) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	for _, sm := range o.serviceMonitors {
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		if err != nil || sel.Empty() {
			fail("ServiceMonitor %s: empty or bad selector", sm.Name)
			continue
		}
		if len(sm.Spec.Endpoints) == 0 {
			fail("ServiceMonitor %s has no endpoints", sm.Name)
		}
		for _, ep := range sm.Spec.Endpoints {
			if ep.Path != "/metrics" {
				fail("ServiceMonitor %s scrapes %q, want /metrics", sm.Name, ep.Path)
			}
			var found bool
			for _, svc := range o.services {
				if !sel.Matches(labels.Set(svc.Labels)) {
					continue
				}
				for _, p := range svc.Spec.Ports {
					found = found || p.Name == ep.Port && p.Port == 9002
				}
			}
			if !found {
				fail("ServiceMonitor %s: no Service it selects has a port %q on the admin port 9002", sm.Name, ep.Port)
			}
		}
	}
	if len(o.prometheusRules) == 0 {
		return errs
	}
	want, err := alertGroups(alertsSource)
	if err != nil {
		return append(errs, err)
	}
	for _, pr := range o.prometheusRules {
		got, err := yaml.Marshal(map[string]any{"groups": pr.Spec.Groups})
		if err != nil {
			return append(errs, err)
		}
		if _, perrs := rulefmt.Parse(got, false, model.UTF8Validation, parser.NewParser(parser.Options{}), slog.New(slog.DiscardHandler)); len(perrs) > 0 {
			fail("PrometheusRule %s: %v", pr.Name, perrs)
		}
		if !reflect.DeepEqual(pr.Spec.Groups, want) {
			fail("PrometheusRule %s groups differ from %s", pr.Name, alertsSource)
		}
	}
	return errs
}

func alertGroups(file string) ([]any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Groups []any `json:"groups"`
	}
	if err := yaml.UnmarshalStrict(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return doc.Groups, nil
}
