package k8s_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"

	"github.com/cognito-extauthz/cognito-extauthz/internal/revocation"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// The chart, and the release the tests install it as: the names the
// kustomize overlays use (Service extauthz in namespace extauthz), which
// envoy/shared.yaml and the deploy/ examples dial.
const (
	chartDir       = "../deploy/helm/cognito-extauthz"
	chartRelease   = "extauthz"
	chartNamespace = "extauthz"
)

// sharedChart is what the chart's defaults must satisfy: exactly the
// shared overlay's invariants.
var sharedChart = overlay{
	dir:        "chart",
	ingress:    map[int32]peer{9001: selected, 9002: selected},
	grpcMTLS:   true,
	policyFile: policySource,
}

// chartCase is one shipped values file and what its rendering must satisfy.
type chartCase struct {
	file string // from the repository root; "" for the chart's defaults
	ov   overlay
	// validPolicy: the policy ConfigMap holds a policy that the policy
	// validator accepts. False where the chart renders no policy
	// (existing-policy.yaml).
	validPolicy bool
}

func chartCases() []chartCase {
	with := func(f func(*overlay)) overlay {
		ov := sharedChart
		f(&ov)
		return ov
	}
	return []chartCase{
		{"", sharedChart, true},
		{"deploy/helm/cognito-extauthz/examples/monitoring.yaml", sharedChart, true},
		{"deploy/helm/cognito-extauthz/examples/production.yaml", sharedChart, true},
		{"deploy/helm/cognito-extauthz/examples/http-authz.yaml", with(func(ov *overlay) {
			ov.httpAuthz, ov.httpTLS, ov.ingress = true, true, map[int32]peer{9001: selected, 9002: selected, 9003: selected}
		}), true},
		{"deploy/helm/cognito-extauthz/examples/fixed-replicas.yaml", with(func(ov *overlay) { ov.fixedReplicas = true }), true},
		{"deploy/helm/cognito-extauthz/examples/existing-policy.yaml", with(func(ov *overlay) {
			ov.externalPolicy, ov.policyConfigMap, ov.policyFile = true, "petstore-policy", ""
		}), false},
		{"deploy/helm/cognito-extauthz/examples/revocation-file.yaml", with(func(ov *overlay) { ov.policyFile = "" }), true},
		{"deploy/helm/cognito-extauthz/examples/revocation-redis.yaml", with(func(ov *overlay) {
			ov.policyFile, ov.egress = "", []int32{53, 443, 6380}
		}), true},
		// In the mesh, Istio's mutual TLS protects the hop: extauthz serves
		// plaintext gRPC to its own sidecar, probed natively.
		{"deploy/istio/values.yaml", with(func(ov *overlay) { ov.grpcMTLS = false }), true},
		{"deploy/envoy-gateway/values.yaml", sharedChart, true},
		{"deploy/contour/values.yaml", sharedChart, true},
	}
}

// chartOverlay is the expectations chartCases lists for a values file.
func chartOverlay(t *testing.T, file string) overlay {
	t.Helper()
	for _, c := range chartCases() {
		if c.file == file {
			return c.ov
		}
	}
	t.Fatalf("no chart case for %s", file)
	return overlay{}
}

// helmBin is the pinned helm that `make test` builds (tools/go.mod), or
// $HELM.
func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	h, err := filepath.Abs("../tools/bin/helm")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(h); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing: `make test` builds it (make tools/bin/helm)", h)
		}
		t.Skipf("%s is not built: run make tools/bin/helm (make test does)", h)
	}
	return h
}

// runHelm runs helm with homes of its own (nothing of the user's helm
// setup is read or written) and no cluster.
func runHelm(t *testing.T, args ...string) (stdout, stderr []byte, err error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "no-kubeconfig"),
	)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// valuesArgs turns a values file (from the repository root) into -f.
func valuesArgs(file string) []string {
	if file == "" {
		return nil
	}
	return []string{"-f", filepath.Join("..", file)}
}

// renderChart runs helm template and returns each object's YAML.
func renderChart(t *testing.T, args ...string) [][]byte {
	t.Helper()
	out, stderr, err := runHelm(t, append([]string{"template", chartRelease, chartDir, "--namespace", chartNamespace}, args...)...)
	if err != nil {
		t.Fatalf("helm template %v: %v\n%s", args, err, stderr)
	}
	var docs [][]byte
	for _, doc := range strings.Split("\n"+string(out), "\n---\n") {
		var body bool
		for _, l := range strings.Split(doc, "\n") {
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				body = true
			}
		}
		if body {
			docs = append(docs, []byte(doc))
		}
	}
	return docs
}

