package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
)

// This file follows the newcomer's path literally: the README's quick start
// (make run, then the commands the README shows, checked against what the
// README says they print) and examples/cognito-local/run.sh (its printed
// commands, run as printed). Only the ports differ: other processes on the
// machine may hold 9001/9002/9229, so the test moves them with the
// environment variables the docs name.

// group is a process group started by a test: make and what it execs, or
// a script and its emulator. Stopping it signals the whole group.
type group struct {
	*proc
}

func startGroup(t *testing.T, name, dir string, env []string, bin string, args ...string) *group {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Env = dir, env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	g := &group{p}
	t.Cleanup(g.stop)
	p.dumpOnFailure(t)
	return g
}

// stop sends SIGTERM to the whole group, then SIGKILL if it lingers.
func (g *group) stop() {
	pgid := g.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	if g.wait(15*time.Second) != nil {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-g.done
	}
	// The leader is gone; make sure no member outlives it.
	deadline := time.Now().Add(5 * time.Second)
	for syscall.Kill(-pgid, 0) == nil && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// waitFor waits until the group's output contains marker.
func (g *group) waitFor(t *testing.T, marker string, d time.Duration) string {
	t.Helper()
	err := wait.Until(d, func() (bool, error) {
		if g.exited() {
			return false, fmt.Errorf("%w: %s exited: %v", wait.ErrGiveUp, g.name, g.waitErr)
		}
		return strings.Contains(g.logs(), marker), fmt.Errorf("no %q in the output yet", marker)
	})
	if err != nil {
		t.Fatalf("%s: %v\n%s", g.name, err, g.logTail(8<<10))
	}
	return g.logs()
}

// docCommand is one command line of the docs with what they say it does.
type docCommand struct {
	line    string // as documented, comment cut
	comment string
}

// commentRE cuts a trailing "# ..." comment (after two spaces or more).
var commentRE = regexp.MustCompile(`^(.*?\S)\s{2,}#\s*(.*)$`)

func parseDocLine(line string) docCommand {
	if m := commentRE.FindStringSubmatch(line); m != nil {
		return docCommand{line: m[1], comment: m[2]}
	}
	return docCommand{line: strings.TrimSpace(line)}
}

// reasonRE finds the documented outcome of a denial: "401 token_missing".
var reasonRE = regexp.MustCompile(`\b(401|403|503) ([a-z_]+)\b`)

// checkOutcome holds a command's exit code and output to its comment.
// Every command must say something checkable: a test that cannot tell a
// documented outcome from a broken one would pass on anything.
func checkOutcome(c docCommand, code int, out string) error {
	switch first := strings.Fields(c.line)[0]; {
	case strings.HasSuffix(first, "extauthz"):
		sub := strings.Fields(c.line)[1]
		if m := reasonRE.FindStringSubmatch(c.comment); m != nil {
			want := 1
			if sub != "check" {
				want = 0 // explain exits 0 on a decision
			}
			if code != want || !strings.Contains(out, `"reason": "`+m[2]+`"`) || !strings.Contains(out, `"status": `+m[1]) {
				return fmt.Errorf("want exit %d, status %s, reason %s", want, m[1], m[2])
			}
			return nil
		}
		switch {
		case strings.HasPrefix(c.comment, "allowed"):
			if code != 0 || !strings.Contains(out, `"allowed": true`) {
				return errors.New(`want exit 0 and "allowed": true`)
			}
		case c.comment == "ok" && sub == "validate":
			if code != 0 || !strings.Contains(out, ": ok:") {
				return errors.New("want exit 0 and ok")
			}
		default:
			return fmt.Errorf("comment %q says nothing this test can check", c.comment)
		}
	case first == "go" && strings.Contains(c.line, "grpcurl"):
		switch {
		case strings.HasPrefix(c.comment, "allowed"):
			if code != 0 || !strings.Contains(out, `"okResponse"`) || strings.Contains(out, `"deniedResponse"`) {
				return errors.New("want an okResponse")
			}
		case strings.HasPrefix(c.comment, "denied"):
			m := reasonRE.FindStringSubmatch(c.comment)
			if code != 0 || m == nil || !strings.Contains(out, `"deniedResponse"`) || !strings.Contains(out, `"code": "`+statusName(m[1])+`"`) {
				return fmt.Errorf("want a deniedResponse with %v", m)
			}
		default:
			return fmt.Errorf("comment %q says nothing this test can check", c.comment)
		}
	case first == "curl" && strings.Contains(c.line, "/dev/token"):
		if code != 0 || !regexp.MustCompile(`^[\w-]+\.[\w-]+\.[\w-]+\s*$`).MatchString(out) {
			return errors.New("want exit 0 and one JWT")
		}
	default:
		return fmt.Errorf("no rule to check %q", c.line)
	}
	return nil
}

func statusName(code string) string {
	return map[string]string{"401": "Unauthorized", "403": "Forbidden", "503": "ServiceUnavailable"}[code]
}

// runDoc runs one documented command line with bash in dir.
func runDoc(t *testing.T, dir string, env []string, line string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute) // a cold go tool grpcurl compiles
	defer cancel()
	cmd := execCommand(ctx, "bash", "-c", line)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	}
	t.Fatalf("%s: %v", line, err)
	return 0, ""
}

