// Package envoy_test loads every Envoy bootstrap in this directory (and the
// copy the sidecar overlay ships) into Envoy's own protobuf types, validates
// it the way Envoy does, and checks that it lines up with the example policy
// and the Kubernetes manifests: the deployable configs are code, tested.
package envoy_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	yamlv3 "go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/anypb"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"

	// Every extension a typed_config in these files names, so that
	// protojson can resolve its Any. A file naming anything else fails to
	// load here, which is the point: add the import after reading its docs.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
)

// Facts about the service these configs front (cmd/extauthz flags).
const (
	grpcPort            = 9001
	serviceCheckTimeout = 2 * time.Second // extauthz --check-timeout default
	extAuthzFilter      = "envoy.filters.http.ext_authz"
	routerFilter        = "envoy.filters.http.router"
	http2OptionsKey     = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
	policyFile          = "../k8s/base/policy.yaml"
	sidecarCopy         = "../k8s/overlays/sidecar/sidecar.yaml"
	sharedOverlay       = "../k8s/overlays/shared"
)

// layout is what differs between the two deployments.
type layout struct {
	clusterType clusterv3.Cluster_DiscoveryType
	address     func(t *testing.T) string // the ext_authz cluster's endpoint host
	shared      bool                      // health checks, outlier detection and circuit breakers required
	tls         bool                      // mutual TLS to extauthz required
}

var (
	sidecar = layout{
		clusterType: clusterv3.Cluster_STATIC,
		address:     func(*testing.T) string { return "127.0.0.1" },
	}
	shared = layout{
		clusterType: clusterv3.Cluster_STRICT_DNS,
		address:     headlessServiceDNS,
		shared:      true,
		tls:         true,
	}
	// layouts maps every config file to its layout; a new file without an
	// entry fails the test instead of going unchecked.
	layouts = map[string]layout{
		"sidecar.yaml": sidecar,
		"shared.yaml":  shared,
		sidecarCopy:    sidecar,
	}
)

func configFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Envoy configs found")
	}
	return append(files, sidecarCopy)
}

func TestConfigs(t *testing.T) {
	pol := loadPolicy(t)
	for _, file := range configFiles(t) {
		t.Run(file, func(t *testing.T) {
			want, ok := layouts[file]
			if !ok {
				t.Fatalf("no layout expectations for %s: add it to layouts", file)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b, anys, err := load(data)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if anys < 8 {
				t.Errorf("only %d typed_config Anys unpacked and validated; the walk is missing some", anys)
			}
			if err := check(b, want.address(t), want, pol); err != nil {
				t.Error(err)
			}
		})
	}
}

// load is what Envoy does with a bootstrap file, as far as Go can: strict
// YAML, JSON, protojson with unknown fields as errors, then the PGV rules on
// the bootstrap and on every Any, unpacked, at any depth. It returns how many
// Anys it validated.
func load(data []byte) (*bootstrapv3.Bootstrap, int, error) {
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, 0, fmt.Errorf("yaml: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, b); err != nil {
		return nil, 0, fmt.Errorf("protojson: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, 0, fmt.Errorf("validate bootstrap: %w", err)
	}
	w := &walker{}
	w.walk(b.ProtoReflect(), "bootstrap")
	return b, w.anys, errors.Join(w.errs...)
}

// walker visits every message: each Any is unpacked and validated (PGV does
// not look inside an Any), and no deprecated field or enum value may be set
// (Envoy warns on them today and rejects them later).
type walker struct {
	anys int
	errs []error
}

func (w *walker) walk(m protoreflect.Message, at string) {
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			w.errs = append(w.errs, fmt.Errorf("%s: unpack %s: %w", at, a.GetTypeUrl(), err))
			return
		}
		w.anys++
		v, ok := inner.(interface{ ValidateAll() error })
		if !ok {
			w.errs = append(w.errs, fmt.Errorf("%s: %T has no ValidateAll", at, inner))
		} else if err := v.ValidateAll(); err != nil {
			w.errs = append(w.errs, fmt.Errorf("%s (%s): %w", at, a.GetTypeUrl(), err))
		}
		w.walk(inner.ProtoReflect(), at+"<"+string(inner.ProtoReflect().Descriptor().Name())+">")
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := at + "." + string(fd.Name())
		if fd.Options().(*descriptorpb.FieldOptions).GetDeprecated() {
			w.errs = append(w.errs, fmt.Errorf("%s: deprecated field", name))
		}
		switch {
		case fd.IsList():
			l := v.List()
			for i := range l.Len() {
				w.value(fd, l.Get(i), fmt.Sprintf("%s[%d]", name, i))
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				w.value(fd.MapValue(), mv, fmt.Sprintf("%s[%s]", name, k.String()))
				return true
			})
		default:
			w.value(fd, v, name)
		}
		return true
	})
}

