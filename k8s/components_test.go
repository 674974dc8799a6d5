package k8s_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

const sidecarComponent = "components/sidecar"

// sidecarPod is what the sidecar component must give a workload's pods: the
// sidecar overlay's invariants for the extauthz and Envoy containers.
var sidecarPod = overlay{
	dir:            "testdata/sidecar-component",
	envoyConfig:    "../envoy/sidecar.yaml",
	ingress:        map[int32]peer{8080: anyone, 9002: selected},
	grpcOnLoopback: true,
	policyFile:     policySource,
}

// workloads decodes the apps/v1 workloads of a rendering (the overlays'
// decode knows Deployments only).
func workloads(t *testing.T, docs [][]byte) (pods map[string]*corev1.PodTemplateSpec, labelsOf map[string]map[string]string, rest [][]byte) {
	t.Helper()
	pods, labelsOf = map[string]*corev1.PodTemplateSpec{}, map[string]map[string]string{}
	for _, y := range docs {
		var head struct{ Kind string }
		if err := yaml.Unmarshal(y, &head); err != nil {
			t.Fatal(err)
		}
		switch head.Kind {
		case "StatefulSet":
			var list []*appsv1.StatefulSet
			if err := into(y, &list); err != nil {
				t.Fatal(err)
			}
			pods["StatefulSet/"+list[0].Name], labelsOf["StatefulSet/"+list[0].Name] = &list[0].Spec.Template, list[0].Labels
		case "Deployment":
			var list []*appsv1.Deployment
			if err := into(y, &list); err != nil {
				t.Fatal(err)
			}
			pods["Deployment/"+list[0].Name], labelsOf["Deployment/"+list[0].Name] = &list[0].Spec.Template, list[0].Labels
		default:
			rest = append(rest, y)
		}
	}
	return pods, labelsOf, rest
}

// checkSidecarPod holds one pod to the checks of the extauthz and Envoy
// containers that check() applies to the sidecar overlay; the pod's own
// settings and its other containers are the application's.
func checkSidecarPod(o *objects, pod *corev1.PodTemplateSpec, ov overlay) error {
	var errs []error
	ext, envoy := container(pod, "extauthz"), container(pod, "envoy")
	if ext == nil || envoy == nil {
		return errors.New("no extauthz or envoy container")
	}
	errs = append(errs, checkContainer(*ext)...)
	errs = append(errs, checkContainer(*envoy)...)
	errs = append(errs, checkExtauthz(o, pod, ext, ov)...)
	errs = append(errs, checkEnvoy(o, pod, ext, ov)...)
	errs = append(errs, checkNetworkPolicy(o, pod, ov)...)
	for _, c := range []*corev1.Container{ext, envoy} {
		if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser == 0 || sc.SeccompProfile == nil ||
			sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			errs = append(errs, errors.New("container "+c.Name+": the component must set a non-root uid and RuntimeDefault seccomp itself: the pod's settings are the app's"))
		}
	}
	return errors.Join(errs...)
}

func TestSidecarComponent(t *testing.T) {
	pods, _, rest := workloads(t, render(t, sidecarPod.dir))
	o, err := decode(rest)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Deployment/shop", "StatefulSet/ledger"} {
		t.Run(name, func(t *testing.T) {
			pod := pods[name]
			if pod == nil {
				t.Fatal("not rendered")
			}
			if err := checkSidecarPod(o, pod, sidecarPod); err != nil {
				t.Error(err)
			}
			if c := container(pod, "app"); c == nil || len(pod.Spec.Containers) != 3 {
				t.Errorf("the app container must stay, beside the two added: %d containers", len(pod.Spec.Containers))
			}
		})
	}
	t.Run("unlabelled workload untouched", func(t *testing.T) {
		if w := pods["Deployment/worker"]; w == nil || len(w.Spec.Containers) != 1 || len(w.Spec.Volumes) != 0 {
			t.Error("Deployment worker, not labelled cognito-extauthz.io/sidecar, was changed")
		}
	})
	t.Run("the app's volumes stay", func(t *testing.T) {
		var names []string
		for _, v := range pods["Deployment/shop"].Spec.Volumes {
			names = append(names, v.Name)
		}
		if strings.Join(names, ",") != "data,extauthz-envoy,extauthz-policy" && strings.Join(names, ",") != "extauthz-envoy,extauthz-policy,data" {
			t.Errorf("volumes %v: want the app's data plus extauthz-envoy and extauthz-policy", names)
		}
	})
}

