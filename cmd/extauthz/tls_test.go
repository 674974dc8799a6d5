package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testpki"
	"github.com/cognito-extauthz/cognito-extauthz/internal/tlsfiles"
)

// pkiFiles writes a CA, a server pair, a client pair from another CA (the
// client CA), and a pair from a CA nobody trusts.
type pkiFiles struct {
	ca, cert, key                    string // server side
	clientCA, clientCert, clientKey  string
	strangerCert, strangerKey, wrong string // wrong: a key that is not cert's
}

func newPKI(t *testing.T) pkiFiles {
	t.Helper()
	ca, clients, stranger := testpki.NewCA(t, "server-ca"), testpki.NewCA(t, "client-ca"), testpki.NewCA(t, "stranger")
	srv, cl, st := ca.Server(t), clients.Client(t, "envoy"), stranger.Client(t, "intruder")
	return pkiFiles{
		ca:           writeFile(t, "ca.crt", string(ca.PEM)),
		cert:         writeFile(t, "tls.crt", string(srv.CertPEM)),
		key:          writeFile(t, "tls.key", string(srv.KeyPEM)),
		clientCA:     writeFile(t, "client-ca.crt", string(clients.PEM)),
		clientCert:   writeFile(t, "client.crt", string(cl.CertPEM)),
		clientKey:    writeFile(t, "client.key", string(cl.KeyPEM)),
		strangerCert: writeFile(t, "stranger.crt", string(st.CertPEM)),
		strangerKey:  writeFile(t, "stranger.key", string(st.KeyPEM)),
		wrong:        writeFile(t, "wrong.key", string(ca.Server(t).KeyPEM)),
	}
}

// TestServeTLSFlagErrors: every TLS flag combination that cannot be
// honoured stops serve at start-up with exit 3 and says why; it never
// falls back to plaintext.
func TestServeTLSFlagErrors(t *testing.T) {
	good := writeFile(t, "good.yaml", validPolicy)
	p := newPKI(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"cert without key", []string{"--grpc-tls-cert", p.cert}, "certificate without a key"},
		{"key without cert", []string{"--grpc-tls-key", p.key}, "key without a certificate"},
		{"client CA without cert", []string{"--grpc-tls-client-ca", p.clientCA}, "client CA without"},
		{"unreadable cert", []string{"--grpc-tls-cert", p.cert + ".missing", "--grpc-tls-key", p.key}, "read certificate"},
		{"unreadable client CA", []string{"--grpc-tls-cert", p.cert, "--grpc-tls-key", p.key, "--grpc-tls-client-ca", p.clientCA + ".missing"}, "read client CA"},
		{"key of another certificate", []string{"--grpc-tls-cert", p.cert, "--grpc-tls-key", p.wrong}, "does not match"},
		{"client CA that is a key", []string{"--grpc-tls-cert", p.cert, "--grpc-tls-key", p.key, "--grpc-tls-client-ca", p.key}, "want CERTIFICATE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--config", good, "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tt.args...)
			code, _, errs := runCLI(t, args...)
			if code != exitRuntime {
				t.Fatalf("exit %d, want %d\n%s", code, exitRuntime, errs)
			}
			if !strings.Contains(errs, tt.want) || !strings.Contains(errs, "--grpc-tls-") {
				t.Fatalf("stderr does not say %q about the --grpc-tls-* flags:\n%s", tt.want, errs)
			}
		})
	}
	// The HTTP authorization listener's flags are checked the same way,
	// and asking for its TLS without the listener is an error, not a
	// silently plaintext (or absent) listener.
	httpTests := []struct {
		name string
		args []string
		want string
	}{
		{"http cert without key", []string{"--http-authz-addr", "127.0.0.1:0", "--http-authz-tls-cert", p.cert}, "certificate without a key"},
		{"http key of another certificate", []string{"--http-authz-addr", "127.0.0.1:0", "--http-authz-tls-cert", p.cert, "--http-authz-tls-key", p.wrong}, "does not match"},
		{"http TLS without the listener", []string{"--http-authz-tls-cert", p.cert, "--http-authz-tls-key", p.key}, "needs --http-authz-addr"},
	}
	for _, tt := range httpTests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"serve", "--config", good, "--grpc-addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, tt.args...)
			code, _, errs := runCLI(t, args...)
			if code != exitRuntime || !strings.Contains(errs, tt.want) || !strings.Contains(errs, "--http-authz-tls-") {
				t.Fatalf("exit %d, want %d and %q about --http-authz-tls-*:\n%s", code, exitRuntime, tt.want, errs)
			}
		})
	}
}