func (w *walker) value(fd protoreflect.FieldDescriptor, v protoreflect.Value, at string) {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		w.walk(v.Message(), at)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil &&
			ev.Options().(*descriptorpb.EnumValueOptions).GetDeprecated() {
			w.errs = append(w.errs, fmt.Errorf("%s: deprecated enum value %s", at, ev.Name()))
		}
	}
}

// routeRef is one Envoy route as seen by the ext_authz filter.
type routeRef struct {
	name     string
	disabled bool
	policy   string // context_extensions["route"], "" when absent
	match    *routev3.RouteMatch
	removes  []string // request_headers_to_remove
}

// check asserts the settings this service depends on; each failure says
// what is wrong and why it matters.
func check(b *bootstrapv3.Bootstrap, address string, want layout, pol *policyDoc) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	hcms, err := connectionManagers(b)
	if err != nil {
		return err
	}
	if len(hcms) == 0 {
		return errors.New("no http_connection_manager")
	}
	authzClusters := map[string]bool{}
	var routes []routeRef
	for _, h := range hcms {
		name := h.GetStatPrefix()
		cluster, err := checkFilters(h)
		if err != nil {
			fail("hcm %s: %w", name, err)
		}
		if cluster != "" {
			authzClusters[cluster] = true
		}
		if !h.GetNormalizePath().GetValue() || !h.GetMergeSlashes() {
			fail("hcm %s: normalize_path and merge_slashes must be on: Envoy must route on the path extauthz matches", name)
		}
		if h.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
			fail("hcm %s: path_with_escaped_slashes_action must be REJECT_REQUEST", name)
		}
		if h.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction() != corev3.HttpProtocolOptions_REJECT_REQUEST {
			fail("hcm %s: headers_with_underscores_action must be REJECT_REQUEST (x_user_sub forges x-user-sub in CGI-style upstreams)", name)
		}
		if err := checkAccessLogs(h); err != nil {
			fail("hcm %s: %w", name, err)
		}
		rs, err := collectRoutes(h, clusters)
		if err != nil {
			fail("hcm %s: %w", name, err)
		}
		routes = append(routes, rs...)
	}
	for name := range authzClusters {
		if err := checkAuthzCluster(clusters[name], address, want); err != nil {
			fail("ext_authz cluster %q: %w", name, err)
		}
	}
	if err := checkRoutesAgainstPolicy(routes, pol); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// checkFilters checks the ext_authz filter and returns its cluster name.
func checkFilters(h *hcmv3.HttpConnectionManager) (string, error) {
	fs := h.GetHttpFilters()
	if len(fs) == 0 || fs[len(fs)-1].GetName() != routerFilter {
		return "", errors.New("the router must be the last http filter")
	}
	var found []*extauthzv3.ExtAuthz
	for _, f := range fs {
		a := &extauthzv3.ExtAuthz{}
		if !f.GetTypedConfig().MessageIs(a) {
			continue
		}
		if f.GetName() != extAuthzFilter {
			return "", fmt.Errorf("ext_authz filter named %q: typed_per_filter_config keys use %q", f.GetName(), extAuthzFilter)
		}
		if err := f.GetTypedConfig().UnmarshalTo(a); err != nil {
			return "", err
		}
		found = append(found, a)
	}
	if len(found) != 1 {
		return "", fmt.Errorf("%d ext_authz filters, want 1", len(found))
	}
	a := found[0]
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if a.GetFailureModeAllow() || a.GetFailureModeAllowHeaderAdd() {
		fail("failure_mode_allow must be false: an unreachable authorizer would let every request through")
	}
	if a.GetShadowMode() {
		fail("shadow_mode never blocks a request")
	}
	if a.GetFilterEnabled() != nil || a.GetFilterEnabledMetadata() != nil || a.GetDenyAtDisable() != nil {
		fail("filter_enabled / deny_at_disable can switch the check off at runtime")
	}
	if a.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		fail("transport_api_version = %v, want V3", a.GetTransportApiVersion())
	}
	if a.GetHttpService() != nil || a.GetGrpcService() == nil {
		fail("ext_authz must use grpc_service (context_extensions and dynamic metadata are gRPC only)")
	}
	cluster := a.GetGrpcService().GetEnvoyGrpc().GetClusterName()
	if cluster == "" {
		fail("grpc_service must be envoy_grpc with a cluster_name")
	}
	if to := a.GetGrpcService().GetTimeout(); to == nil {
		fail("grpc_service.timeout missing (the 200 ms default is shorter than a kid-miss JWKS refetch)")
	} else if d := to.AsDuration(); d <= serviceCheckTimeout || d > 5*time.Second {
		fail("grpc_service.timeout %v: want just above extauthz --check-timeout %v (so the service answers slow checks itself) and at most 5s", d, serviceCheckTimeout)
	}
	if a.GetStatusOnError().GetCode() != typev3.StatusCode_ServiceUnavailable {
		fail("status_on_error must be 503, as extauthz's own fail-closed answer (default 403 would look like a policy deny)")
	}
	if !a.GetValidateMutations() {
		fail("validate_mutations must be true")
	}
	if a.GetClearRouteCache() {
		fail("clear_route_cache would let header mutations re-route after the check")
	}
	if a.GetWithRequestBody() != nil {
		fail("with_request_body: extauthz never reads the body; buffering it only adds latency and a 413 path")
	}
	return cluster, errors.Join(errs...)
}

