package main

import (
	"fmt"
	"io"
	"time"

	"github.com/cognito-extauthz/cognito-extauthz/internal/loadgen"
)

type reportData struct {
	res                 [2][2]run
	rs256               time.Duration
	mem                 loadgen.Memory
	entries, cacheBytes float64
	heap                float64 // live and not yet collected heap, bytes
	load0, load1        string
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }
func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
func mib(b int64) string        { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT MET"
}

// report prints the runs and the table, each row with its goal.
func report(w io.Writer, c config, d reportData) {
	fmt.Fprintf(w, "machine:  %s\n", machine())
	fmt.Fprintf(w, "load avg: %s at the start, %s at the end (1, 5, 15 min)\n", d.load0, d.load1)
	fmt.Fprintf(w, "client:   %d workers over %d connections, compiled-proto gRPC, decoding %s of each response; cached runs %s after %s warm-up, unique run %d requests, each in %d rounds taken in turn with the no-op\n",
		c.workers, c.connections, map[string]string{"status": "the status", "full": "all"}[c.clientDecode], c.duration, c.warmup, (c.tokens-1)/c.rounds*c.rounds, c.rounds)
	fmt.Fprintf(w, "service:  extauthz serve, log level warn, GOMEMLIMIT=%s; RS256 verification here: %s CPU (mean of measurements between the rounds)\n\n", c.memLimit, us(d.rs256))

	fmt.Fprintf(w, "| run | server | requests | rps | p50 | p99 | server CPU per check |\n|---|---|---|---|---|---|---|\n")
	for i, scen := range []string{"cached token", "unique tokens"} {
		for j, name := range []string{"no-op", "extauthz"} {
			r := d.res[i][j]
			fmt.Fprintf(w, "| %s | %s | %d | %.0f | %s | %s | %s |\n", scen, name, r.Requests, r.RPS(), ms(r.P50), ms(r.P99), us(r.cpuPerCheck()))
		}
	}
	cn, cs := d.res[0][0], d.res[0][1]
	un, uns := d.res[1][0], d.res[1][1]
	rss := d.mem.RSS
	rpsRatio := cs.RPS() / cn.RPS()
	cpuRatio := float64(cs.cpuPerCheck()) / float64(cn.cpuPerCheck())
	p99Ratio := float64(cs.P99) / float64(cn.P99)
	uRatio := uns.RPS() / un.RPS()
	uCPU := float64(uns.cpuPerCheck()-un.cpuPerCheck()) / float64(d.rs256)

	fmt.Fprintf(w, "\n| measure | measured | goal | |\n|---|---|---|---|\n")
	fmt.Fprintf(w, "| RSS with the cache full (%.0f entries, %s accounted, heap %s) | %s (peak %s) | <= 160 MiB | %s |\n",
		d.entries, mib(int64(d.cacheBytes)), mib(int64(d.heap)), mib(rss), mib(d.mem.Peak), verdict(rss <= 160<<20))
	fmt.Fprintf(w, "| cached-token rps / no-op rps | %.2f | >= 0.95 | %s |\n", rpsRatio, verdict(rpsRatio >= 0.95))
	fmt.Fprintf(w, "| cached-token server CPU per check / no-op's | %.2f | <= 1.05 | %s |\n", cpuRatio, verdict(cpuRatio <= 1.05))
	fmt.Fprintf(w, "| cached-token p99 / no-op p99 | %.2f | <= 1.10 | %s |\n", p99Ratio, verdict(p99Ratio <= 1.10))
	fmt.Fprintf(w, "| unique-token rps / no-op rps (same requests) | %.2f | >= 0.60 | %s |\n", uRatio, verdict(uRatio >= 0.60))
	fmt.Fprintf(w, "| CPU per unique token above the no-op, in RS256 verifications | %.2f | <= 1.3 | %s |\n", uCPU, verdict(uCPU <= 1.3))
}