// TestServeMutualTLSProcess runs serve with mTLS configured through the
// environment (as k8s/overlays/shared does) and reaches it with check's
// TLS flags.
func TestServeMutualTLSProcess(t *testing.T) {
	env := testenv.New(t)
	path := writeFile(t, "policy.yaml", env.Expand(testenv.Policy))
	p := newPKI(t)
	grpcAddr, adminAddr := freePort(t), freePort(t)
	proc := startProcess(t, []string{
		"EXTAUTHZ_CONFIG=" + path,
		"EXTAUTHZ_GRPC_ADDR=" + grpcAddr,
		"EXTAUTHZ_ADMIN_ADDR=" + adminAddr,
		"EXTAUTHZ_GRPC_TLS_CERT=" + p.cert,
		"EXTAUTHZ_GRPC_TLS_KEY=" + p.key,
		"EXTAUTHZ_GRPC_TLS_CLIENT_CA=" + p.clientCA,
	}, "serve")
	waitReady(t, proc, adminAddr)
	id := env.ID(t, issuer.TokenOptions{})

	base := []string{"check", "--addr", grpcAddr, "--path", "/pets", "--token", id}
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout (exit 0/1) or stderr (2/3)
	}{
		{"mTLS client", []string{"--tls-ca", p.ca, "--tls-cert", p.clientCert, "--tls-key", p.clientKey}, exitOK, `"allowed": true`},
		{"server name given", []string{"--tls-ca", p.ca, "--tls-cert", p.clientCert, "--tls-key", p.clientKey, "--tls-server-name", "localhost"}, exitOK, `"allowed": true`},
		{"plaintext client", nil, exitRuntime, "Unavailable"},
		{"TLS without a client certificate", []string{"--tls", "--tls-ca", p.ca}, exitRuntime, "Unavailable"},
		{"client certificate from an untrusted CA", []string{"--tls-ca", p.ca, "--tls-cert", p.strangerCert, "--tls-key", p.strangerKey}, exitRuntime, "Unavailable"},
		{"server not trusted (system roots)", []string{"--tls", "--tls-cert", p.clientCert, "--tls-key", p.clientKey}, exitRuntime, "certificate"},
		{"server name mismatch", []string{"--tls-ca", p.ca, "--tls-cert", p.clientCert, "--tls-key", p.clientKey, "--tls-server-name", "other.example"}, exitRuntime, "other.example"},
		{"cert without key", []string{"--tls-ca", p.ca, "--tls-cert", p.clientCert}, exitUsage, "go together"},
		{"unreadable CA", []string{"--tls-ca", p.ca + ".missing"}, exitUsage, "--tls-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := runCLI(t, append(base, tt.args...)...)
			if code != tt.code || !strings.Contains(out+errs, tt.out) {
				t.Fatalf("exit %d, want %d with %q\nstdout: %s\nstderr: %s", code, tt.code, tt.out, out, errs)
			}
		})
	}
	if logs := proc.stderr.String(); !strings.Contains(logs, `"mutual_tls":true`) || !strings.Contains(logs, `"grpc_tls":true`) {
		t.Fatalf("start-up logs do not say the listener is behind mTLS:\n%s", logs)
	}
}

// TestTLSLogNotAfter: the certificate's expiry is logged as an RFC 3339
// date and time in both log formats (zap's console encoder would print a
// time of day only).
func TestTLSLogNotAfter(t *testing.T) {
	ca := testpki.NewCA(t, "server-ca")
	leaf := ca.Server(t)
	cert, key := writeFile(t, "tls.crt", string(leaf.CertPEM)), writeFile(t, "tls.key", string(leaf.KeyPEM))
	notAfter := regexp.MustCompile(`"not_after": ?"([^"]*)"`)
	for _, format := range []string{"json", "console"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			log, err := newLogger("info", format, &b)
			if err != nil {
				t.Fatal(err)
			}
			f := listenerTLSFlags{prefix: "grpc", files: tlsfiles.Files{Cert: cert, Key: key}}
			if _, err := f.source(time.Hour, log); err != nil {
				t.Fatal(err)
			}
			m := notAfter.FindStringSubmatch(b.String())
			if m == nil {
				t.Fatalf("no not_after in the log:\n%s", b.String())
			}
			got, err := time.Parse(time.RFC3339, m[1])
			if err != nil || !got.Equal(leaf.Cert.NotAfter) {
				t.Fatalf("not_after %q (%v), want %s as RFC 3339", m[1], err, leaf.Cert.NotAfter.UTC().Format(time.RFC3339))
			}
		})
	}
}
