// Command bench-load is the load benchmark behind `make bench-load`. It
// starts the service (`extauthz serve`) and a no-op ext_authz server in
// grpc-go, drives each with the same compiled-proto gRPC client and the
// same CheckRequests, and prints rps, p50, p99 and server CPU per check
// (from /proc/PID/stat) side by side with their ratios, then the service's
// RSS once its verified-token cache holds one entry per unique token.
//
//	bench-load [flags]        run the benchmark
//	bench-load noop ADDR [PPROF]  serve the no-op ext_authz server (used by the
//	                              above), with Go's profiler on PPROF if given
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runMain(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-load:", err)
		os.Exit(1)
	}
}

func runMain(ctx context.Context, args []string, stdout io.Writer) error {
	if (len(args) == 2 || len(args) == 3) && args[0] == "noop" {
		if len(args) == 3 {
			go servePprof(args[2])
		}
		return serveNoop(args[1], stdout)
	}
	fs := flag.NewFlagSet("bench-load", flag.ContinueOnError)
	var c config
	fs.StringVar(&c.extauthz, "extauthz", "bin/extauthz", "the extauthz binary to benchmark")
	fs.IntVar(&c.tokens, "tokens", 100_000, "unique valid tokens: the unique-token run sends each once, filling the cache")
	fs.DurationVar(&c.duration, "duration", 10e9, "length of each cached-token run")
	fs.DurationVar(&c.warmup, "warmup", 2e9, "warm-up before each cached-token run, not reported")
	fs.IntVar(&c.workers, "workers", 50, "concurrent requests")
	fs.IntVar(&c.connections, "connections", 5, "HTTP/2 connections the workers share")
	fs.StringVar(&c.cacheDir, "token-dir", "bin/bench-load-tokens", "where minted tokens are kept between runs")
	fs.StringVar(&c.memLimit, "gomemlimit", "300MiB", "GOMEMLIMIT of the service, as k8s/base sets it")
	fs.IntVar(&c.rounds, "rounds", 5, "the servers take turns this many times; each round runs 1/rounds of the cached duration and of the unique tokens")
	fs.StringVar(&c.clientDecode, "client-decode", "status", "what the client decodes of each response: status (the same client cost for both servers) or full (the whole CheckResponse, as a Go client of the service would)")
	fs.StringVar(&c.profileDir, "profile", "", "write CPU profiles of both servers' runs into this directory: DIR/extauthz-cached-1.pprof, DIR/no-op-cached-1.pprof, ... (go tool pprof reads them)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if c.clientDecode != "status" && c.clientDecode != "full" {
		return errors.New("--client-decode must be status or full")
	}
	if c.rounds < 1 || c.tokens < c.rounds+1 || c.workers < 1 || c.connections < 1 {
		return errors.New("--rounds, --workers and --connections must be at least 1, --tokens more than --rounds")
	}
	return bench(ctx, c, stdout)
}

// servePprof serves Go's profiler (net/http/pprof registers itself on
// the default mux) for the no-op server's profiles.
func servePprof(addr string) {
	if err := http.ListenAndServe(addr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "bench-load noop: pprof:", err)
	}
}

func serveNoop(addr string, stdout io.Writer) error {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	fmt.Fprintln(stdout, lis.Addr().String())
	return serveNoopOn(lis)
}
