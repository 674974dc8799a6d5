package server_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"google.golang.org/grpc/codes"

	"github.com/cognito-extauthz/cognito-extauthz/internal/issuer"
	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/internal/wait"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
)

// The kid-spray attack: while the IdP's JWKS endpoint hangs, one client
// sends hundreds of checks whose tokens name made-up kids, each of which
// would wait for the same (hanging) refetch. Envoy multiplexes every check
// of a replica over a few HTTP/2 connections, so the spray shares its
// connection with everyone's valid checks.
const (
	sprayChecks = 300
	// sprayWaiters is the most lookups of one key source that may wait
	// for its refetch; the rest of the spray is answered at once.
	sprayWaiters = 32
	// sprayMissWait is the kid-miss budget in these tests: the spray's
	// waiters hold their streams this long, which the valid checks must
	// overlap (a generous window on a loaded machine). The check timeout
	// is longer still, so a spray check answered by it (503
	// deadline_exceeded) is told from one the budget answered.
	sprayMissWait  = 6 * time.Second
	sprayCheckTime = 12 * time.Second
	// spraySlack is how far past the budget a spray check may return on a
	// loaded machine (decode, scheduling, -race).
	spraySlack = 2 * time.Second
	// sprayQuiet, validInterval, validWindow: see sprayRun.
	sprayQuiet    = 500 * time.Millisecond
	validInterval = 8 * time.Millisecond
	validWindow   = sprayMissWait - time.Second
	// validChecks is how many valid checks are sent at most; at least
	// minValidChecks must fit in the window for a p99 to mean anything.
	validChecks    = 250
	minValidChecks = 100
	// validP99 is what the valid checks must stay under.
	validP99 = 50 * time.Millisecond
)

// gatedJWKS serves a pool's JWKS until hold, then keeps every request
// unanswered until release (or until the client gives up).
type gatedJWKS struct {
	*httptest.Server
	held     atomic.Bool
	gate     chan struct{}
	arrived  chan struct{} // closed when the first held request arrives
	arrival  sync.Once
	releaser sync.Once
	hits     atomic.Int64
}

func newGatedJWKS(t *testing.T, env *testenv.Env) *gatedJWKS {
	t.Helper()
	g := &gatedJWKS{gate: make(chan struct{}), arrived: make(chan struct{})}
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.hits.Add(1)
		if g.held.Load() {
			g.arrival.Do(func() { close(g.arrived) })
			select {
			case <-g.gate:
			case <-r.Context().Done():
				return
			}
		}
		env.Issuer.ServeHTTP(w, r)
	}))
	t.Cleanup(g.Close)
	t.Cleanup(g.release) // runs before Close: a failed test never leaves it hanging
	return g
}

func (g *gatedJWKS) hold()       { g.held.Store(true) }
func (g *gatedJWKS) release()    { g.releaser.Do(func() { g.held.Store(false); close(g.gate) }) }
func (g *gatedJWKS) url() string { return g.URL + "/.well-known/jwks.json" }

// startSprayTarget starts the service with the test policy, its pool's
// keys behind a gated JWKS server, and waits until the keys are in.
func startSprayTarget(t *testing.T, httpAuthz bool) (*running, *testenv.Env, *gatedJWKS) {
	t.Helper()
	env := testenv.New(t)
	g := newGatedJWKS(t, env)
	cfg := server.Config{
		// Quiet: hundreds of denials would go through the test log.
		Logger:       zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)),
		Snapshot:     env.Policy(t, strings.ReplaceAll(testenv.Policy, "${JWKS}", g.url())),
		CheckTimeout: sprayCheckTime,
		JWKS: jwks.Options{
			FetchTimeout:   time.Minute, // the refetch stays unanswered until the test releases it
			MissWait:       sprayMissWait,
			MaxMissWaiters: sprayWaiters,
		},
	}
	if httpAuthz {
		cfg.HTTPAuthzAddr = "127.0.0.1:0"
	}
	r := start(t, cfg)
	wait.For(t, 10*time.Second, "ready", r.srv.Ready)
	return r, env, g
}

// sprayTokens returns n tokens of the pool's issuer whose headers name
// made-up kids. Their signatures are another token's: the lookup of the
// kid comes first, and it is what the attack aims at.
func sprayTokens(t *testing.T, env *testenv.Env, n int) []string {
	t.Helper()
	parts := strings.Split(env.ID(t, issuer.TokenOptions{}), ".")
	out := make([]string, n)
	for i := range out {
		h := fmt.Sprintf(`{"alg":"RS256","typ":"JWT","kid":"spray-%d-%s"}`, i, strings.Repeat("k", i%40))
		out[i] = base64.RawURLEncoding.EncodeToString([]byte(h)) + "." + parts[1] + "." + parts[2]
	}
	return out
}