// readmeSection returns the ```sh blocks of the README section headed
// heading (up to the next heading of the same level).
func readmeSection(t *testing.T, heading string) [][]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	text = text[i+len(heading)+2:]
	if j := strings.Index(text, "\n## "); j >= 0 {
		text = text[:j]
	}
	var blocks [][]string
	for _, m := range regexp.MustCompile("(?s)```sh\n(.*?)```").FindAllStringSubmatch(text, -1) {
		var lines []string
		for _, l := range strings.Split(m[1], "\n") {
			if strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#") {
				lines = append(lines, l)
			}
		}
		blocks = append(blocks, lines)
	}
	return blocks
}

// TestReadmeQuickStart runs the README's quick start as written: `make run`
// in the repository, the sample token lines it prints, then every command
// of the section, each checked against its comment. The documented
// 127.0.0.1:9001/9002/9003 are moved to free ports: make run through the
// EXTAUTHZ_GRPC_ADDR / EXTAUTHZ_ADMIN_ADDR / EXTAUTHZ_HTTP_AUTHZ_ADDR
// variables the README names, the commands by rewriting the address in
// their text (none of them uses the HTTP mode's, which only has to be
// free for dev to start).
func TestReadmeQuickStart(t *testing.T) {
	requireE2E(t)
	for _, tool := range []string{"make", "curl", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, tool, "see CONTRIBUTING.md, Prerequisites")
		}
	}
	blocks := readmeSection(t, "## Quick start")
	var cmds []docCommand
	sawRun := false
	for _, b := range blocks {
		for _, l := range b {
			c := parseDocLine(l)
			switch c.line {
			case "make run":
				sawRun = true
			case "make test", "make lint":
			default:
				cmds = append(cmds, c)
			}
		}
	}
	if !sawRun || len(cmds) < 5 {
		t.Fatalf("the quick start lost its make run or its commands: %v", blocks)
	}

	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	gp, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	ap, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	hp, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, adminAddr := "127.0.0.1:"+strconv.Itoa(gp), "127.0.0.1:"+strconv.Itoa(ap)
	env := childEnv("EXTAUTHZ_GRPC_ADDR="+grpcAddr, "EXTAUTHZ_ADMIN_ADDR="+adminAddr,
		"EXTAUTHZ_HTTP_AUTHZ_ADDR=127.0.0.1:"+strconv.Itoa(hp))
	run := startGroup(t, "make-run", root, env, "make", "run")
	// A cold build of bin/extauthz takes minutes on a loaded machine.
	banner := run.waitFor(t, "More tokens:", 10*time.Minute)

	// The lines the reader pastes.
	shellEnv := childEnv("EXTAUTHZ_ADDR=" + grpcAddr)
	sc := bufio.NewScanner(strings.NewReader(banner))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	pasted := 0
	for sc.Scan() {
		if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
			shellEnv = append(shellEnv, kv)
			pasted++
		}
	}
	if pasted != 2 {
		t.Fatalf("make run printed %d export lines, the README says two:\n%s", pasted, banner)
	}
	if err := wait.Until(30*time.Second, func() (bool, error) {
		resp, err := http.Get("http://" + adminAddr + "/readyz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Errorf("readyz %s", resp.Status)
	}); err != nil {
		t.Fatal(err)
	}

	moved := strings.NewReplacer("127.0.0.1:9001", grpcAddr, "127.0.0.1:9002", adminAddr)
	for _, c := range cmds {
		t.Run(c.line, func(t *testing.T) {
			code, out := runDoc(t, root, shellEnv, moved.Replace(c.line))
			if err := checkOutcome(c, code, out); err != nil {
				t.Errorf("%s  # %s\n%v\nexit %d, output:\n%s", c.line, c.comment, err, code, out)
			}
			if strings.Contains(out, "exit status") {
				t.Errorf("output has go run's %q:\n%s", "exit status", out)
			}
		})
	}

	// make run stamped the binary: version from the tag or "dev", and the
	// commit, never the same hash twice.
	code, out := runDoc(t, root, shellEnv, "bin/extauthz version")
	head, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if code != 0 || len(lines) < 2 || lines[1] != "commit "+strings.TrimSpace(string(head)) ||
		strings.TrimPrefix(lines[0], "extauthz ") == strings.TrimSpace(string(head)) {
		t.Errorf("bin/extauthz version, want the tag or dev, then commit %s:\n%s", head, out)
	}
}

