// Package e2e holds the end-to-end tests: the extauthz binary, built from
// this checkout and driven only through its command line and gRPC as an
// operator or Envoy would, against real tokens minted by cognito-local (a
// Cognito emulator installed from npm into this directory by
// `make e2e-deps`), and, when tinyproxy is installed, a JWKS fetch over https
// through a real forward proxy.
//
// Without cognito-local the tests skip, unless CI is set, where they fail:
// CI must never pass by silently skipping them. `go test -short` skips them.
package e2e
