package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB that collects failures instead of failing, so a
// check can be run on a broken copy of an example and be seen to fail.
type recorder struct {
	testing.TB
	failures []string
}

func (r *recorder) Errorf(format string, a ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, a...))
}
func (r *recorder) Error(a ...any) { r.failures = append(r.failures, fmt.Sprint(a...)) }
func (r *recorder) Fatalf(format string, a ...any) {
	r.Errorf(format, a...)
	runtime.Goexit()
}
func (r *recorder) Fatal(a ...any) {
	r.Error(a...)
	runtime.Goexit()
}

// run runs check on a copy of dir in which file has old replaced by new.
func (r *recorder) run(t *testing.T, check func(testing.TB, string), dir, file, old, new string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), filepath.Base(dir))
	if err := os.CopyFS(tmp, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(tmp, file))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("%s has no %q to break", file, old)
	}
	if err := os.WriteFile(filepath.Join(tmp, file), []byte(strings.Replace(string(data), old, new, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(r, tmp)
	}()
	<-done
}

// TestExamplesCatchBreakage breaks each example in one way and expects its
// check to say so: the checks can fail.
func TestExamplesCatchBreakage(t *testing.T) {
	istio, eg, contour := "../istio", "../envoy-gateway", "../contour"
	for _, tt := range []struct {
		name              string
		check             func(testing.TB, string)
		dir, file         string
		old, new, message string
	}{
		{"Istio: misspelled provider field", checkIstio, istio, "istiod-values.yaml", "failOpen: false", "failopen: false", "unknown field"},
		{"Istio: misspelled spec field", checkIstio, istio, "authorization-policy.yaml", "action: CUSTOM", "actions: CUSTOM", "unknown field"},
		{"Istio: misspelled metadata field", checkIstio, istio, "peer-authentication.yaml", "  namespace: extauthz", "  namspace: extauthz", "unknown field"},
		{"Istio: wrong port", checkIstio, istio, "istiod-values.yaml", "port: 9001", "port: 9002", "the chart serves"},
		{"Istio: wrong service", checkIstio, istio, "istiod-values.yaml", "service: extauthz.extauthz.svc", "service: extauthz.default.svc", "the chart serves"},
		{"Istio: timeout below the check timeout", checkIstio, istio, "istiod-values.yaml", "timeout: 2.5s", "timeout: 1s", "must exceed"},
		{"Istio: fail open", checkIstio, istio, "istiod-values.yaml", "failOpen: false", "failOpen: true", "fail closed"},
		{"Istio: path-limited rule", checkIstio, istio, "authorization-policy.yaml", "- {}", "- to: [{operation: {paths: [/pets*]}}]", "skip the check"},
		{"Istio: gateway not admitted", checkIstio, istio, "authorization-policy.yaml", "istio: ingressgateway", "istio: egressgateway", "does not admit"},
		{"Istio: permissive gRPC", checkIstio, istio, "peer-authentication.yaml", "9002:", "9001:", "relaxes the gRPC port"},
		{"Istio: headless Service", checkIstio, istio, "values.yaml", "headless: false", "headless: true", "ClusterIP"},
		{"Envoy Gateway: misspelled field", checkEnvoyGateway, eg, "security-policy.yaml", "failOpen: false", "failopen: false", "unknown field"},
		{"Envoy Gateway: wrong port", checkEnvoyGateway, eg, "security-policy.yaml", "port: 9001", "port: 9002", "the chart serves"},
		{"Envoy Gateway: unknown route", checkEnvoyGateway, eg, "security-policy.yaml", "value: get-pet", "value: get-pets", "rule get-pet passes route"},
		{"Envoy Gateway: rule without policy", checkEnvoyGateway, eg, "httproute.yaml", "- name: delete-pet", "- name: remove-pet", "has no SecurityPolicy"},
		{"Envoy Gateway: no ReferenceGrant", checkEnvoyGateway, eg, "security-policy.yaml", "      namespace: petstore\n  to:", "      namespace: other\n  to:", "no ReferenceGrant"},
		{"Envoy Gateway: TLS name", checkEnvoyGateway, eg, "backend-tls.yaml", "hostname: extauthz.extauthz.svc.cluster.local", "hostname: extauthz", "gateways dial"},
		{"Envoy Gateway: CA Secret", checkEnvoyGateway, eg, "backend-tls.yaml", "name: extauthz-envoy-client-tls", "name: extauthz-tls", "no Certificate of the chart writes"},
		{"Envoy Gateway: client certificate", checkEnvoyGateway, eg, "gateway.yaml", "name: extauthz-envoy-client-tls", "name: gateway-tls", "no Certificate writes the client certificate"},
		{"Envoy Gateway: Gateway without EnvoyProxy", checkEnvoyGateway, eg, "gateway.yaml", "name: extauthz-client\n  listeners", "name: other\n  listeners", "does not use EnvoyProxy"},
		{"Envoy Gateway: proxies not admitted", checkEnvoyGateway, eg, "values.yaml", "app.kubernetes.io/component: proxy", "app.kubernetes.io/component: other", "does not admit"},
		{"Contour: misspelled field", checkContour, contour, "httpproxy.yaml", "failOpen: false", "failopen: false", "unknown field"},
		{"Contour: wrong port", checkContour, contour, "extension-service.yaml", "port: 9001", "port: 9002", "the chart serves"},
		{"Contour: plaintext", checkContour, contour, "extension-service.yaml", "protocol: h2", "protocol: h2c", "protocol must be h2"},
		{"Contour: subject name", checkContour, contour, "extension-service.yaml", "subjectName: extauthz.extauthz.svc.cluster.local", "subjectName: extauthz.extauthz", "gateways dial"},
		{"Contour: unknown route", checkContour, contour, "httpproxy.yaml", "context: { route: list-pets }", "context: { route: list-pet }", "policy lacks"},
		{"Contour: fail open", checkContour, contour, "httpproxy.yaml", "failOpen: false", "failOpen: true", "failOpen lets"},
		{"Contour: timeout", checkContour, contour, "httpproxy.yaml", "responseTimeout: 2.5s", "responseTimeout: 2s", "must exceed"},
		{"Contour: client certificate", checkContour, contour, "contour-configuration.yaml", "name: extauthz-envoy-client-tls", "name: envoy-tls", "no Certificate writes the client certificate"},
		{"Contour: Envoys not admitted", checkContour, contour, "values.yaml", "app: envoy", "app: contour", "does not admit"},
		{"Contour: unknown kind", checkContour, contour, "httpproxy.yaml", "kind: HTTPProxy", "kind: IngressRoute", "no strict decoder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{TB: t}
			r.run(t, tt.check, tt.dir, tt.file, tt.old, tt.new)
			if len(r.failures) == 0 {
				t.Fatal("the broken example passed")
			}
			if all := strings.Join(r.failures, "\n"); !strings.Contains(all, tt.message) {
				t.Fatalf("failures do not mention %q:\n%s", tt.message, all)
			}
		})
	}
}