// reqHeaderRef finds %REQ(...)%-style header references in an access log
// format.
var reqHeaderRef = regexp.MustCompile(`%(?:REQ|REQ_WITHOUT_QUERY|RESP|TRAILER)\(([^)]*)\)`)

// checkAccessLogs keeps tokens out of access logs: no path (query tokens),
// no Authorization, Cookie or other request header but a few harmless ones.
func checkAccessLogs(h *hcmv3.HttpConnectionManager) error {
	allowed := []string{"X-REQUEST-ID", ":METHOD", ":AUTHORITY", "USER-AGENT", "X-EXTAUTHZ-REASON"}
	var errs []error
	for _, al := range h.GetAccessLog() {
		s := &streamv3.StdoutAccessLog{}
		if !al.GetTypedConfig().MessageIs(s) {
			errs = append(errs, fmt.Errorf("access log %s: unknown type, extend this test", al.GetName()))
			continue
		}
		j, err := protojson.Marshal(al.GetTypedConfig())
		if err != nil {
			return err
		}
		text := string(j)
		for _, m := range reqHeaderRef.FindAllStringSubmatch(text, -1) {
			if !slices.Contains(allowed, strings.ToUpper(m[1])) {
				errs = append(errs, fmt.Errorf("access log %s logs %s: may carry a token or path", al.GetName(), m[0]))
			}
		}
		if strings.Contains(text, "%PATH") {
			errs = append(errs, fmt.Errorf("access log %s logs the path, which may carry a query token", al.GetName()))
		}
	}
	return errors.Join(errs...)
}

func collectRoutes(h *hcmv3.HttpConnectionManager, clusters map[string]*clusterv3.Cluster) ([]routeRef, error) {
	rc := h.GetRouteConfig()
	if rc == nil {
		return nil, errors.New("route_config must be inline (RDS configs are not checked here)")
	}
	var refs []routeRef
	var errs []error
	for _, vh := range rc.GetVirtualHosts() {
		if per, err := perRoute(vh.GetTypedPerFilterConfig()); err != nil {
			errs = append(errs, fmt.Errorf("virtual host %s: %w", vh.GetName(), err))
		} else if per.GetDisabled() {
			errs = append(errs, fmt.Errorf("virtual host %s disables ext_authz for every route", vh.GetName()))
		}
		// A host the virtual host admits but the policy's host-scoped
		// routes do not name is judged by the hostless routes: the API's
		// hosts must be named, never matched by a wildcard.
		for _, d := range vh.GetDomains() {
			if strings.Contains(d, "*") {
				errs = append(errs, fmt.Errorf("virtual host %s: domain %q is a wildcard; name the API's hosts", vh.GetName(), d))
			}
		}
		if !h.GetStripAnyHostPort() {
			errs = append(errs, errors.New("strip_any_host_port must be on, so domains match api.example.com:443 as api.example.com"))
		}
		if len(vh.GetRequestHeadersToRemove()) > 0 || len(rc.GetRequestHeadersToRemove()) > 0 {
			errs = append(errs, fmt.Errorf("virtual host %s: request_headers_to_remove at this level also strips the claim headers extauthz injects", vh.GetName()))
		}
		for _, r := range vh.GetRoutes() {
			per, err := perRoute(r.GetTypedPerFilterConfig())
			if err != nil {
				errs = append(errs, fmt.Errorf("route %s: %w", r.GetName(), err))
				continue
			}
			if r.GetName() == "" {
				errs = append(errs, errors.New("every route needs a name (access logs and this test use it)"))
			}
			if c := r.GetRoute().GetCluster(); clusters[c] == nil {
				errs = append(errs, fmt.Errorf("route %s: upstream cluster %q not defined", r.GetName(), c))
			}
			refs = append(refs, routeRef{
				name:     r.GetName(),
				disabled: per.GetDisabled(),
				policy:   per.GetCheckSettings().GetContextExtensions()["route"],
				match:    r.GetMatch(),
				removes:  r.GetRequestHeadersToRemove(),
			})
		}
	}
	return refs, errors.Join(errs...)
}

