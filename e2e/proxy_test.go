package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// TestJWKSThroughProxy fetches the pool's keys over https through a real
// forward proxy (tinyproxy, from Debian), as a pod behind an egress proxy
// does: HTTPS_PROXY names the proxy, SSL_CERT_FILE trusts the JWKS
// server's CA, and the proxy's log must show the CONNECT. A second server
// whose HTTPS_PROXY points at a closed port must not get the keys, so the
// first one cannot have bypassed the proxy.
//
// Go never proxies localhost or loopback IP literals, so the JWKS URL uses
// this machine's host name, which must resolve to loopback (through
// /etc/hosts): no traffic leaves the machine.
func TestJWKSThroughProxy(t *testing.T) {
	f := setup(t)
	tinyproxy, err := exec.LookPath("tinyproxy")
	if err != nil {
		missing(t, "tinyproxy", "apt-get install tinyproxy-bin (.ci/run does)")
	}
	host := loopbackHostName(t)

	// The JWKS server: https, a certificate for host from a test CA, and
	// cognito-local's key set (the tokens are cognito-local's).
	jwksBody := fetch(t, f.jwksURI)
	var hits atomic.Int64
	jwksPath := "/" + f.pool + "/.well-known/jwks.json"
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != jwksPath {
			http.NotFound(w, r)
			return
		}
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwksBody)
	}))
	caPEM, cert := testCertificate(t, host)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	jwksURL := "https://" + net.JoinHostPort(host, port) + jwksPath

	proxyAddr, proxyLog := startTinyproxy(t, tinyproxy)

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(policy, f.policy(t, jwksURL, true), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("keys fetched through the proxy", func(t *testing.T) {
		svc := startService(t, policy, serveOptions{env: []string{
			"HTTPS_PROXY=http://" + proxyAddr,
			"SSL_CERT_FILE=" + caFile,
		}})
		if hits.Load() == 0 {
			t.Errorf("ready, but the JWKS server was never asked")
		}
		connect := "CONNECT " + net.JoinHostPort(host, port)
		if log := readFile(t, proxyLog); !strings.Contains(log, connect) {
			t.Errorf("proxy log has no %q:\n%s", connect, log)
		}
		verify(t, svc.check(t, request{path: "/profile", headers: bearer(f.aliceWeb.id)}), expect{code: codes.OK, set: map[string]string{
			"x-user-sub": f.alice.sub, "x-user-email": f.alice.email, "x-user-groups": "admins,staff",
		}})
	})

	t.Run("no keys when the proxy is down", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		closed := l.Addr().String()
		l.Close()
		before := hits.Load()
		svc := startService(t, policy, serveOptions{notReady: true, env: []string{
			"HTTPS_PROXY=http://" + closed,
			"SSL_CERT_FILE=" + caFile,
		}})
		err = wait.Until(20*time.Second, func() (bool, error) {
			code, body, err := svc.readyz()
			if err != nil {
				return false, err
			}
			if code == http.StatusOK {
				return false, fmt.Errorf("%w: ready without its proxy", wait.ErrGiveUp)
			}
			return len(body.JWKS) == 1 && body.JWKS[0].LastError != "", fmt.Errorf("/readyz %d %+v", code, body)
		})
		if err != nil {
			t.Fatal(err)
		}
		// Fail closed: no keys, no allow.
		verify(t, svc.check(t, request{path: "/profile", headers: bearer(f.aliceWeb.id)}), expect{
			code: codes.Unavailable, status: 503, reason: "jwks_unavailable", body: `{"message":"Service Unavailable"}`,
		})
		if got := hits.Load(); got != before {
			t.Errorf("the JWKS server was reached %d times without the proxy", got-before)
		}
	})
}

// loopbackHostName returns this machine's host name when it resolves only
// to loopback addresses, and skips the test otherwise.
func loopbackHostName(t *testing.T) string {
	t.Helper()
	host, err := os.Hostname()
	if err != nil {
		t.Skipf("no host name: %v", err)
	}
	addrs, err := net.LookupHost(host)
	if host == "" || host == "localhost" || err != nil || len(addrs) == 0 {
		t.Skipf("host name %q does not resolve (%v): no name to reach a loopback JWKS server through a proxy", host, err)
	}
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			t.Skipf("host name %q resolves to %v, not only loopback: this test sends traffic to loopback only", host, addrs)
		}
	}
	return host
}

// startTinyproxy runs tinyproxy on a free loopback port, logging every
// connection, and returns its address and log file.
func startTinyproxy(t *testing.T, bin string) (addr, logPath string) {
	t.Helper()
	dir := t.TempDir()
	logPath = filepath.Join(dir, "tinyproxy.log")
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		addr = "127.0.0.1:" + strconv.Itoa(port)
		// No ConnectPort line: CONNECT is allowed to any port.
		conf := fmt.Sprintf(`Port %d
Listen 127.0.0.1
Allow 127.0.0.1
Timeout 30
MaxClients 16
LogLevel Connect
LogFile %q
`, port, logPath)
		confPath := filepath.Join(dir, "tinyproxy.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		p, err := startProc("tinyproxy", dir, filepath.Join(dir, "tinyproxy.out"), childEnv(), bin, "-d", "-c", confPath)
		if err != nil {
			t.Fatal(err)
		}
		err = wait.Until(10*time.Second, func() (bool, error) {
			if p.exited() {
				return false, fmt.Errorf("%w: tinyproxy exited: %v", wait.ErrGiveUp, p.waitErr)
			}
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err != nil {
				return false, err
			}
			c.Close()
			return true, nil
		})
		if err != nil {
			p.stop(5 * time.Second)
			if attempt < 3 && strings.Contains(p.logs()+readFile(t, logPath), "in use") {
				continue
			}
			t.Fatalf("tinyproxy: %v\n%s\n%s", err, p.logTail(4<<10), readFile(t, logPath))
		}
		t.Cleanup(func() {
			p.stop(5 * time.Second)
			if t.Failed() {
				t.Logf("tinyproxy log:\n%s", readFile(t, logPath))
			}
		})
		return addr, logPath
	}
}

// testCertificate makes a CA and a server certificate for host signed by
// it. It returns the CA certificate as PEM and the server's key pair.
func testCertificate(t *testing.T, host string) ([]byte, tls.Certificate) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "extauthz e2e test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: host},
		DNSNames:     []string{host},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	return caPEM, tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
}

func fetch(t *testing.T, u string) []byte {
	t.Helper()
	if _, err := url.Parse(u); err != nil {
		t.Fatal(err)
	}
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %v", u, resp.Status, err)
	}
	return b
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}
