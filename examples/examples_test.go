// Package examples_test checks the shipped proxy configs against the
// example policy: each one strips and copies every claim header name, and
// the Envoy one loads into Envoy's own protobuf types and validates. The
// nginx and Caddy configs also run, for real, in e2e/httpmode_test.go.
package examples_test

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"

	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
)

// claimHeaders are the claimHeaders names of the policy the examples front.
func claimHeaders(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile("../k8s/base/policy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, err := policy.Parse(data, "policy.yaml", policy.Options{})
	if err != nil {
		t.Fatalf("example policy: %v", err)
	}
	names := snap.ClaimHeaderNames()
	if len(names) < 3 {
		t.Fatalf("example policy has only %d claim headers", len(names))
	}
	return names
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every proxy config removes every claim header name from the client's
// request itself and copies it from the service's answer.
func TestClaimHeadersStrippedAndCopied(t *testing.T) {
	names := claimHeaders(t)
	type rule struct{ what, pattern string } // pattern: %s is the quoted name
	configs := map[string][]rule{
		"nginx/extauthz.conf": {
			{"replaced on the upstream request", `(?mi)^\s*proxy_set_header\s+%s\s+\$claim_\w+;`},
			{"read from the auth response", `(?mi)^\s*auth_request_set\s+\$claim_\w+\s+\$upstream_http_%s;`},
		},
		"caddy/Caddyfile": {
			{"removed from the client's request", `(?mi)^\s*request_header\s+-%s\s*$`},
			{"copied from the auth response", `(?mi)^\s*copy_headers\s.*\b%s\b`},
		},
		"traefik/dynamic.yaml": {
			{"removed from the client's request", `(?mi)^\s*%s:\s*""\s*$`},
			{"copied from the auth response", `(?mi)authResponseHeaders:.*\b%s\b`},
		},
		"envoy-http/envoy.yaml": {
			{"allowed upstream", `(?mi)\{\s*exact:\s*%s\s*\}`},
		},
	}
	// Caddy and Traefik pass underscored header names through; CGI-style
	// upstreams read x_user_sub as x-user-sub, so those spellings are
	// removed too. (nginx drops them: underscores_in_headers is off.)
	configs["caddy/Caddyfile"] = append(configs["caddy/Caddyfile"], rule{"removed in its underscore spelling", `(?mi)^\s*request_header\s+-%s\s*$`})
	configs["traefik/dynamic.yaml"] = append(configs["traefik/dynamic.yaml"], rule{"removed in its underscore spelling", `(?mi)^\s*%s:\s*""\s*$`})
	if regexp.MustCompile(`(?m)^\s*underscores_in_headers\s+on`).MatchString(read(t, "nginx/extauthz.conf")) {
		t.Error("nginx/extauthz.conf: underscores_in_headers on would pass x_user_sub, which CGI-style upstreams read as x-user-sub")
	}
	for file, rules := range configs {
		text := read(t, file)
		for _, name := range names {
			for _, r := range rules {
				n := regexp.QuoteMeta(name)
				if strings.HasPrefix(file, "nginx") && strings.Contains(r.pattern, "upstream_http_") ||
					strings.HasSuffix(r.what, "underscore spelling") {
					n = strings.ReplaceAll(n, "-", "_")
				}
				if !regexp.MustCompile(fmt.Sprintf(r.pattern, n)).MatchString(text) {
					t.Errorf("%s: claim header %s is not %s", file, name, r.what)
				}
			}
		}
	}
	// Caddy: the removal must come before forward_auth, inside route {}
	// (Caddy's default directive order runs forward_auth first).
	caddy := read(t, "caddy/Caddyfile")
	at := func(re string) int {
		loc := regexp.MustCompile(re).FindStringIndex(caddy)
		if loc == nil {
			return -1
		}
		return loc[0]
	}
	route, strip, ask := at(`(?m)^\s*route \{`), at(`(?m)^\s*request_header -`), at(`(?m)^\s*forward_auth\s`)
	if route < 0 || strip < route || ask < strip {
		t.Error("Caddyfile: claim headers must be removed inside route {} before forward_auth")
	}
	// Traefik: the stripping middleware runs before forwardAuth.
	if !strings.Contains(read(t, "traefik/dynamic.yaml"), "middlewares: [strip-claim-headers, cognito-extauthz]") {
		t.Error("traefik: strip-claim-headers must come before cognito-extauthz")
	}
	// nginx passes the reason to the client, and never adds
	// WWW-Authenticate itself (it copies it on a 401 already).
	nginx := read(t, "nginx/extauthz.conf")
	if !regexp.MustCompile(`(?m)^\s*add_header\s+x-extauthz-reason\s+\$extauthz_reason\s+always;`).MatchString(nginx) {
		t.Error("nginx: x-extauthz-reason is not passed to the client on denials")
	}
	if regexp.MustCompile(`(?mi)^\s*add_header\s+www-authenticate`).MatchString(nginx) {
		t.Error("nginx: WWW-Authenticate added twice")
	}
}

// TestEnvoyHTTPConfig loads the Envoy HTTP-mode bootstrap the way Envoy
// would (strict YAML, protojson with unknown fields as errors, the PGV rules
// on it and on every Any) and checks the settings the service relies on.
func TestEnvoyHTTPConfig(t *testing.T) {
	j, err := yaml.YAMLToJSONStrict([]byte(read(t, "envoy-http/envoy.yaml")))
	if err != nil {
		t.Fatal(err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		t.Fatalf("protojson: %v", err)
	}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	var anys []protoreflect.ProtoMessage
	if err := unpackAll(b.ProtoReflect(), &anys); err != nil {
		t.Fatal(err)
	}
	var hcm *hcmv3.HttpConnectionManager
	var az *extauthzv3.ExtAuthz
	for _, m := range anys {
		switch v := m.(type) {
		case *hcmv3.HttpConnectionManager:
			hcm = v
		case *extauthzv3.ExtAuthz:
			az = v
		}
	}
	if hcm == nil || az == nil {
		t.Fatalf("no http_connection_manager (%v) or ext_authz filter (%v)", hcm != nil, az != nil)
	}
	if az.GetFailureModeAllow() {
		t.Error("failure_mode_allow must be false: an unreachable service must not open the API")
	}
	hs := az.GetHttpService()
	if hs.GetPathPrefix() != "/envoy" {
		t.Errorf("path_prefix = %q, want /envoy (the service's Envoy endpoint)", hs.GetPathPrefix())
	}
	cluster := hs.GetServerUri().GetCluster()
	found := false
	for _, c := range b.GetStaticResources().GetClusters() {
		found = found || c.GetName() == cluster
	}
	if !found {
		t.Errorf("http_service cluster %q is not defined", cluster)
	}
	var client []string
	for _, p := range hs.GetAuthorizationResponse().GetAllowedClientHeaders().GetPatterns() {
		client = append(client, p.GetExact())
	}
	for _, want := range []string{"www-authenticate", "x-extauthz-reason"} {
		if !slices.Contains(client, want) {
			t.Errorf("allowed_client_headers lacks %s", want)
		}
	}
	var sent []string
	for _, p := range az.GetAllowedHeaders().GetPatterns() {
		sent = append(sent, p.GetExact())
	}
	if !slices.Contains(sent, "authorization") {
		t.Error("allowed_headers must include authorization (the identity source)")
	}
	if !hcm.GetNormalizePath().GetValue() || !hcm.GetMergeSlashes() ||
		hcm.GetPathWithEscapedSlashesAction() != hcmv3.HttpConnectionManager_REJECT_REQUEST {
		t.Error("normalize_path, merge_slashes and path_with_escaped_slashes_action REJECT_REQUEST must be set")
	}
}

// unpackAll validates every Any under m and collects the unpacked messages.
func unpackAll(m protoreflect.Message, out *[]protoreflect.ProtoMessage) error {
	var errs []error
	if a, ok := m.Interface().(*anypb.Any); ok {
		inner, err := a.UnmarshalNew()
		if err != nil {
			return fmt.Errorf("unpack %s: %w", a.GetTypeUrl(), err)
		}
		if v, ok := inner.(interface{ ValidateAll() error }); ok {
			if err := v.ValidateAll(); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a.GetTypeUrl(), err))
			}
		}
		*out = append(*out, inner)
		return errors.Join(append(errs, unpackAll(inner.ProtoReflect(), out))...)
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind {
			return true
		}
		switch {
		case fd.IsList():
			for i := range v.List().Len() {
				errs = append(errs, unpackAll(v.List().Get(i).Message(), out))
			}
		case fd.IsMap():
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				if fd.MapValue().Kind() == protoreflect.MessageKind {
					errs = append(errs, unpackAll(mv.Message(), out))
				}
				return true
			})
		default:
			errs = append(errs, unpackAll(v.Message(), out))
		}
		return true
	})
	return errors.Join(errs...)
}