func perRoute(m map[string]*anypb.Any) (*extauthzv3.ExtAuthzPerRoute, error) {
	per := &extauthzv3.ExtAuthzPerRoute{}
	for k, a := range m {
		if !a.MessageIs(per) {
			continue
		}
		if k != extAuthzFilter {
			return nil, fmt.Errorf("ExtAuthzPerRoute under key %q, want %q (else Envoy ignores it)", k, extAuthzFilter)
		}
		if err := a.UnmarshalTo(per); err != nil {
			return nil, err
		}
	}
	return per, nil
}

func checkAuthzCluster(c *clusterv3.Cluster, address string, want layout) error {
	if c == nil {
		return errors.New("not defined")
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.GetType() != want.clusterType {
		fail("type %v, want %v", c.GetType(), want.clusterType)
	}
	opts := &upstreamhttpv3.HttpProtocolOptions{}
	if a := c.GetTypedExtensionProtocolOptions()[http2OptionsKey]; a == nil {
		fail("no %s: gRPC needs HTTP/2", http2OptionsKey)
	} else if err := a.UnmarshalTo(opts); err != nil {
		fail("%s: %v", http2OptionsKey, err)
	} else if opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		fail("explicit_http_config.http2_protocol_options missing: gRPC needs HTTP/2")
	}
	var n int
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			n++
			sa := lb.GetEndpoint().GetAddress().GetSocketAddress()
			if sa.GetPortValue() != grpcPort {
				fail("endpoint port %d, want %d (extauthz --grpc-addr)", sa.GetPortValue(), grpcPort)
			}
			if sa.GetAddress() != address {
				fail("endpoint address %q, want %q", sa.GetAddress(), address)
			}
		}
	}
	if n != 1 {
		fail("%d endpoints, want 1", n)
	}
	if want.tls {
		if err := checkUpstreamTLS(c, address); err != nil {
			fail("tls: %w", err)
		}
	}
	if want.shared {
		var grpcHC bool
		for _, hc := range c.GetHealthChecks() {
			if hc.GetGrpcHealthCheck() != nil {
				grpcHC = true
			}
		}
		if !grpcHC {
			fail("no grpc_health_check: a draining or not-ready replica would keep getting checks")
		}
		if c.GetOutlierDetection() == nil {
			fail("no outlier_detection")
		}
		if len(c.GetCircuitBreakers().GetThresholds()) == 0 {
			fail("no circuit_breakers")
		}
		if !c.GetIgnoreHealthOnHostRemoval() {
			fail("ignore_health_on_host_removal must be true, or a replica that left DNS keeps its traffic until it fails health checks")
		}
	}
	return errors.Join(errs...)
}

func checkRoutesAgainstPolicy(routes []routeRef, pol *policyDoc) error {
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	claimHeaders := pol.claimHeaders()
	var disabled int
	for _, r := range routes {
		if r.disabled {
			disabled++
			for _, h := range claimHeaders {
				if !slices.Contains(r.removes, h) {
					fail("route %s skips ext_authz but does not remove claim header %q: a client could forge it", r.name, h)
				}
			}
			if pr := pol.routeForEnvoy(r.match); pr == nil || pr.Authorization != "NONE" {
				fail("route %s skips ext_authz, but the policy has no authorization NONE route for the same path", r.name)
			}
			continue
		}
		for _, h := range r.removes {
			if slices.Contains(claimHeaders, strings.ToLower(h)) {
				fail("route %s removes %q after ext_authz injected it", r.name, h)
			}
		}
		if r.policy == "" {
			if r.match.GetPrefix() != "/" {
				fail("route %s has neither context_extensions route nor ext_authz disabled; only the catch-all / may rely on extauthz's own matching", r.name)
			}
			continue
		}
		pr := pol.route(r.policy)
		if pr == nil {
			fail("route %s: context_extensions route %q is not a route in %s (extauthz would deny everything: route_not_found)", r.name, r.policy, policyFile)
			continue
		}
		if err := sameMatch(r.match, pr); err != nil {
			fail("route %s -> policy route %s: %w", r.name, r.policy, err)
		}
	}
	if disabled == 0 {
		fail("no route with ext_authz disabled (the health route)")
	}
	return errors.Join(errs...)
}

