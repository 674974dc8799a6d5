package policy

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// genPolicy writes a policy of n routes shaped like a large real API, in
// the block style people write by hand (one field per line): services
// under a few versioned prefixes, each with resources that have a
// collection route, an item route ({id}), a sub-resource route with two
// parameters, a literal action, a {proxy+} fallback and, for one resource
// in two, a host-scoped tenant route (half of them with rules that differ
// from the hostless route that would judge their other hosts, so the
// host-shadowing lint has findings); four authorizers, scopes, groups,
// claims and claim headers; a public /health and a few public {proxy+}
// trees. It uses only the file format, so the same generator runs against
// any version of this package.
func genPolicy(n int) []byte {
	var b strings.Builder
	b.Grow(n * 220)
	b.WriteString("apiVersion: cognito-extauthz/v1\nauthorizers:\n")
	azs := []string{"users", "partners", "staff", "machines"}
	for i, az := range azs {
		fmt.Fprintf(&b, "  %s:\n    userPools:\n      - userPoolId: us-east-1_Pool%d\n    appClientIds: [client%d]\n", az, i, i)
	}
	b.WriteString("routes:\n")
	g := &routeGen{b: &b, n: n}
	g.route("health", "/health", "", "", "    authorization: NONE\n")
	for svc := 0; g.left(); svc++ {
		prefix := fmt.Sprintf("/v%d/svc%d", svc%3+1, svc)
		az := azs[svc%len(azs)]
		if svc%10 == 9 {
			g.route(fmt.Sprintf("s%d-docs", svc), prefix+"/docs/{proxy+}", "GET", "", "    authorization: NONE\n")
		}
		for res := 0; res < 8 && g.left(); res++ {
			g.resource(svc, res, prefix, az)
		}
	}
	return []byte(b.String())
}

type routeGen struct {
	b    *strings.Builder
	n, i int
}

func (g *routeGen) left() bool { return g.i < g.n }

// route writes one route unless n are written already.
func (g *routeGen) route(name, path, methods, host, rules string) {
	if !g.left() {
		return
	}
	g.i++
	fmt.Fprintf(g.b, "  - name: %s\n    match:\n      path: %s\n", name, path)
	if methods != "" {
		fmt.Fprintf(g.b, "      methods: [%s]\n", methods)
	}
	if host != "" {
		fmt.Fprintf(g.b, "      host: %s\n", host)
	}
	g.b.WriteString(rules)
}

func (g *routeGen) resource(svc, res int, prefix, az string) {
	name := fmt.Sprintf("s%d-r%d", svc, res)
	base := fmt.Sprintf("%s/res%d", prefix, res)
	read := fmt.Sprintf("    authorizer: %s\n    scopes: [svc%d/read, svc%d/admin]\n", az, svc, svc)
	write := fmt.Sprintf("    authorizer: %s\n    scopes: [svc%d/write]\n", az, svc)
	ident := fmt.Sprintf("    authorizer: %s\n    groups: [svc%d-users, admins]\n    claimHeaders:\n      x-user-sub: sub\n      x-user-email: email\n", az, svc)
	g.route(name+"-list", base, "GET, POST", "", read)
	g.route(name+"-item", base+"/{id}", "GET, PUT, PATCH, DELETE", "", write)
	g.route(name+"-sub", base+"/{id}/history/{entry}", "GET", "", ident)
	g.route(name+"-archive", base+"/{id}/archive", "POST", "", write)
	g.route(name+"-any", base+"/{id}/{proxy+}", "", "", ident)
	if res%2 == 0 {
		rules := write // the same rules as the item route: no finding
		if res%4 == 0 {
			rules = fmt.Sprintf("    authorizer: %s\n    mode: identity-claims\n    groups: [tenant%d-admins]\n    claims:\n      custom:tenant: tenant%d\n", az, svc%50, svc%50)
		}
		g.route(name+"-tenant", base+"/{id}", "GET, PUT, PATCH, DELETE", fmt.Sprintf("tenant%d.example.com", svc%50), rules)
	}
}

