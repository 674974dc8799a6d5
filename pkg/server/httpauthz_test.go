package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/server"
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
// decision as gRPC, its decisions reach /metrics, and shutdown closes it.
func TestHTTPAuthzServesAndDrains(t *testing.T) {
	env := testenv.New(t)
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), HTTPAuthzAddr: "127.0.0.1:0"})
	eventually(t, 10*time.Second, "ready", r.srv.Ready)
	base := "http://" + r.srv.HTTPAuthzAddr()
	id := env.ID(t, issuer.TokenOptions{})
	if st := httpStatus(t, http.DefaultClient, base+"/envoy/pets", "Bearer "+id); st != http.StatusOK {
		t.Fatalf("allowed request: %d", st)
	}
	if st := httpStatus(t, http.DefaultClient, base+"/envoy/pets", ""); st != http.StatusUnauthorized {
		t.Fatalf("no token: %d", st)
	}
	if _, body := r.get(t, "/metrics"); !contains(body, `extauthz_checks_total{decision="deny",reason="token_missing",route="list-pets"} 1`) {
		t.Fatalf("HTTP decision not in /metrics:\n%s", grepLines(body, "extauthz_checks_total"))
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
		ShutdownDelay: 300 * time.Millisecond,
		ShutdownGrace: 10 * time.Second,
		JWKS:          jwks.Options{FetchTimeout: 800 * time.Millisecond, MinRefetchInterval: time.Millisecond},
	})
	eventually(t, 10*time.Second, "ready", r.srv.Ready)
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
	eventually(t, 5*time.Second, "refetch in flight", func() bool { return env.Hits() > hits })

	r.cancel()
	eventually(t, 250*time.Millisecond, "/readyz 503 at once", func() bool {
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

// TestHTTPAuthzTLSSeam: a *tls.Config in the server options makes the
// listener speak TLS; a GetConfigForClient hook in it is consulted on
// every handshake (where the certificate reloader plugs in).
func TestHTTPAuthzTLSSeam(t *testing.T) {
	env := testenv.New(t)
	cert, pool := selfSigned(t)
	handshakes := make(chan struct{}, 10)
	tlsCfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			handshakes <- struct{}{}
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
		},
	}
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), HTTPAuthzAddr: "127.0.0.1:0", HTTPAuthzTLS: tlsCfg})
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if st := httpStatus(t, client, "https://"+r.srv.HTTPAuthzAddr()+"/envoy/health", ""); st != http.StatusOK {
		t.Fatalf("over TLS: %d", st)
	}
	select {
	case <-handshakes:
	default:
		t.Fatal("GetConfigForClient never called")
	}
	// Plain HTTP to the TLS listener gets no decision.
	if resp, err := http.Get("http://" + r.srv.HTTPAuthzAddr() + "/envoy/health"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP allowed on the TLS listener")
		}
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

// selfSigned makes a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "extauthz test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