// validTokens mints n distinct valid tokens signed by a key the service
// holds: each check verifies afresh (no token-cache hit), with a cached key.
func validTokens(t *testing.T, env *testenv.Env, n int) []string {
	t.Helper()
	out := make([]string, n)
	for i := range out {
		out[i] = env.ID(t, issuer.TokenOptions{})
	}
	return out
}

// outcome is one check's answer and how long it took.
type outcome struct {
	allowed bool
	status  int // HTTP status the client would get (200 on allow)
	reason  string
	took    time.Duration
	err     error
}

// sprayRun is the attack: sprayChecks checks with made-up kids, all started
// at once through ask, then valid ones through ask too (same connection or
// pool) while the spray's waiters still wait for the hanging refetch.
//
// The valid checks start once the spray's burst has been answered (all but
// sprayWaiters of it), or once no spray check has returned for sprayQuiet
// (the rest are held), whichever is first: what is measured is whether
// anything the spray holds (streams, connections, waits) delays them, not
// the CPU it took to answer 300 checks on a shared machine. A spray that
// holds more than the cap goes quiet with more held, and the valid checks
// meet what it holds. They run open loop, one every validInterval whether
// or not the earlier ones returned (as Envoy's traffic does, so a stall
// shows in every check it delays; a closed loop of callers would hide it),
// up to validChecks and for at most validWindow after the refetch began, so
// all of them overlap the spray's waiting checks. The JWKS server is
// released only after every check returned.
func sprayRun(t *testing.T, env *testenv.Env, g *gatedJWKS, ask func(token string) outcome) (spray, valid []outcome) {
	t.Helper()
	sprayToks, validToks := sprayTokens(t, env, sprayChecks), validTokens(t, env, validChecks)
	g.hold()
	spray, valid = make([]outcome, sprayChecks), make([]outcome, validChecks)
	var sprayWG sync.WaitGroup
	var answered atomic.Int64
	for i, tok := range sprayToks {
		sprayWG.Go(func() {
			spray[i] = ask(tok)
			answered.Add(1)
		})
	}
	select {
	case <-g.arrived:
	case <-time.After(30 * time.Second):
		t.Fatal("the spray never made the service refetch its keys")
	}
	began := time.Now()
	for last, quiet := answered.Load(), time.Now(); last < sprayChecks-sprayWaiters && time.Since(quiet) < sprayQuiet; {
		time.Sleep(time.Millisecond)
		if n := answered.Load(); n != last {
			last, quiet = n, time.Now()
		}
	}
	t.Logf("valid checks start %v after the refetch began, %d spray checks answered",
		time.Since(began).Round(time.Millisecond), answered.Load())
	var validWG sync.WaitGroup
	sent := 0
	for i := range validChecks {
		if time.Since(began) >= validWindow {
			break
		}
		validWG.Go(func() { valid[i] = ask(validToks[i]) })
		sent++
		time.Sleep(validInterval)
	}
	waiting := sprayChecks - answered.Load()
	validWG.Wait()
	if waiting == 0 {
		t.Error("every spray check had returned before the last valid check was sent: the spray held nothing")
	}
	if sent < minValidChecks {
		t.Errorf("only %d valid checks sent in %v; the machine is too slow for a p99", sent, validWindow)
	}
	sprayWG.Wait()
	select {
	case <-g.gate:
		t.Fatal("the JWKS server was released before every check returned")
	default:
	}
	g.release()
	return spray, valid[:sent]
}

