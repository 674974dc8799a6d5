package grpcauthz_test

import (
	"bytes"
	"maps"
	"slices"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cognito-extauthz/cognito-extauthz/internal/grpcauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/loadgen"
)

// read is what a check reads of a CheckRequest: the projection the fast
// decoder must get right.
type read struct {
	method, host, path string
	headers, ext       map[string]string
	raw                [][3]string
}

func readOf(r *authv3.CheckRequest) read {
	h := r.GetAttributes().GetRequest().GetHttp()
	out := read{method: h.GetMethod(), host: h.GetHost(), path: h.GetPath(),
		headers: h.GetHeaders(), ext: r.GetAttributes().GetContextExtensions()}
	for _, hv := range h.GetHeaderMap().GetHeaders() {
		out.raw = append(out.raw, [3]string{hv.GetKey(), hv.GetValue(), string(hv.GetRawValue())})
	}
	return out
}

func (a read) equal(b read) bool {
	return a.method == b.method && a.host == b.host && a.path == b.path &&
		maps.Equal(a.headers, b.headers) && maps.Equal(a.ext, b.ext) && slices.Equal(a.raw, b.raw)
}

// fullRequest fills every field of a CheckRequest, those a check reads and
// those it skips.
func fullRequest() *authv3.CheckRequest {
	r := loadgen.Request("a.b.c")
	a := r.Attributes
	a.Source = &authv3.AttributeContext_Peer{Principal: "spiffe://src", Labels: map[string]string{"a": "b"},
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{Address: "10.0.0.1"}}}}
	a.Destination = &authv3.AttributeContext_Peer{Service: "dst"}
	a.ContextExtensions = map[string]string{"route": "list-pets", "other": "x"}
	a.MetadataContext = &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": {Fields: map[string]*structpb.Value{"k": structpb.NewStringValue("v")}}}}
	a.TlsSession = &authv3.AttributeContext_TLSSession{Sni: "api.example.com"}
	a.Request.Time = timestamppb.Now()
	h := a.Request.Http
	h.Query, h.Fragment, h.Size, h.Body, h.RawBody = "q=1", "f", 42, "body", []byte{0xff, 0}
	h.HeaderMap = &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: "x-raw", RawValue: []byte("raw\xff")}, {Key: "x-val", Value: "v"}, {Key: "x-raw", RawValue: []byte{}}}}
	return r
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// field appends one field of wire type bytes.
func field(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func entry(k, v string) []byte { return field(field(nil, 1, []byte(k)), 2, []byte(v)) }

// http wraps the fields of an HttpRequest into a whole CheckRequest.
func httpReq(fields ...[]byte) []byte {
	return field(nil, 1, field(nil, 4, field(nil, 2, bytes.Join(fields, nil))))
}

// TestDecodeCheckRequestAgreesWithProto pins the decoder to proto.Unmarshal
// on the fields a check reads, in the corners of the wire format.
func TestDecodeCheckRequestAgreesWithProto(t *testing.T) {
	varint := protowire.AppendVarint(protowire.AppendTag(nil, 4, protowire.VarintType), 7)
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"bench request", marshal(t, loadgen.Request("a.b.c"))},
		{"every field", marshal(t, fullRequest())},
		{"path twice: the last wins", httpReq(field(nil, 4, []byte("/admin")), field(nil, 4, []byte("/public")))},
		{"a header twice: the last entry wins", httpReq(field(nil, 3, entry("authorization", "a")), field(nil, 3, entry("authorization", "b")))},
		{"an entry without a key", httpReq(field(nil, 3, field(nil, 2, []byte("v"))))},
		{"an entry without a value", httpReq(field(nil, 3, field(nil, 1, []byte("k"))))},
		{"an entry with its key twice", httpReq(field(nil, 3, append(entry("a", "1"), field(nil, 1, []byte("b"))...)))},
		{"an entry with a varint field", httpReq(field(nil, 3, append(entry("a", "1"), protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 3)...)))},
		{"path as a varint is an unknown field", httpReq(varint, field(nil, 4, []byte("/p")))},
		{"path after a varint path", httpReq(field(nil, 4, []byte("/p")), varint)},
		{"http sent twice is merged", field(nil, 1, bytes.Join([][]byte{
			field(nil, 4, field(nil, 2, field(nil, 4, []byte("/p")))),
			field(nil, 4, field(nil, 2, field(nil, 2, []byte("GET")))),
		}, nil))},
		{"attributes sent twice are merged", append(
			field(nil, 1, field(nil, 10, entry("route", "r1"))),
			field(nil, 1, field(nil, 4, field(nil, 2, field(nil, 5, []byte("h")))))...)},
		{"a group among unknown fields", append(
			protowire.AppendTag(protowire.AppendTag(nil, 9, protowire.StartGroupType), 9, protowire.EndGroupType),
			httpReq(field(nil, 4, []byte("/g")))...)},
		{"the largest field number is an unknown field", append(
			protowire.AppendVarint(protowire.AppendTag(nil, protowire.MaxValidNumber, protowire.VarintType), 1),
			httpReq(field(nil, 4, []byte("/max")))...)},
		{"fixed32 and fixed64 unknown fields", append(
			protowire.AppendFixed64(protowire.AppendTag(protowire.AppendFixed32(protowire.AppendTag(nil, 7, protowire.Fixed32Type), 1), 8, protowire.Fixed64Type), 2),
			httpReq(field(nil, 5, []byte("h")))...)},
		{"raw header values, empty and binary", httpReq(field(nil, 13, bytes.Join([][]byte{
			field(nil, 1, append(field(nil, 1, []byte("k")), field(nil, 3, []byte("\xff\x00"))...)),
			field(nil, 1, field(nil, 3, nil)),
		}, nil)))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var std, fast authv3.CheckRequest
			if err := proto.Unmarshal(tt.b, &std); err != nil {
				t.Fatalf("proto.Unmarshal: %v", err)
			}
			if err := grpcauthz.DecodeCheckRequest(tt.b, &fast); err != nil {
				t.Fatalf("DecodeCheckRequest: %v", err)
			}
			if got, want := readOf(&fast), readOf(&std); !got.equal(want) {
				t.Fatalf("decoded %+v\nproto.Unmarshal %+v", got, want)
			}
		})
	}
}

