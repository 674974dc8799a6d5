package grpcauthz

import (
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/cognito-extauthz/cognito-extauthz/internal/check"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/reason"
)

// limitRequest builds a check request with the given request line, headers
// map and raw header_map entries (key, value, raw_value).
func limitRequest(method, host, path string, m map[string]string, raw ...[3]string) *authv3.CheckRequest {
	h := &authv3.AttributeContext_HttpRequest{Method: method, Host: host, Path: path, Headers: m}
	if len(raw) > 0 {
		h.HeaderMap = &corev3.HeaderMap{}
		for _, r := range raw {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: r[0], Value: r[1], RawValue: []byte(r[2])})
		}
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{Http: h}}}
}

func headersN(n int) map[string]string {
	m := make(map[string]string, n)
	for i := range n {
		m[string(rune('a'+i))] = ""
	}
	return m
}

func rawN(n int) [][3]string {
	out := make([][3]string, n)
	for i := range out {
		out[i] = [3]string{string(rune('a' + i)), "", ""}
	}
	return out
}

// TestLimitsExceededBoundaries: a request exactly at a limit is judged, one
// over it is refused, whichever form (headers map, header_map, both) carries
// the headers, and every byte of the request line and of each header form
// counts.
func TestLimitsExceededBoundaries(t *testing.T) {
	l := check.Limits{MaxHeaders: 3, MaxHeaderBytes: 12}
	tests := []struct {
		name string
		req  *authv3.CheckRequest
		over bool
	}{
		{"3 headers in the map", limitRequest("", "", "", headersN(3)), false},
		{"4 headers in the map", limitRequest("", "", "", headersN(4)), true},
		{"3 headers in header_map", limitRequest("", "", "", nil, rawN(3)...), false},
		{"4 headers in header_map", limitRequest("", "", "", nil, rawN(4)...), true},
		{"2 in the map and 2 in header_map", limitRequest("", "", "", headersN(2), rawN(2)...), true},
		{"12 bytes of path", limitRequest("", "", strings.Repeat("p", 12), nil), false},
		{"13 bytes of path", limitRequest("", "", strings.Repeat("p", 13), nil), true},
		{"13 bytes of host", limitRequest("", strings.Repeat("h", 13), "", nil), true},
		{"13 bytes of method", limitRequest(strings.Repeat("M", 13), "", "", nil), true},
		{"method, host and path 12 bytes together", limitRequest("GET", "host", "/pets", nil), false},
		{"method, host and path 13 bytes together", limitRequest("POST", "host", "/pets", nil), true},
		{"map key and value 12 bytes", limitRequest("", "", "", map[string]string{"k": strings.Repeat("v", 11)}), false},
		{"map key 13 bytes", limitRequest("", "", "", map[string]string{strings.Repeat("k", 13): ""}), true},
		{"map value 13 bytes", limitRequest("", "", "", map[string]string{"k": strings.Repeat("v", 12)}), true},
		{"raw key, value and raw value 12 bytes", limitRequest("", "", "", nil, [3]string{"kkkk", "vvvv", "rrrr"}), false},
		{"raw key 13 bytes", limitRequest("", "", "", nil, [3]string{strings.Repeat("k", 13), "", ""}), true},
		{"raw value 13 bytes", limitRequest("", "", "", nil, [3]string{"", strings.Repeat("v", 13), ""}), true},
		{"raw raw_value 13 bytes", limitRequest("", "", "", nil, [3]string{"", "", strings.Repeat("r", 13)}), true},
		{"request line and map and header_map 13 bytes together", limitRequest("G", "h", "/", map[string]string{"kk": "vv"}, [3]string{"k", "v", "rrrr"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, _ := exceeded(l, tt.req)
			if got := d != nil; got != tt.over {
				t.Fatalf("exceeded = %+v, want over the limit %v", d, tt.over)
			}
			if d != nil && d.Reason != reason.RequestTooLarge {
				t.Fatalf("reason %s, want %s", d.Reason, reason.RequestTooLarge)
			}
		})
	}
}

// TestArrival: TapArrival stamps the stream, and arrival reads the stamp
// back (zero without one), which check.Deadline measures from.
func TestArrival(t *testing.T) {
	if !arrival(context.Background()).IsZero() {
		t.Fatal("arrival without a stamp is not zero")
	}
	before := time.Now()
	ctx, err := TapArrival(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if at := arrival(ctx); at.Before(before) || at.After(time.Now()) {
		t.Fatalf("arrival %v outside the call", at)
	}
}