// sameMatch checks that Envoy sends a request to a policy route only when
// the policy would have matched it too: Envoy's choice skips extauthz's own
// path matching, so a broader Envoy route would widen the policy.
func sameMatch(m *routev3.RouteMatch, pr *policyRoute) error {
	switch {
	case m.GetPath() != "":
		if m.GetPath() != pr.Match.Path {
			return fmt.Errorf("envoy path %q, policy path %q", m.GetPath(), pr.Match.Path)
		}
	case m.GetSafeRegex() != nil:
		if want := templateRegex(pr.Match.Path); m.GetSafeRegex().GetRegex() != want {
			return fmt.Errorf("envoy regex %q, want %q for policy path %q", m.GetSafeRegex().GetRegex(), want, pr.Match.Path)
		}
	default:
		return errors.New("API routes must match an exact path or the template's regex, not a prefix")
	}
	var methods []string
	for _, h := range m.GetHeaders() {
		if h.GetName() == ":method" {
			if e := h.GetStringMatch().GetExact(); e != "" {
				methods = append(methods, e)
			} else {
				return errors.New(":method must be matched exactly")
			}
		}
	}
	anyMethod := len(pr.Match.Methods) == 0 || slices.Contains(pr.Match.Methods, "ANY")
	if len(methods) == 0 && !anyMethod {
		return fmt.Errorf("envoy matches every method, policy only %v", pr.Match.Methods)
	}
	for _, meth := range methods {
		if !anyMethod && !slices.Contains(pr.Match.Methods, meth) {
			return fmt.Errorf("envoy method %s not in policy methods %v", meth, pr.Match.Methods)
		}
	}
	if pr.Match.Host != "" {
		return errors.New("policy route has a host; match it in the virtual host domains and extend this test")
	}
	return nil
}

// templateRegex is the RE2 that matches what an API Gateway path template
// matches: {name} is one non-empty segment, {name+} one or more.
func templateRegex(tmpl string) string {
	var b strings.Builder
	for i, seg := range strings.Split(tmpl, "/") {
		if i > 0 {
			b.WriteString("/")
		}
		switch {
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "+}"):
			b.WriteString(".+")
		case strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}"):
			b.WriteString("[^/]+")
		default:
			b.WriteString(regexp.QuoteMeta(seg))
		}
	}
	return b.String()
}

// policyDoc is the part of the policy file this test needs, read
// generically: pkg/policy owns the real parser and its strictness.
type policyDoc struct {
	Routes []policyRoute `yaml:"routes"`
}

type policyRoute struct {
	Name          string            `yaml:"name"`
	Authorization string            `yaml:"authorization"`
	ClaimHeaders  map[string]string `yaml:"claimHeaders"`
	Match         struct {
		Methods []string `yaml:"methods"`
		Path    string   `yaml:"path"`
		Host    string   `yaml:"host"`
	} `yaml:"match"`
}

func (p *policyDoc) route(name string) *policyRoute {
	for i := range p.Routes {
		if p.Routes[i].Name == name {
			return &p.Routes[i]
		}
	}
	return nil
}

// routeForEnvoy finds the policy route for an Envoy route with an exact path.
func (p *policyDoc) routeForEnvoy(m *routev3.RouteMatch) *policyRoute {
	for i := range p.Routes {
		if m.GetPath() != "" && p.Routes[i].Match.Path == m.GetPath() {
			return &p.Routes[i]
		}
	}
	return nil
}

func (p *policyDoc) claimHeaders() []string {
	var hs []string
	for _, r := range p.Routes {
		for h := range r.ClaimHeaders {
			if h = strings.ToLower(h); !slices.Contains(hs, h) {
				hs = append(hs, h)
			}
		}
	}
	slices.Sort(hs)
	return hs
}

