package envoy_test

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// Where the Envoy of the shared layout finds its TLS material (documented
// in envoy/shared.yaml and envoy/README.md).
const (
	sdsMount = "/etc/envoy/sds"          // envoy/sds/*.yaml, a ConfigMap
	tlsMount = "/etc/envoy/extauthz-tls" // a kubernetes.io/tls Secret
	sdsDir   = "sds"                     // envoy/sds in this repository
	tlsName  = "envoy.transport_sockets.tls"
)

// checkUpstreamTLS asserts that the ext_authz cluster speaks mutual TLS to
// the service at address, with material that rotates without a restart.
func checkUpstreamTLS(c *clusterv3.Cluster, address string) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	ts := c.GetTransportSocket()
	up := &tlsv3.UpstreamTlsContext{}
	if ts == nil || !ts.GetTypedConfig().MessageIs(up) {
		return errors.New("no UpstreamTlsContext transport_socket: checks (tokens, claims) would cross the network in plaintext")
	}
	if ts.GetName() != tlsName {
		fail("transport_socket name %q, want %s", ts.GetName(), tlsName)
	}
	if err := ts.GetTypedConfig().UnmarshalTo(up); err != nil {
		return err
	}
	if up.GetSni() != address {
		fail("sni %q, want the Service name %q the server certificate is for", up.GetSni(), address)
	}
	ctx := up.GetCommonTlsContext()
	if v := ctx.GetTlsParams().GetTlsMinimumProtocolVersion(); v < tlsv3.TlsParameters_TLSv1_2 {
		fail("tls_minimum_protocol_version %v: extauthz accepts TLS 1.2 and later only", v)
	}
	if !slices.Contains(ctx.GetAlpnProtocols(), "h2") {
		fail("alpn_protocols lacks h2: grpc-go refuses TLS connections that did not negotiate h2")
	}
	if len(ctx.GetTlsCertificates()) > 0 {
		fail("inline tls_certificates are read once at start and expire under a running Envoy; use file-based SDS")
	}
	sds := ctx.GetTlsCertificateSdsSecretConfigs()
	if len(sds) != 1 {
		fail("%d tls_certificate_sds_secret_configs, want 1 (Envoy's client certificate: extauthz requires mTLS)", len(sds))
	} else if err := checkSDSFile(sds[0], func(s *tlsv3.Secret) error {
		tc := s.GetTlsCertificate()
		if tc == nil {
			return errors.New("no tls_certificate")
		}
		return mountedFiles(tc.GetWatchedDirectory(), tc.GetCertificateChain(), tc.GetPrivateKey())
	}); err != nil {
		fail("client certificate: %w", err)
	}
	cvc := ctx.GetCombinedValidationContext()
	if cvc == nil {
		return errors.Join(append(errs, errors.New("no combined_validation_context: the server certificate would not be checked against our CA and name"))...)
	}
	var sanOK bool
	for _, m := range cvc.GetDefaultValidationContext().GetMatchTypedSubjectAltNames() {
		if m.GetSanType() == tlsv3.SubjectAltNameMatcher_DNS && m.GetMatcher().GetExact() == address {
			sanOK = true
		}
	}
	if !sanOK {
		fail("no DNS SAN match for %q: any certificate from the CA would pass as extauthz", address)
	}
	if err := checkSDSFile(cvc.GetValidationContextSdsSecretConfig(), func(s *tlsv3.Secret) error {
		vc := s.GetValidationContext()
		if vc == nil {
			return errors.New("no validation_context")
		}
		return mountedFiles(vc.GetWatchedDirectory(), vc.GetTrustedCa())
	}); err != nil {
		fail("validation context: %w", err)
	}
	return errors.Join(errs...)
}

// checkSDSFile loads the file an SdsSecretConfig points at, the way Envoy
// does (one Secret per file), from this repository's envoy/sds.
func checkSDSFile(cfg *tlsv3.SdsSecretConfig, check func(*tlsv3.Secret) error) error {
	if cfg == nil {
		return errors.New("no SDS secret config")
	}
	src := cfg.GetSdsConfig()
	p := src.GetPathConfigSource().GetPath()
	if p == "" || path.Dir(p) != sdsMount {
		return fmt.Errorf("sds_config must be a path_config_source under %s, have %v", sdsMount, src)
	}
	if src.GetResourceApiVersion() != corev3.ApiVersion_V3 {
		return errors.New("sds_config resource_api_version must be V3")
	}
	data, err := os.ReadFile(filepath.Join(sdsDir, path.Base(p)))
	if err != nil {
		return fmt.Errorf("%s is not in envoy/%s: %w", p, sdsDir, err)
	}
	secret, err := loadSDS(data)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	if secret.GetName() != cfg.GetName() {
		return fmt.Errorf("%s holds secret %q, the config asks for %q", p, secret.GetName(), cfg.GetName())
	}
	return check(secret)
}

