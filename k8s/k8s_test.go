// Package k8s_test renders every kustomize overlay with kustomize's own Go
// API, and the Helm chart with the real helm (chart_test.go), decodes each
// object strictly into the k8s.io/api types (an unknown or misspelled field
// is an error, as with kubectl --validate=strict), and checks the invariants
// the deployment depends on: one check function for both.
package k8s_test

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
)

// Facts about the extauthz binary (cmd/extauthz flags and their defaults).
const (
	extauthzImage        = "ghcr.io/cognito-extauthz/extauthz"
	defaultGRPCAddr      = ":9001"
	defaultAdminAddr     = ":9002"
	defaultShutdownGrace = 15 * time.Second
	defaultCheckTimeout  = 2 * time.Second
	policySource         = "base/policy.yaml"
)

// The policy's share of the memory budget in base/deployment.yaml: the route
// count the budget is sized for (its comment must say it), and what one
// route may take on the heap: 1 KiB compiled and 6 KiB while a reload parses
// the next policy beside the one in force (the budget pkg/policy's
// TestRouteMemoryBudget holds the code to; BENCHMARKS.md has the figures
// measured), plus 2 KiB for the two extauthz_checks_total series (about
// 0.9 KiB each) a route has once it sees traffic.
const (
	policyRoutes     = 1000
	routeBudgetBytes = (1 + 6 + 2) << 10
	deploymentSource = "base/deployment.yaml"
)

// documentedRoutesRE reads the route count off the budget's comment.
var documentedRoutesRE = regexp.MustCompile(`#\s+policy, up to ([0-9,]+) routes`)

// peer says who a NetworkPolicy must admit to a port.
type peer int

const (
	anyone   peer = iota + 1 // e.g. Envoy's public listener
	selected                 // only pods picked by a non-empty label selector
)

// overlay is what one layout must satisfy beyond the common invariants: a
// kustomize overlay, or the chart rendered with one values file.
type overlay struct {
	dir         string
	envoyConfig string         // the bootstrap the Envoy ConfigMap must equal; "" when Envoy is not in the pod
	ingress     map[int32]peer // the complete set of ports the NetworkPolicy opens
	// grpcOnLoopback: extauthz listens on 127.0.0.1 (sidecar), so the
	// kubelet probes /readyz over HTTP; otherwise natively over gRPC.
	grpcOnLoopback bool
	// grpcMTLS: the gRPC listener must serve mutual TLS with a
	// cert-manager certificate (the kubelet then probes /readyz too: its
	// gRPC probe cannot speak TLS).
	grpcMTLS bool
	// policyFile: the file the policy ConfigMap must hold byte for byte;
	// "" when the caller checks the content itself (a chart values file
	// that brings its own policy).
	policyFile string
	// policyConfigMap: the fixed name of the policy ConfigMap;
	// "extauthz-policy" when empty.
	policyConfigMap string
	// externalPolicy: the policy ConfigMap is made outside this rendering
	// (the chart's policy.existingConfigMap): only its mount is checked.
	externalPolicy bool
	// egress: the ports a NetworkPolicy that restricts egress must open
	// (DNS and HTTPS for the JWKS always, Redis when it is used).
	egress []int32
	// httpAuthz: the HTTP authorization listener is on (the chart's
	// httpAuthz.enabled), on all interfaces behind a Service of its own;
	// httpTLS, httpMTLS: it serves TLS, and requires client certificates.
	httpAuthz, httpTLS, httpMTLS bool
	// fixedReplicas: no HPA (the chart's autoscaling.enabled false); the
	// Deployment sets its replica count.
	fixedReplicas bool
}

var overlays = []overlay{
	{
		dir:        "overlays/shared",
		ingress:    map[int32]peer{9001: selected, 9002: selected},
		grpcMTLS:   true,
		policyFile: policySource,
	},
	{
		dir:            "overlays/sidecar",
		envoyConfig:    "../envoy/sidecar.yaml",
		ingress:        map[int32]peer{8080: anyone, 9002: selected},
		grpcOnLoopback: true,
		policyFile:     policySource,
	},
	{
		// The shared overlay with the revocation-redis component.
		dir:        "testdata/shared-redis",
		ingress:    map[int32]peer{9001: selected, 9002: selected},
		grpcMTLS:   true,
		policyFile: policySource,
		egress:     []int32{53, 443, 6379},
	},
}

// objects are the decoded objects of one rendered overlay.
type objects struct {
	deployments     []*appsv1.Deployment
	services        []*corev1.Service
	configMaps      []*corev1.ConfigMap
	serviceAccounts []*corev1.ServiceAccount
	namespaces      []*corev1.Namespace
	hpas            []*autoscalingv2.HorizontalPodAutoscaler
	pdbs            []*policyv1.PodDisruptionBudget
	netpols         []*networkingv1.NetworkPolicy
	certificates    []*certificate
	issuers         []*issuer
	serviceMonitors []*serviceMonitor
	prometheusRules []*prometheusRule
}

// render runs kustomize on dir and returns each object's YAML.
func render(t *testing.T, dir string) [][]byte {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var docs [][]byte
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, y)
	}
	return docs
}

// decode turns rendered YAML into typed objects, strictly: unknown fields,
// unknown kinds and unexpected API versions are errors.
func decode(docs [][]byte) (*objects, error) {
	o := &objects{}
	var errs []error
	for _, y := range docs {
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(y, &tm); err != nil {
			return nil, err
		}
		var err error
		switch gvk := tm.APIVersion + "/" + tm.Kind; gvk {
		case "apps/v1/Deployment":
			err = into(y, &o.deployments)
		case "v1/Service":
			err = into(y, &o.services)
		case "v1/ConfigMap":
			err = into(y, &o.configMaps)
		case "v1/ServiceAccount":
			err = into(y, &o.serviceAccounts)
		case "v1/Namespace":
			err = into(y, &o.namespaces)
		case "autoscaling/v2/HorizontalPodAutoscaler":
			err = into(y, &o.hpas)
		case "policy/v1/PodDisruptionBudget":
			err = into(y, &o.pdbs)
		case "networking.k8s.io/v1/NetworkPolicy":
			err = into(y, &o.netpols)
		case "cert-manager.io/v1/Certificate":
			err = into(y, &o.certificates)
		case "cert-manager.io/v1/Issuer":
			err = into(y, &o.issuers)
		case "monitoring.coreos.com/v1/ServiceMonitor":
			err = into(y, &o.serviceMonitors)
		case "monitoring.coreos.com/v1/PrometheusRule":
			err = into(y, &o.prometheusRules)
		default:
			err = fmt.Errorf("%s: no strict decoder and no invariants for this kind; extend the test", gvk)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", tm.Kind, name(y), err))
		}
	}
	return o, errors.Join(errs...)
}

