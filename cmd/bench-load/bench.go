package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/cognito-extauthz/cognito-extauthz/internal/loadgen"
)

type config struct {
	extauthz             string
	tokens               int
	duration, warmup     time.Duration
	workers, connections int
	cacheDir, memLimit   string
	profileDir           string
	rounds               int
	clientDecode         string
}

func serveNoopOn(lis net.Listener) error { return loadgen.ServeNoop(lis) }

// policy is the benchmark's policy: one ID-token route with claim headers,
// as a typical API has, against the benchmark's pool and its key file.
const policy = `apiVersion: cognito-extauthz/v1
authorizers:
  bench:
    userPools:
      - userPoolId: ` + loadgen.PoolID + `
        issuer: ` + loadgen.Issuer + `
        jwksFile: jwks.json
    appClientIds: [` + loadgen.ClientID + `]
    resultTtl: 300s
routes:
  - name: list-pets
    match: { methods: [GET], path: /pets }
    authorizer: bench
    mode: identity-claims
    claimHeaders: { x-user-sub: sub, x-user-email: email, x-user-groups: "cognito:groups" }
defaultAction: deny
`

// server is a process under test.
type server struct {
	name  string
	addr  string
	cmd   *exec.Cmd
	pprof string // admin address serving /debug/pprof/, when profiling
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// run is one measured run against one server.
type run struct {
	loadgen.Result
	cpu time.Duration
}

func (r run) cpuPerCheck() time.Duration { return r.cpu / time.Duration(max(r.Requests, 1)) }

func bench(ctx context.Context, c config, out io.Writer) error {
	load0 := loadavg()
	fmt.Fprintf(os.Stderr, "tokens: loading or minting %d (minting takes minutes on two cores)...\n", c.tokens)
	toks, err := loadgen.LoadOrMint(c.cacheDir, c.tokens)
	if err != nil {
		return fmt.Errorf("tokens: %w", err)
	}
	// The unit of the last row is measured between the unique rounds as
	// well, so that it drifts with the machine as the runs do.
	rs256, err := toks.RS256VerifyCPU(1000)
	if err != nil {
		return err
	}
	units := []time.Duration{rs256}
	dir, err := os.MkdirTemp("", "bench-load-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "jwks.json"), toks.JWKS(), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "policy.yaml"), []byte(policy), 0o600); err != nil {
		return err
	}

	if c.profileDir != "" {
		if err := os.MkdirAll(c.profileDir, 0o755); err != nil {
			return fmt.Errorf("profile directory: %w", err)
		}
	}
	noop, err := startNoop(ctx, c.profileDir != "")
	if err != nil {
		return err
	}
	defer noop.stop()
	svc, admin, err := startService(ctx, c, dir)
	if err != nil {
		return err
	}
	defer svc.stop()

	servers := []*server{noop, svc}
	rounds, moreUnits, err := c.runRounds(ctx, servers, toks)
	if err != nil {
		return err
	}
	units = append(units, moreUnits...)
	rs256 = 0
	for _, u := range units {
		rs256 += u / time.Duration(len(units))
	}
	var res [2][2]run
	for i := range rounds {
		for j := range rounds[i] {
			res[i][j] = mergeRuns(rounds[i][j])
		}
	}
	time.Sleep(time.Second)
	mem, err := loadgen.ProcMemory(svc.pid())
	if err != nil {
		return err
	}
	g := gauges(admin)
	report(out, c, reportData{res: res, rs256: rs256, mem: mem, entries: g["extauthz_token_cache_entries"],
		cacheBytes: g["extauthz_token_cache_bytes"], heap: g["go_memstats_heap_alloc_bytes"],
		load0: load0, load1: loadavg()})
	return nil
}

// runRounds warms both servers up, then drives them in turn, round by
// round, with the cached token and then each round's slice of the unique
// tokens, so that a change in the machine's load falls on both alike. It
// returns the runs by [cached, unique][noop, service][round], and the RS256
// unit measured after each unique round.
func (c config) runRounds(ctx context.Context, servers []*server, toks *loadgen.Tokens) (rounds [2][2][]run, units []time.Duration, err error) {
	allowed := func(r *authv3.CheckResponse) bool { return r.GetStatus().GetCode() == 0 }
	cachedReq := loadgen.Request(toks.IDs[0])
	statusOnly := c.clientDecode == "status"
	cached := loadgen.Load{Workers: c.workers, Connections: c.connections, Duration: c.warmup,
		Next: func(int) *authv3.CheckRequest { return cachedReq }, OK: allowed, StatusOnly: statusOnly}
	for _, s := range servers {
		fmt.Fprintf(os.Stderr, "cached-token warm-up against %s...\n", s.name)
		if _, err := loadgen.Drive(ctx, s.addr, cached); err != nil {
			return rounds, nil, err
		}
	}
	cached.Duration = c.duration / time.Duration(c.rounds)
	for r := range c.rounds {
		for i, s := range servers {
			fmt.Fprintf(os.Stderr, "cached-token run against %s (round %d of %d)...\n", s.name, r+1, c.rounds)
			res, err := c.measureProfiled(ctx, s, fmt.Sprintf("cached-%d", r+1), cached.Duration, cached)
			if err != nil {
				return rounds, nil, err
			}
			rounds[0][i] = append(rounds[0][i], res)
		}
	}
	// Each round sends its own slice of the unique tokens to both servers.
	per := (c.tokens - 1) / c.rounds
	for r := range c.rounds {
		first := 1 + r*per
		unique := loadgen.Load{Workers: c.workers, Connections: c.connections, Duration: 10 * time.Minute,
			Requests: per, Next: func(i int) *authv3.CheckRequest { return loadgen.Request(toks.IDs[first+i]) }, OK: allowed,
			StatusOnly: statusOnly}
		for i, s := range servers {
			fmt.Fprintf(os.Stderr, "unique-token run against %s (round %d of %d, %d requests)...\n", s.name, r+1, c.rounds, per)
			res, err := c.measureProfiled(ctx, s, fmt.Sprintf("unique-%d", r+1), 3*time.Second, unique)
			if err != nil {
				return rounds, nil, err
			}
			rounds[1][i] = append(rounds[1][i], res)
		}
		u, err := toks.RS256VerifyCPU(500)
		if err != nil {
			return rounds, nil, err
		}
		units = append(units, u)
	}
	return rounds, units, nil
}

// measureProfiled is measure with the server's CPU profile taken (with
// --profile) for the first profileFor of the run.
func (c config) measureProfiled(ctx context.Context, s *server, name string, profileFor time.Duration, l loadgen.Load) (run, error) {
	stop := c.profile(s, name, profileFor)
	defer stop()
	return measure(ctx, s, l)
}

func mergeRuns(rs []run) run {
	var m run
	results := make([]loadgen.Result, len(rs))
	for i, r := range rs {
		results[i] = r.Result
		m.cpu += r.cpu
	}
	m.Result = loadgen.Merge(results...)
	return m
}

func measure(ctx context.Context, s *server, l loadgen.Load) (run, error) {
	before, err := loadgen.ProcCPU(s.pid())
	if err != nil {
		return run{}, err
	}
	r, err := loadgen.Drive(ctx, s.addr, l)
	if err != nil {
		return run{}, err
	}
	after, err := loadgen.ProcCPU(s.pid())
	if err != nil {
		return run{}, err
	}
	if r.Failed > 0 {
		return run{}, fmt.Errorf("%s: %d of %d checks failed or had the wrong verdict, first: %s", s.name, r.Failed, r.Requests, r.FirstFailure)
	}
	return run{Result: r, cpu: after - before}, nil
}

func startNoop(ctx context.Context, profile bool) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := []string{"noop", "127.0.0.1:0"}
	var pprofAddr string
	if profile {
		if pprofAddr, err = freeAddr(); err != nil {
			return nil, err
		}
		args = append(args, pprofAddr)
	}
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start no-op server: %w", err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("no-op server address: %w", err)
	}
	return &server{name: "no-op", addr: strings.TrimSpace(line), cmd: cmd, pprof: pprofAddr}, nil
}