func TestChartLint(t *testing.T) {
	for _, tc := range chartCases() {
		t.Run(cmpName(tc.file), func(t *testing.T) {
			out, stderr, err := runHelm(t, append([]string{"lint", "--strict", chartDir}, valuesArgs(tc.file)...)...)
			if err != nil {
				t.Fatalf("helm lint --strict: %v\n%s%s", err, out, stderr)
			}
		})
	}
}

// TestChartValuesFiles renders the chart with each shipped values file and
// holds the objects to the kustomize overlays' checks.
func TestChartValuesFiles(t *testing.T) {
	for _, tc := range chartCases() {
		t.Run(cmpName(tc.file), func(t *testing.T) {
			o, err := decode(renderChart(t, valuesArgs(tc.file)...))
			if err != nil {
				t.Fatal(err)
			}
			if err := check(o, tc.ov); err != nil {
				t.Error(err)
			}
			if tc.validPolicy {
				d := o.deployments[0]
				cm, key, err := mountedConfigMap(o, &d.Spec.Template, container(&d.Spec.Template, "extauthz"), "/etc/extauthz/policy.yaml")
				if err != nil {
					t.Fatal(err)
				}
				if _, err := policy.Parse([]byte(cm.Data[key]), "policy.yaml", policy.Options{}); err != nil {
					t.Errorf("the policy the chart ships does not validate:\n%v", err)
				}
			}
		})
	}
}

// TestChartValuesFilesListed: every values file under deploy/ is one of
// chartCases, so none ships untested.
func TestChartValuesFilesListed(t *testing.T) {
	var listed []string
	for _, tc := range chartCases() {
		listed = append(listed, tc.file)
	}
	var found []string
	for _, pattern := range []string{"../deploy/helm/cognito-extauthz/examples/*.yaml", "../deploy/*/values.yaml"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, m...)
	}
	if len(found) < 8 {
		t.Fatalf("found only %v: the globs no longer match the layout", found)
	}
	for _, f := range found {
		if rel := strings.TrimPrefix(f, "../"); !slices.Contains(listed, rel) {
			t.Errorf("%s is shipped but not rendered and checked: add it to chartCases", rel)
		}
	}
}

// TestChartRejectsWrongValues: a wrong value fails the install with a
// message that names it, from the schema or from the chart's own checks.
func TestChartRejectsWrongValues(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  []string
		want string
	}{
		{"misspelled key", []string{"grpc.tls.enabeld=false"}, "'enabeld' not allowed"},
		{"latest tag", []string{"image.tag=latest"}, "/image/tag"},
		{"digest without algorithm", []string{"image.digest=0123abcd"}, "/image/digest"},
		{"duration without unit", []string{"checkTimeout=2"}, "/checkTimeout"},
		{"log format", []string{"logFormat=text"}, "/logFormat"},
		{"one replica", []string{"autoscaling.minReplicas=1"}, "/autoscaling/minReplicas"},
		{"one fixed replica", []string{"autoscaling.enabled=false", "replicaCount=1"}, "/replicaCount"},
		{"no memory limit", []string{"resources.limits.memory=null"}, "/resources/limits"},
		{"NetworkPolicy open to all", []string{"networkPolicy.clients=null"}, "clients"},
		{"empty peer", []string{"networkPolicy.clients[0].podSelector=null", "networkPolicy.clients[0].namespaceSelector=null"}, "/networkPolicy/clients/0"},
		{"not a policy", []string{"policy.content=hello"}, "/policy/content"},
		{"no policy at all", []string{"policy.content="}, "set policy.content"},
		{"revocation file name over the policy", []string{"revocation.file.name=policy.yaml"}, "/revocation/file/name"},
		{"grace too short", []string{"terminationGracePeriodSeconds=25"}, "must exceed preStopSleepSeconds + shutdownGrace"},
		{"revocation file, policy without revocation block", []string{"revocation.file.enabled=true", "revocation.file.content=x"}, "no top-level revocation: block"},
		{"revocation file without content", []string{"revocation.file.enabled=true", "policy.existingConfigMap=p"}, "revocation.file.content or revocation.file.existingConfigMap"},
		{"Redis without its password", []string{"revocation.redis.enabled=true"}, "revocation.redis.passwordSecret.name"},
		{"Redis egress without peers", []string{"revocation.redis.enabled=true", "revocation.redis.passwordSecret.name=s", "networkPolicy.egress.enabled=true"}, "revocation.redis.peers"},
		{"mTLS without TLS", []string{"grpc.tls.enabled=false"}, "clientAuth needs grpc.tls.enabled"},
		{"HTTP TLS without gRPC TLS", []string{"httpAuthz.enabled=true", "grpc.tls.enabled=false", "grpc.tls.clientAuth=false"}, "needs grpc.tls.enabled"},
		{"HTTP client certificates without TLS", []string{"httpAuthz.enabled=true", "httpAuthz.tls.enabled=false", "httpAuthz.tls.clientAuth=true"}, "httpAuthz.tls.clientAuth needs httpAuthz.tls.enabled"},
		{"HTTP listener misspelled", []string{"httpAuthz.enable=true"}, "'enable' not allowed"},
		{"own certificates without a Secret", []string{"grpc.tls.certManager.enabled=false"}, "grpc.tls.existingSecret"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := []string{"template", chartRelease, chartDir, "--namespace", chartNamespace}
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			_, stderr, err := runHelm(t, args...)
			if err == nil {
				t.Fatalf("helm template --set %v succeeded", tt.set)
			}
			if !bytes.Contains(stderr, []byte(tt.want)) {
				t.Fatalf("helm template --set %v fails without mentioning %q:\n%s", tt.set, tt.want, stderr)
			}
		})
	}
}

