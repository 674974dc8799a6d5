package grpcauthz

import (
	"context"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
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
	l := Limits{MaxHeaders: 3, MaxHeaderBytes: 12}
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
			d, _ := l.exceeded(tt.req)
			if got := d != nil; got != tt.over {
				t.Fatalf("exceeded = %+v, want over the limit %v", d, tt.over)
			}
			if d != nil && d.Reason != reason.RequestTooLarge {
				t.Fatalf("reason %s, want %s", d.Reason, reason.RequestTooLarge)
			}
		})
	}
}

// TestLimitsDefaults: a zero or negative limit takes the default; a
// positive one is kept.
func TestLimitsDefaults(t *testing.T) {
	tests := []struct {
		in, want Limits
	}{
		{Limits{}, Limits{DefaultMaxHeaders, DefaultMaxHeaderBytes}},
		{Limits{-1, -1}, Limits{DefaultMaxHeaders, DefaultMaxHeaderBytes}},
		{Limits{1, 1}, Limits{1, 1}},
	}
	for _, tt := range tests {
		if got := tt.in.withDefaults(); got != tt.want {
			t.Errorf("%+v.withDefaults() = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

// TestDeadline: a stream stamped by TapArrival carries its arrival plus
// the timeout as the check's deadline (for a key fetch to arm; no timer
// here) once decoding took longer than decodeSlack, and is denied when
// that bound has passed; without a stamp or a positive timeout the context
// is left alone.
func TestDeadline(t *testing.T) {
	bg := context.Background()
	arrived := func(ago time.Duration) context.Context {
		return context.WithValue(bg, arrivalKey{}, time.Now().Add(-ago))
	}
	tests := []struct {
		name      string
		ctx       context.Context
		timeout   time.Duration
		bound     bool // the context carries a check deadline
		deny      bool
		unchanged bool
	}{
		{"no stamp", bg, time.Hour, false, false, true},
		{"zero timeout", arrived(time.Hour), 0, false, false, true},
		{"negative timeout", arrived(time.Hour), -time.Second, false, false, true},
		{"stamped in the future", arrived(-time.Hour), time.Hour, false, false, true},
		{"decoding took 50ms of an hour", arrived(50 * time.Millisecond), time.Hour, true, false, false},
		{"decoding took two hours of one", arrived(2 * time.Hour), time.Hour, false, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, d := deadline(tt.ctx, tt.timeout)
			if got := d != nil; got != tt.deny {
				t.Fatalf("denial %+v, want one: %v", d, tt.deny)
			}
			if d != nil && d.Reason != reason.DeadlineExceeded {
				t.Errorf("reason %s, want %s", d.Reason, reason.DeadlineExceeded)
			}
			if (ctx == tt.ctx) != tt.unchanged {
				t.Errorf("context unchanged = %v, want %v", ctx == tt.ctx, tt.unchanged)
			}
			if _, ok := ctx.Deadline(); ok {
				t.Error("the context got a deadline (a timer); only a key fetch may arm one")
			}
			dl, ok := authz.CheckDeadline(ctx)
			if ok != tt.bound {
				t.Fatalf("check deadline set = %v, want %v", ok, tt.bound)
			}
			if tt.bound {
				from := tt.ctx.Value(arrivalKey{}).(time.Time)
				if !dl.Equal(from.Add(tt.timeout)) {
					t.Errorf("check deadline %v, want arrival plus timeout %v", dl, from.Add(tt.timeout))
				}
			}
		})
	}
}

// TestEnded: a context that ended before the decision is a denial naming
// how it ended.
func TestEnded(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	past, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	tests := []struct {
		name string
		ctx  context.Context
		want reason.Code
	}{
		{"live", context.Background(), ""},
		{"canceled", canceled, reason.Canceled},
		{"deadline passed", past, reason.DeadlineExceeded},
	}
	for _, tt := range tests {
		var got reason.Code
		if d := ended(tt.ctx); d != nil {
			got = d.Reason
		}
		if got != tt.want {
			t.Errorf("%s: ended = %q, want %q", tt.name, got, tt.want)
		}
	}
}