func startService(ctx context.Context, c config, dir string) (*server, string, error) {
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	args := []string{"serve", "--config", filepath.Join(dir, "policy.yaml"),
		"--grpc-addr", grpcAddr, "--admin-addr", admin, "--log-level", "warn"}
	if c.profileDir != "" {
		args = append(args, "--enable-pprof")
	}
	cmd := exec.CommandContext(ctx, c.extauthz, args...)
	cmd.Env = append(os.Environ(), "GOMEMLIMIT="+c.memLimit)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start %s: %w", c.extauthz, err)
	}
	s := &server{name: "extauthz", addr: grpcAddr, cmd: cmd, pprof: admin}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get("http://" + admin + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, admin, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, "", errors.New("extauthz not ready after 30s")
		}
	}
}

// profile records a CPU profile of the service while a run goes on, into
// profileDir/NAME.pprof, when --profile asked for it; the returned func
// waits for it. The profile covers about the first length of the run (the
// profiler needs its length up front), so it samples the run, not all of
// it; `go tool pprof` merges the rounds' profiles given together.
func (c config) profile(s *server, name string, length time.Duration) (wait func()) {
	if c.profileDir == "" || s.pprof == "" {
		return func() {}
	}
	name = s.name + "-" + name
	done := make(chan struct{})
	go func() {
		defer close(done)
		secs := max(int(length/time.Second)-1, 1)
		resp, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.pprof, secs))
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		defer resp.Body.Close()
		path := filepath.Join(c.profileDir, name+".pprof")
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			return
		}
		fmt.Fprintf(os.Stderr, "CPU profile: %s\n", path)
	}()
	return func() { <-done }
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// gauges reads the unlabelled samples of the service's /metrics.
func gauges(admin string) map[string]float64 {
	g := map[string]float64{}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		return g
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			g[name] = f
		}
	}
	return g
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs, %s, %s %s/%s", runtime.NumCPU(), model, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
