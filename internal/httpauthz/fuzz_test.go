package httpauthz_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/cognito-extauthz/cognito-extauthz/internal/authz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/httpauthz"
	"github.com/cognito-extauthz/cognito-extauthz/internal/testenv"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/jwks"
	"github.com/cognito-extauthz/cognito-extauthz/pkg/policy"
)

// FuzzTranslate feeds arbitrary forwarding headers to each endpoint with no
// token, under the test policy (defaultAction deny, one NONE route
// /health). Whatever the input:
//   - only the NONE route can allow, and only when the endpoint's own URI
//     header (or, for /envoy, its own target) is present;
//   - the other family's headers never change the answer;
//   - a missing, empty or repeated method or URI header is a 400.
func FuzzTranslate(f *testing.F) {
	env := testenv.New(f)
	snap := env.Policy(f, testenv.Policy)
	az := authz.New(testenv.Keys(f, snap, jwks.Options{}), authz.Options{})
	handler := httpauthz.New(httpauthz.Options{Snapshot: func() *policy.Snapshot { return snap }, Authorizer: az})

	f.Add(uint8(0), "GET", "/health", "", "GET", "/pets", false)
	f.Add(uint8(1), "GET", "/pets", "api.example.com", "GET", "/health", false)
	f.Add(uint8(2), "get", "/health?x=1", "", "POST", "/health", true)
	f.Add(uint8(1), "", "/health", "", "GET", "/health", false)
	f.Add(uint8(2), "GET", "", "h", "GET", "/health", false)
	f.Add(uint8(1), "GET", "/%68ealth", "a, b", "GET", "/health", false)
	f.Add(uint8(0), "GET", "/../health", "", "", "", false)
	f.Fuzz(func(t *testing.T, which uint8, method, uri, host, otherMethod, otherURI string, dup bool) {
		ep := int(which % 3)
		a := serve(handler, ep, method, uri, host, otherMethod, otherURI, dup)
		b := serve(handler, ep, method, uri, host, "GET", "/health", dup)
		if a.Code != b.Code || a.Header().Get("X-Extauthz-Reason") != b.Header().Get("X-Extauthz-Reason") {
			t.Fatalf("the other family's headers changed the answer: %d %s vs %d %s", a.Code, a.Header().Get("X-Extauthz-Reason"),
				b.Code, b.Header().Get("X-Extauthz-Reason"))
		}
		if a.Code == http.StatusOK {
			if route := a.Header().Get("X-Extauthz-Route"); route != "health" {
				t.Fatalf("allowed on route %q without a token", route)
			}
			if ep != 0 && (uri == "" || method == "" || dup) {
				t.Fatalf("allowed without a usable method/URI header (method %q uri %q dup %v)", method, uri, dup)
			}
			return
		}
		if a.Code >= 200 && a.Code < 300 {
			t.Fatalf("status %d is neither an allow nor a denial", a.Code)
		}
		if ep != 0 && (uri == "" || method == "" || dup) && a.Code != http.StatusBadRequest {
			t.Fatalf("status %d for an unusable request, want 400", a.Code)
		}
	})
}

// serve asks handler directly: ep 0 is /envoy, 1 /auth, 2 /nginx; the
// own family carries method, uri and host (repeated when dup), the other
// family otherMethod and otherURI.
func serve(handler http.Handler, ep int, method, uri, host, otherMethod, otherURI string, dup bool) *httptest.ResponseRecorder {
	own, other := [3]string{"X-Forwarded-Method", "X-Forwarded-Uri", "X-Forwarded-Host"}, [3]string{"X-Original-Method", "X-Original-Uri", "X-Original-Host"}
	target := "/auth"
	switch ep {
	case 0:
		target = "/envoy" + uri
	case 2:
		own, other = other, own
		target = "/nginx"
	}
	r := &http.Request{
		Method:     "GET",
		RequestURI: target,
		URL:        &url.URL{Path: strings.SplitN(target, "?", 2)[0]},
		Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: http.Header{},
		Host:   "fuzz.example.com",
		Body:   http.NoBody,
	}
	if ep == 0 {
		r.Method = method
	} else {
		n := 1
		if dup {
			n = 2
		}
		for range n {
			r.Header[own[0]] = append(r.Header[own[0]], method)
			r.Header[own[1]] = append(r.Header[own[1]], uri)
		}
	}
	if host != "" {
		r.Header[own[2]] = []string{host}
	}
	r.Header[other[0]] = []string{otherMethod}
	r.Header[other[1]] = []string{otherURI}
	r.Header[other[2]] = []string{"internal.example.com"}
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	return w
}