// TestGenPolicy pins that the generator writes n valid routes and that the
// lint has findings to keep equal across changes.
func TestGenPolicy(t *testing.T) {
	for _, n := range []int{1, 100, 1000} {
		s, err := Parse(genPolicy(n), "gen.yaml", Options{})
		if err != nil {
			t.Fatalf("n=%d: %v", n, err)
		}
		if got := len(s.Routes()); got != n {
			t.Fatalf("n=%d: %d routes", n, got)
		}
		if n >= 100 && len(s.Warnings()) == 0 {
			t.Errorf("n=%d: no warnings; the generator should make the host lint find some", n)
		}
	}
	// The default size limit takes 50,000 such routes with room to spare
	// for longer names, more rules and comments (BenchmarkLoad loads them).
	if size := len(genPolicy(50000)); size > DefaultMaxBytes/3 {
		t.Errorf("50,000 generated routes take %d bytes, more than a third of DefaultMaxBytes", size)
	}
}

// BenchmarkLoad parses generated policies of 1,000 to 50,000 routes and
// reports:
//   - load-ms: the wall time of one Parse, lints included;
//   - cpu-ms: the process's CPU time for one Parse, the collector's
//     included, which a loaded machine disturbs less than the wall time;
//   - alloc-B/route: the bytes allocated per route while parsing;
//   - peak-B/route: the live heap per route at the fullest point of a
//     parse, when the YAML tree, the document and the new Snapshot are all
//     reachable: what a start or a reload needs on top of the policy in
//     force;
//   - heap-B/route: the live heap a Snapshot keeps per route once the
//     parse's garbage is collected.
//
// The machines are shared: run it with -count and compare medians.
func BenchmarkLoad(b *testing.B) {
	for _, n := range []int{1000, 10000, 50000} {
		data := genPolicy(n)
		b.Run(fmt.Sprintf("routes=%d", n), func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			alloc0, cpu0 := ms.TotalAlloc, cpuTime()
			for b.Loop() {
				if _, err := Parse(data, "gen.yaml", Options{}); err != nil {
					b.Fatal(err)
				}
			}
			cpu := cpuTime() - cpu0
			runtime.ReadMemStats(&ms)
			b.ReportMetric(float64(ms.TotalAlloc-alloc0)/float64(b.N)/float64(n), "alloc-B/route")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/float64(b.N), "load-ms")
			b.ReportMetric(float64(cpu.Microseconds())/1e3/float64(b.N), "cpu-ms")
			peak, live := parseHeap(b, data)
			b.ReportMetric(float64(peak)/float64(n), "peak-B/route")
			b.ReportMetric(float64(live)/float64(n), "heap-B/route")
		})
	}
}

// parseHeap parses data once and returns the live heap it added at the
// fullest point of the parse (measured by a lint that runs first, when
// everything Parse builds is still reachable) and once Parse returned,
// each after a full collection.
func parseHeap(tb testing.TB, data []byte) (peak, live uint64) {
	saved := lints
	defer func() { lints = saved }()
	var before, during, after runtime.MemStats
	lints = append([]lint{func(*reporter, *Snapshot, *document) {
		runtime.GC()
		runtime.ReadMemStats(&during)
	}}, saved...)
	runtime.GC()
	runtime.ReadMemStats(&before)
	s, err := Parse(data, "gen.yaml", Options{})
	if err != nil {
		tb.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	runtime.KeepAlive(data) // the caller's, not the Snapshot's: not to be counted as freed
	grown := func(ms runtime.MemStats) uint64 {
		if ms.HeapAlloc < before.HeapAlloc {
			return 0
		}
		return ms.HeapAlloc - before.HeapAlloc
	}
	return grown(during), grown(after)
}

// The heap a route may take, as k8s/base/deployment.yaml budgets it (its
// memory comment and the test in k8s/k8s_test.go use the same figures):
// what a compiled route keeps, and what one takes at the fullest point of
// parsing, which a reload adds while the policy in force still serves.
// The figures measured are lower (BENCHMARKS.md); the budget leaves room.
const (
	routeLiveBudget  = 1 << 10
	routeParseBudget = 6 << 10
)

// TestRouteMemoryBudget holds the generated mix of BenchmarkLoad to the
// per-route memory budget of the deployment, so a change that makes routes
// heavier cannot leave the pod's memory arithmetic behind unnoticed.
func TestRouteMemoryBudget(t *testing.T) {
	const n = 2000
	peak, live := parseHeap(t, genPolicy(n))
	t.Logf("per route: %d B live, %d B at the parse's peak", live/n, peak/n)
	if live/n > routeLiveBudget || peak/n > routeParseBudget {
		t.Errorf("per route: %d B live (budget %d), %d B at the parse's peak (budget %d): update the budget in k8s/base/deployment.yaml and k8s/k8s_test.go",
			live/n, routeLiveBudget, peak/n, routeParseBudget)
	}
}
