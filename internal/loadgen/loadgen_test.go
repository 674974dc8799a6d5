package loadgen

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// The /proc readers see this process: CPU time grows with work, and the
// resident set is plausible.
func TestProcReaders(t *testing.T) {
	pid := os.Getpid()
	before, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	after, err := ProcCPU(pid)
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("CPU time did not grow over a busy loop (%d iterations): %v -> %v", x, before, after)
	}
	m, err := ProcMemory(pid)
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS < 1<<20 || m.Peak < m.RSS {
		t.Fatalf("memory %+v: want RSS >= 1 MiB and peak >= RSS", m)
	}
	if _, err := ProcCPU(1 << 30); err == nil {
		t.Fatal("no error for a process that does not exist")
	}
}

// Minted tokens are saved and loaded back, and the key set is the tokens'
// key.
func TestMintSaveLoad(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrMint(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	again, err := LoadOrMint(dir, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.IDs) != 2 || again.IDs[1] != first.IDs[1] || !again.Key.Equal(first.Key) {
		t.Fatal("tokens were not loaded back from the cache directory")
	}
	if first.IDs[0] == first.IDs[1] {
		t.Fatal("tokens are not unique")
	}
	var set struct{ Keys []map[string]string }
	if err := json.Unmarshal(first.JWKS(), &set); err != nil || len(set.Keys) != 1 || set.Keys[0]["kid"] != kid {
		t.Fatalf("JWKS = %s, %v", first.JWKS(), err)
	}
	// /proc counts CPU in clock ticks (10 ms): enough rounds to span several.
	if cost, err := first.RS256VerifyCPU(2000); err != nil || cost <= 0 {
		t.Fatalf("RS256VerifyCPU = %v, %v", cost, err)
	}
	if _, err := LoadOrMint(dir, 4); err != nil {
		t.Fatalf("asking for more tokens than saved should mint again: %v", err)
	}
}

// Drive sends each request once in counted mode, records every latency,
// and counts unexpected verdicts as failures.
func TestDriveAgainstNoop(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ServeNoop(lis) }()
	req := Request("a.b.c")
	load := Load{Workers: 4, Connections: 2, Duration: time.Minute, Requests: 200,
		Next: func(int) *authv3.CheckRequest { return req },
		OK:   func(r *authv3.CheckResponse) bool { return r.GetStatus().GetCode() == 0 }}
	r, err := Drive(context.Background(), lis.Addr().String(), load)
	if err != nil {
		t.Fatal(err)
	}
	load.StatusOnly = true
	if r, err := Drive(context.Background(), lis.Addr().String(), load); err != nil || r.Requests != 200 || r.Failed != 0 {
		t.Fatalf("status-only client: %+v, %v", r, err)
	}
	if r.Requests != 200 || r.Failed != 0 || r.P50 <= 0 || r.P99 < r.P50 || r.RPS() <= 0 {
		t.Fatalf("result %+v", r)
	}
	load.OK = func(*authv3.CheckResponse) bool { return false }
	load.Requests = 10
	if r, err = Drive(context.Background(), lis.Addr().String(), load); err != nil || r.Failed != 10 || r.FirstFailure == "" {
		t.Fatalf("wrong verdicts not counted: %+v, %v", r, err)
	}
}

// The status-only codec reads a response's status, allow or deny, and
// nothing else; requests are encoded as the standard codec encodes them.
func TestStatusCodec(t *testing.T) {
	c := newStatusCodec()
	for _, want := range []*authv3.CheckResponse{
		{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
			HeadersToRemove: []string{"x-a"}}}, DynamicMetadata: &structpb.Struct{Fields: map[string]*structpb.Value{"k": structpb.NewStringValue("v")}}},
		{Status: &rpcstatus.Status{Code: 16, Message: "token_missing"}},
		{},
	} {
		b, err := proto.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got := &authv3.CheckResponse{}
		if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(got, &authv3.CheckResponse{Status: want.Status}) {
			t.Fatalf("decoded %v from %v", got, want)
		}
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{0x0a, 0x05})}, &authv3.CheckResponse{}); err == nil {
		t.Fatal("a truncated response decoded")
	}
	req := Request("a.b.c")
	data, err := c.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var back authv3.CheckRequest
	if err := proto.Unmarshal(data.Materialize(), &back); err != nil || !proto.Equal(&back, req) {
		t.Fatalf("the request did not survive encoding: %v", err)
	}
}
