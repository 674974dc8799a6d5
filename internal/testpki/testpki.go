// Package testpki makes real X.509 certificates for tests: a CA, server
// certificates for loopback, client certificates, written as PEM files the
// way cert-manager and the kubelet lay them out.
package testpki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// serials makes every certificate of a test binary distinct.
var serials atomic.Int64

// CA is a certificate authority that signs leaves.
type CA struct {
	Cert *x509.Certificate
	PEM  []byte
	key  *ecdsa.PrivateKey
}

// Leaf is an issued certificate with its key, both PEM.
type Leaf struct {
	Cert    *x509.Certificate
	CertPEM []byte
	KeyPEM  []byte
}

// Serial is the certificate's serial number, in the form tlsfiles logs.
func (l *Leaf) Serial() string { return l.Cert.SerialNumber.Text(16) }

// NewCA makes a self-signed CA named name.
func NewCA(t testing.TB, name string) *CA {
	t.Helper()
	key := newKey(t)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1000 + serials.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
}

// Server issues a server certificate for 127.0.0.1, ::1 and localhost.
func (ca *CA) Server(t testing.TB) *Leaf {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, time.Now().Add(24*time.Hour))
}

// Client issues a client certificate for name.
func (ca *CA) Client(t testing.TB, name string) *Leaf {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: name},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, time.Now().Add(24*time.Hour))
}

// Expired issues a server certificate that expired an hour ago.
func (ca *CA) Expired(t testing.TB) *Leaf {
	t.Helper()
	return ca.issue(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, time.Now().Add(-time.Hour))
}

func (ca *CA) issue(t testing.TB, tmpl *x509.Certificate, notAfter time.Time) *Leaf {
	t.Helper()
	key := newKey(t)
	tmpl.SerialNumber = big.NewInt(1000 + serials.Add(1))
	tmpl.NotBefore = time.Now().Add(-2 * time.Hour)
	tmpl.NotAfter = notAfter
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Leaf{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// WriteFile writes data to path, replacing it in place (same inode), as a
// plain rewrite does.
func WriteFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// Dir is a directory laid out like the kubelet's projection of a Secret:
// dir/tls.crt -> ..data/tls.crt, ..data -> ..<timestamp>/, and an update
// writes a new timestamped directory and swaps ..data with one rename.
type Dir struct {
	Path string
	gen  int
}

// Cert, Key and CA are the paths a consumer is configured with.
func (d *Dir) Cert() string { return filepath.Join(d.Path, "tls.crt") }

// Key is the private key's path.
func (d *Dir) Key() string { return filepath.Join(d.Path, "tls.key") }

// CA is the CA bundle's path.
func (d *Dir) CA() string { return filepath.Join(d.Path, "ca.crt") }

// NewDir makes an empty kubelet-style directory; call Project to fill it.
func NewDir(t testing.TB) *Dir {
	t.Helper()
	d := &Dir{Path: t.TempDir()}
	for _, name := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(d.Path, name)); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// Project atomically replaces the three files, as the kubelet does when
// cert-manager updates the Secret.
func (d *Dir) Project(t testing.TB, certPEM, keyPEM, caPEM []byte) {
	t.Helper()
	d.gen++
	gen := filepath.Join(d.Path, "..gen"+time.Now().Format("20060102_150405.000000000"))
	if err := os.Mkdir(gen, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM, "ca.crt": caPEM} {
		WriteFile(t, filepath.Join(gen, name), b)
	}
	tmp := filepath.Join(d.Path, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(d.Path, "..data")); err != nil {
		t.Fatal(err)
	}
}