// judgeSpray holds the answers to the attack to the design: every valid
// check allowed, p99 under validP99; every spray check a prompt 503
// jwks_unavailable.
func judgeSpray(t *testing.T, spray, valid []outcome) {
	t.Helper()
	durs := make([]time.Duration, 0, len(valid))
	for i, o := range valid {
		if o.err != nil || !o.allowed {
			t.Errorf("valid check %d: allowed=%v status %d reason %q err %v, want allowed", i, o.allowed, o.status, o.reason, o.err)
		}
		durs = append(durs, o.took)
	}
	slices.Sort(durs)
	p50, p99, worst := durs[len(durs)/2], durs[(len(durs)*99+99)/100-1], durs[len(durs)-1]
	t.Logf("valid checks during the spray: n=%d p50=%v p99=%v max=%v", len(durs), p50, p99, worst)
	if p99 >= validP99 {
		t.Errorf("valid checks p99 = %v during the kid spray, want < %v", p99, validP99)
	}
	var slowest time.Duration
	for i, o := range spray {
		slowest = max(slowest, o.took)
		if o.err != nil || o.allowed || o.status != http.StatusServiceUnavailable || o.reason != "jwks_unavailable" {
			t.Errorf("spray check %d: allowed=%v status %d reason %q err %v, want 503 jwks_unavailable", i, o.allowed, o.status, o.reason, o.err)
			continue
		}
		if o.took > sprayMissWait+spraySlack {
			t.Errorf("spray check %d took %v, want at most the miss budget %v (+%v slack)", i, o.took, sprayMissWait, spraySlack)
		}
	}
	t.Logf("spray checks: n=%d slowest=%v", len(spray), slowest)
}

// TestKidSprayWhileJWKSHangsKeepsValidChecksFast: the attack through the
// gRPC edge, every check on ONE connection (one HTTP/2 connection, at most
// 256 concurrent streams).
func TestKidSprayWhileJWKSHangsKeepsValidChecksFast(t *testing.T) {
	r, env, g := startSprayTarget(t, false)
	ask := func(token string) outcome {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		resp, err := r.check(ctx, "/pets", token)
		o := outcome{took: time.Since(start), err: err}
		if err == nil {
			o.allowed = codes.Code(resp.GetStatus().GetCode()) == codes.OK
			o.status = http.StatusOK
			if !o.allowed {
				o.status = int(resp.GetDeniedResponse().GetStatus().GetCode())
			}
			o.reason = headerOf(resp, "x-extauthz-reason")
		}
		return o
	}
	spray, valid := sprayRun(t, env, g, ask)
	judgeSpray(t, spray, valid)
	afterRelease(t, env, g, ask)
}

// TestKidSprayWhileJWKSHangsKeepsValidHTTPRequestsFast: the same attack
// through the HTTP authorization edge, whose clients (nginx, Traefik,
// Envoy's http_service) reuse a bounded pool of HTTP/1.1 keep-alive
// connections: a spray request that waits holds one of them.
func TestKidSprayWhileJWKSHangsKeepsValidHTTPRequestsFast(t *testing.T) {
	r, env, g := startSprayTarget(t, true)
	pool := &http.Transport{MaxConnsPerHost: 64, MaxIdleConnsPerHost: 64}
	t.Cleanup(pool.CloseIdleConnections)
	client := &http.Client{Transport: pool, Timeout: 30 * time.Second}
	url := "http://" + r.srv.HTTPAuthzAddr() + "/envoy/pets"
	ask := func(token string) outcome {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return outcome{err: err}
		}
		req.Header.Set("Authorization", "Bearer "+token)
		start := time.Now()
		resp, err := client.Do(req)
		o := outcome{took: time.Since(start), err: err}
		if err == nil {
			resp.Body.Close()
			o.status = resp.StatusCode
			o.allowed = resp.StatusCode == http.StatusOK
			o.reason = resp.Header.Get("X-Extauthz-Reason")
		}
		return o
	}
	spray, valid := sprayRun(t, env, g, ask)
	judgeSpray(t, spray, valid)
	afterRelease(t, env, g, ask)
}

// afterRelease: the refetch the spray waited for completes once the JWKS
// server answers; inside the refetch window a made-up kid is then answered
// at once as unknown (401), a valid token still verifies, and the spray
// cost the IdP one fetch after the first load.
func afterRelease(t *testing.T, env *testenv.Env, g *gatedJWKS, ask func(string) outcome) {
	t.Helper()
	wait.For(t, 10*time.Second, "a made-up kid answered kid_unknown after the refetch", func() bool {
		o := ask(sprayTokens(t, env, 1)[0])
		return o.err == nil && o.reason == "kid_unknown" && o.status == http.StatusUnauthorized
	})
	if o := ask(env.ID(t, issuer.TokenOptions{})); !o.allowed {
		t.Errorf("valid check after the refetch: status %d reason %q err %v", o.status, o.reason, o.err)
	}
	if got := g.hits.Load(); got != 2 {
		t.Errorf("JWKS requests = %d, want 2 (the first load, then one refetch for the whole spray)", got)
	}
}
