package main

import (
	"net/http"
	"net/http/pprof"
)

// adminHandlers are the admin routes the flags turn on: Go's profiler with
// --enable-pprof (CPU, heap, goroutines of the running service, as
// `go tool pprof http://ADMIN/debug/pprof/profile?seconds=30` reads them).
// Off by default: profiles expose internals and cost CPU while they run.
func (f *serverFlags) adminHandlers() map[string]http.Handler {
	if !f.enablePprof {
		return nil
	}
	return map[string]http.Handler{
		"GET /debug/pprof/":        http.HandlerFunc(pprof.Index),
		"GET /debug/pprof/cmdline": http.HandlerFunc(pprof.Cmdline),
		"GET /debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"GET /debug/pprof/symbol":  http.HandlerFunc(pprof.Symbol),
		"GET /debug/pprof/trace":   http.HandlerFunc(pprof.Trace),
	}
}
