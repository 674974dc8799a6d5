package deploy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Istio's generated JSON decoders of its specs accept unknown fields; its
// specs are protobuf messages, so protojson (which refuses them) decodes
// them instead.
func istioSpec(t testing.TB, where string, raw []byte, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal(raw, m); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// istioObject decodes an Istio object into its client-go type (obj), and
// its spec once more, strictly, as the istio.io/api message.
func istioObject(t testing.TB, d doc, obj any, spec proto.Message) metav1.ObjectMeta {
	t.Helper()
	strict(t, d, obj)
	meta, raw := rawSpec(t, d)
	istioSpec(t, d.file+" "+d.name, raw, spec)
	return meta
}

func TestIstio(t *testing.T) { checkIstio(t, "../istio") }

func checkIstio(t testing.TB, dir string) {
	c := renderChart(t, filepath.Join(dir, "values.yaml"))
	known := map[string]bool{
		securityv1.SchemeGroupVersion.String() + "/AuthorizationPolicy": true,
		securityv1.SchemeGroupVersion.String() + "/PeerAuthentication":  true,
	}

	// meshConfig: the extension provider dials the chart's Service.
	data, err := os.ReadFile(filepath.Join(dir, "istiod-values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		MeshConfig json.RawMessage `json:"meshConfig"`
	}
	if err := strictUnmarshal(data, &values); err != nil {
		t.Fatalf("istiod-values.yaml: %v", err)
	}
	mesh := &meshv1alpha1.MeshConfig{}
	istioSpec(t, "istiod-values.yaml meshConfig", values.MeshConfig, mesh)
	var provider *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	for _, p := range mesh.GetExtensionProviders() {
		if p.GetName() == "cognito-extauthz" {
			provider = p.GetEnvoyExtAuthzGrpc()
		}
	}
	if provider == nil {
		t.Fatal("istiod-values.yaml: no envoyExtAuthzGrpc provider named cognito-extauthz")
	}
	if provider.GetService() != c.host() || provider.GetPort() != uint32(c.grpcPort(t).Port) {
		t.Errorf("provider dials %s:%d; the chart serves %s:%d", provider.GetService(), provider.GetPort(), c.host(), c.grpcPort(t).Port)
	}
	c.checkTimeoutAbove(t, "istiod-values.yaml provider", provider.GetTimeout().AsDuration().String())
	if provider.GetFailOpen() || provider.GetStatusOnError() != "503" {
		t.Errorf("provider must fail closed with 503: failOpen %v, statusOnError %q", provider.GetFailOpen(), provider.GetStatusOnError())
	}
	if c.service.Spec.ClusterIP == "None" {
		t.Error("Istio values keep the Service headless: Istio balances each request itself and wants a ClusterIP")
	}

	// AuthorizationPolicy: CUSTOM with that provider, on pods the chart
	// admits to the gRPC port.
	all := docs(t, filepath.Join(dir, "authorization-policy.yaml"))
	aps := only(t, all, known, securityv1.SchemeGroupVersion.String()+"/AuthorizationPolicy")
	if len(aps) != 1 {
		t.Fatalf("%d AuthorizationPolicies, want 1", len(aps))
	}
	ap := &securityv1beta1.AuthorizationPolicy{}
	meta := istioObject(t, aps[0], &securityv1.AuthorizationPolicy{}, ap)
	if ap.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM || ap.GetProvider().GetName() != "cognito-extauthz" {
		t.Errorf("AuthorizationPolicy %s: action %v provider %q, want CUSTOM cognito-extauthz", meta.Name, ap.GetAction(), ap.GetProvider().GetName())
	}
	for _, r := range ap.GetRules() {
		for _, to := range r.GetTo() {
			if op := to.GetOperation(); len(op.GetHosts()) > 0 || len(op.GetPaths()) > 0 || len(op.GetNotPaths()) > 0 {
				t.Errorf("AuthorizationPolicy %s: a rule limited to hosts or paths lets other spellings skip the check", meta.Name)
			}
		}
	}
	c.checkAdmitted(t, "the ingress gateway", meta.Namespace, ap.GetSelector().GetMatchLabels())

	// PeerAuthentication: STRICT mTLS on the extauthz pods' gRPC port.
	pas := only(t, docs(t, filepath.Join(dir, "peer-authentication.yaml")), known, securityv1.SchemeGroupVersion.String()+"/PeerAuthentication")
	if len(pas) != 1 {
		t.Fatalf("%d PeerAuthentications, want 1", len(pas))
	}
	pa := &securityv1beta1.PeerAuthentication{}
	meta = istioObject(t, pas[0], &securityv1.PeerAuthentication{}, pa)
	podLabels := labels.Set(c.deployment.Spec.Template.Labels)
	if meta.Namespace != c.service.Namespace || !labels.SelectorFromSet(pa.GetSelector().GetMatchLabels()).Matches(podLabels) || len(pa.GetSelector().GetMatchLabels()) == 0 {
		t.Errorf("PeerAuthentication %s/%s does not select the chart's pods %v", meta.Namespace, meta.Name, podLabels)
	}
	if pa.GetMtls().GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
		t.Errorf("PeerAuthentication %s: mode %v, want STRICT", meta.Name, pa.GetMtls().GetMode())
	}
	if m, ok := pa.GetPortLevelMtls()[uint32(c.grpcPort(t).Port)]; ok && m.GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
		t.Errorf("PeerAuthentication %s relaxes the gRPC port", meta.Name)
	}
	if podLabels["sidecar.istio.io/inject"] != "true" {
		t.Error("the Istio values do not put the extauthz pods in the mesh (sidecar.istio.io/inject)")
	}
}