func loadPolicy(t *testing.T) *policyDoc {
	t.Helper()
	data, err := os.ReadFile(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &policyDoc{}
	if err := yamlv3.Unmarshal(data, p); err != nil {
		t.Fatalf("%s: %v", policyFile, err)
	}
	if len(p.Routes) == 0 || len(p.claimHeaders()) == 0 {
		t.Fatalf("%s: no routes or no claim headers read; has the format changed?", policyFile)
	}
	return p
}

// headlessServiceDNS renders the shared overlay and returns the in-cluster
// DNS name of its headless Service that serves the gRPC port.
func headlessServiceDNS(t *testing.T) string {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), sharedOverlay)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", sharedOverlay, err)
	}
	var names []string
	for _, r := range rm.Resources() {
		if r.GetKind() != "Service" {
			continue
		}
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		var svc corev1.Service
		if err := yaml.UnmarshalStrict(y, &svc); err != nil {
			t.Fatal(err)
		}
		if svc.Spec.ClusterIP != corev1.ClusterIPNone {
			continue
		}
		for _, p := range svc.Spec.Ports {
			if p.Port == grpcPort {
				names = append(names, fmt.Sprintf("%s.%s.svc.cluster.local", svc.Name, svc.Namespace))
			}
		}
	}
	if len(names) != 1 {
		t.Fatalf("want exactly one headless Service with port %d in %s, got %v", grpcPort, sharedOverlay, names)
	}
	return names[0]
}

func TestSidecarCopyIsIdentical(t *testing.T) {
	a, err := os.ReadFile("sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(sidecarCopy)
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatalf("%s differs from envoy/sidecar.yaml: run  cp envoy/sidecar.yaml %s", sidecarCopy, strings.TrimPrefix(sidecarCopy, "../"))
	}
}

// TestEnvoyImageMatchesProtos: the configs are validated against the
// go-control-plane protos in go.mod; the Envoy that runs them must be the
// same minor release, or a field accepted here could be unknown there.
func TestEnvoyImageMatchesProtos(t *testing.T) {
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`github\.com/envoyproxy/go-control-plane/envoy v(\d+\.\d+)\.\d+`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go-control-plane/envoy not found in go.mod")
	}
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../k8s/overlays/sidecar")
	if err != nil {
		t.Fatal(err)
	}
	var images []string
	for _, r := range rm.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, regexp.MustCompile(`image: (envoyproxy/envoy\S*)`).FindAllString(string(y), -1)...)
	}
	if len(images) == 0 {
		t.Fatal("no envoyproxy/envoy image in the sidecar overlay")
	}
	for _, img := range images {
		if !strings.Contains(img, ":v"+string(m[1])+".") {
			t.Errorf("%s: want an Envoy v%s.x tag to match go-control-plane/envoy in go.mod", img, m[1])
		}
	}
}