// TestCognitoLocalExample runs examples/cognito-local/run.sh on free ports
// and every command it prints, as printed, from a directory holding
// bin/extauthz: real cognito-local tokens, the policy the script wrote, the
// outcome each comment promises.
func TestCognitoLocalExample(t *testing.T) {
	requireE2E(t)
	if _, err := os.Stat(cognitoLocalBin); err != nil {
		missing(t, "cognito-local", "run `make e2e-deps` (npm ci in e2e/)")
	}
	bin := binary(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(work, "bin", "extauthz")); err != nil {
		t.Fatal(err)
	}
	ports := make([]string, 3)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = strconv.Itoa(p)
	}
	grpcAddr, adminAddr := "127.0.0.1:"+ports[1], "127.0.0.1:"+ports[2]
	script, err := filepath.Abs("../examples/cognito-local/run.sh")
	if err != nil {
		t.Fatal(err)
	}
	env := childEnv("COGNITO_LOCAL_PORT="+ports[0], "OUT_DIR="+filepath.Join(work, "out"),
		"EXTAUTHZ_GRPC_ADDR="+grpcAddr, "EXTAUTHZ_ADMIN_ADDR="+adminAddr)
	g := startGroup(t, "run.sh", work, env, "bash", script)
	out := g.waitFor(t, "Ready.", 3*time.Minute)

	var cmds []docCommand
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "bin/extauthz ") {
			cmds = append(cmds, parseDocLine(l))
		}
	}
	if len(cmds) < 6 {
		t.Fatalf("run.sh printed %d commands:\n%s", len(cmds), out)
	}
	cleanEnv := childEnv()
	for _, c := range cmds {
		if serve, ok := strings.CutSuffix(c.line, " &"); ok {
			// The one command the reader leaves running.
			startGroup(t, "serve", work, cleanEnv, "bash", "-c", "exec "+serve)
			if err := wait.Until(60*time.Second, func() (bool, error) {
				resp, err := http.Get("http://" + adminAddr + "/readyz")
				if err != nil {
					return false, err
				}
				resp.Body.Close()
				return resp.StatusCode == http.StatusOK, fmt.Errorf("readyz %s", resp.Status)
			}); err != nil {
				t.Fatalf("%s: not ready: %v", serve, err)
			}
			continue
		}
		code, got := runDoc(t, work, cleanEnv, c.line)
		if err := checkOutcome(c, code, got); err != nil {
			t.Errorf("%s  # %s\n%v\nexit %d, output:\n%s", c.line, c.comment, err, code, got)
		}
	}
	// The policy names the issuer exactly as cognito-local writes it.
	policy, err := os.ReadFile(filepath.Join(work, "out", "policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(policy), "issuer: http://localhost:"+ports[0]+"/local_") {
		t.Errorf("policy issuer is not http://localhost:%s/<pool>:\n%s", ports[0], policy)
	}
}