// into decodes as the API server's strict field validation does: an
// unknown field, a field spelt in another case (which Go's encoding/json,
// and so yaml.UnmarshalStrict, would match) or a duplicate field is an
// error.
func into[T any](y []byte, list *[]*T) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return err
	}
	v := new(T)
	strictErrs, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	if err := errors.Join(strictErrs...); err != nil {
		return err
	}
	*list = append(*list, v)
	return nil
}

func name(y []byte) string {
	var m metav1.PartialObjectMetadata
	_ = yaml.Unmarshal(y, &m)
	return m.Name
}

func TestOverlays(t *testing.T) {
	for _, ov := range overlays {
		t.Run(ov.dir, func(t *testing.T) {
			o, err := decode(render(t, ov.dir))
			if err != nil {
				t.Fatal(err)
			}
			if err := check(o, ov); err != nil {
				t.Error(err)
			}
		})
	}
}

// check holds every invariant; each message says what breaks if it fails.
func check(o *objects, ov overlay) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	if len(o.deployments) != 1 {
		return fmt.Errorf("%d Deployments, want 1", len(o.deployments))
	}
	d := o.deployments[0]
	pod := &d.Spec.Template
	podLabels := labels.Set(pod.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || sel.Empty() || !sel.Matches(podLabels) {
		fail("deployment selector does not select its own pods")
	}
	switch {
	case ov.fixedReplicas && (d.Spec.Replicas == nil || *d.Spec.Replicas < 2):
		fail("deployment without an HPA must set replicas to at least 2 (one replica is an outage on every drain)")
	case !ov.fixedReplicas && d.Spec.Replicas != nil:
		fail("deployment sets replicas: every apply would fight the HPA")
	}
	for _, ns := range o.namespaces {
		if ns.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
			fail("namespace %s does not enforce the restricted Pod Security Standard", ns.Name)
		}
	}

	errs = append(errs, checkPodSecurity(o, pod)...)
	for _, c := range pod.Spec.Containers {
		errs = append(errs, checkContainer(c)...)
	}

	ext := container(pod, "extauthz")
	if ext == nil {
		return errors.Join(append(errs, errors.New("no extauthz container"))...)
	}
	errs = append(errs, checkExtauthz(o, pod, ext, ov)...)
	errs = append(errs, checkWorkloadObjects(o, d, ov)...)
	errs = append(errs, checkServices(o, pod)...)
	errs = append(errs, checkNetworkPolicy(o, pod, ov)...)
	errs = append(errs, checkMonitoring(o)...)

	if ov.envoyConfig != "" {
		errs = append(errs, checkEnvoy(o, pod, ext, ov)...)
	}
	return errors.Join(errs...)
}

func checkPodSecurity(o *objects, pod *corev1.PodTemplateSpec) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ps := pod.Spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		fail("pod securityContext.runAsNonRoot must be true")
	}
	if ps == nil || ps.RunAsUser == nil || *ps.RunAsUser == 0 {
		fail("pod securityContext.runAsUser must be a non-root uid (images may not declare one)")
	}
	if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		fail("pod seccompProfile must be RuntimeDefault")
	}
	if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
		fail("automountServiceAccountToken must be false: extauthz needs no API token")
	}
	sa := pod.Spec.ServiceAccountName
	var found bool
	for _, s := range o.serviceAccounts {
		if s.Name == sa {
			found = true
			if a := s.AutomountServiceAccountToken; a == nil || *a {
				fail("service account %s must not automount its token", sa)
			}
		}
	}
	if !found {
		fail("service account %q is not part of the overlay", sa)
	}
	if pod.Spec.HostNetwork || pod.Spec.HostPID || pod.Spec.HostIPC {
		fail("host namespaces must not be shared")
	}
	var host, zone bool
	for _, tsc := range pod.Spec.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(tsc.LabelSelector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			fail("topology spread on %s does not select the pods it spreads", tsc.TopologyKey)
			continue
		}
		host = host || tsc.TopologyKey == corev1.LabelHostname
		zone = zone || tsc.TopologyKey == corev1.LabelTopologyZone
	}
	if !host || !zone {
		fail("topology spread across nodes and zones required (have nodes=%v zones=%v)", host, zone)
	}
	return errs
}

// checkContainer: restricted Pod Security, resources, probes, pinned image.
func checkContainer(c corev1.Container) []error {
	var errs []error
	fail := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("container %s: "+format, append([]any{c.Name}, a...)...))
	}
	sc := c.SecurityContext
	switch {
	case sc == nil:
		fail("no securityContext")
	default:
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("allowPrivilegeEscalation must be false")
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			fail("readOnlyRootFilesystem must be true")
		}
		if sc.Privileged != nil && *sc.Privileged {
			fail("privileged")
		}
		if sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot {
			fail("runAsNonRoot overridden to false")
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			fail("runs as root")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
			fail("capabilities must drop ALL and add none")
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			fail("%s request and limit required", r)
		} else if req.Cmp(lim) > 0 {
			fail("%s request %s above limit %s", r, req.String(), lim.String())
		}
	}
	if c.ReadinessProbe == nil || c.LivenessProbe == nil {
		fail("readiness and liveness probes required")
	}
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		fail("preStop sleep required: the pod must keep serving while endpoints drain")
	}
	if repo, tag, digest := parseImage(c.Image); repo == "" || digest == "" && (tag == "" || tag == "latest") {
		fail("image %q must carry a pinned tag", c.Image)
	}
	return errs
}