func TestChartImage(t *testing.T) {
	chart, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(chart, &meta); err != nil || !strings.HasPrefix(meta.AppVersion, "v") {
		t.Fatalf("Chart.yaml appVersion %q (%v): want the release tag v<version>", meta.AppVersion, err)
	}
	digest := "sha256:" + strings.Repeat("0123456789abcdef", 4)
	for _, tt := range []struct {
		name string
		set  []string
		want string
	}{
		{"appVersion", nil, extauthzImage + ":" + meta.AppVersion},
		{"tag", []string{"image.tag=v9.9.9"}, extauthzImage + ":v9.9.9"},
		{"digest wins", []string{"image.tag=v9.9.9", "image.digest=" + digest}, extauthzImage + "@" + digest},
		{"own registry", []string{"image.repository=registry.example.com:5000/you/extauthz"}, "registry.example.com:5000/you/extauthz:" + meta.AppVersion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			for _, s := range tt.set {
				args = append(args, "--set", s)
			}
			o, err := decode(renderChart(t, args...))
			if err != nil {
				t.Fatal(err)
			}
			if got := container(&o.deployments[0].Spec.Template, "extauthz").Image; got != tt.want {
				t.Errorf("image %s, want %s", got, tt.want)
			}
		})
	}
}

// TestChartNotes: what `helm install` prints names the address gateways
// dial, the one the examples under deploy/ use.
func TestChartNotes(t *testing.T) {
	notes := func(t *testing.T, args ...string) []byte {
		t.Helper()
		out, stderr, err := runHelm(t, append([]string{"install", chartRelease, chartDir, "--namespace", chartNamespace, "--dry-run=client"}, args...)...)
		if err != nil {
			t.Fatalf("helm install --dry-run=client: %v\n%s", err, stderr)
		}
		_, n, ok := bytes.Cut(out, []byte("\nNOTES:\n"))
		if !ok {
			t.Fatalf("no NOTES in:\n%s", out)
		}
		return n
	}
	for _, tt := range []struct {
		name          string
		args          []string
		want, notWant []string
	}{
		{"defaults", nil, []string{
			"extauthz.extauthz.svc.cluster.local:9001",
			"client certificate",
			"cognito-extauthz.io/client=true",
			"placeholder",
		}, []string{":9003"}},
		{"HTTP authorization", valuesArgs("deploy/helm/cognito-extauthz/examples/http-authz.yaml"), []string{
			"https://extauthz-http.extauthz.svc.cluster.local:9003/nginx",
			"https://extauthz-http.extauthz.svc.cluster.local:9003/auth",
			"certificate name extauthz-http.extauthz.svc.cluster.local",
			"port 9001 (and 9003)",
		}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := notes(t, tt.args...)
			for _, want := range tt.want {
				if !bytes.Contains(n, []byte(want)) {
					t.Errorf("NOTES lack %q:\n%s", want, n)
				}
			}
			for _, not := range tt.notWant {
				if bytes.Contains(n, []byte(not)) {
					t.Errorf("NOTES hold %q:\n%s", not, n)
				}
			}
		})
	}
}