// TestLoaderRejects proves the checks can fail: each case breaks a correct
// file in one way and must be caught, by the loader or by check.
func TestLoaderRejects(t *testing.T) {
	good, err := os.ReadFile("sidecar.yaml")
	if err != nil {
		t.Fatal(err)
	}
	goodShared, err := os.ReadFile("shared.yaml")
	if err != nil {
		t.Fatal(err)
	}
	pol := loadPolicy(t)
	tests := []struct {
		name     string
		base     []byte
		old, new string
		want     string // substring of the error
	}{
		// Loader: unknown fields, invalid values, unknown types, deprecated fields.
		{"misspelled field in an Any", good, "failure_mode_allow: false", "failure_mode_alow: false", "unknown field"},
		{"misspelled top-level field", good, "static_resources:", "static_resource:", "unknown field"},
		{"duplicate key", good, "stat_prefix: extauthz\n", "stat_prefix: extauthz\n              stat_prefix: again\n", "already set"},
		{"port out of range", good, "port_value: 9001", "port_value: 90010", "PortValue"},
		{"invalid enum inside an Any", good, "status_on_error: { code: ServiceUnavailable }", "status_on_error: { code: Empty }", "Code"},
		{"zero timeout inside a nested Any", good, "connect_timeout: 1s", "connect_timeout: 0s", "ConnectTimeout"},
		{"unknown extension type", good, "router.v3.Router", "router.v3.Routr", "Routr"},
		{"deprecated field", good, "    connect_timeout: 0.25s\n", "    connect_timeout: 0.25s\n    dns_refresh_rate: 5s\n", "deprecated"},
		// check: settings this service depends on.
		{"fail open", good, "failure_mode_allow: false", "failure_mode_allow: true", "failure_mode_allow"},
		{"any domain", good, `domains: ["api.example.com"]`, `domains: ["*"]`, "wildcard"},
		{"wildcard domain", goodShared, `domains: ["api.example.com"]`, `domains: ["api.example.com", "*.example.com"]`, "wildcard"},
		{"host port kept", good, "strip_any_host_port: true", "strip_any_host_port: false", "strip_any_host_port"},
		{"shadow mode", good, "validate_mutations: true", "validate_mutations: true\n              shadow_mode: true", "shadow_mode"},
		{"no timeout", good, "                timeout: 2.5s\n", "", "timeout missing"},
		{"timeout below the service's", good, "timeout: 2.5s", "timeout: 0.2s", "check-timeout"},
		{"no mutation validation", good, "validate_mutations: true", "validate_mutations: false", "validate_mutations"},
		{"status_on_error 403", good, "code: ServiceUnavailable", "code: Forbidden", "status_on_error"},
		{"transport v2 (AUTO)", good, "transport_api_version: V3", "transport_api_version: AUTO", "transport_api_version"},
		{"HTTP/1 to extauthz", good, "http2_protocol_options: {}", "http_protocol_options: {}", "HTTP/2"},
		{"wrong port", good, "port_value: 9001", "port_value: 9011", "endpoint port"},
		{"wrong address", good, "address: 127.0.0.1, port_value: 9001", "address: 127.0.0.2, port_value: 9001", "endpoint address"},
		{"no disabled route", good, "disabled: true", "check_settings: { context_extensions: { route: health } }", "no route with ext_authz disabled"},
		{"unknown policy route", good, "route: get-pet }", "route: get-pets }", "not a route in"},
		{"envoy route wider than the policy", good, `safe_regex: { regex: "/pets/[^/]+" }
                  headers: [{ name: ":method", string_match: { exact: GET } }]`, `safe_regex: { regex: "/pets/.+" }
                  headers: [{ name: ":method", string_match: { exact: GET } }]`, "want"},
		{"envoy method not in the policy", good, "exact: POST", "exact: PUT", "not in policy methods"},
		{"forgeable claim header on the health route", good, "[x-user-sub, x-user-email, x-user-groups, x-client-id]", "[x-user-sub, x-user-email]", "forge"},
		{"no path normalisation", good, "normalize_path: true", "normalize_path: false", "normalize_path"},
		{"underscore headers allowed", good, "headers_with_underscores_action: REJECT_REQUEST", "headers_with_underscores_action: ALLOW", "underscores"},
		{"path logged", good, `route: "%ROUTE_NAME%"`, `route: "%REQ(:PATH)%"`, ":PATH"},
		{"token logged", good, `route: "%ROUTE_NAME%"`, `route: "%REQ(authorization)%"`, "authorization"},
		{"shared without health checks", goodShared, "grpc_health_check: { service_name: envoy.service.auth.v3.Authorization }", "tcp_health_check: {}", "grpc_health_check"},
		{"shared through a ClusterIP name", goodShared, "address: extauthz.extauthz.svc.cluster.local", "address: extauthz-clusterip.extauthz.svc.cluster.local", "endpoint address"},
		{"shared in plaintext", goodShared, "    transport_socket:\n", "    transport_socket_off:\n", "unknown field"},
		{"shared: SNI for another name", goodShared, "sni: extauthz.extauthz.svc.cluster.local", "sni: extauthz.other.svc.cluster.local", "sni"},
		{"shared: no SAN check", goodShared, "matcher: { exact: extauthz.extauthz.svc.cluster.local }", "matcher: { exact: anything.example }", "SAN"},
		{"shared: TLS 1.0 allowed", goodShared, "tls_minimum_protocol_version: TLSv1_2", "tls_minimum_protocol_version: TLSv1_0", "TLS 1.2"},
		{"shared: no h2 ALPN", goodShared, "alpn_protocols: [h2]", "alpn_protocols: [http/1.1]", "alpn"},
		{"shared: no client certificate", goodShared, "          tls_certificate_sds_secret_configs:\n          - name: extauthz-client\n            sds_config:\n              path_config_source: { path: /etc/envoy/sds/extauthz-client.yaml }\n              resource_api_version: V3\n", "", "mTLS"},
		{"shared: SDS file not shipped", goodShared, "/etc/envoy/sds/extauthz-client.yaml", "/etc/envoy/sds/client.yaml", "not in envoy/sds"},
		{"shared: SDS secret name mismatch", goodShared, "- name: extauthz-client", "- name: extauthz-cert", "asks for"},
		{"shared: inline certificate", goodShared, "          tls_certificate_sds_secret_configs:", "          tls_certificates: [{ certificate_chain: { filename: /etc/envoy/extauthz-tls/tls.crt }, private_key: { filename: /etc/envoy/extauthz-tls/tls.key } }]\n          tls_certificate_sds_secret_configs:", "read once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(string(tt.base), tt.old) {
				t.Fatalf("test is stale: %q not in the config", tt.old)
			}
			data := []byte(strings.Replace(string(tt.base), tt.old, tt.new, 1))
			want := sidecar
			address := "127.0.0.1"
			if string(tt.base) == string(goodShared) {
				want, address = shared, "extauthz.extauthz.svc.cluster.local"
			}
			b, _, err := load(data)
			if err == nil {
				err = check(b, address, want, pol)
			}
			if err == nil {
				t.Fatal("broken config accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// TestPolicyAgrees loads the example policy with the service's own loader
// and asks its matcher, for a request each Envoy route sends, which policy
// route it would pick: it must be the one Envoy names, and the route with
// ext_authz disabled must be an authorization NONE route.
func TestPolicyAgrees(t *testing.T) {
	snap, err := policy.Load(policyFile, policy.Options{})
	if err != nil {
		t.Fatalf("policy.Load(%s): %v", policyFile, err)
	}
	if got, want := snap.ClaimHeaderNames(), loadPolicy(t).claimHeaders(); !slices.Equal(got, want) {
		t.Errorf("claim headers: policy package says %v, generic read says %v", got, want)
	}
	for _, file := range configFiles(t) {
		t.Run(file, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			b, _, err := load(data)
			if err != nil {
				t.Fatal(err)
			}
			hcms, err := connectionManagers(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range hcms {
				routes, err := collectRoutes(h, map[string]*clusterv3.Cluster{"app": {}, "extauthz": {}})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range routes {
					if r.policy == "" && !r.disabled {
						continue // the catch-all: extauthz matches by itself
					}
					method, path := sampleRequest(r.match)
					got, code := snap.Match(method, "", path)
					switch {
					case got == nil:
						t.Errorf("route %s: %s %s matches no policy route (%s)", r.name, method, path, code)
					case r.disabled && !got.NoAuth:
						t.Errorf("route %s skips ext_authz but policy route %s for %s %s requires a token", r.name, got.Name, method, path)
					case !r.disabled && got.Name != r.policy:
						t.Errorf("route %s: Envoy names policy route %s, the policy matches %s %s to %s", r.name, r.policy, method, path, got.Name)
					}
					if _, ok := snap.RouteByName(r.policy); !r.disabled && !ok {
						t.Errorf("route %s: policy has no route %s", r.name, r.policy)
					}
				}
			}
		})
	}
}

// connectionManagers unpacks every HTTP connection manager of the listeners.
func connectionManagers(b *bootstrapv3.Bootstrap) ([]*hcmv3.HttpConnectionManager, error) {
	var hcms []*hcmv3.HttpConnectionManager
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				h := &hcmv3.HttpConnectionManager{}
				if f.GetTypedConfig().MessageIs(h) {
					if err := f.GetTypedConfig().UnmarshalTo(h); err != nil {
						return nil, err
					}
					hcms = append(hcms, h)
				}
			}
		}
	}
	return hcms, nil
}

// sampleRequest builds a request an Envoy route match accepts: the exact
// path, or the regex with each one-segment wildcard replaced by "7".
func sampleRequest(m *routev3.RouteMatch) (method, path string) {
	method = "GET"
	for _, h := range m.GetHeaders() {
		if h.GetName() == ":method" && h.GetStringMatch().GetExact() != "" {
			method = h.GetStringMatch().GetExact()
		}
	}
	if p := m.GetPath(); p != "" {
		return method, p
	}
	r := m.GetSafeRegex().GetRegex()
	r = strings.ReplaceAll(r, "[^/]+", "7")
	r = strings.ReplaceAll(r, ".+", "7/8")
	return method, strings.ReplaceAll(r, `\.`, ".")
}

// TestTemplateRegex pins the helper the route comparison relies on.
func TestTemplateRegex(t *testing.T) {
	for tmpl, want := range map[string]string{
		"/pets":              "/pets",
		"/pets/{petId}":      "/pets/[^/]+",
		"/pets/{proxy+}":     "/pets/.+",
		"/a.b/{x}/c":         `/a\.b/[^/]+/c`,
		"/pets/{petId}/toys": "/pets/[^/]+/toys",
	} {
		if got := templateRegex(tmpl); got != want {
			t.Errorf("templateRegex(%q) = %q, want %q", tmpl, got, want)
		}
	}
}
