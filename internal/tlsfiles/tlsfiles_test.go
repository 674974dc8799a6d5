package tlsfiles

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/cognito-extauthz/cognito-extauthz/internal/testpki"
)

// waitDeadline bounds waits for a rotation to land; no latency is promised
// here (the watcher has its own tests), only that it lands.
const waitDeadline = 15 * time.Second

// pair writes a leaf's certificate and key into dir and returns the files.
func pair(t *testing.T, dir string, leaf *testpki.Leaf, ca []byte) Files {
	t.Helper()
	f := Files{Cert: filepath.Join(dir, "tls.crt"), Key: filepath.Join(dir, "tls.key")}
	testpki.WriteFile(t, f.Cert, leaf.CertPEM)
	testpki.WriteFile(t, f.Key, leaf.KeyPEM)
	if ca != nil {
		f.ClientCA = filepath.Join(dir, "ca.crt")
		testpki.WriteFile(t, f.ClientCA, ca)
	}
	return f
}

// serve runs a real gRPC server (health only) over loopback with the
// Reloader's config and returns its address.
func serve(t *testing.T, r *Reloader) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(credentials.NewTLS(r.Config())))
	h := health.NewServer()
	healthpb.RegisterHealthServer(s, h)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// client is how a test connects: trust roots, an optional client
// certificate, or no TLS at all.
type client struct {
	roots     *x509.CertPool
	cert      *testpki.Leaf
	plaintext bool
	maxTLS    uint16
}

// call makes a NEW connection and one health RPC over it, and returns the
// serial of the server certificate that connection saw.
func (c client) call(t *testing.T, addr string) (string, error) {
	t.Helper()
	creds := insecure.NewCredentials()
	if !c.plaintext {
		cfg := &tls.Config{RootCAs: c.roots, MaxVersion: c.maxTLS}
		if c.cert != nil {
			kp, err := tls.X509KeyPair(c.cert.CertPEM, c.cert.KeyPEM)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Certificates = []tls.Certificate{kp}
		}
		creds = credentials.NewTLS(cfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Generous: a loaded CI machine can take seconds over a handshake,
	// and a refused handshake fails at once (the RPC does not wait for a
	// ready connection), so only the accepted cases could ever use it.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return "", err
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.PeerCertificates) == 0 {
		t.Fatalf("RPC succeeded without a TLS peer: %#v", p.AuthInfo)
	}
	return info.State.PeerCertificates[0].SerialNumber.Text(16), nil
}

func pool(cas ...*testpki.CA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.Cert)
	}
	return p
}

