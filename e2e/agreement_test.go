package e2e

import (
	"bufio"
	"context"

	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/routecases"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
)

// expressUpstream starts e2e/upstream/express.js under Node and returns its
// address. Under CI a missing Node or Express is a failure.
func expressUpstream(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		_, err = os.Stat(filepath.Join("node_modules", "express", "package.json"))
	}
	if err != nil {
		if inCI() {
			t.Fatalf("node and e2e/node_modules/express are needed (make e2e-deps): %v", err)
		}
		t.Skipf("node or express missing (make e2e-deps): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, "upstream/express.js")
	cmd.Env = append(os.Environ(), "PORT=0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start express: %v", err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "listening ") {
				lines <- strings.TrimPrefix(sc.Text(), "listening ")
			}
		}
	}()
	select {
	case port := <-lines:
		return "127.0.0.1:" + port
	case <-time.After(30 * time.Second):
		t.Fatal("express did not start within 30 s")
	}
	return ""
}

// TestRouteAgreementWithRealUpstreams runs the route-confusion table through
// the real extauthz binary and, for every request it allows (with no token
// and with a non-admin user's token), sends the same bytes to a real Express
// 4 and a real Go net/http upstream: neither may serve it from a handler
// more protected than the route the service judged. The allowed request is
// sent as Envoy forwards it: with the service's header mutations applied.
func TestRouteAgreementWithRealUpstreams(t *testing.T) {
	requireE2E(t)
	env := testenv.New(t)
	config := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(config, []byte(env.Expand(routecases.Policy)), 0o600); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, config, serveOptions{})
	mux := httptest.NewServer(routecases.GoMux())
	t.Cleanup(mux.Close)
	upstreams := map[string]string{"express": expressUpstream(t), "go": mux.Listener.Addr().String()}
	user := env.ID(t, issuer.TokenOptions{})

	reached := map[string]int{}
	for _, a := range routecases.Requests() {
		for _, tok := range []string{"", user} {
			resp, err := svc.checkErr(toRequest(a, tok))
			if err != nil {
				t.Fatalf("%s: %v", a.Name, err)
			}
			if codes.Code(resp.GetStatus().GetCode()) != codes.OK {
				continue
			}
			judged := resp.GetDynamicMetadata().GetFields()["route"].GetStringValue()
			for name, addr := range upstreams {
				served, err := routecases.Served(addr, a, forwarded(resp))
				if err != nil {
					t.Fatalf("%s upstream: %v", name, err)
				}
				if served == "" {
					continue
				}
				reached[name]++
				if routecases.Level[served] > routecases.Level[judged] {
					t.Errorf("%s %s (host %q, token %v): service judged %q (level %d), %s ran %q (level %d)",
						a.Method, a.Path, a.Host, tok != "", judged, routecases.Level[judged], name, served, routecases.Level[served])
				}
			}
		}
	}
	for name := range upstreams {
		if reached[name] < 40 {
			t.Errorf("only %d allowed requests reached a %s handler: the table tests too little", reached[name], name)
		}
	}
}

func toRequest(a routecases.Attack, tok string) request {
	h := map[string]string{}
	for k, v := range a.Headers {
		h[k] = v
	}
	if tok != "" {
		h["authorization"] = "Bearer " + tok
	}
	return request{method: a.Method, path: a.Path, host: a.Authority(), route: a.Route, headers: h}
}

// forwarded is what Envoy adds to the upstream request on an allow.
func forwarded(resp *authv3.CheckResponse) map[string]string {
	out := map[string]string{}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}
