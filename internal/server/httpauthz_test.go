package server_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// TestHTTPAuthzOffByDefault: no address, no listener.
func TestHTTPAuthzOffByDefault(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy)})
	if addr := r.srv.HTTPAuthzAddr(); addr != "" {
		t.Fatalf("HTTP authz listening on %s without being asked", addr)
	}
}

// TestHTTPAuthzServesAndDrains: the HTTP mode answers with the same
// decision as gRPC, the decisions of both edges reach /metrics told apart
// by their edge label, and shutdown closes it.
func TestHTTPAuthzServesAndDrains(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), HTTPAuthzAddr: "127.0.0.1:0"})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	base := "http://" + r.srv.HTTPAuthzAddr()
	id := env.ID(t, issuer.TokenOptions{})
	if st := httpStatus(t, http.DefaultClient, base+"/envoy/pets", "Bearer "+id); st != http.StatusOK {
		t.Fatalf("allowed request: %d", st)
	}
	if st := httpStatus(t, http.DefaultClient, base+"/envoy/pets", ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	r.code(t, "/pets", "") // one gRPC check
	_, body := r.get(t, "/metrics")
	for _, want := range []string{
		`extauthz_checks_total{decision="deny",edge="http",reason="token_missing",route="list-pets"} 1`,
		`extauthz_checks_total{decision="deny",edge="grpc",reason="token_missing",route="list-pets"} 1`,
		`extauthz_check_duration_seconds_count{decision="deny",edge="http"} 1`,
		`extauthz_check_duration_seconds_count{decision="deny",edge="grpc"} 1`,
	} {
		if !contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grepLines(body, "extauthz_check"))
		}
	}
	r.stop(t)
	if c, err := net.DialTimeout("tcp", r.srv.HTTPAuthzAddr(), time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP authz port still accepting after shutdown")
	}
}

// TestHTTPAuthzShutdownDrains: on shutdown /readyz turns 503, an HTTP
// authorization request already in flight still gets its answer (a 503
// here: its key refetch times out; never dropped, never an allow), and
// the listener then closes.
func TestHTTPAuthzShutdownDrains(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{
		Snapshot:      env.Policy(t, testenv.Policy),
		HTTPAuthzAddr: "127.0.0.1:0",
		ShutdownDelay: 3 * time.Second,
		ShutdownGrace: 10 * time.Second,
		// The request waits for its refetch until the fetch times out.
		JWKS: jwks.Options{FetchTimeout: 800 * time.Millisecond, MinRefetchInterval: time.Millisecond, MissWait: time.Minute},
	})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	env.SetMode(testenv.Hang)
	kid, err := env.Issuer.AddKey()
	if err != nil {
		t.Fatal(err)
	}
	tok := env.ID(t, issuer.TokenOptions{Header: map[string]any{"kid": kid}})
	hits := env.Hits()
	inflight := make(chan int, 1)
	go func() {
		c := &http.Client{Timeout: 30 * time.Second}
		req, _ := http.NewRequest(http.MethodGet, "http://"+r.srv.HTTPAuthzAddr()+"/envoy/pets", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := c.Do(req)
		if err != nil {
			inflight <- 0
			return
		}
		resp.Body.Close()
		inflight <- resp.StatusCode
	}()
	wait.For(t, 5*time.Second, "refetch in flight", func() bool { return env.Hits() > hits })

	r.cancel()
	wait.For(t, wait.Patient, "/readyz 503 on shutdown", func() bool {
		code, _ := r.get(t, "/readyz")
		return code == http.StatusServiceUnavailable
	})
	select {
	case st := <-inflight:
		if st != http.StatusServiceUnavailable {
			t.Fatalf("in-flight HTTP authorization = %d, want 503", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("in-flight HTTP authorization never answered")
	}
	r.wait(t, 15*time.Second)
	if c, err := net.DialTimeout("tcp", r.srv.HTTPAuthzAddr(), time.Second); err == nil {
		c.Close()
		t.Fatal("HTTP authz port still accepting after shutdown")
	}
}

// TestHTTPAuthzMutualTLS: with its own certificate files the HTTP
// authorization listener serves TLS, requires a client certificate from
// the client CA, and picks up a rotated certificate without a restart.
func TestHTTPAuthzMutualTLS(t *testing.T) {
	env := testenv.New(t)
	p := newMTLS(t, "http-authz", "http/1.1")
	ca, clients, first, second, d, src := p.ca, p.clients, p.first, p.second, p.dir, p.src
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), HTTPAuthzAddr: "127.0.0.1:0", HTTPAuthzTLS: src})
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	proxy := clients.Client(t, "nginx")
	kp, err := tls.X509KeyPair(proxy.CertPEM, proxy.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// get makes a new connection and returns the status and the serial of
	// the server certificate.
	get := func(cfg *tls.Config) (int, string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}}
		resp, err := c.Get("https://" + r.srv.HTTPAuthzAddr() + "/envoy/health")
		if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.TLS.PeerCertificates[0].SerialNumber.Text(16), nil
	}
	mtls := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}}
	if st, serial, err := get(mtls); err != nil || st != http.StatusOK || serial != first.Serial() {
		t.Fatalf("mTLS: %d %s %v; want 200 from %s", st, serial, err, first.Serial())
	}
	if _, _, err := get(&tls.Config{RootCAs: roots}); err == nil {
		t.Fatal("client without a certificate answered")
	}
	if resp, err := http.Get("http://" + r.srv.HTTPAuthzAddr() + "/envoy/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP allowed on the TLS listener")
		}
	}
	d.Project(t, second.CertPEM, second.KeyPEM, clients.PEM)
	wait.For(t, 15*time.Second, "new connections get the rotated certificate", func() bool {
		_, serial, err := get(mtls)
		return err == nil && serial == second.Serial()
	})
	_, body := r.get(t, "/metrics")
	if !strings.Contains(body, `extauthz_tls_reloads_total{listener="http-authz",result="success"} 1`) {
		t.Errorf("/metrics lacks the http-authz reload")
	}
}

func httpStatus(t *testing.T, c *http.Client, url, authorization string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func contains(s, sub string) bool { return len(grepLines(s, sub)) > 0 }
