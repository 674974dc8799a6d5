package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cognito-extauthz/cognito-extauthz/internal/server"
)

// TestPolicyWarningsLogged: the policy's warnings are logged, with their
// place in the file, when it is loaded and again on a reload that changes
// it; they do not stop the service.
func TestPolicyWarningsLogged(t *testing.T) {
	const noRoutesUse = `no route uses authorizer "spare"`
	policy := func(path string) string {
		return "apiVersion: cognito-extauthz/v1\nauthorizers:\n  spare: { userPools: [{ userPoolId: us-east-1_abc }] }\n" +
			"routes:\n  - { name: open, match: { path: " + path + " }, authorization: NONE }\n"
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(policy("/a")), 0o600); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zapcore.WarnLevel)
	r := start(t, server.Config{PolicyPath: file, Logger: zap.New(core)})

	warned := func() int {
		n := 0
		for _, e := range logs.FilterMessage("policy warning").All() {
			w, _ := e.ContextMap()["warning"].(string)
			if !strings.HasPrefix(w, file+":3:3: authorizers.spare: ") || !strings.Contains(w, noRoutesUse) {
				t.Errorf("warning logged as %q", w)
			}
			n++
		}
		return n
	}
	if n := warned(); n != 1 {
		t.Fatalf("%d warnings logged at load, want 1", n)
	}
	if err := os.WriteFile(file, []byte(policy("/b")), 0o600); err != nil {
		t.Fatal(err)
	}
	r.srv.Reload()
	if n := warned(); n != 2 {
		t.Fatalf("%d warnings logged after a reload, want 2", n)
	}
}