func checkExtauthz(o *objects, pod *corev1.PodTemplateSpec, c *corev1.Container, ov overlay) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf("extauthz: "+format, a...)) }
	if repo, _, _ := parseImage(c.Image); repo != extauthzImage {
		fail("image %q, want %s:<version>", c.Image, extauthzImage)
	}
	if len(c.Command) != 0 || len(c.Args) == 0 || c.Args[0] != "serve" {
		fail("must run the image's entrypoint with `serve` (command %v, args %v)", c.Command, c.Args)
	}

	settings, err := extauthzSettings(c)
	if err != nil {
		return append(errs, err)
	}
	// The policy: a ConfigMap mounted as a whole directory, holding the file.
	wantName := cmp.Or(ov.policyConfigMap, "extauthz-policy")
	if ov.externalPolicy {
		name, err := mountedConfigMapName(pod, c, settings.config)
		if err != nil {
			fail("policy %s: %v", settings.config, err)
		} else if name != wantName {
			fail("policy ConfigMap is %q, want %q", name, wantName)
		}
	} else if cm, key, err := mountedConfigMap(o, pod, c, settings.config); err != nil {
		fail("policy %s: %v", settings.config, err)
	} else {
		if cm.Name != wantName {
			fail("policy ConfigMap is %q: it must keep its fixed name (%s, no hash suffix) so the kubelet updates it in place", cm.Name, wantName)
		}
		if ov.policyFile != "" {
			want, err := os.ReadFile(ov.policyFile)
			if err != nil {
				return append(errs, err)
			}
			if cm.Data[key] != string(want) {
				fail("policy ConfigMap key %s differs from %s", key, ov.policyFile)
			}
		}
	}

	// Ports: what the container listens on vs what it declares and probes.
	grpcHost, grpcPort, err := hostPort(settings.grpcAddr)
	if err != nil {
		return append(errs, fmt.Errorf("extauthz grpc addr: %w", err))
	}
	adminHost, adminPort, err := hostPort(settings.adminAddr)
	if err != nil {
		return append(errs, fmt.Errorf("extauthz admin addr: %w", err))
	}
	if !wildcard(adminHost) {
		fail("admin address %q must listen on all interfaces: the kubelet and Prometheus connect to the pod IP", settings.adminAddr)
	}
	if !portDeclared(c, adminPort) {
		fail("admin port %d not declared as a containerPort", adminPort)
	}
	loopback := isLoopback(grpcHost)
	if loopback != ov.grpcOnLoopback {
		fail("grpc address %q: loopback=%v, want %v for this layout", settings.grpcAddr, loopback, ov.grpcOnLoopback)
	}
	if !loopback && !wildcard(grpcHost) {
		fail("grpc address %q must be loopback or all interfaces", settings.grpcAddr)
	}
	tlsOn := settings.grpcTLS != (tlsSettings{})
	switch {
	case loopback:
		if portDeclared(c, grpcPort) {
			fail("grpc port %d is declared but bound to loopback: nothing outside the pod can reach it", grpcPort)
		}
		if !httpProbe(c.ReadinessProbe, "/readyz", c, adminPort) {
			fail("readiness must be HTTP /readyz on the admin port %d (gRPC is on loopback, out of the kubelet's reach)", adminPort)
		}
	case tlsOn:
		if !portDeclared(c, grpcPort) {
			fail("grpc port %d not declared as a containerPort", grpcPort)
		}
		if !httpProbe(c.ReadinessProbe, "/readyz", c, adminPort) {
			fail("readiness must be HTTP /readyz on the admin port %d: the kubelet's gRPC probe cannot speak TLS", adminPort)
		}
	default:
		if !portDeclared(c, grpcPort) {
			fail("grpc port %d not declared as a containerPort", grpcPort)
		}
		if p := c.ReadinessProbe; p == nil || p.GRPC == nil || p.GRPC.Port != grpcPort {
			fail("readiness must be a native gRPC probe on port %d", grpcPort)
		}
	}
	errs = append(errs, checkHTTPAuthz(o, pod, c, settings, ov)...)
	if ov.grpcMTLS {
		errs = append(errs, checkGRPCTLS(o, pod, c, settings.grpcTLS)...)
	} else if tlsOn {
		fail("gRPC TLS set in a layout whose Envoy speaks plaintext to it")
	}
	if !httpProbe(c.LivenessProbe, "/healthz", c, adminPort) {
		fail("liveness must be HTTP /healthz on the admin port %d: the gRPC health is NOT_SERVING until JWKS are fetched, and a restart would not fetch them", adminPort)
	}

	// Metrics scraping.
	ann := pod.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(int(adminPort)) || ann["prometheus.io/path"] != "/metrics" {
		fail("prometheus.io annotations must point at /metrics on %d, have %v", adminPort, ann)
	}

	// Shutdown: preStop sleep, then SIGTERM and up to shutdown-grace of drain,
	// all inside the grace period.
	var preStop int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
	}
	budget := time.Duration(preStop)*time.Second + settings.shutdownGrace
	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= budget {
		fail("terminationGracePeriodSeconds must exceed preStop sleep + shutdown grace (%v)", budget)
	}

	// The Envoy in front must wait longer than the service's own check
	// deadline, or slow checks end in Envoy's bare 503 instead of ours.
	for _, f := range []string{"../envoy/sidecar.yaml", "../envoy/shared.yaml"} {
		to, err := envoyAuthzTimeout(f)
		if err != nil {
			fail("%v", err)
		} else if to <= settings.checkTimeout {
			fail("%s ext_authz timeout %v must exceed --check-timeout %v", f, to, settings.checkTimeout)
		}
	}

	if v := env(c, "GOMEMLIMIT"); v != "" {
		lim := c.Resources.Limits[corev1.ResourceMemory]
		q, err := resource.ParseQuantity(strings.TrimSuffix(v, "B"))
		if err != nil || q.Cmp(lim) >= 0 {
			fail("GOMEMLIMIT %q must be below the memory limit %s", v, lim.String())
		}
		// The budget of deployment.yaml: a full token cache plus the rest
		// of the live heap, doubled by the GC at GOGC=100, plus runtime
		// overhead, must fit under GOMEMLIMIT, or a full cache makes the
		// GC run without pause.
		cacheBytes, cerr := strconv.ParseInt(setting(c, "token-cache-max-bytes", "EXTAUTHZ_TOKEN_CACHE_MAX_BYTES",
			strconv.Itoa(authz.DefaultCacheMaxBytes)), 10, 64)
		need := 2*(cacheBytes+25<<20+policyRoutes*routeBudgetBytes) + 20<<20
		if cerr != nil || err == nil && q.Value() < need {
			fail("GOMEMLIMIT %q is below the budget of a full token cache and a policy of %d routes (%d MiB)", v, policyRoutes, need>>20)
		}
		if n, derr := documentedRoutes(); derr != nil || n != policyRoutes {
			fail("%s must document the budget's policy as \"policy, up to %d routes\" (found %d, %v)", deploymentSource, policyRoutes, n, derr)
		}
	}
	return errs
}

