package policy

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicy is a 50-route policy shaped like a real API: resources with
// collection, item and sub-resource routes, a few host-specific routes, and
// greedy fallbacks.
func benchPolicy(tb testing.TB) *Snapshot {
	tb.Helper()
	var b strings.Builder
	b.WriteString("apiVersion: cognito-extauthz/v1\nauthorizers:\n  users:\n    userPools: [{ userPoolId: us-east-1_Bench }]\nroutes:\n")
	route := func(name, path, extra string) {
		fmt.Fprintf(&b, "  - { name: %s, match: { path: %q%s }, authorizer: users }\n", name, path, extra)
	}
	resources := []string{"pets", "owners", "vets", "visits", "orders", "invoices", "users", "groups", "reports", "files"}
	for _, r := range resources {
		route(r+"-list", "/v1/"+r, ", methods: [GET, POST]")
		route(r+"-item", "/v1/"+r+"/{id}", ", methods: [GET, PUT, DELETE]")
		route(r+"-sub", "/v1/"+r+"/{id}/history/{entry}", "")
		route(r+"-any", "/v1/"+r+"/{id}/{rest+}", "")
	}
	for i := range 8 {
		route(fmt.Sprintf("tenant-%d", i), fmt.Sprintf("/t/tenant%d/{proxy+}", i), fmt.Sprintf(", host: t%d.example.com", i))
	}
	route("health", "/health", "")
	route("v1-any", "/v1/{proxy+}", "")
	if got := strings.Count(b.String(), "- { name:"); got != 50 {
		tb.Fatalf("bench policy has %d routes", got)
	}
	s, err := Parse([]byte(b.String()), "bench.yaml", Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func BenchmarkMatch(b *testing.B) {
	s := benchPolicy(b)
	cases := []struct {
		name, method, host, path, want string
	}{
		{"exact", "GET", "api.example.com", "/v1/orders", "orders-list"},
		{"param", "GET", "api.example.com:443", "/v1/orders/8f14e45f", "orders-item"},
		{"two-params-query", "GET", "api.example.com", "/v1/invoices/42/history/7?expand=lines&page=2", "invoices-sub"},
		{"greedy-after-backtrack", "PATCH", "api.example.com", "/v1/files/9/a/b/c/d", "files-any"},
		{"host", "GET", "T3.example.com", "/t/tenant3/docs/readme", "tenant-3"},
		{"escaped", "GET", "api.example.com", "/v1/users/j%C3%B6rg%40example.com", "users-item"},
		{"merged-slashes", "GET", "api.example.com", "/v1//pets/7/", "pets-item"},
		{"not-found", "GET", "api.example.com", "/v2/orders/1", ""},
		{"invalid", "GET", "api.example.com", "/v1/orders%2F1", ""},
	}
	for _, c := range cases {
		r, _ := s.Match(c.method, c.host, c.path)
		if got := routeName(r); (c.want == "" && r != nil) || (c.want != "" && got != c.want) {
			b.Fatalf("%s: Match = %s, want %s", c.name, got, c.want)
		}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s.Match(c.method, c.host, c.path)
			}
		})
	}
}
