package deploy

import (
	"path/filepath"
	"slices"
	"testing"

	contourv1 "github.com/projectcontour/contour/apis/projectcontour/v1"
	contourv1alpha1 "github.com/projectcontour/contour/apis/projectcontour/v1alpha1"
)

var contourKinds = map[string]bool{
	contourv1.GroupVersion.String() + "/HTTPProxy":                  true,
	contourv1alpha1.GroupVersion.String() + "/ExtensionService":     true,
	contourv1alpha1.GroupVersion.String() + "/ContourConfiguration": true,
	"cert-manager.io/v1/ClusterIssuer":                              true,
	"cert-manager.io/v1/Certificate":                                true,
}

func TestContour(t *testing.T) { checkContour(t, "../contour") }

func checkContour(t testing.TB, dir string) {
	c := renderChart(t, filepath.Join(dir, "values.yaml"))
	var all []doc
	for _, f := range []string{"extension-service.yaml", "httpproxy.yaml", "contour-configuration.yaml", "client-certificate.yaml"} {
		all = append(all, docs(t, filepath.Join(dir, f))...)
	}
	ess := only(t, all, contourKinds, contourv1alpha1.GroupVersion.String()+"/ExtensionService")
	if len(ess) != 1 {
		t.Fatalf("%d ExtensionServices, want 1", len(ess))
	}
	es := new(contourv1alpha1.ExtensionService)
	strict(t, ess[0], es)
	where := "ExtensionService " + es.Name
	if len(es.Spec.Services) != 1 {
		t.Fatalf("%s: want one service", where)
	}
	c.checkService(t, where, es.Spec.Services[0].Name, es.Namespace, int32(es.Spec.Services[0].Port))
	if es.Spec.Protocol == nil || *es.Spec.Protocol != "h2" {
		t.Errorf("%s: protocol must be h2 (gRPC over TLS): the chart serves TLS", where)
	}
	if v := es.Spec.UpstreamValidation; v == nil {
		t.Errorf("%s: no validation: the server certificate would not be verified", where)
	} else {
		c.checkHost(t, where, v.SubjectName)
		c.checkCASecret(t, where, es.Namespace, v.CACertificate)
	}
	if es.Spec.TimeoutPolicy != nil && es.Spec.TimeoutPolicy.Response != "" {
		c.checkTimeoutAbove(t, where, es.Spec.TimeoutPolicy.Response)
	}

	policyNames := policyRoutes(t)
	proxies := only(t, all, contourKinds, contourv1.GroupVersion.String()+"/HTTPProxy")
	if len(proxies) != 1 {
		t.Fatalf("%d HTTPProxies, want 1", len(proxies))
	}
	hp := new(contourv1.HTTPProxy)
	strict(t, proxies[0], hp)
	where = "HTTPProxy " + hp.Name
	vh := hp.Spec.VirtualHost
	if vh == nil || vh.TLS == nil || vh.Authorization == nil {
		t.Fatalf("%s: want a TLS virtual host with authorization (Contour authorizes TLS virtual hosts only)", where)
	}
	az := vh.Authorization
	if az.ExtensionServiceRef.Name != es.Name || az.ExtensionServiceRef.Namespace != es.Namespace {
		t.Errorf("%s: authorization refers to %s/%s, not ExtensionService %s/%s", where,
			az.ExtensionServiceRef.Namespace, az.ExtensionServiceRef.Name, es.Namespace, es.Name)
	}
	if az.FailOpen {
		t.Errorf("%s: failOpen lets requests through when extauthz fails", where)
	}
	c.checkTimeoutAbove(t, where+" responseTimeout", az.ResponseTimeout)
	var named []string
	for i, r := range hp.Spec.Routes {
		if r.AuthPolicy != nil && r.AuthPolicy.Disabled {
			t.Errorf("%s route %d: authorization disabled; a NONE route of the policy serves tokenless paths and still strips forged claim headers", where, i)
		}
		if r.AuthPolicy == nil || r.AuthPolicy.Context["route"] == "" {
			continue
		}
		route := r.AuthPolicy.Context["route"]
		if !slices.Contains(policyNames, route) {
			t.Errorf("%s route %d passes route %q, which the policy lacks (extauthz would deny it: route_not_found)", where, i, route)
		}
		named = append(named, route)
	}
	if len(named) == 0 {
		t.Errorf("%s: no route names its policy route in authPolicy.context", where)
	}

	cfgs := only(t, all, contourKinds, contourv1alpha1.GroupVersion.String()+"/ContourConfiguration")
	if len(cfgs) != 1 {
		t.Fatalf("%d ContourConfigurations, want 1", len(cfgs))
	}
	cfg := new(contourv1alpha1.ContourConfiguration)
	strict(t, cfgs[0], cfg)
	if cfg.Spec.Envoy == nil || cfg.Spec.Envoy.ClientCertificate == nil {
		t.Fatalf("ContourConfiguration %s: no envoy.clientCertificate: the chart's gRPC listener requires one", cfg.Name)
	}
	cc := cfg.Spec.Envoy.ClientCertificate
	checkClientCertificate(t, c, all, contourKinds, cc.Namespace, cc.Name)
	c.checkAdmitted(t, "Contour's Envoys", cc.Namespace, map[string]string{"app": "envoy"})
}
