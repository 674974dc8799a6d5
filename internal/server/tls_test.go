package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/peer"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testpki"
	"github.com/cognito-extauthz/cognito-extauthz/internal/tlsfiles"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// TestGRPCMutualTLS runs the assembled service with the gRPC listener
// behind mTLS, its certificate in a kubelet-style Secret directory: Envoy's
// Check over mTLS works, a plaintext client and a client without a
// certificate get nothing, a rotation reaches new connections without a
// restart, and the TLS metrics are on /metrics.
func TestGRPCMutualTLS(t *testing.T) {
	env := testenv.New(t)
	p := newMTLS(t, "grpc", "h2")
	ca, clients, first, second, d, src := p.ca, p.clients, p.first, p.second, p.dir, p.src
	r := start(t, server.Config{Snapshot: env.Policy(t, testenv.Policy), GRPCTLS: src})
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	id := env.ID(t, issuer.TokenOptions{})

	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	envoy := clients.Client(t, "envoy")
	kp, err := tls.X509KeyPair(envoy.CertPEM, envoy.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	// check dials a new connection, sends one Check, and returns the
	// answer's gRPC status code and the serial of the server certificate.
	check := func(creds credentials.TransportCredentials) (codes.Code, string, error) {
		conn, err := grpc.NewClient(r.srv.GRPCAddr(), grpc.WithTransportCredentials(creds))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var p peer.Peer
		resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "GET", Path: "/pets", Headers: map[string]string{"authorization": "Bearer " + id},
			}},
		}}, grpc.Peer(&p))
		if err != nil {
			return 0, "", err
		}
		info := p.AuthInfo.(credentials.TLSInfo)
		return codes.Code(resp.GetStatus().GetCode()), info.State.PeerCertificates[0].SerialNumber.Text(16), nil
	}
	mtls := credentials.NewTLS(&tls.Config{RootCAs: roots, Certificates: []tls.Certificate{kp}})

	code, serial, err := check(mtls)
	if err != nil || code != codes.OK || serial != first.Serial() {
		t.Fatalf("mTLS check: code %v, serial %s, err %v; want OK from %s", code, serial, err, first.Serial())
	}
	if _, _, err := check(insecure.NewCredentials()); err == nil {
		t.Fatal("plaintext client answered")
	}
	if _, _, err := check(credentials.NewTLS(&tls.Config{RootCAs: roots})); err == nil {
		t.Fatal("client without a certificate answered")
	}

	d.Project(t, second.CertPEM, second.KeyPEM, clients.PEM)
	wait.For(t, 15*time.Second, "new connections get the rotated certificate", func() bool {
		_, serial, err := check(mtls)
		return err == nil && serial == second.Serial()
	})

	_, body := r.get(t, "/metrics")
	for _, want := range []string{
		`extauthz_tls_reloads_total{listener="grpc",result="success"} 1`,
		`extauthz_tls_reloads_total{listener="grpc",result="failure"} 0`,
		`extauthz_tls_certificate_expiry_timestamp_seconds{listener="grpc"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// mtlsSetup is a listener's mTLS on real certificates: a server CA with
// two server certificates (first in the kubelet-style Secret directory,
// second for a rotation), a client CA, and the reloader over the files.
type mtlsSetup struct {
	ca, clients   *testpki.CA
	first, second *testpki.Leaf
	dir           *testpki.Dir
	src           *tlsfiles.Reloader
}

func newMTLS(t *testing.T, listener string, protos ...string) mtlsSetup {
	t.Helper()
	p := mtlsSetup{ca: testpki.NewCA(t, "server-ca"), clients: testpki.NewCA(t, "client-ca"), dir: testpki.NewDir(t)}
	p.first, p.second = p.ca.Server(t), p.ca.Server(t)
	p.dir.Project(t, p.first.CertPEM, p.first.KeyPEM, p.clients.PEM)
	src, err := tlsfiles.New(tlsfiles.Files{Cert: p.dir.Cert(), Key: p.dir.Key(), ClientCA: p.dir.CA()},
		tlsfiles.Options{Listener: listener, NextProtos: protos, Poll: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	p.src = src
	return p
}
