package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// proc is a child process whose output goes to a file.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed

	stopOnce sync.Once
}

// startProc starts bin with args in dir. env replaces the environment.
// The child is killed if this test process dies first.
func startProc(name, dir, logPath string, env []string, bin string, args ...string) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("create %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitCode is the exit status once the process has exited; -1 when it was
// killed by a signal or has not exited.
func (p *proc) exitCode() int {
	if !p.exited() {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// wait waits up to d for the process to exit.
func (p *proc) wait(d time.Duration) error {
	select {
	case <-p.done:
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s (pid %d) still running after %v", p.name, p.cmd.Process.Pid, d)
	}
}

// signal sends sig unless the process has exited.
func (p *proc) signal(sig os.Signal) error {
	if p.exited() {
		return fmt.Errorf("%s already exited: %v", p.name, p.waitErr)
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %s: %w", p.name, err)
	}
	return nil
}

// stop ends the process: SIGTERM, then SIGKILL after grace. It is safe to
// call more than once and after the process has exited.
func (p *proc) stop(grace time.Duration) {
	p.stopOnce.Do(func() {
		if p.exited() {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if p.wait(grace) != nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
}

// logs returns what the process has written so far.
func (p *proc) logs() string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s log: %v)", p.name, err)
	}
	return string(b)
}

// logTail is the last n bytes of the log, for failure messages.
func (p *proc) logTail(n int) string {
	s := p.logs()
	if len(s) > n {
		s = "...\n" + s[len(s)-n:]
	}
	return s
}

// dumpOnFailure logs the process output at cleanup when the test failed.
func (p *proc) dumpOnFailure(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s output (%s):\n%s", p.name, p.logPath, p.logTail(16<<10))
		}
	})
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Callers that bind it in another process retry on a bind failure: the
// port can be taken in between.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// childEnv is this process's environment without the variables that would
// change how a child behaves behind the test's back: EXTAUTHZ_* (every flag
// reads one), proxy settings and the certificate overrides. extra is
// appended.
func childEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch up := strings.ToUpper(k); {
		case strings.HasPrefix(up, "EXTAUTHZ_"),
			up == "HTTP_PROXY", up == "HTTPS_PROXY", up == "ALL_PROXY", up == "NO_PROXY",
			up == "SSL_CERT_FILE", up == "SSL_CERT_DIR",
			up == "PORT", up == "HOST":
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// execCommand is exec.CommandContext with the child killed if this test
// process dies first.
func execCommand(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