// TestChartAlertsCopy: the chart carries examples/grafana/alerts.yaml, the
// one source of the alerts, byte for byte.
func TestChartAlertsCopy(t *testing.T) {
	want, err := os.ReadFile(alertsSource)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s/files/alerts.yaml differs from %s: run make chart-files", chartDir, alertsSource)
	}
}

// TestChartRevocation checks the revocation wiring: the policy ConfigMap
// holds the values' policy verbatim (TestChartValuesFiles validates
// it); the list file sits beside policy.yaml, where the policy's relative
// revocation.file finds it, and is a valid list; the Redis password comes
// from the Secret; egress reaches Redis's port.
func TestChartRevocation(t *testing.T) {
	valuesPolicy := func(t *testing.T, file string) (map[string]any, string) {
		data, err := os.ReadFile(filepath.Join("..", file))
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := yaml.Unmarshal(data, &v); err != nil {
			t.Fatal(err)
		}
		return v, dig(v, "policy", "content").(string)
	}
	t.Run("file", func(t *testing.T) {
		file := "deploy/helm/cognito-extauthz/examples/revocation-file.yaml"
		v, content := valuesPolicy(t, file)
		o, err := decode(renderChart(t, valuesArgs(file)...))
		if err != nil {
			t.Fatal(err)
		}
		pod := &o.deployments[0].Spec.Template
		ext := container(pod, "extauthz")
		cm, key, err := mountedConfigMap(o, pod, ext, "/etc/extauthz/policy.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if cm.Data[key] != content {
			t.Errorf("policy ConfigMap %s does not hold the values' policy verbatim", cm.Name)
		}
		list, key, err := mountedConfigMap(o, pod, ext, "/etc/extauthz/revoked.txt")
		if err != nil {
			t.Fatalf("revoked.txt beside the policy: %v", err)
		}
		if list.Name != "extauthz-revocation" || list.Data[key] != dig(v, "revocation", "file", "content") {
			t.Errorf("revoked.txt comes from ConfigMap %s, key %s, not the values' list", list.Name, key)
		}
		if !strings.Contains(content, "\nrevocation:\n  file: revoked.txt\n") {
			t.Error("the example policy no longer names revoked.txt")
		}
		// The two files as the pod sees them, side by side: the policy
		// finds the list, and the list loads.
		dir := t.TempDir()
		for name, data := range map[string]string{"policy.yaml": content, "revoked.txt": list.Data[key]} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		snap, err := policy.Load(filepath.Join(dir, "policy.yaml"), policy.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := revocation.Validate(*revocation.PolicyConfig(snap.Revocation())); err != nil {
			t.Errorf("the chart's revocation list does not load: %v", err)
		}
	})
	t.Run("redis", func(t *testing.T) {
		file := "deploy/helm/cognito-extauthz/examples/revocation-redis.yaml"
		v, content := valuesPolicy(t, file)
		o, err := decode(renderChart(t, valuesArgs(file)...))
		if err != nil {
			t.Fatal(err)
		}
		ext := container(&o.deployments[0].Spec.Template, "extauthz")
		var pw *corev1.EnvVar
		for i, e := range ext.Env {
			if e.Name == "EXTAUTHZ_REVOCATION_REDIS_PASSWORD" {
				pw = &ext.Env[i]
			}
		}
		if pw == nil || pw.Value != "" || pw.ValueFrom == nil || pw.ValueFrom.SecretKeyRef == nil ||
			pw.ValueFrom.SecretKeyRef.Name != "extauthz-redis" || pw.ValueFrom.SecretKeyRef.Key != "password" {
			t.Errorf("EXTAUTHZ_REVOCATION_REDIS_PASSWORD must come from Secret extauthz-redis, key password: %+v", pw)
		}
		if strings.Contains(content, "password") {
			t.Error("the example policy holds a password")
		}
		var redis *networkingv1.NetworkPolicyEgressRule
		for i, r := range o.netpols[0].Spec.Egress {
			if len(r.Ports) == 1 && r.Ports[0].Port.IntVal == 6380 {
				redis = &o.netpols[0].Spec.Egress[i]
			}
		}
		peers, _ := yaml.Marshal(dig(v, "revocation", "redis", "peers"))
		if got, _ := yaml.Marshal(redis.To); redis == nil || !bytes.Equal(got, peers) {
			t.Errorf("egress to Redis port 6380 goes to %s, want the values' peers %s", got, peers)
		}
	})
}

// TestChartChecksCatchBreakage: the checks the chart adds to the overlays'
// (monitoring objects, egress, a projected policy directory) can fail.
func TestChartChecksCatchBreakage(t *testing.T) {
	monitoring := renderChart(t, valuesArgs("deploy/helm/cognito-extauthz/examples/monitoring.yaml")...)
	redis := renderChart(t, valuesArgs("deploy/helm/cognito-extauthz/examples/revocation-redis.yaml")...)
	redisOv := chartOverlay(t, "deploy/helm/cognito-extauthz/examples/revocation-redis.yaml")
	revocationFile := renderChart(t, valuesArgs("deploy/helm/cognito-extauthz/examples/revocation-file.yaml")...)
	httpFile := "deploy/helm/cognito-extauthz/examples/http-authz.yaml"
	httpAuthz, httpOv := renderChart(t, valuesArgs(httpFile)...), chartOverlay(t, httpFile)
	setEnv := func(o *objects, name, value string) {
		c := container(&o.deployments[0].Spec.Template, "extauthz")
		for i := range c.Env {
			if c.Env[i].Name == name {
				c.Env[i].Value = value
			}
		}
	}
	for _, tt := range []struct {
		name   string
		docs   [][]byte
		ov     overlay
		mutate func(o *objects)
		want   string
	}{
		{"alert dropped", monitoring, sharedChart, func(o *objects) {
			g := o.prometheusRules[0].Spec.Groups[0].(map[string]any)
			g["rules"] = g["rules"].([]any)[1:]
		}, "groups differ"},
		{"alert that does not parse", monitoring, sharedChart, func(o *objects) {
			g := o.prometheusRules[0].Spec.Groups[0].(map[string]any)
			g["rules"].([]any)[0].(map[string]any)["expr"] = "sum(("
		}, "could not parse expression"},
		{"ServiceMonitor on the gRPC port", monitoring, sharedChart, func(o *objects) { o.serviceMonitors[0].Spec.Endpoints[0].Port = "grpc" }, "admin port"},
		{"ServiceMonitor path", monitoring, sharedChart, func(o *objects) { o.serviceMonitors[0].Spec.Endpoints[0].Path = "/" }, "want /metrics"},
		{"egress without HTTPS", redis, redisOv, func(o *objects) { o.netpols[0].Spec.Egress = o.netpols[0].Spec.Egress[:1] }, "does not open egress port 443"},
		{"egress rule to everything", redis, redisOv, func(o *objects) { o.netpols[0].Spec.Egress[1].Ports = nil }, "opens everything"},
		{"egress restricted unexpectedly", redis, sharedChart, func(*objects) {}, "restricts egress"},
		{"policy missing from the projected directory", revocationFile, chartOverlay(t, "deploy/helm/cognito-extauthz/examples/revocation-file.yaml"), func(o *objects) {
			srcs := o.deployments[0].Spec.Template.Spec.Volumes[0].Projected.Sources
			o.deployments[0].Spec.Template.Spec.Volumes[0].Projected.Sources = srcs[1:]
		}, "puts no file policy.yaml"},
		{"HTTP listener on loopback", httpAuthz, httpOv, func(o *objects) { setEnv(o, "EXTAUTHZ_HTTP_AUTHZ_ADDR", "127.0.0.1:9003") }, "must listen on all interfaces"},
		{"HTTP listener unexpected", httpAuthz, sharedChart, func(*objects) {}, "want on=false"},
		{"HTTP port closed", httpAuthz, httpOv, func(o *objects) {
			o.netpols[0].Spec.Ingress[0].Ports = o.netpols[0].Spec.Ingress[0].Ports[:1]
		}, "does not open port 9003"},
		{"HTTP certificate without the HTTP Service", httpAuthz, httpOv, func(o *objects) {
			for _, c := range o.certificates {
				c.Spec.DNSNames = slices.DeleteFunc(c.Spec.DNSNames, func(n string) bool { return strings.Contains(n, "-http.") })
			}
		}, "the name the proxies dial"},
		{"HTTP key from elsewhere", httpAuthz, httpOv, func(o *objects) { setEnv(o, "EXTAUTHZ_HTTP_AUTHZ_TLS_KEY", "/tmp/key.pem") }, "are not the gRPC listener's"},
		{"digest image from elsewhere", monitoring, sharedChart, func(o *objects) {
			container(&o.deployments[0].Spec.Template, "extauthz").Image = "example.com/extauthz@sha256:00"
		}, "want " + extauthzImage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := decode(tt.docs)
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(o)
			err = check(o, tt.ov)
			if err == nil {
				t.Fatal("broken rendering accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}

func cmpName(file string) string {
	if file == "" {
		return "defaults"
	}
	return file
}
