package loadgen

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Noop is the gRPC floor: an ext_authz server in grpc-go, with its default
// codec and options, that answers every check OK without looking at it.
type Noop struct {
	authv3.UnimplementedAuthorizationServer
}

// Check answers OK.
func (Noop) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}}, nil
}

// ServeNoop serves Noop on lis until it fails.
func ServeNoop(lis net.Listener) error {
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, Noop{})
	return s.Serve(lis)
}

// Request is the CheckRequest Envoy sends for GET /pets with an
// Authorization header, as the benchmark's requests all are; token "" sends
// none.
func Request(token string) *authv3.CheckRequest {
	h := map[string]string{
		":authority":        "api.example.com",
		":method":           "GET",
		":path":             "/pets",
		":scheme":           "https",
		"accept":            "application/json",
		"user-agent":        "bench-load/1",
		"x-forwarded-proto": "https",
		"x-request-id":      "8c1f1d7e-3b9a-4d0e-9f2a-5b6c7d8e9f01",
	}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: "1234567890", Method: "GET", Host: "api.example.com", Path: "/pets",
			Scheme: "https", Protocol: "HTTP/1.1", Headers: h,
		}},
	}}
}

// Load says how to drive a server.
type Load struct {
	Workers     int
	Connections int
	// Duration ends the run; with Requests set, the run also ends when
	// Next has returned that many requests.
	Duration time.Duration
	Requests int
	// Next returns the i-th request (from 0); it is called concurrently.
	Next func(i int) *authv3.CheckRequest
	// OK reports whether a response is the verdict the scenario expects.
	OK func(*authv3.CheckResponse) bool
	// StatusOnly makes the client decode only each response's status (see
	// statusCodec), so that the client's cost does not grow with what the
	// server says.
	StatusOnly bool
}

// Result is what one run measured on the client side.
type Result struct {
	Requests int // completed RPCs, errors and unexpected verdicts included
	Failed   int // RPC errors and unexpected verdicts
	// FirstFailure describes one failure, for the report.
	FirstFailure string
	Elapsed      time.Duration
	P50, P99     time.Duration
	latencies    []time.Duration // sorted
}

// Merge combines runs of the same load against the same server (rounds of
// a benchmark interleaved with another server's), as if they were one run.
func Merge(rs ...Result) Result {
	var m Result
	for _, r := range rs {
		m.Requests += r.Requests
		m.Failed += r.Failed
		m.Elapsed += r.Elapsed
		if m.FirstFailure == "" {
			m.FirstFailure = r.FirstFailure
		}
		m.latencies = append(m.latencies, r.latencies...)
	}
	slices.Sort(m.latencies)
	m.P50, m.P99 = percentiles(m.latencies)
	return m
}

func percentiles(sorted []time.Duration) (p50, p99 time.Duration) {
	if len(sorted) == 0 {
		return 0, 0
	}
	return sorted[len(sorted)*50/100], sorted[min(len(sorted)*99/100, len(sorted)-1)]
}

// RPS is the completed requests per second of wall time.
func (r Result) RPS() float64 { return float64(r.Requests) / r.Elapsed.Seconds() }

// Drive runs l against the server at addr.
func Drive(ctx context.Context, addr string, l Load) (Result, error) {
	conns := make([]*grpc.ClientConn, l.Connections)
	for i := range conns {
		// Each ClientConn is its own HTTP/2 connection.
		opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
		if l.StatusOnly {
			opts = append(opts, grpc.WithDefaultCallOptions(grpc.ForceCodecV2(newStatusCodec())))
		}
		c, err := grpc.NewClient(addr, opts...)
		if err != nil {
			return Result{}, fmt.Errorf("dial %s: %w", addr, err)
		}
		defer c.Close()
		conns[i] = c
	}
	// The run ends by time without cutting requests short: a worker
	// checks the deadline between requests, and each request runs to its
	// end under ctx alone.
	deadline := time.Now().Add(l.Duration)
	var next atomic.Int64
	lat := make([][]time.Duration, l.Workers)
	failed := make([]int, l.Workers)
	var first atomic.Pointer[string]
	var wg sync.WaitGroup
	start := time.Now()
	for w := range l.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := authv3.NewAuthorizationClient(conns[w%len(conns)])
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if l.Requests > 0 && i >= l.Requests {
					return
				}
				req := l.Next(i)
				t0 := time.Now()
				resp, err := client.Check(ctx, req)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					return // interrupted, not a failure
				}
				lat[w] = append(lat[w], d)
				if err != nil || !l.OK(resp) {
					failed[w]++
					msg := fmt.Sprintf("error %v, status %v", err, resp.GetStatus())
					first.CompareAndSwap(nil, &msg)
				}
			}
		}()
	}
	wg.Wait()
	r := Result{Elapsed: time.Since(start)}
	all := slices.Concat(lat...)
	slices.Sort(all)
	r.Requests = len(all)
	for _, f := range failed {
		r.Failed += f
	}
	if p := first.Load(); p != nil {
		r.FirstFailure = *p
	}
	r.latencies = all
	r.P50, r.P99 = percentiles(all)
	return r, nil
}
