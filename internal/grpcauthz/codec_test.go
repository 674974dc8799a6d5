package grpcauthz

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Whatever marshaller the codec picks, the peer must decode the message
// it was given: allows, denials, large ones (pooled buffers), pre-encoded
// unknown fields (the edge's metadata), and messages without vtprotobuf
// code (health).
func TestCodecRoundTrip(t *testing.T) {
	meta, _ := structpb.NewStruct(map[string]any{"route": "r", "scopes": []any{"a", "b"}})
	big := strings.Repeat("v", 64<<10)
	withUnknown := &authv3.CheckResponse{Status: &rpcstatus.Status{}}
	raw := protowire.AppendTag(nil, 4, protowire.BytesType)
	inner, _ := proto.Marshal(meta)
	raw = protowire.AppendBytes(raw, inner)
	withUnknown.ProtoReflect().SetUnknown(protoreflect.RawFields(raw))
	withMeta := &authv3.CheckResponse{Status: &rpcstatus.Status{}, DynamicMetadata: meta}

	tests := []struct {
		name string
		msg  proto.Message
		want proto.Message // nil: msg itself
	}{
		{"allow", &authv3.CheckResponse{
			Status: &rpcstatus.Status{},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{{
					Header: &corev3.HeaderValue{Key: "x-user-sub", Value: "abc"}, Append: wrapperspb.Bool(false)}},
				HeadersToRemove: []string{"x-user-email"},
			}},
			DynamicMetadata: meta,
		}, nil},
		{"deny", &authv3.CheckResponse{
			Status: &rpcstatus.Status{Code: 16, Message: "token_missing"},
			HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
				Status: &typev3.HttpStatus{Code: typev3.StatusCode_Unauthorized}, Body: `{"message":"Unauthorized"}`}},
		}, nil},
		{"large, pooled buffer", &authv3.CheckResponse{
			Status: &rpcstatus.Status{},
			HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
				Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-big", Value: big}}}}},
		}, nil},
		{"pre-encoded metadata", withUnknown, withMeta},
		{"no vtprotobuf code", &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil},
	}
	c := newCodec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := c.Marshal(tt.msg)
			if err != nil {
				t.Fatalf("Marshal: %v", err)
			}
			b := data.Materialize()
			data.Free()
			got := tt.msg.ProtoReflect().New().Interface()
			if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			want := tt.want
			if want == nil {
				want = tt.msg
			}
			if !proto.Equal(want, got) {
				t.Fatalf("round trip changed the message:\nwant %v\ngot  %v", want, got)
			}
		})
	}
	if c.Name() != "proto" {
		t.Fatalf("Name = %q: the codec must replace the standard one", c.Name())
	}
}

// CheckRequests go through extauthz.DecodeCheckRequest, whether the
// message arrives in one buffer or split across several, and a malformed
// one is refused, never half read.
func TestCodecDecodesCheckRequests(t *testing.T) {
	want := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		ContextExtensions: map[string]string{"route": "r"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "GET", Host: "api.example.com", Path: "/pets",
			Headers: map[string]string{"authorization": "Bearer a.b.c", "x": strings.Repeat("y", 100)},
		}},
	}}
	b, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	c := newCodec()
	for name, data := range map[string]mem.BufferSlice{
		"one buffer":    {mem.SliceBuffer(b)},
		"three buffers": {mem.SliceBuffer(b[:7]), mem.SliceBuffer(b[7:50]), mem.SliceBuffer(b[50:])},
	} {
		t.Run(name, func(t *testing.T) {
			got := &authv3.CheckRequest{}
			if err := c.Unmarshal(data, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(want, got) {
				t.Fatalf("want %v\ngot  %v", want, got)
			}
		})
	}
	bad := append([]byte(nil), b...)
	i := strings.Index(string(bad), "/pets")
	bad[i+1] = 0xff
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bad)}, &authv3.CheckRequest{}); err == nil {
		t.Fatal("a path with invalid UTF-8 was accepted")
	}
}

// A panic in the request decoder becomes an error for that one call, never
// a crash of the process every check depends on (a nil message is the one
// way to make the fuzzed decoder panic).
func TestCodecDecodePanicIsAnError(t *testing.T) {
	b, err := proto.Marshal(&authv3.CheckRequest{Attributes: &authv3.AttributeContext{}})
	if err != nil {
		t.Fatal(err)
	}
	var req *authv3.CheckRequest
	err = newCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, req)
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("err = %v, want the decoder's panic as an error", err)
	}
}
