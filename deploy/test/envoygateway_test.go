package deploy

import (
	"path/filepath"
	"slices"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

var egKinds = map[string]bool{
	egv1a1.GroupVersion.String() + "/" + egv1a1.KindSecurityPolicy: true,
	egv1a1.GroupVersion.String() + "/" + egv1a1.KindEnvoyProxy:     true,
	gwapiv1.GroupVersion.String() + "/Gateway":                     true,
	gwapiv1.GroupVersion.String() + "/HTTPRoute":                   true,
	gwapiv1.GroupVersion.String() + "/BackendTLSPolicy":            true,
	gwapiv1beta1.GroupVersion.String() + "/ReferenceGrant":         true,
	"cert-manager.io/v1/ClusterIssuer":                             true,
	"cert-manager.io/v1/Certificate":                               true,
}

func TestEnvoyGateway(t *testing.T) { checkEnvoyGateway(t, "../envoy-gateway") }

func checkEnvoyGateway(t testing.TB, dir string) {
	c := renderChart(t, filepath.Join(dir, "values.yaml"))
	var all []doc
	for _, f := range []string{"gateway.yaml", "httproute.yaml", "security-policy.yaml", "backend-tls.yaml", "client-certificate.yaml"} {
		all = append(all, docs(t, filepath.Join(dir, f))...)
	}
	var routes []*gwapiv1.HTTPRoute
	for _, d := range only(t, all, egKinds, gwapiv1.GroupVersion.String()+"/HTTPRoute") {
		r := new(gwapiv1.HTTPRoute)
		strict(t, d, r)
		routes = append(routes, r)
	}
	if len(routes) != 1 {
		t.Fatalf("%d HTTPRoutes, want 1", len(routes))
	}
	route := routes[0]
	var ruleNames []string
	for _, r := range route.Spec.Rules {
		if r.Name != nil {
			ruleNames = append(ruleNames, string(*r.Name))
		}
	}
	policyNames := policyRoutes(t)
	grants := referenceGrants(t, all)

	var named []string
	for _, d := range only(t, all, egKinds, egv1a1.GroupVersion.String()+"/"+egv1a1.KindSecurityPolicy) {
		sp := new(egv1a1.SecurityPolicy)
		strict(t, d, sp)
		where := "SecurityPolicy " + sp.Name
		ea := sp.Spec.ExtAuth
		if ea == nil || ea.GRPC == nil || len(ea.GRPC.BackendRefs) != 1 {
			t.Errorf("%s: want extAuth.grpc with one backendRef", where)
			continue
		}
		ref := ea.GRPC.BackendRefs[0].BackendObjectReference
		if ref.Namespace == nil || ref.Port == nil {
			t.Fatalf("%s: backendRef without namespace or port", where)
		}
		c.checkService(t, where, string(ref.Name), string(*ref.Namespace), *ref.Port)
		if !grants[grant{sp.Namespace, string(*ref.Namespace), string(ref.Name)}] {
			t.Errorf("%s: no ReferenceGrant in %s lets SecurityPolicies of %s reach Service %s", where, *ref.Namespace, sp.Namespace, ref.Name)
		}
		if ea.Timeout == nil {
			t.Errorf("%s: no timeout (Envoy Gateway's default is 10s)", where)
		} else {
			c.checkTimeoutAbove(t, where, string(*ea.Timeout))
		}
		if ea.FailOpen == nil || *ea.FailOpen {
			t.Errorf("%s: failOpen must be set to false", where)
		}
		for _, tr := range sp.Spec.TargetRefs {
			if tr.Kind != "HTTPRoute" || string(tr.Name) != route.Name || sp.Namespace != route.Namespace {
				t.Errorf("%s targets %s %s, not HTTPRoute %s/%s", where, tr.Kind, tr.Name, route.Namespace, route.Name)
			}
			var route string
			for _, ce := range ea.ContextExtensions {
				if ce.Name == "route" && ce.Value != nil {
					route = *ce.Value
				}
			}
			switch {
			case tr.SectionName == nil && route != "":
				t.Errorf("%s names route %s for the whole HTTPRoute", where, route)
			case tr.SectionName != nil && string(*tr.SectionName) != route:
				t.Errorf("%s: rule %s passes route %q: name the policy route as the rule", where, *tr.SectionName, route)
			case tr.SectionName != nil && !slices.Contains(ruleNames, route):
				t.Errorf("%s targets rule %s, which HTTPRoute %s lacks", where, route, routes[0].Name)
			}
			if route != "" {
				if !slices.Contains(policyNames, route) {
					t.Errorf("%s passes route %q, which the policy lacks (extauthz would deny every request: route_not_found)", where, route)
				}
				named = append(named, route)
			}
		}
	}
	for _, r := range ruleNames {
		if !slices.Contains(named, r) {
			t.Errorf("HTTPRoute rule %s has no SecurityPolicy naming its route", r)
		}
	}

	checkEGTLS(t, c, all)
	// Envoy Gateway's own labels on the Envoy pods it runs for Gateways,
	// in its namespace (the default deployment mode).
	c.checkAdmitted(t, "Envoy Gateway's proxies", "envoy-gateway-system",
		map[string]string{"app.kubernetes.io/name": "envoy", "app.kubernetes.io/component": "proxy", "app.kubernetes.io/managed-by": "envoy-gateway"})
}

type grant struct{ fromNamespace, toNamespace, service string }

func referenceGrants(t testing.TB, all []doc) map[grant]bool {
	t.Helper()
	out := map[grant]bool{}
	for _, d := range only(t, all, egKinds, gwapiv1beta1.GroupVersion.String()+"/ReferenceGrant") {
		rg := new(gwapiv1beta1.ReferenceGrant)
		strict(t, d, rg)
		for _, f := range rg.Spec.From {
			if f.Group != egv1a1.GroupName || f.Kind != egv1a1.KindSecurityPolicy {
				continue
			}
			for _, to := range rg.Spec.To {
				if to.Group == "" && to.Kind == "Service" && to.Name != nil {
					out[grant{string(f.Namespace), rg.Namespace, string(*to.Name)}] = true
				}
			}
		}
	}
	return out
}

// checkEGTLS: the gateway verifies the chart's server certificate and
// presents a client certificate of the chart's CA.
func checkEGTLS(t testing.TB, c *chart, all []doc) {
	t.Helper()
	btps := only(t, all, egKinds, gwapiv1.GroupVersion.String()+"/BackendTLSPolicy")
	if len(btps) != 1 {
		t.Fatalf("%d BackendTLSPolicies, want 1", len(btps))
	}
	btp := new(gwapiv1.BackendTLSPolicy)
	strict(t, btps[0], btp)
	for _, tr := range btp.Spec.TargetRefs {
		if tr.Kind != "Service" || string(tr.Name) != c.service.Name || btp.Namespace != c.service.Namespace ||
			tr.SectionName == nil || string(*tr.SectionName) != c.grpcPort(t).Name {
			t.Errorf("BackendTLSPolicy %s targets %s %s/%s, not the chart's gRPC port", btp.Name, tr.Kind, btp.Namespace, tr.Name)
		}
	}
	c.checkHost(t, "BackendTLSPolicy "+btp.Name, string(btp.Spec.Validation.Hostname))
	if len(btp.Spec.Validation.CACertificateRefs) != 1 {
		t.Fatalf("BackendTLSPolicy %s: want one CA reference", btp.Name)
	}
	ca := btp.Spec.Validation.CACertificateRefs[0]
	if ca.Kind != "Secret" || ca.Group != "" {
		t.Errorf("BackendTLSPolicy %s: CA from %s, want a core Secret", btp.Name, ca.Kind)
	}
	c.checkCASecret(t, "BackendTLSPolicy "+btp.Name, btp.Namespace, string(ca.Name))

	// The client certificate: EnvoyProxy -> Secret <- Certificate, issued
	// by a ClusterIssuer backed by the chart's CA Secret.
	eps := only(t, all, egKinds, egv1a1.GroupVersion.String()+"/"+egv1a1.KindEnvoyProxy)
	if len(eps) != 1 {
		t.Fatalf("%d EnvoyProxies, want 1", len(eps))
	}
	ep := new(egv1a1.EnvoyProxy)
	strict(t, eps[0], ep)
	if ep.Spec.BackendTLS == nil || ep.Spec.BackendTLS.ClientCertificateRef == nil {
		t.Fatalf("EnvoyProxy %s presents no client certificate: the chart's gRPC listener requires one", ep.Name)
	}
	checkClientCertificate(t, c, all, egKinds, ep.Namespace, string(ep.Spec.BackendTLS.ClientCertificateRef.Name))

	gws := only(t, all, egKinds, gwapiv1.GroupVersion.String()+"/Gateway")
	if len(gws) != 1 {
		t.Fatalf("%d Gateways, want 1", len(gws))
	}
	gw := new(gwapiv1.Gateway)
	strict(t, gws[0], gw)
	if p := gw.Spec.Infrastructure; p == nil || p.ParametersRef == nil || p.ParametersRef.Name != ep.Name || gw.Namespace != ep.Namespace {
		t.Errorf("Gateway %s does not use EnvoyProxy %s: its Envoys would present no client certificate", gw.Name, ep.Name)
	}
}

// checkClientCertificate: Secret namespace/name is written by a client
// Certificate whose ClusterIssuer signs with the chart's CA.
func checkClientCertificate(t testing.TB, c *chart, all []doc, known map[string]bool, namespace, secret string) {
	t.Helper()
	issuers := map[string]*issuer{}
	for _, d := range only(t, all, known, "cert-manager.io/v1/ClusterIssuer") {
		is := new(issuer)
		strict(t, d, is)
		issuers[is.Name] = is
	}
	var chartCA string
	for _, cert := range c.certificates {
		if cert.Spec.IsCA {
			chartCA = cert.Spec.SecretName
		}
	}
	for _, d := range only(t, all, known, "cert-manager.io/v1/Certificate") {
		cert := new(certificate)
		strict(t, d, cert)
		if cert.Namespace != namespace || cert.Spec.SecretName != secret {
			continue
		}
		if !slices.Contains(cert.Spec.Usages, "client auth") {
			t.Errorf("Certificate %s/%s lacks usage client auth", cert.Namespace, cert.Name)
		}
		is := issuers[cert.Spec.IssuerRef.Name]
		if cert.Spec.IssuerRef.Kind != "ClusterIssuer" || is == nil || is.Spec.CA == nil || is.Spec.CA.SecretName != chartCA || chartCA == "" {
			t.Errorf("Certificate %s/%s is not issued by a ClusterIssuer of the chart's CA (Secret %s)", cert.Namespace, cert.Name, chartCA)
		}
		return
	}
	t.Errorf("no Certificate writes the client certificate Secret %s/%s", namespace, secret)
}