// TestSidecarComponentOwnPolicy follows the documented way to bring one's
// own policy: a component of one's own, listed after the sidecar one (a
// kustomization's own generators run before its components, so only a
// later component can replace what a component generates).
func TestSidecarComponentOwnPolicy(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "k8s"), os.DirFS(".")); err != nil {
		t.Fatal(err)
	}
	app := filepath.Join(dir, "k8s", sidecarPod.dir)
	own := "apiVersion: cognito-extauthz/v1\n# mine\n"
	mine := filepath.Join(app, "policy")
	if err := os.Mkdir(mine, 0o755); err != nil {
		t.Fatal(err)
	}
	component := docBlock(t, "../docs/install.md", "kind: Component")
	for name, data := range map[string]string{"policy.yaml": own, "kustomization.yaml": component} {
		if err := os.WriteFile(filepath.Join(mine, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	k, err := os.ReadFile(filepath.Join(app, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	k = append(k, "  - policy\n"...)
	if err := os.WriteFile(filepath.Join(app, "kustomization.yaml"), k, 0o644); err != nil {
		t.Fatal(err)
	}
	pods, _, rest := workloads(t, render(t, app))
	o, err := decode(rest)
	if err != nil {
		t.Fatal(err)
	}
	pod := pods["Deployment/shop"]
	cm, key, err := mountedConfigMap(o, pod, container(pod, "extauthz"), "/etc/extauthz/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cm.Name != "extauthz-policy" || cm.Data[key] != own {
		t.Errorf("ConfigMap %s holds %q, want the replacement policy under the fixed name", cm.Name, cm.Data[key])
	}
}

// TestSidecarComponentCopies: the component's files are copies of the ones
// the rest of the repository tests (a component cannot read outside its
// directory).
func TestSidecarComponentCopies(t *testing.T) {
	for copyOf, src := range map[string]string{"policy.yaml": policySource, "envoy.yaml": "../envoy/sidecar.yaml"} {
		got, err1 := os.ReadFile(filepath.Join(sidecarComponent, copyOf))
		want, err2 := os.ReadFile(src)
		if err := errors.Join(err1, err2); err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("%s/%s differs from %s: cp %s k8s/%s/%s", sidecarComponent, copyOf, src, strings.TrimPrefix(src, "../"), sidecarComponent, copyOf)
		}
	}
}

// TestSidecarComponentCatchesBreakage: the component's checks can fail.
func TestSidecarComponentCatchesBreakage(t *testing.T) {
	docs := render(t, sidecarPod.dir)
	for _, tt := range []struct {
		name   string
		mutate func(pod *corev1.PodTemplateSpec, o *objects)
		want   string
	}{
		{"no uid on the container", func(pod *corev1.PodTemplateSpec, _ *objects) { container(pod, "envoy").SecurityContext.RunAsUser = nil }, "non-root uid"},
		{"gRPC off loopback", func(pod *corev1.PodTemplateSpec, _ *objects) {
			ext := container(pod, "extauthz")
			ext.Env = setEnv(ext.Env, "EXTAUTHZ_GRPC_ADDR", ":9001")
		}, "loopback=false"},
		{"grace period dropped", func(pod *corev1.PodTemplateSpec, _ *objects) { pod.Spec.TerminationGracePeriodSeconds = nil }, "terminationGracePeriodSeconds"},
		{"pod label dropped", func(pod *corev1.PodTemplateSpec, _ *objects) { delete(pod.Labels, "cognito-extauthz.io/sidecar") }, "NetworkPolicies select the pods"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pods, _, rest := workloads(t, docs)
			o, err := decode(rest)
			if err != nil {
				t.Fatal(err)
			}
			pod := pods["Deployment/shop"]
			tt.mutate(pod, o)
			err = checkSidecarPod(o, pod, sidecarPod)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v does not mention %q", err, tt.want)
			}
		})
	}
}

// docBlock returns the first ```yaml block of a document that contains
// marker: what the reader copies.
func docBlock(t *testing.T, file, marker string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range strings.Split(string(data), "```yaml\n")[1:] {
		block, _, _ := strings.Cut(part, "```")
		if strings.Contains(block, marker) {
			return block
		}
	}
	t.Fatalf("%s has no yaml block with %q", file, marker)
	return ""
}

// TestRevocationRedisComponent: with the revocation-redis component, the
// extauthz container reads the Redis password from the Secret
// extauthz-redis (never from the policy), and the only egress to port 6379
// goes to selected Redis pods. (TestOverlays holds the rest of the layout,
// egress ports included, to the shared overlay's invariants.)
func TestRevocationRedisComponent(t *testing.T) {
	o, err := decode(render(t, "testdata/shared-redis"))
	if err != nil {
		t.Fatal(err)
	}
	ext := container(&o.deployments[0].Spec.Template, "extauthz")
	var found bool
	for _, e := range ext.Env {
		if e.Name != "EXTAUTHZ_REVOCATION_REDIS_PASSWORD" {
			continue
		}
		found = true
		if e.Value != "" || e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Name != "extauthz-redis" || e.ValueFrom.SecretKeyRef.Key != "password" {
			t.Errorf("EXTAUTHZ_REVOCATION_REDIS_PASSWORD is not read from Secret extauthz-redis key password: %+v", e)
		}
	}
	if !found {
		t.Fatal("no EXTAUTHZ_REVOCATION_REDIS_PASSWORD in the extauthz container")
	}
	for _, rule := range o.netpols[0].Spec.Egress {
		for _, p := range rule.Ports {
			if p.Port.IntVal != 6379 {
				continue
			}
			for _, to := range rule.To {
				if to.IPBlock != nil || to.PodSelector == nil || len(to.PodSelector.MatchLabels) == 0 {
					t.Errorf("egress to Redis is open beyond Redis's pods: %+v", to)
				}
			}
		}
	}
	// Without the component, the shared overlay has neither.
	plain, err := decode(render(t, "overlays/shared"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range container(&plain.deployments[0].Spec.Template, "extauthz").Env {
		if e.Name == "EXTAUTHZ_REVOCATION_REDIS_PASSWORD" {
			t.Error("the plain shared overlay sets the Redis password")
		}
	}
}