// checkHTTPAuthz: the HTTP authorization listener is on exactly where the
// layout says, listens on every interface on a declared port that a Service
// reaches, and serves TLS from the gRPC listener's Secret, whose certificate
// names the Service the proxies dial.
func checkHTTPAuthz(o *objects, pod *corev1.PodTemplateSpec, c *corev1.Container, s settings, ov overlay) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf("http authz: "+format, a...)) }
	if (s.httpAddr != "") != ov.httpAuthz {
		return []error{fmt.Errorf("http authz: listener address %q, want on=%v for this layout", s.httpAddr, ov.httpAuthz)}
	}
	if s.httpAddr == "" {
		return nil
	}
	host, port, err := hostPort(s.httpAddr)
	if err != nil {
		return []error{fmt.Errorf("http authz addr: %w", err)}
	}
	if !wildcard(host) {
		fail("address %q must listen on all interfaces: the proxies connect to the pod IP", s.httpAddr)
	}
	if !portDeclared(c, port) {
		fail("port %d not declared as a containerPort", port)
	}
	var names []string
	for _, svc := range o.services {
		for _, p := range svc.Spec.Ports {
			if resolvePort(c, p.TargetPort) == port {
				names = append(names, fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace))
			}
		}
	}
	if len(names) == 0 {
		fail("no Service reaches port %d", port)
	}
	tlsOn := s.httpTLS.cert != "" || s.httpTLS.key != ""
	switch {
	case tlsOn != ov.httpTLS:
		fail("TLS on=%v, want %v", tlsOn, ov.httpTLS)
	case (s.httpTLS.clientCA != "") != ov.httpMTLS:
		fail("client certificates required=%v, want %v", s.httpTLS.clientCA != "", ov.httpMTLS)
	}
	if !tlsOn {
		return errs
	}
	if s.httpTLS.cert != s.grpcTLS.cert || s.httpTLS.key != s.grpcTLS.key {
		fail("cert %s and key %s are not the gRPC listener's (%s, %s), whose Secret cert-manager rotates", s.httpTLS.cert, s.httpTLS.key, s.grpcTLS.cert, s.grpcTLS.key)
		return errs
	}
	secret, _, err := mountedSecret(pod, c, s.httpTLS.cert)
	if err != nil {
		fail("%s: %v", s.httpTLS.cert, err)
		return errs
	}
	if cert := certBySecret(o, secret); cert != nil {
		for _, n := range names {
			if !slices.Contains(cert.Spec.DNSNames, n) {
				fail("Certificate %s dnsNames %v lack %s, the name the proxies dial and check", cert.Name, cert.Spec.DNSNames, n)
			}
		}
	}
	return errs
}

// documentedRoutes returns the route count the memory budget's comment in
// base/deployment.yaml is sized for.
func documentedRoutes() (int, error) {
	data, err := os.ReadFile(deploymentSource)
	if err != nil {
		return 0, err
	}
	m := documentedRoutesRE.FindSubmatch(data)
	if m == nil {
		return 0, errors.New("no \"policy, up to N routes\" line")
	}
	return strconv.Atoi(strings.ReplaceAll(string(m[1]), ",", ""))
}

// settings are the extauthz flags that matter here, resolved like the binary
// does: flag, then environment variable, then default.
type settings struct {
	config, grpcAddr, adminAddr string
	shutdownGrace, checkTimeout time.Duration
	grpcTLS                     tlsSettings
	httpAddr                    string // "": the HTTP authorization listener is off
	httpTLS                     tlsSettings
}

func extauthzSettings(c *corev1.Container) (settings, error) {
	var s settings
	var errs []error
	for _, e := range c.Env {
		// A secret is not a setting this test resolves; the Redis password
		// must come from a Secret.
		if strings.HasPrefix(e.Name, "EXTAUTHZ_") && e.ValueFrom != nil && e.Name != "EXTAUTHZ_REVOCATION_REDIS_PASSWORD" {
			errs = append(errs, fmt.Errorf("%s uses valueFrom; this test cannot resolve it", e.Name))
		}
	}
	s.config = setting(c, "config", "EXTAUTHZ_CONFIG", "")
	if s.config == "" {
		errs = append(errs, errors.New("no --config / EXTAUTHZ_CONFIG: serve requires it"))
	}
	s.grpcAddr = setting(c, "grpc-addr", "EXTAUTHZ_GRPC_ADDR", defaultGRPCAddr)
	s.adminAddr = setting(c, "admin-addr", "EXTAUTHZ_ADMIN_ADDR", defaultAdminAddr)
	s.httpAddr = setting(c, "http-authz-addr", "EXTAUTHZ_HTTP_AUTHZ_ADDR", "")
	s.httpTLS = tlsSettings{
		cert:     setting(c, "http-authz-tls-cert", "EXTAUTHZ_HTTP_AUTHZ_TLS_CERT", ""),
		key:      setting(c, "http-authz-tls-key", "EXTAUTHZ_HTTP_AUTHZ_TLS_KEY", ""),
		clientCA: setting(c, "http-authz-tls-client-ca", "EXTAUTHZ_HTTP_AUTHZ_TLS_CLIENT_CA", ""),
	}
	s.grpcTLS = tlsSettings{
		cert:     setting(c, "grpc-tls-cert", "EXTAUTHZ_GRPC_TLS_CERT", ""),
		key:      setting(c, "grpc-tls-key", "EXTAUTHZ_GRPC_TLS_KEY", ""),
		clientCA: setting(c, "grpc-tls-client-ca", "EXTAUTHZ_GRPC_TLS_CLIENT_CA", ""),
	}
	var err error
	if s.shutdownGrace, err = time.ParseDuration(setting(c, "shutdown-grace", "EXTAUTHZ_SHUTDOWN_GRACE", defaultShutdownGrace.String())); err != nil {
		errs = append(errs, err)
	}
	if s.checkTimeout, err = time.ParseDuration(setting(c, "check-timeout", "EXTAUTHZ_CHECK_TIMEOUT", defaultCheckTimeout.String())); err != nil {
		errs = append(errs, err)
	}
	return s, errors.Join(errs...)
}

