package grpcauthz

import (
	"fmt"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// vtMarshaler is the marshalling code that go-control-plane generates with
// vtprotobuf for its messages (CheckResponse among them): plain field
// writes instead of the reflection-driven proto.Marshal. It is compiled in
// only with the build tag vtprotobuf, which `make build`, the Dockerfile,
// `make test` and the release builds (.goreleaser.yaml) set; without it every message takes proto.Marshal, and
// the bytes on the wire are the same either way.
type vtMarshaler interface {
	SizeVT() int
	MarshalToSizedBufferVTStrict([]byte) (int, error)
}

// codec is the gRPC server's codec: vtprotobuf marshalling where the
// message has it, DecodeCheckRequest for the CheckRequests it
// receives (go-control-plane ships no vtprotobuf unmarshal code, and that
// decoder keeps only what a check reads), and the standard proto codec for
// everything else.
type codec struct{ std encoding.CodecV2 }

func newCodec() codec { return codec{std: encoding.GetCodecV2("proto")} }

// Codec returns the codec the gRPC server must use for this edge
// (grpc.ForceServerCodecV2): vtprotobuf marshalling where the message has
// it, and the edge's own CheckRequest decoder, which keeps only what a
// check reads. It replaces the standard "proto" codec on that server only.
func Codec() encoding.CodecV2 { return newCodec() }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMarshaler)
	if !ok {
		return c.std.Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVTStrict(buf); err != nil {
			return nil, fmt.Errorf("marshal %T: %w", v, err)
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVTStrict((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("marshal %T: %w", v, err)
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) (err error) {
	req, ok := v.(*authv3.CheckRequest)
	if !ok {
		return c.std.Unmarshal(data, v)
	}
	// The decoder is fuzzed against proto.Unmarshal, but it runs before
	// Check's own recover: a panic here must refuse the one request (a
	// gRPC error, which Envoy answers per failure_mode_allow, false in
	// every shipped config), not take down the replica.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("decode CheckRequest: panic: %v", p)
		}
	}()
	// The decoder copies what it keeps, so the buffers may be freed after.
	if len(data) == 1 {
		return DecodeCheckRequest(data[0].ReadOnlyData(), req)
	}
	return DecodeCheckRequest(data.Materialize(), req)
}

// Name is "proto": the codec replaces the standard one for the
// application/grpc content type, on this server only.
func (codec) Name() string { return "proto" }

// usesVT reports whether m would be marshalled with vtprotobuf code.
func usesVT(m proto.Message) bool {
	_, ok := m.(vtMarshaler)
	return ok
}
