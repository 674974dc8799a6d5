//go:build vtprotobuf

package grpcauthz

import (
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Built as make builds it (-tags vtprotobuf), the service's responses take
// go-control-plane's generated marshalling, not reflection.
func TestCodecUsesVTProtobuf(t *testing.T) {
	if !usesVT(&authv3.CheckResponse{}) {
		t.Fatal("CheckResponse has no vtprotobuf marshalling code in this build")
	}
}