func TestHandshakes(t *testing.T) {
	ca, other := testpki.NewCA(t, "server-ca"), testpki.NewCA(t, "other-ca")
	clientCA := testpki.NewCA(t, "client-ca")
	srv := ca.Server(t)

	tlsOnly, err := New(pair(t, t.TempDir(), srv, nil), Options{Listener: "grpc", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	mtls, err := New(pair(t, t.TempDir(), srv, clientCA.PEM), Options{Listener: "grpc", NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if tlsOnly.MutualTLS() || !mtls.MutualTLS() {
		t.Fatal("MutualTLS does not follow the client CA")
	}
	tlsAddr, mtlsAddr := serve(t, tlsOnly), serve(t, mtls)

	tests := []struct {
		name string
		addr string
		c    client
		ok   bool
	}{
		{"tls: trusted client", tlsAddr, client{roots: pool(ca)}, true},
		{"tls: client with a certificate it need not send", tlsAddr, client{roots: pool(ca), cert: clientCA.Client(t, "envoy")}, true},
		{"tls: plaintext client refused", tlsAddr, client{plaintext: true}, false},
		{"tls: client that does not trust the server", tlsAddr, client{roots: pool(other)}, false},
		{"tls: TLS 1.1 client refused", tlsAddr, client{roots: pool(ca), maxTLS: tls.VersionTLS11}, false},
		{"tls: TLS 1.2 client accepted", tlsAddr, client{roots: pool(ca), maxTLS: tls.VersionTLS12}, true},
		{"mtls: client certificate from the client CA", mtlsAddr, client{roots: pool(ca), cert: clientCA.Client(t, "envoy")}, true},
		{"mtls: TLS 1.2 client certificate", mtlsAddr, client{roots: pool(ca), cert: clientCA.Client(t, "envoy"), maxTLS: tls.VersionTLS12}, true},
		{"mtls: no client certificate refused", mtlsAddr, client{roots: pool(ca)}, false},
		{"mtls: client certificate from another CA refused", mtlsAddr, client{roots: pool(ca), cert: other.Client(t, "intruder")}, false},
		{"mtls: server certificate as a client certificate refused", mtlsAddr, client{roots: pool(ca), cert: ca.Server(t)}, false},
		{"mtls: plaintext client refused", mtlsAddr, client{plaintext: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			serial, err := tt.c.call(t, tt.addr)
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.ok && serial != srv.Serial():
				t.Fatalf("server certificate serial %s, want %s", serial, srv.Serial())
			case !tt.ok && err == nil:
				t.Fatal("accepted")
			}
		})
	}
}

func TestNewRejects(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	a, b := ca.Server(t), ca.Server(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		testpki.WriteFile(t, p, data)
		return p
	}
	cert, key := write("a.crt", a.CertPEM), write("a.key", a.KeyPEM)
	tests := []struct {
		name  string
		files Files
		want  string
	}{
		{"nothing", Files{}, "no certificate"},
		{"key without cert", Files{Key: key}, "key without a certificate"},
		{"cert without key", Files{Cert: cert}, "certificate without a key"},
		{"client CA alone", Files{ClientCA: write("ca1.crt", ca.PEM)}, "client CA without"},
		{"missing cert", Files{Cert: filepath.Join(dir, "nope.crt"), Key: key}, "read certificate"},
		{"missing key", Files{Cert: cert, Key: filepath.Join(dir, "nope.key")}, "read key"},
		{"key of another certificate", Files{Cert: cert, Key: write("b.key", b.KeyPEM)}, "private key does not match"},
		{"truncated certificate", Files{Cert: write("t.crt", a.CertPEM[:len(a.CertPEM)/2]), Key: key}, "certificate"},
		{"empty key", Files{Cert: cert, Key: write("e.key", nil)}, "key"},
		{"cert and key swapped", Files{Cert: key, Key: cert}, "certificate"},
		{"expired certificate", func() Files {
			e := ca.Expired(t)
			return Files{Cert: write("x.crt", e.CertPEM), Key: write("x.key", e.KeyPEM)}
		}(), "expired"},
		{"missing client CA", Files{Cert: cert, Key: key, ClientCA: filepath.Join(dir, "nope-ca.crt")}, "read client CA"},
		{"empty client CA", Files{Cert: cert, Key: key, ClientCA: write("e-ca.crt", []byte("\n"))}, "no CERTIFICATE"},
		{"key in the client CA bundle", Files{Cert: cert, Key: key, ClientCA: write("k-ca.crt", append(append([]byte{}, ca.PEM...), a.KeyPEM...))}, "want CERTIFICATE"},
		{"truncated client CA", Files{Cert: cert, Key: key, ClientCA: write("t-ca.crt", ca.PEM[:len(ca.PEM)-40])}, "truncated"},
		{"second CA truncated", Files{Cert: cert, Key: key, ClientCA: write("t2-ca.crt", append(append([]byte{}, ca.PEM...), ca.PEM[:60]...))}, "truncated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.files, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}

	// A bundle with comments between blocks (as distributions ship them)
	// and two CAs is fine.
	bundle := append(append([]byte("# first\n"), ca.PEM...), append([]byte("# second\n"), testpki.NewCA(t, "ca2").PEM...)...)
	if _, err := New(Files{Cert: cert, Key: key, ClientCA: write("bundle.crt", bundle)}, Options{}); err != nil {
		t.Fatalf("commented bundle: %v", err)
	}
}

// running is a Reloader with its watch loop, serving over real gRPC.
type running struct {
	r    *Reloader
	addr string
	logs *observer.ObservedLogs
}

func start(t *testing.T, files Files) *running {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	r, err := New(files, Options{Listener: "grpc", NextProtos: []string{"h2"}, Poll: 200 * time.Millisecond, Logger: zap.New(core)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &running{r: r, addr: serve(t, r), logs: logs}
}

// waitSerial makes new connections until one sees want.
func (rn *running) waitSerial(t *testing.T, c client, want string) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	var got string
	var err error
	for time.Now().Before(deadline) {
		if got, err = c.call(t, rn.addr); err == nil && got == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("new connections still see serial %s (err %v), want %s", got, err, want)
}

func (rn *running) waitCount(t *testing.T, result string, atLeast float64) {
	t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for time.Now().Before(deadline) {
		if testutil.ToFloat64(rn.r.reloads.WithLabelValues(result)) >= atLeast {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s reload counted", result)
}

// TestRotationRewrite: the files are rewritten in place, one after the
// other, as a script or an operator would; a new connection gets the new
// certificate and an established one keeps working.
func TestRotationRewrite(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	first, second := ca.Server(t), ca.Server(t)
	files := pair(t, t.TempDir(), first, nil)
	rn := start(t, files)
	c := client{roots: pool(ca)}
	if got, err := c.call(t, rn.addr); err != nil || got != first.Serial() {
		t.Fatalf("before rotation: serial %s, err %v", got, err)
	}
	testpki.WriteFile(t, files.Cert, second.CertPEM)
	testpki.WriteFile(t, files.Key, second.KeyPEM)
	rn.waitSerial(t, c, second.Serial())
	if rn.r.Leaf().SerialNumber.Cmp(second.Cert.SerialNumber) != 0 {
		t.Fatal("Leaf does not report the certificate in force")
	}
	if got := testutil.ToFloat64(rn.r.notAfter); got != float64(second.Cert.NotAfter.Unix()) {
		t.Fatalf("expiry gauge %v, want %v", got, second.Cert.NotAfter.Unix())
	}
	if rn.logs.FilterMessage("tls certificate reloaded").Len() == 0 {
		t.Fatal("rotation not logged")
	}
}

// TestRotationSymlinkSwap: cert-manager updates the Secret, the kubelet
// swaps ..data; the client CA bundle rotates with it.
func TestRotationSymlinkSwap(t *testing.T) {
	ca, ca2 := testpki.NewCA(t, "ca"), testpki.NewCA(t, "ca-next")
	clientCA, clientCA2 := testpki.NewCA(t, "clients"), testpki.NewCA(t, "clients-next")
	first, second := ca.Server(t), ca2.Server(t)
	d := testpki.NewDir(t)
	d.Project(t, first.CertPEM, first.KeyPEM, clientCA.PEM)
	rn := start(t, Files{Cert: d.Cert(), Key: d.Key(), ClientCA: d.CA()})

	oldClient := client{roots: pool(ca, ca2), cert: clientCA.Client(t, "envoy")}
	newClient := client{roots: pool(ca, ca2), cert: clientCA2.Client(t, "envoy")}
	if got, err := oldClient.call(t, rn.addr); err != nil || got != first.Serial() {
		t.Fatalf("before rotation: serial %s, err %v", got, err)
	}
	if _, err := newClient.call(t, rn.addr); err == nil {
		t.Fatal("client of the next CA accepted before the rotation")
	}

	d.Project(t, second.CertPEM, second.KeyPEM, clientCA2.PEM)
	rn.waitSerial(t, newClient, second.Serial())
	if _, err := oldClient.call(t, rn.addr); err == nil {
		t.Fatal("client of the removed CA still accepted after the rotation")
	}
}

// TestBadRotationKeepsOld: a new certificate with the old key, a truncated
// key, then an expired pair: each is refused and counted, and new
// connections keep getting the certificate in force; a good pair after
// them is taken.
func TestBadRotationKeepsOld(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	good, next := ca.Server(t), ca.Server(t)
	d := testpki.NewDir(t)
	d.Project(t, good.CertPEM, good.KeyPEM, ca.PEM)
	rn := start(t, Files{Cert: d.Cert(), Key: d.Key()})
	c := client{roots: pool(ca)}

	expired := ca.Expired(t)
	bad := []struct {
		name      string
		cert, key []byte
	}{
		{"new certificate, old key", next.CertPEM, good.KeyPEM},
		{"truncated key", next.CertPEM, next.KeyPEM[:len(next.KeyPEM)/2]},
		{"expired pair", expired.CertPEM, expired.KeyPEM},
	}
	for i, b := range bad {
		d.Project(t, b.cert, b.key, ca.PEM)
		rn.waitCount(t, "failure", float64(i+1))
		if got, err := c.call(t, rn.addr); err != nil || got != good.Serial() {
			t.Fatalf("after %s: serial %s, err %v; want the old %s", b.name, got, err, good.Serial())
		}
	}
	if n := rn.logs.FilterMessage("tls reload rejected; keeping the certificate in force").Len(); n < len(bad) {
		t.Fatalf("%d rejections logged, want %d", n, len(bad))
	}
	if got := testutil.ToFloat64(rn.r.reloads.WithLabelValues("success")); got != 0 {
		t.Fatalf("%v successful reloads counted for bad files", got)
	}

	d.Project(t, next.CertPEM, next.KeyPEM, ca.PEM)
	rn.waitSerial(t, c, next.Serial())
}

// TestMetrics: the Reloader exports its series under a listener label, and
// two listeners can share one registry.
func TestMetrics(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	leaf := ca.Server(t)
	reg := prometheus.NewRegistry()
	for _, name := range []string{"grpc", "http_authz"} {
		r, err := New(pair(t, t.TempDir(), leaf, nil), Options{Listener: name})
		if err != nil {
			t.Fatal(err)
		}
		if err := reg.Register(r); err != nil {
			t.Fatalf("register %s: %v", name, err)
		}
	}
	n, err := testutil.GatherAndCount(reg, "extauthz_tls_reloads_total", "extauthz_tls_certificate_expiry_timestamp_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if n != 6 { // 2 listeners x (success, failure, expiry)
		t.Fatalf("%d series, want 6", n)
	}
	var out bytes.Buffer
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		out.WriteString(mf.String())
	}
	if !strings.Contains(out.String(), `value:"http_authz"`) {
		t.Fatalf("listener label missing:\n%s", out.String())
	}
}

// TestUnchangedFilesNoop: a reload of the same bytes counts nothing.
func TestUnchangedFilesNoop(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	r, err := New(pair(t, t.TempDir(), ca.Server(t), nil), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if s, f := testutil.ToFloat64(r.reloads.WithLabelValues("success")), testutil.ToFloat64(r.reloads.WithLabelValues("failure")); s != 0 || f != 0 {
		t.Fatalf("success %v, failure %v; want 0, 0", s, f)
	}
}

// TestNoResumptionPastCARotation: a client that kept a TLS session ticket
// from before its CA was removed must not resume into the listener. Go
// releases before the fix for resumption across a GetConfigForClient CA
// change let it in; the listener turns tickets off under mTLS so that no
// toolchain does.
func TestNoResumptionPastCARotation(t *testing.T) {
	ca, clientCA, clientCA2 := testpki.NewCA(t, "ca"), testpki.NewCA(t, "clients"), testpki.NewCA(t, "clients-next")
	dir := t.TempDir()
	files := pair(t, dir, ca.Server(t), clientCA.PEM)
	r, err := New(files, Options{})
	if err != nil {
		t.Fatal(err)
	}
	lis, err := tls.Listen("tcp", "127.0.0.1:0", r.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	go func() {
		for {
			conn, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				if conn.(*tls.Conn).Handshake() == nil {
					_, _ = conn.Write([]byte("x"))
				}
			}()
		}
	}()
	old := clientCA.Client(t, "old")
	kp, err := tls.X509KeyPair(old.CertPEM, old.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cfg := &tls.Config{RootCAs: pool(ca), Certificates: []tls.Certificate{kp}, ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	dial := func() error {
		conn, err := tls.Dial("tcp", lis.Addr().String(), cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		b := make([]byte, 1)
		_, err = conn.Read(b) // also takes in any session ticket
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("before rotation: %v", err)
	}
	testpki.WriteFile(t, files.ClientCA, clientCA2.PEM)
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := dial(); err == nil {
		t.Fatal("a client of the removed CA got in after the rotation (session resumption?)")
	}
}