// TestDecodeCheckRequestRefuses: malformed input in a field a check reads
// is refused, as proto.Unmarshal refuses it.
func TestDecodeCheckRequestRefuses(t *testing.T) {
	good := marshal(t, loadgen.Request("a.b.c"))
	tests := []struct {
		name string
		b    []byte
	}{
		{"truncated", good[:len(good)-3]},
		{"invalid UTF-8 in the path", httpReq(field(nil, 4, []byte("/\xff")))},
		{"invalid UTF-8 in a header name", httpReq(field(nil, 3, entry("a\xff", "v")))},
		{"invalid UTF-8 in a header value", httpReq(field(nil, 3, entry("a", "\xc3")))},
		{"invalid UTF-8 in a context extension", field(nil, 1, field(nil, 10, entry("route", "\xff")))},
		{"invalid UTF-8 in a header_map key", httpReq(field(nil, 13, field(nil, 1, field(nil, 1, []byte("\xff")))))},
		{"invalid UTF-8 in the scheme", httpReq(field(nil, 6, []byte("\xff")))},
		{"field number zero", append([]byte{0x02, 0x00}, good...)},
		{"field number over the maximum", append(protowire.AppendTag(nil, protowire.MaxValidNumber+1, protowire.BytesType), 0)},
		{"a lone end group", protowire.AppendTag(nil, 3, protowire.EndGroupType)},
		{"an unclosed group", protowire.AppendTag(nil, 3, protowire.StartGroupType)},
		{"reserved wire type", []byte{0x0e}},
		{"length past the end", []byte{0x0a, 0x7f, 0x00}},
		{"bad nested length", field(nil, 1, []byte{0x22, 0x05, 0x01})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var std, fast authv3.CheckRequest
			if err := proto.Unmarshal(tt.b, &std); err == nil {
				t.Fatalf("proto.Unmarshal accepts it; the case is wrong")
			}
			if err := grpcauthz.DecodeCheckRequest(tt.b, &fast); err == nil {
				t.Fatalf("DecodeCheckRequest accepted it: %+v", readOf(&fast))
			}
		})
	}
}

// FuzzDecodeCheckRequest holds the decoder to proto.Unmarshal: whatever
// proto.Unmarshal accepts, the decoder accepts, with the same values in
// every field a check reads; whatever the decoder refuses, proto.Unmarshal
// refuses too.
func FuzzDecodeCheckRequest(f *testing.F) {
	f.Add(marshal(f, loadgen.Request("a.b.c")))
	f.Add(marshal(f, fullRequest()))
	f.Add(httpReq(field(nil, 3, entry("authorization", "a")), field(nil, 4, []byte("/admin")), field(nil, 4, []byte("/public"))))
	f.Fuzz(func(t *testing.T, b []byte) {
		var std, fast authv3.CheckRequest
		errStd := proto.Unmarshal(b, &std)
		errFast := grpcauthz.DecodeCheckRequest(b, &fast)
		switch {
		case errStd == nil && errFast != nil:
			t.Fatalf("refused what proto.Unmarshal accepts: %v", errFast)
		case errStd == nil && !readOf(&fast).equal(readOf(&std)):
			t.Fatalf("decoded %+v\nproto.Unmarshal %+v", readOf(&fast), readOf(&std))
		}
	})
}

// BenchmarkDecodeCheckRequest compares the decoder with proto.Unmarshal
// on the request the load benchmark sends.
func BenchmarkDecodeCheckRequest(b *testing.B) {
	msg := marshal(b, loadgen.Request("eyJraWQiOiJrIiwiYWxnIjoiUlMyNTYifQ."+string(bytes.Repeat([]byte("x"), 900))+".sig"))
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r authv3.CheckRequest
			if err := grpcauthz.DecodeCheckRequest(msg, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("proto.Unmarshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r authv3.CheckRequest
			if err := proto.Unmarshal(msg, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