// loadSDS is what Envoy does with a file-based SDS response: strict YAML,
// protojson, validation, and exactly one Secret.
func loadSDS(data []byte) (*tlsv3.Secret, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, err
	}
	resp := &discoveryv3.DiscoveryResponse{}
	if err := protojson.Unmarshal(j, resp); err != nil {
		return nil, err
	}
	if len(resp.GetResources()) != 1 {
		return nil, fmt.Errorf("%d resources, want 1 (Envoy rejects an SDS file with more)", len(resp.GetResources()))
	}
	s := &tlsv3.Secret{}
	if err := resp.GetResources()[0].UnmarshalTo(s); err != nil {
		return nil, err
	}
	w := &walker{}
	w.walk(s.ProtoReflect(), "secret")
	if err := errors.Join(append(w.errs, s.ValidateAll())...); err != nil {
		return nil, err
	}
	return s, nil
}

// mountedFiles: every file lies in the Secret's mount, and that directory
// is watched (the kubelet replaces the files by swapping ..data).
func mountedFiles(watched *corev3.WatchedDirectory, files ...*corev3.DataSource) error {
	var errs []error
	for _, f := range files {
		if f.GetFilename() == "" || path.Dir(f.GetFilename()) != tlsMount {
			errs = append(errs, fmt.Errorf("%v: want a file in %s", f, tlsMount))
		}
	}
	if watched.GetPath() != tlsMount {
		errs = append(errs, fmt.Errorf("watched_directory %q, want %s: without it Envoy never re-reads a rotated certificate", watched.GetPath(), tlsMount))
	}
	return errors.Join(errs...)
}

// TestSDSFilesUsed: every file in envoy/sds is one the shared layout reads,
// so none goes stale unnoticed.
func TestSDSFilesUsed(t *testing.T) {
	shared, err := os.ReadFile("shared.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(sdsDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no SDS files in envoy/%s (%v)", sdsDir, err)
	}
	for _, f := range files {
		if !strings.Contains(string(shared), path.Join(sdsMount, filepath.Base(f))) {
			t.Errorf("%s is not used by shared.yaml", f)
		}
	}
}

// TestSDSLoaderRejects proves the SDS checks can fail.
func TestSDSLoaderRejects(t *testing.T) {
	good, err := os.ReadFile(filepath.Join(sdsDir, "extauthz-client.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, old, new, want string }{
		{"misspelled field", "    watched_directory:", "    watched_dir:", "unknown field"},
		{"two secrets", "resources:\n", "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n  name: other\n", "want 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(good), tt.old) {
				t.Fatalf("test is stale: %q not in the file", tt.old)
			}
			_, err := loadSDS([]byte(strings.Replace(string(good), tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestSharedAppUpstream: the gateway's app cluster must not be the sidecar
// example's Service, which is an Envoy with its own extauthz: every request
// would be checked twice, by two deployments that can disagree.
func TestSharedAppUpstream(t *testing.T) {
	data, err := os.ReadFile("shared.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := load(data)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../k8s/overlays/sidecar")
	if err != nil {
		t.Fatal(err)
	}
	var sidecarServices []string
	for _, r := range rm.Resources() {
		if r.GetKind() == "Service" {
			sidecarServices = append(sidecarServices, fmt.Sprintf("%s.%s.svc.cluster.local", r.GetName(), r.GetNamespace()))
		}
	}
	if len(sidecarServices) == 0 {
		t.Fatal("no Service in the sidecar overlay; has it changed?")
	}
	var apps int
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "extauthz" {
			continue
		}
		for _, e := range c.GetLoadAssignment().GetEndpoints() {
			for _, lb := range e.GetLbEndpoints() {
				apps++
				if a := lb.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); slices.Contains(sidecarServices, a) {
					t.Errorf("cluster %s points at %s, the sidecar example's Envoy", c.GetName(), a)
				}
			}
		}
	}
	if apps == 0 {
		t.Fatal("no upstream endpoints besides extauthz")
	}
}