func setting(c *corev1.Container, flag, envName, def string) string {
	for i, a := range c.Args {
		for _, p := range []string{"--" + flag, "-" + flag} {
			if a == p && i+1 < len(c.Args) {
				return c.Args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	if v := env(c, envName); v != "" {
		return v
	}
	return def
}

func env(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func hostPort(addr string) (string, int32, error) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.ParseUint(p, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("bad port in %q", addr)
	}
	return h, int32(n), nil
}

func wildcard(h string) bool { return h == "" || h == "0.0.0.0" || h == "::" }

func isLoopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func portDeclared(c *corev1.Container, port int32) bool {
	for _, p := range c.Ports {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

// resolvePort turns a probe or Service target port into a number using the
// container's named ports; 0 when it names no port of the container.
func resolvePort(c *corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func httpProbe(p *corev1.Probe, path string, c *corev1.Container, port int32) bool {
	return p != nil && p.HTTPGet != nil && p.HTTPGet.Path == path && resolvePort(c, p.HTTPGet.Port) == port
}

func container(pod *corev1.PodTemplateSpec, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// mountedConfigMap finds the ConfigMap that provides file to the container
// through a DIRECTORY mount (a subPath mount is never updated by the kubelet)
// and returns it with the data key that becomes the file.
func mountedConfigMap(o *objects, pod *corev1.PodTemplateSpec, c *corev1.Container, file string) (*corev1.ConfigMap, string, error) {
	name, key, err := mountedConfigMapKey(pod, c, file)
	if err != nil {
		return nil, "", err
	}
	for _, cm := range o.configMaps {
		if cm.Name == name {
			if _, ok := cm.Data[key]; !ok {
				return nil, "", fmt.Errorf("ConfigMap %s has no key %s", cm.Name, key)
			}
			return cm, key, nil
		}
	}
	return nil, "", fmt.Errorf("ConfigMap %s is not part of the overlay", name)
}

// mountedConfigMapName is the name of the ConfigMap that provides file
// through a directory mount, for a ConfigMap made outside the rendering.
func mountedConfigMapName(pod *corev1.PodTemplateSpec, c *corev1.Container, file string) (string, error) {
	name, _, err := mountedConfigMapKey(pod, c, file)
	return name, err
}

// mountedConfigMapKey resolves file to a ConfigMap name and key through a
// directory mount of a configMap volume, or of a projected volume (which
// puts several ConfigMaps' files in one directory, as the chart does with
// the revocation list beside the policy).
func mountedConfigMapKey(pod *corev1.PodTemplateSpec, c *corev1.Container, file string) (string, string, error) {
	dir, base := path.Split(file)
	dir = path.Clean(dir)
	for _, m := range c.VolumeMounts {
		if path.Clean(m.MountPath) != dir {
			continue
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			return "", "", fmt.Errorf("mounted with subPath at %s: the kubelet never updates subPath mounts", m.MountPath)
		}
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name {
				continue
			}
			var sources []*corev1.ConfigMapProjection
			switch {
			case v.ConfigMap != nil:
				sources = append(sources, &corev1.ConfigMapProjection{LocalObjectReference: v.ConfigMap.LocalObjectReference, Items: v.ConfigMap.Items})
			case v.Projected != nil:
				for _, src := range v.Projected.Sources {
					if src.ConfigMap != nil {
						sources = append(sources, src.ConfigMap)
					}
				}
			}
			if len(sources) == 0 {
				return "", "", fmt.Errorf("volume %s is not a ConfigMap", v.Name)
			}
			for _, src := range sources {
				if len(src.Items) == 0 {
					return src.Name, base, nil
				}
				for _, it := range src.Items {
					if it.Path == base {
						return src.Name, it.Key, nil
					}
				}
			}
			return "", "", fmt.Errorf("volume %s puts no file %s in %s", v.Name, base, dir)
		}
		return "", "", fmt.Errorf("volume %s not defined", m.Name)
	}
	return "", "", fmt.Errorf("no volume mounted at %s", dir)
}

// parseImage splits an image reference into repository, tag and digest
// (a registry's :port stays in the repository).
func parseImage(ref string) (repo, tag, digest string) {
	repo, digest, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo, tag = repo[:i], repo[i+1:]
	}
	return repo, tag, digest
}

func checkWorkloadObjects(o *objects, d *appsv1.Deployment, ov overlay) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	podLabels := labels.Set(d.Spec.Template.Labels)
	if want := map[bool]int{false: 1, true: 0}[ov.fixedReplicas]; len(o.hpas) != want {
		fail("%d HorizontalPodAutoscalers, want %d", len(o.hpas), want)
	}
	for _, h := range o.hpas {
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "Deployment" || ref.Name != d.Name || ref.APIVersion != "apps/v1" {
			fail("HPA %s targets %s %s (%s), want Deployment %s", h.Name, ref.Kind, ref.Name, ref.APIVersion, d.Name)
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			fail("HPA %s: minReplicas must be at least 2 (one replica is an outage on every drain)", h.Name)
		}
		var cpu bool
		for _, m := range h.Spec.Metrics {
			cpu = cpu || (m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Name == corev1.ResourceCPU)
		}
		if !cpu {
			fail("HPA %s: no CPU metric", h.Name)
		}
	}
	if len(o.pdbs) != 1 {
		fail("%d PodDisruptionBudgets, want 1", len(o.pdbs))
	}
	for _, p := range o.pdbs {
		sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(podLabels) {
			fail("PDB %s selector does not match the pods", p.Name)
		}
		if (p.Spec.MaxUnavailable == nil) == (p.Spec.MinAvailable == nil) {
			fail("PDB %s: set exactly one of maxUnavailable and minAvailable", p.Name)
		}
	}
	return errs
}

func checkServices(o *objects, pod *corev1.PodTemplateSpec) []error {
	var errs []error
	if len(o.services) == 0 {
		errs = append(errs, errors.New("no Service"))
	}
	for _, s := range o.services {
		if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pod.Labels)) {
			errs = append(errs, fmt.Errorf("service %s selects no pod of the Deployment", s.Name))
		}
		for _, p := range s.Spec.Ports {
			var found bool
			for i := range pod.Spec.Containers {
				if n := resolvePort(&pod.Spec.Containers[i], p.TargetPort); n != 0 && portDeclared(&pod.Spec.Containers[i], n) {
					found = true
				}
			}
			if !found {
				errs = append(errs, fmt.Errorf("service %s port %s: targetPort %s is not a container port", s.Name, p.Name, p.TargetPort.String()))
			}
		}
	}
	return errs
}

func checkNetworkPolicy(o *objects, pod *corev1.PodTemplateSpec, ov overlay) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	var covering []*networkingv1.NetworkPolicy
	for _, np := range o.netpols {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels)) {
			covering = append(covering, np)
		}
	}
	if len(covering) != 1 {
		return []error{fmt.Errorf("%d NetworkPolicies select the pods, want 1", len(covering))}
	}
	np := covering[0]
	if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) {
		fail("NetworkPolicy %s does not restrict ingress", np.Name)
	}
	opened := map[int32]peer{}
	for _, rule := range np.Spec.Ingress {
		if len(rule.Ports) == 0 {
			fail("NetworkPolicy %s has a rule without ports: it opens every port", np.Name)
		}
		who := anyone
		if len(rule.From) > 0 {
			who = selected
			for _, f := range rule.From {
				if f.PodSelector == nil || len(f.PodSelector.MatchLabels)+len(f.PodSelector.MatchExpressions) == 0 || f.IPBlock != nil {
					who = anyone // a namespace-wide or IP-block peer is not "only these pods"
				}
			}
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.Int || p.EndPort != nil {
				fail("NetworkPolicy %s: use single numeric ports so this test can check them", np.Name)
				continue
			}
			// Open to anyone in one rule means open to anyone.
			if cur, ok := opened[p.Port.IntVal]; !ok || who < cur {
				opened[p.Port.IntVal] = who
			}
		}
	}
	for port, want := range ov.ingress {
		got, ok := opened[port]
		switch {
		case !ok:
			fail("NetworkPolicy %s does not open port %d", np.Name, port)
		case want == selected && got != selected:
			fail("NetworkPolicy %s opens port %d to anyone; only selected pods may reach it", np.Name, port)
		}
	}
	for port := range opened {
		if _, ok := ov.ingress[port]; !ok {
			fail("NetworkPolicy %s opens port %d, which this layout must not expose", np.Name, port)
		}
	}
	return append(errs, checkEgress(np, ov)...)
}

