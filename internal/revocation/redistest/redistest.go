// Package redistest runs a real redis-server for tests: on loopback, on a
// free port, in a temporary directory, with no persistence (so a restart
// is empty), optionally with a password and TLS. A missing redis-server
// skips the test, or fails it when CI is set.
package redistest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cognito-extauthz/cognito-extauthz/internal/testpki"
)

// Options shape the server.
type Options struct {
	// Password, when set, is required from clients (requirepass).
	Password string
	// TLS serves TLS only, with a certificate for 127.0.0.1 and localhost
	// signed by a CA made for the test (Server.CAFile).
	TLS bool
}

// Server is one redis-server process, restartable on the same port.
type Server struct {
	t      testing.TB
	bin    string
	opts   Options
	dir    string
	port   int
	conf   string
	cmd    *exec.Cmd
	exited chan struct{}
	// CAFile is the PEM file of the CA that signed the server certificate
	// (TLS only).
	CAFile string
	tlsCfg *tls.Config
}

// Binary returns the path of redis-server, skipping the test (or failing
// it in CI) when it is missing.
func Binary(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if inCI() {
		t.Fatal("redis-server is not installed, and CI is set so this test may not skip: apt-get install redis-server (as .ci/run does)")
	}
	t.Skip("redis-server is not installed (apt-get install redis-server); skipping")
	return ""
}

func inCI() bool {
	switch os.Getenv("CI") {
	case "", "0", "false", "FALSE", "False":
		return false
	}
	return true
}

// Start starts a server and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), opts: opts, dir: t.TempDir(), port: freePort(t)}
	s.writeConfig()
	s.start()
	t.Cleanup(s.Kill)
	return s
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeConfig writes redis.conf (a file, so the password is not on a
// command line).
func (s *Server) writeConfig() {
	t := s.t
	lines := []string{
		"bind 127.0.0.1",
		`save ""`,
		"appendonly no",
		"dir " + s.dir,
		"daemonize no",
		"protected-mode no",
		"loglevel warning",
		"logfile " + filepath.Join(s.dir, "redis.log"),
	}
	if s.opts.Password != "" {
		lines = append(lines, "requirepass "+s.opts.Password)
	}
	if s.opts.TLS {
		ca := testpki.NewCA(t, "redistest CA")
		leaf := ca.Server(t)
		write := func(name string, b []byte) string {
			p := filepath.Join(s.dir, name)
			testpki.WriteFile(t, p, b)
			return p
		}
		s.CAFile = write("ca.crt", ca.PEM)
		lines = append(lines,
			"port 0",
			"tls-port "+strconv.Itoa(s.port),
			"tls-cert-file "+write("tls.crt", leaf.CertPEM),
			"tls-key-file "+write("tls.key", leaf.KeyPEM),
			"tls-ca-cert-file "+s.CAFile,
			"tls-auth-clients no",
		)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca.PEM)
		s.tlsCfg = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	} else {
		lines = append(lines, "port "+strconv.Itoa(s.port))
	}
	s.conf = filepath.Join(s.dir, "redis.conf")
	testpki.WriteFile(t, s.conf, []byte(strings.Join(lines, "\n")+"\n"))
}

// start runs the server and waits until it answers PING.
func (s *Server) start() {
	t := s.t
	t.Helper()
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		cmd := exec.Command(s.bin, s.conf)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start redis-server: %v", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		s.cmd, s.exited = cmd, exited
		if lastErr = s.waitUp(exited); lastErr == nil {
			return
		}
		s.Kill()
		time.Sleep(200 * time.Millisecond) // the port may still be held
	}
	t.Fatalf("redis-server did not come up: %v\n%s", lastErr, s.Log())
}

func (s *Server) waitUp(exited <-chan struct{}) error {
	c := s.Client()
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("redis-server exited: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill() // SIGKILL ends a stopped process too
	<-s.exited
	s.cmd = nil
}

// Freeze stops the server process (SIGSTOP) without closing its
// connections: to its clients it looks like a network partition.
func (s *Server) Freeze() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Thaw resumes a frozen server (SIGCONT).
func (s *Server) Thaw() {
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Restart starts the server again on the same port, empty.
func (s *Server) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL is the server's URL, without the password.
func (s *Server) URL() string {
	if s.opts.TLS {
		return "rediss://" + s.Addr() + "/0"
	}
	return "redis://" + s.Addr() + "/0"
}

// Client is a client with the password and TLS settings, for the test to
// write with plain commands. The caller closes it.
func (s *Server) Client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:        s.Addr(),
		Password:    s.opts.Password,
		TLSConfig:   s.tlsCfg,
		DialTimeout: 2 * time.Second,
		MaxRetries:  -1,
	})
}

// Log returns what the server logged.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
	return string(b)
}
