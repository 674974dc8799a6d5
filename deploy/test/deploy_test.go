// Package deploy checks the mesh and gateway examples under deploy/ with
// the platforms' own published Go types, strictly (an unknown or misspelled
// field is an error), and holds every name, port, Secret and timeout they
// use to what the Helm chart really renders. It is a module of its own so
// that Istio, Gateway API, Envoy Gateway and Contour never enter the
// service's go.mod.
package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// The release every example is written for: helm install extauthz
// deploy/helm/cognito-extauthz --namespace extauthz.
const (
	chartDir       = "../helm/cognito-extauthz"
	chartRelease   = "extauthz"
	chartNamespace = "extauthz"
	policyFile     = "../../k8s/base/policy.yaml" // the chart's default policy (a test of the main module keeps them equal)
)

// doc is one YAML document of a file, with its kind.
type doc struct {
	file string
	gvk  string // apiVersion/kind
	name string
	data []byte
}

// docs splits a multi-document YAML file.
func docs(t testing.TB, file string) []doc {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []doc
	for _, part := range strings.Split("\n"+string(data), "\n---\n") {
		var head struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Metadata   metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(part), &head); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if head.Kind == "" {
			continue
		}
		out = append(out, doc{file, head.APIVersion + "/" + head.Kind, head.Metadata.Name, []byte(part)})
	}
	return out
}

// strict decodes a document into v as the API server's strict field
// validation does: an unknown field, a field spelt in another case (Go's
// encoding/json would match it) or a duplicate field is an error.
func strict(t testing.TB, d doc, v any) {
	t.Helper()
	if err := strictUnmarshal(d.data, v); err != nil {
		t.Fatalf("%s: %s %s: %v", d.file, d.gvk, d.name, err)
	}
}

func strictUnmarshal(y []byte, v any) error {
	j, err := yaml.YAMLToJSONStrict(y)
	if err != nil {
		return err
	}
	strictErrs, err := sigsjson.UnmarshalStrict(j, v, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strictErrs...)
}

// only returns the documents of one kind, failing on any kind the test
// does not know (a new object must come with its decoder).
func only(t testing.TB, all []doc, known map[string]bool, gvk string) []doc {
	t.Helper()
	var out []doc
	for _, d := range all {
		if !known[d.gvk] {
			t.Fatalf("%s: %s %s: no strict decoder for this kind; extend the test", d.file, d.gvk, d.name)
		}
		if d.gvk == gvk {
			out = append(out, d)
		}
	}
	return out
}

// certificate is the part of cert-manager's Certificate the examples and
// the chart use (cert-manager's module is not imported for a test of YAML).
type certificate struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SecretName  string   `json:"secretName"`
		IsCA        bool     `json:"isCA,omitempty"`
		CommonName  string   `json:"commonName,omitempty"`
		DNSNames    []string `json:"dnsNames,omitempty"`
		Duration    string   `json:"duration,omitempty"`
		RenewBefore string   `json:"renewBefore,omitempty"`
		Usages      []string `json:"usages,omitempty"`
		PrivateKey  *struct {
			Algorithm      string `json:"algorithm,omitempty"`
			Size           int    `json:"size,omitempty"`
			RotationPolicy string `json:"rotationPolicy,omitempty"`
		} `json:"privateKey,omitempty"`
		IssuerRef struct {
			Name  string `json:"name"`
			Kind  string `json:"kind,omitempty"`
			Group string `json:"group,omitempty"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// issuer is cert-manager's Issuer or ClusterIssuer, as used here.
type issuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		SelfSigned *struct{} `json:"selfSigned,omitempty"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca,omitempty"`
	} `json:"spec"`
}

// chart is what the Helm chart renders with one platform's values file:
// the facts the examples must agree with.
type chart struct {
	service      *corev1.Service
	deployment   *appsv1.Deployment
	netpol       *networkingv1.NetworkPolicy
	certificates []*certificate
	issuers      []*issuer
	checkTimeout time.Duration
}

// renderChart runs the pinned helm (tools/bin/helm, built by make test).
func renderChart(t testing.TB, values string) *chart {
	t.Helper()
	helm := os.Getenv("HELM")
	if helm == "" {
		h, err := filepath.Abs("../../tools/bin/helm")
		if err != nil {
			t.Fatal(err)
		}
		helm = h
		if _, err := os.Stat(helm); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing: `make test` builds it (make tools/bin/helm)", helm)
			}
			t.Skipf("%s is not built: run make tools/bin/helm (make test does)", helm)
		}
	}
	home := t.TempDir()
	cmd := exec.Command(helm, "template", chartRelease, chartDir, "--namespace", chartNamespace, "-f", values)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home,
		"KUBECONFIG="+filepath.Join(home, "none"))
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm template -f %s: %v\n%s", values, err, stderr.Bytes())
	}
	rendered := filepath.Join(t.TempDir(), "rendered.yaml")
	if err := os.WriteFile(rendered, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &chart{}
	for _, d := range docs(t, rendered) {
		switch d.gvk {
		case "v1/Service":
			c.service = new(corev1.Service)
			strict(t, d, c.service)
		case "apps/v1/Deployment":
			c.deployment = new(appsv1.Deployment)
			strict(t, d, c.deployment)
		case "networking.k8s.io/v1/NetworkPolicy":
			c.netpol = new(networkingv1.NetworkPolicy)
			strict(t, d, c.netpol)
		case "cert-manager.io/v1/Certificate":
			c.certificates = append(c.certificates, new(certificate))
			strict(t, d, c.certificates[len(c.certificates)-1])
		case "cert-manager.io/v1/Issuer":
			c.issuers = append(c.issuers, new(issuer))
			strict(t, d, c.issuers[len(c.issuers)-1])
		}
	}
	if c.service == nil || c.deployment == nil || c.netpol == nil {
		t.Fatal("the chart rendered no Service, Deployment or NetworkPolicy")
	}
	for _, e := range c.deployment.Spec.Template.Spec.Containers[0].Env {
		if e.Name == "EXTAUTHZ_CHECK_TIMEOUT" {
			d, err := time.ParseDuration(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			c.checkTimeout = d
		}
	}
	if c.checkTimeout == 0 {
		t.Fatal("the chart sets no EXTAUTHZ_CHECK_TIMEOUT")
	}
	return c
}

// grpcPort is the Service port that reaches extauthz's gRPC listener.
func (c *chart) grpcPort(t testing.TB) corev1.ServicePort {
	t.Helper()
	for _, p := range c.service.Spec.Ports {
		if p.Name == "grpc" {
			return p
		}
	}
	t.Fatal("the chart's Service has no grpc port")
	return corev1.ServicePort{}
}

// host is the Service's cluster DNS name, the name gateways dial.
func (c *chart) host() string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", c.service.Name, c.service.Namespace)
}