// checkEgress: egress is either open, or restricted to exactly the ports
// the layout needs. A restriction that forgot DNS or HTTPS would keep the
// JWKS out of reach, and the pods never ready.
func checkEgress(np *networkingv1.NetworkPolicy, ov overlay) []error {
	restricted := slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress)
	switch {
	case !restricted && ov.egress == nil:
		return nil
	case !restricted:
		return []error{fmt.Errorf("NetworkPolicy %s does not restrict egress; this layout restricts it to ports %v", np.Name, ov.egress)}
	case ov.egress == nil:
		return []error{fmt.Errorf("NetworkPolicy %s restricts egress, which this layout leaves open", np.Name)}
	}
	var errs []error
	opened := map[int32]bool{}
	for _, rule := range np.Spec.Egress {
		if len(rule.Ports) == 0 || len(rule.To) == 0 {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s has an egress rule without ports or peers: it opens everything", np.Name))
		}
		for _, p := range rule.Ports {
			if p.Port == nil || p.Port.Type != intstr.Int || p.EndPort != nil {
				errs = append(errs, fmt.Errorf("NetworkPolicy %s: use single numeric egress ports so this test can check them", np.Name))
				continue
			}
			opened[p.Port.IntVal] = true
		}
	}
	for _, port := range ov.egress {
		if !opened[port] {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s does not open egress port %d", np.Name, port))
		}
	}
	for port := range opened {
		if !slices.Contains(ov.egress, port) {
			errs = append(errs, fmt.Errorf("NetworkPolicy %s opens egress port %d, which this layout does not use", np.Name, port))
		}
	}
	return errs
}

// checkEnvoy: the Envoy container runs exactly envoy/sidecar.yaml, listens
// where that file says, and reaches extauthz where extauthz listens.
func checkEnvoy(o *objects, pod *corev1.PodTemplateSpec, ext *corev1.Container, ov overlay) []error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf("envoy: "+format, a...)) }
	c := container(pod, "envoy")
	if c == nil {
		return []error{errors.New("no envoy container")}
	}
	cfgPath := ""
	for i, a := range c.Args {
		if (a == "-c" || a == "--config-path") && i+1 < len(c.Args) {
			cfgPath = c.Args[i+1]
		}
	}
	if cfgPath == "" {
		return []error{errors.New("envoy: no --config-path argument")}
	}
	cm, key, err := mountedConfigMap(o, pod, c, cfgPath)
	if err != nil {
		return []error{fmt.Errorf("envoy config %s: %w", cfgPath, err)}
	}
	want, err := os.ReadFile(ov.envoyConfig)
	if err != nil {
		return []error{err}
	}
	if cm.Data[key] != string(want) {
		fail("ConfigMap %s differs from %s: cp %s k8s/%s/sidecar.yaml", cm.Name, ov.envoyConfig, strings.TrimPrefix(ov.envoyConfig, "../"), ov.dir)
	}
	boot, err := envoyYAML(ov.envoyConfig)
	if err != nil {
		return []error{err}
	}
	listeners, _ := dig(boot, "static_resources", "listeners").([]any)
	for _, l := range listeners {
		port := toInt32(dig(l, "address", "socket_address", "port_value"))
		if !portDeclared(c, port) {
			fail("listener port %d not declared on the envoy container", port)
		}
	}
	errs = append(errs, checkEnvoyProbes(c, listeners)...)
	grpcHost, grpcPort, err := hostPort(setting(ext, "grpc-addr", "EXTAUTHZ_GRPC_ADDR", defaultGRPCAddr))
	if err != nil {
		return append(errs, err)
	}
	clusters, _ := dig(boot, "static_resources", "clusters").([]any)
	var matched bool
	for _, cl := range clusters {
		eps, _ := dig(cl, "load_assignment", "endpoints").([]any)
		for _, ep := range eps {
			lbs, _ := dig(ep, "lb_endpoints").([]any)
			for _, lb := range lbs {
				sa := dig(lb, "endpoint", "address", "socket_address")
				if dig(sa, "address") == grpcHost && toInt32(dig(sa, "port_value")) == grpcPort {
					matched = true
				}
			}
		}
	}
	if !matched {
		fail("no cluster in %s points at extauthz's --grpc-addr %s:%d", ov.envoyConfig, grpcHost, grpcPort)
	}
	return errs
}

// probeHost is the Host the kubelet sends when a probe sets none: the pod's
// IP and the port. Any address does; no Envoy virtual host names a pod IP.
const probeHost = "10.244.1.7"

// checkEnvoyProbes: every HTTP probe on Envoy reaches a route of a virtual
// host, with the Host the kubelet actually sends (the pod IP unless the
// probe names one). A probe Envoy answers 404 keeps the pod unready forever.
func checkEnvoyProbes(c *corev1.Container, listeners []any) []error {
	var errs []error
	for kind, pr := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe, "startup": c.StartupProbe} {
		if pr == nil || pr.HTTPGet == nil {
			continue
		}
		port := resolvePort(c, pr.HTTPGet.Port)
		host := probeHost
		for _, h := range pr.HTTPGet.HTTPHeaders {
			if strings.EqualFold(h.Name, "Host") {
				host = h.Value
			}
		}
		if !envoyServes(listeners, port, host, pr.HTTPGet.Path) {
			errs = append(errs, fmt.Errorf("envoy: %s probe GET %s with Host %q on port %d matches no virtual host route (the kubelet sends the pod IP unless the probe sets a Host header)",
				kind, pr.HTTPGet.Path, host, port))
		}
	}
	return errs
}

// envoyServes reports whether the listener on port has a virtual host whose
// domains match host (port stripped, Envoy's exact, "*", "*.suffix" and
// "prefix.*" forms) with a route whose path or prefix match takes path.
func envoyServes(listeners []any, port int32, host, path string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	for _, l := range listeners {
		if toInt32(dig(l, "address", "socket_address", "port_value")) != port {
			continue
		}
		chains, _ := dig(l, "filter_chains").([]any)
		for _, ch := range chains {
			filters, _ := dig(ch, "filters").([]any)
			for _, f := range filters {
				vhosts, _ := dig(f, "typed_config", "route_config", "virtual_hosts").([]any)
				for _, vh := range vhosts {
					if vhostMatches(vh, host) && routeTakes(vh, path) {
						return true
					}
				}
			}
		}
	}
	return false
}

func vhostMatches(vh any, host string) bool {
	domains, _ := dig(vh, "domains").([]any)
	for _, d := range domains {
		ds, _ := d.(string)
		switch {
		case ds == "*" || strings.EqualFold(ds, host):
			return true
		case strings.HasPrefix(ds, "*") && len(host) > len(ds)-1 && strings.HasSuffix(strings.ToLower(host), strings.ToLower(ds[1:])):
			return true
		case strings.HasSuffix(ds, "*") && len(host) > len(ds)-1 && strings.HasPrefix(strings.ToLower(host), strings.ToLower(ds[:len(ds)-1])):
			return true
		}
	}
	return false
}