// checkService: name, namespace and port point at the chart's gRPC port.
func (c *chart) checkService(t testing.TB, where, name, namespace string, port int32) {
	t.Helper()
	if name != c.service.Name || namespace != c.service.Namespace || port != c.grpcPort(t).Port {
		t.Errorf("%s calls %s/%s:%d; the chart serves gRPC on %s/%s:%d",
			where, namespace, name, port, c.service.Namespace, c.service.Name, c.grpcPort(t).Port)
	}
}

// checkHost: a TLS name (SNI, subject name) is the Service's, and the
// chart's server certificate carries it.
func (c *chart) checkHost(t testing.TB, where, host string) {
	t.Helper()
	if host != c.host() {
		t.Errorf("%s verifies %q; gateways dial %s", where, host, c.host())
	}
	for _, cert := range c.certificates {
		if slices.Contains(cert.Spec.Usages, "server auth") && slices.Contains(cert.Spec.DNSNames, host) {
			return
		}
	}
	t.Errorf("%s verifies %q, which no server Certificate of the chart carries", where, host)
}

// checkCASecret: a Secret named as a CA bundle is written by a Certificate
// of the chart (with ca.crt) in the namespace where it is looked up.
func (c *chart) checkCASecret(t testing.TB, where, namespace, secret string) {
	t.Helper()
	for _, cert := range c.certificates {
		if cert.Spec.SecretName == secret && namespace == c.service.Namespace {
			return
		}
	}
	t.Errorf("%s reads the CA from Secret %s/%s, which no Certificate of the chart writes", where, namespace, secret)
}

// checkTimeout: a gateway's ext_authz timeout must exceed extauthz's own
// check deadline, or slow checks end in the gateway's bare error.
func (c *chart) checkTimeoutAbove(t testing.TB, where, timeout string) {
	t.Helper()
	d, err := time.ParseDuration(timeout)
	if err != nil || d <= c.checkTimeout {
		t.Errorf("%s: timeout %q must exceed the chart's checkTimeout %v", where, timeout, c.checkTimeout)
	}
}

// checkAdmitted: the chart's NetworkPolicy admits pods with these labels
// in this namespace to the gRPC port.
func (c *chart) checkAdmitted(t testing.TB, where, namespace string, podLabels map[string]string) {
	t.Helper()
	nsLabels := labels.Set{"kubernetes.io/metadata.name": namespace}
	for _, rule := range c.netpol.Spec.Ingress {
		var grpc bool
		for _, p := range rule.Ports {
			grpc = grpc || p.Port != nil && p.Port.IntValue() == int(c.grpcPort(t).Port)
		}
		if !grpc {
			continue
		}
		for _, peer := range rule.From {
			if peer.PodSelector == nil || peer.NamespaceSelector == nil {
				continue
			}
			ps, err1 := metav1.LabelSelectorAsSelector(peer.PodSelector)
			ns, err2 := metav1.LabelSelectorAsSelector(peer.NamespaceSelector)
			if err1 == nil && err2 == nil && ps.Matches(labels.Set(podLabels)) && ns.Matches(nsLabels) {
				return
			}
		}
	}
	t.Errorf("%s: the chart's NetworkPolicy does not admit pods %v of namespace %s to the gRPC port", where, podLabels, namespace)
}

// policyRoutes are the route names of the chart's default policy.
func policyRoutes(t testing.TB) []string {
	t.Helper()
	data, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		Routes []struct {
			Name string `json:"name"`
		} `json:"routes"`
	}
	if err := yaml.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, r := range p.Routes {
		names = append(names, r.Name)
	}
	return names
}

// rawSpec splits an object into its metadata, decoded strictly, and its
// spec, left for a stricter decoder (Istio's protobuf specs).
func rawSpec(t testing.TB, d doc) (metav1.ObjectMeta, json.RawMessage) {
	t.Helper()
	var outer struct {
		metav1.TypeMeta   `json:",inline"`
		metav1.ObjectMeta `json:"metadata"`
		Spec              json.RawMessage `json:"spec"`
	}
	strict(t, d, &outer)
	return outer.ObjectMeta, outer.Spec
}