func routeTakes(vh any, path string) bool {
	routes, _ := dig(vh, "routes").([]any)
	for _, r := range routes {
		if dig(r, "match", "headers") != nil {
			continue // a probe sends GET and no other header we could rely on
		}
		if p, ok := dig(r, "match", "path").(string); ok && p == path {
			return true
		}
		if p, ok := dig(r, "match", "prefix").(string); ok && strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

func envoyYAML(file string) (any, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}

// envoyAuthzTimeout finds grpc_service.timeout in an Envoy bootstrap.
func envoyAuthzTimeout(file string) (time.Duration, error) {
	boot, err := envoyYAML(file)
	if err != nil {
		return 0, err
	}
	var found []string
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if gs, ok := v["grpc_service"].(map[string]any); ok {
				if s, ok := gs["timeout"].(string); ok {
					found = append(found, s)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(boot)
	if len(found) != 1 {
		return 0, fmt.Errorf("%s: %d grpc_service timeouts, want 1", file, len(found))
	}
	return time.ParseDuration(found[0])
}

func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func toInt32(v any) int32 {
	if f, ok := v.(float64); ok {
		return int32(f)
	}
	return 0
}

// TestChecksCatchBreakage proves the invariants can fail: each case breaks a
// correctly rendered overlay in one way.
func TestChecksCatchBreakage(t *testing.T) {
	byDir := map[string][][]byte{}
	for _, ov := range overlays {
		byDir[ov.dir] = render(t, ov.dir)
	}
	shared, sidecar := overlays[0], overlays[1]
	ext := func(o *objects) *corev1.Container { return container(&o.deployments[0].Spec.Template, "extauthz") }
	ptr := func(b bool) *bool { return &b }
	policyVolume := func(o *objects) *corev1.Volume {
		for i, v := range o.deployments[0].Spec.Template.Spec.Volumes {
			if v.Name == "policy" {
				return &o.deployments[0].Spec.Template.Spec.Volumes[i]
			}
		}
		t.Fatal("no policy volume")
		return nil
	}
	policyMount := func(o *objects) *corev1.VolumeMount {
		for i, m := range ext(o).VolumeMounts {
			if m.Name == "policy" {
				return &ext(o).VolumeMounts[i]
			}
		}
		t.Fatal("policy volume not mounted")
		return nil
	}
	tlsVolume := func(o *objects) *corev1.Volume {
		for i, v := range o.deployments[0].Spec.Template.Spec.Volumes {
			if v.Secret != nil {
				return &o.deployments[0].Spec.Template.Spec.Volumes[i]
			}
		}
		t.Fatal("no Secret volume")
		return nil
	}
	tlsMount := func(o *objects) *corev1.VolumeMount {
		for i, m := range ext(o).VolumeMounts {
			if m.Name == tlsVolume(o).Name {
				return &ext(o).VolumeMounts[i]
			}
		}
		t.Fatal("Secret volume not mounted")
		return nil
	}
	certNamed := func(o *objects, name string) *certificate {
		for _, c := range o.certificates {
			if c.Name == name {
				return c
			}
		}
		t.Fatalf("no Certificate %s", name)
		return nil
	}
	tests := []struct {
		name   string
		ov     overlay
		mutate func(o *objects)
		want   string
	}{
		{"no readiness probe", shared, func(o *objects) { ext(o).ReadinessProbe = nil }, "probes required"},
		{"plaintext gRPC, probe on the wrong port", shared, func(o *objects) {
			for _, e := range []string{"EXTAUTHZ_GRPC_TLS_CERT", "EXTAUTHZ_GRPC_TLS_KEY", "EXTAUTHZ_GRPC_TLS_CLIENT_CA"} {
				ext(o).Env = setEnv(ext(o).Env, e, "")
			}
			ext(o).ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9011}}}
		}, "native gRPC probe"},
		{"gRPC probe on a TLS port", shared, func(o *objects) {
			ext(o).ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9001}}}
		}, "cannot speak TLS"},
		{"TLS off in the shared layout", shared, func(o *objects) {
			ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_GRPC_TLS_CERT", "")
		}, "must be set: Envoy speaks TLS"},
		{"mTLS off in the shared layout", shared, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_GRPC_TLS_CLIENT_CA", "") }, "mTLS"},
		{"TLS flag beats env", shared, func(o *objects) { ext(o).Args = append(ext(o).Args, "--grpc-tls-key=/etc/other/tls.key") }, "no volume mounted at /etc/other"},
		{"TLS secret mounted with subPath", shared, func(o *objects) { tlsMount(o).SubPath = "tls" }, "never updates subPath"},
		{"TLS files from another Secret", shared, func(o *objects) { tlsVolume(o).Secret.SecretName = "hand-made" }, "no Certificate in the overlay writes Secret"},
		{"key file is another key", shared, func(o *objects) {
			tlsVolume(o).Secret.Items = []corev1.KeyToPath{{Key: "ca.crt", Path: "tls.key"}, {Key: "tls.crt", Path: "tls.crt"}, {Key: "ca.crt", Path: "ca.crt"}}
		}, "want tls.key"},
		{"server certificate not for the Service", shared, func(o *objects) { certNamed(o, "extauthz-server").Spec.DNSNames = []string{"extauthz"} }, "the name Envoy dials"},
		{"server certificate without server auth", shared, func(o *objects) { certNamed(o, "extauthz-server").Spec.Usages = []string{"client auth"} }, "server auth"},
		{"server certificate self-signed", shared, func(o *objects) { certNamed(o, "extauthz-server").Spec.IssuerRef.Name = "extauthz-selfsigned" }, "not issued by a CA Issuer"},
		{"no client certificate for Envoy", shared, func(o *objects) { certNamed(o, "extauthz-envoy-client").Spec.IssuerRef.Name = "elsewhere" }, "no client certificate"},
		{"TLS in the sidecar", sidecar, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_GRPC_TLS_CERT", "/x/tls.crt") }, "plaintext"},
		{"liveness on gRPC health", shared, func(o *objects) {
			ext(o).LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9001}}}
		}, "liveness must be HTTP /healthz"},
		{"gRPC probe in the sidecar", sidecar, func(o *objects) {
			ext(o).ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{GRPC: &corev1.GRPCAction{Port: 9001}}}
		}, "readiness must be HTTP /readyz"},
		{"root", shared, func(o *objects) { o.deployments[0].Spec.Template.Spec.SecurityContext.RunAsNonRoot = ptr(false) }, "runAsNonRoot"},
		{"writable root fs", sidecar, func(o *objects) {
			container(&o.deployments[0].Spec.Template, "envoy").SecurityContext.ReadOnlyRootFilesystem = ptr(false)
		}, "readOnlyRootFilesystem"},
		{"capability added", shared, func(o *objects) { ext(o).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_ADMIN"} }, "capabilities"},
		{"privilege escalation", shared, func(o *objects) { ext(o).SecurityContext.AllowPrivilegeEscalation = ptr(true) }, "allowPrivilegeEscalation"},
		{"cache bound above the memory budget", shared, func(o *objects) {
			ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_TOKEN_CACHE_MAX_BYTES", "268435456")
		}, "budget of a full token cache"},
		{"no memory limit", sidecar, func(o *objects) {
			delete(container(&o.deployments[0].Spec.Template, "app").Resources.Limits, corev1.ResourceMemory)
		}, "memory request and limit"},
		{"token automounted", shared, func(o *objects) { o.deployments[0].Spec.Template.Spec.AutomountServiceAccountToken = ptr(true) }, "automountServiceAccountToken"},
		{"latest tag", shared, func(o *objects) { ext(o).Image = extauthzImage + ":latest" }, "pinned tag"},
		{"grpc env and port disagree", shared, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_GRPC_ADDR", ":9011") }, "grpc port 9011 not declared"},
		{"flag beats env", shared, func(o *objects) { ext(o).Args = append(ext(o).Args, "--admin-addr=:9102") }, "admin port 9102 not declared"},
		{"admin on loopback", shared, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_ADMIN_ADDR", "127.0.0.1:9002") }, "all interfaces"},
		{"policy file mounted with subPath", shared, func(o *objects) {
			policyMount(o).MountPath = "/etc/extauthz/policy.yaml"
			policyMount(o).SubPath = "policy.yaml"
		}, "no volume mounted at /etc/extauthz"},
		{"policy directory mounted with subPath", shared, func(o *objects) { policyMount(o).SubPath = "extauthz" }, "never updates subPath"},
		{"config path elsewhere", shared, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_CONFIG", "/config/policy.yaml") }, "no volume mounted at /config"},
		{"policy ConfigMap hashed", shared, func(o *objects) {
			o.configMaps[0].Name += "-7h2kk8f5t6"
			policyVolume(o).ConfigMap.Name = o.configMaps[0].Name
		}, "fixed name"},
		{"policy ConfigMap drift", shared, func(o *objects) { o.configMaps[0].Data["policy.yaml"] += "# edited\n" }, "differs from base/policy.yaml"},
		{"grace too short", shared, func(o *objects) {
			g := int64(20)
			o.deployments[0].Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, "terminationGracePeriodSeconds"},
		{"check timeout above Envoy's", shared, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_CHECK_TIMEOUT", "3s") }, "must exceed --check-timeout"},
		{"no preStop", shared, func(o *objects) { ext(o).Lifecycle = nil }, "preStop"},
		{"no scrape annotation", shared, func(o *objects) { delete(o.deployments[0].Spec.Template.Annotations, "prometheus.io/scrape") }, "prometheus.io"},
		{"HPA on another Deployment", sidecar, func(o *objects) { o.hpas[0].Spec.ScaleTargetRef.Name = "extauthz" }, "HPA extauthz targets"},
		{"PDB selector mismatch", shared, func(o *objects) {
			o.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "other"}
		}, "PDB extauthz selector"},
		{"Service targetPort missing", shared, func(o *objects) { o.services[0].Spec.Ports[0].TargetPort = intstr.FromString("grcp") }, "targetPort grcp"},
		{"NetworkPolicy opens gRPC to all", shared, func(o *objects) { o.netpols[0].Spec.Ingress[0].From = nil }, "opens port 9001 to anyone"},
		{"NetworkPolicy opens the app port", sidecar, func(o *objects) {
			o.netpols[0].Spec.Ingress[0].Ports = append(o.netpols[0].Spec.Ingress[0].Ports, networkingv1.NetworkPolicyPort{Port: ptrTo(intstr.FromInt32(8000))})
		}, "opens port 8000"},
		{"NetworkPolicy rule without ports", shared, func(o *objects) { o.netpols[0].Spec.Ingress[1].Ports = nil }, "without ports"},
		{"no topology spread", shared, func(o *objects) { o.deployments[0].Spec.Template.Spec.TopologySpreadConstraints = nil }, "topology spread"},
		{"Envoy ConfigMap drift", sidecar, func(o *objects) {
			for _, cm := range o.configMaps {
				if _, ok := cm.Data["envoy.yaml"]; ok {
					cm.Data["envoy.yaml"] += "# drift\n"
				}
			}
		}, "differs from ../envoy/sidecar.yaml"},
		{"Envoy and extauthz ports disagree", sidecar, func(o *objects) { ext(o).Env = setEnv(ext(o).Env, "EXTAUTHZ_GRPC_ADDR", "127.0.0.1:9011") }, "points at extauthz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := decode(byDir[tt.ov.dir])
			if err != nil {
				t.Fatal(err)
			}
			tt.mutate(o)
			err = check(o, tt.ov)
			if err == nil {
				t.Fatal("broken overlay accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error does not mention %q:\n%v", tt.want, err)
			}
		})
	}
}

func TestStrictDecoding(t *testing.T) {
	for _, tt := range []struct{ name, doc, want string }{
		{"misspelled field", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replica: 2}\n", "unknown field"},
		{"field in another case", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {revisionhistorylimit: 2}\n", "unknown field"},
		{"duplicate field", "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nautomountServiceAccountToken: false\nautomountServiceAccountToken: true\n", "already set"},
		{"wrong type", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {ports: [{port: http}]}\n", "port"},
		{"unknown kind", "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\n", "no strict decoder"},
		{"misspelled Certificate field", "apiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {name: x}\nspec: {secretName: x, dnsName: [a], issuerRef: {name: i}}\n", "unknown field"},
		{"misspelled Issuer field", "apiVersion: cert-manager.io/v1\nkind: Issuer\nmetadata: {name: x}\nspec: {ca: {secret: x}}\n", "unknown field"},
		{"old cert-manager API", "apiVersion: cert-manager.io/v1alpha2\nkind: Certificate\nmetadata: {name: x}\n", "no strict decoder"},
		{"old API version", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n", "no strict decoder"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decode([][]byte{[]byte(tt.doc)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("decode = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func setEnv(envs []corev1.EnvVar, name, value string) []corev1.EnvVar {
	out := slices.Clone(envs)
	for i := range out {
		if out[i].Name == name {
			out[i].Value = value
			return out
		}
	}
	return append(out, corev1.EnvVar{Name: name, Value: value})
}

func ptrTo[T any](v T) *T { return &v }
